#!/usr/bin/env bash
# For the record, chosen by nothing: the DCLS baseline at e-prop's budget. SNN-delays' SHD recipe
# (configs/dcls_shd.toml: BatchNorm, dropout 0.4, 150 epochs, its optimisers and sigma
# schedule, published protocol) with two hidden layers of 70 instead of 256: 32,480 parameters
# against e-prop's 32,120. Seeds 0-2, two runs at a time, one thread each. Tells whether the
# published-protocol gap is DCLS's size or its recipe. Run from the repository root
# (resumable: rerun it):  bash results/sota/commands13.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/sota/runs L=results/sota/logs
: > $L/commands13.jobs
for k in 0 1 2; do
    n=dcls_h70_pub_seed$k
    echo "delayprop train -c configs/dcls_shd.toml --data-dir .devdata/shd --device cpu --threads 1 --quiet --no-plots --n-hidden 70 70 --seed $k --model-seed $k --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands13.jobs
done
echo "$(date -u +%FT%TZ) $(wc -l < $L/commands13.jobs) jobs" >> $L/commands13.log
xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands13.log' < $L/commands13.jobs
