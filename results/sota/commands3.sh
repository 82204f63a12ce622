#!/usr/bin/env bash
# Once the e-prop runs of commands2.sh are done, give the DCLS augmentation-protocol run both
# cores: wait for the last e-prop run, then for the DCLS run's next epoch boundary (a new line
# in metrics.jsonl: its checkpoint is already written), stop it and resume with 2 threads.
set -uo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-/work/shared/data/shd-repro}
dir=results/sota/runs/dcls_shd_aug_seed0 log=results/sota/logs/dcls_shd_aug_seed0.log
while [ ! -f results/sota/runs/eprop_recipe_pub_seed0/final.json ]; do sleep 10; done
n=$(wc -l < $dir/metrics.jsonl)
while [ "$(wc -l < $dir/metrics.jsonl)" = "$n" ]; do sleep 1; done
pkill -f "results/sota/commands.sh a"; pkill -f "run-dir $dir"
sleep 5
echo "$(date -u +%FT%TZ) restart with 2 threads" >> $log
delayprop train -c configs/dcls_shd_aug.toml --data-dir "$DATA" --threads 2 --seed 0 \
    --model-seed 0 --run-dir $dir --quiet --resume --no-plots >> $log 2>&1
echo "$(date -u +%FT%TZ) exit $? dcls_shd_aug_seed0" >> $log
