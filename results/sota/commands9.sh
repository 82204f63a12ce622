#!/usr/bin/env bash
# Round 5, for the record (not a selection: round 5 had no winner, commands8.sh / TABLE.md):
# input dropout 0.1, the best round-5 probe on validation, under the published protocol,
# seeds 0-2, so that its effect there is measured as round 4's dropout rates were. Two at a
# time, one thread each. Run from the repository root: bash results/sota/commands9.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/sota/runs L=results/sota/logs
PUB="delayprop train -c configs/shd_a_ff_syn_eprop.toml --data-dir .devdata/shd --device cpu --threads 1 --quiet --tau-m 30 --epochs 40 --no-plots --input-dropout 0.1"
: > $L/commands9.jobs
for k in 0 1 2; do
    n=r5_indrop0.1_pub_seed$k
    echo "$PUB --seed $k --model-seed $k --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands9.jobs
done
echo "$(date -u +%FT%TZ) $(wc -l < $L/commands9.jobs) jobs" >> $L/commands9.log
xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands9.log' < $L/commands9.jobs
