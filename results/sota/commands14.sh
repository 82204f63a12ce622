#!/usr/bin/env bash
# For the record, chosen by nothing: the DCLS baseline at e-prop's budget under the project's
# augmentation protocol (configs/dcls_shd_aug.toml: channel shift +-6, time shift +-5, two
# training speakers held out for validation) with two hidden layers of 70 (32,480 parameters),
# seeds 0-2; the companion of commands13.sh (published protocol). Started while commands13.sh's
# last run was going: at most two runs at a time on the two cores, one thread each.
# Run from the repository root (resumable: rerun it):  bash results/sota/commands14.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/sota/runs L=results/sota/logs
: > $L/commands14.jobs
for k in 0 1 2; do
    n=dcls_h70_aug_seed$k
    echo "delayprop train -c configs/dcls_shd_aug.toml --data-dir .devdata/shd --device cpu --threads 1 --quiet --no-plots --n-hidden 70 70 --seed $k --model-seed $k --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands14.jobs
done
echo "$(date -u +%FT%TZ) $(wc -l < $L/commands14.jobs) jobs" >> $L/commands14.log
run_one() { bash -c "$1"; echo "$(date -u +%FT%TZ) exit $? $1" >> $L/commands14.log; }
# one run beside commands13.sh's last, then two at a time
mapfile -t jobs < $L/commands14.jobs
run_one "${jobs[0]}" &
while pgrep -f "results/sota/commands13.sh" > /dev/null; do sleep 10; done
run_one "${jobs[1]}" &
wait -n
run_one "${jobs[2]}"
wait
