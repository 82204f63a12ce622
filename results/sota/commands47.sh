#!/usr/bin/env bash
# Seeds 3 and 4 of DCLS under the project's augmentation / speaker-disjoint protocol
# (configs/dcls_shd_aug.toml, 214,016 parameters, 150 epochs), for the record (thirteenth
# session). The augmentation-protocol comparison has five e-prop seeds of round 22's recipe
# (commands44.sh) but three DCLS seeds (seed 0 on the CPU by commands.sh, seeds 1-2 on an H200
# in results/gpu/); these two make it five against five, as commands45.sh did for the published
# protocol. No GPU is lent to this session, so they run on the CPU (one thread each, ~1.5 h):
# the same code and configuration, a different device's floating-point order. Chosen by
# nothing; every seed run is reported, whatever it gives.
# Two runs at a time, one thread each. Run from the repository root (resumable: rerun it;
# never edit it while it runs):  bash results/sota/commands47.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/sota/runs L=results/sota/logs
: > $L/commands47.jobs
for k in 3 4; do
    n=dcls_shd_aug_seed$k
    echo "delayprop train -c configs/dcls_shd_aug.toml --data-dir .devdata/shd --device cpu --threads 1 --quiet --no-plots --seed $k --model-seed $k --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands47.jobs
done
echo "$(date -u +%FT%TZ) $L/commands47.jobs: $(wc -l < $L/commands47.jobs) jobs" >> $L/commands47.log
xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands47.log' < $L/commands47.jobs
