#!/usr/bin/env bash
# Round 19: the two best changes of round 18 together. Fixed here before round 18's result
# (commands37.sh was running): if two or more of round 18's challengers score above round 13's
# recipe, round 18's winner W gets the change of the best other one R stacked on it
# (`table.py --round19-plan` prints "W R", or "none" and this script stops). The stack runs
# the same six cells as round 18 (validation speakers {6+8, 0+1, 2+3} x seeds {0, 1},
# augmentation protocol) and is scored by the same statistic (the mean validation accuracy
# over the last eighth of each run's epochs, averaged over the six runs). It wins if its score
# beats W's (`table.py --round19-winner`), and then gets seed 2 on speakers 6 + 8 and
# published-protocol seeds 0-2. Round 18's caveat holds: the candidates were chosen after
# their test results were seen.
# Run from the repository root (resumable: rerun it; never edit it while it runs: bash reads
# a script as it goes):  bash results/sota/commands38.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/sota/runs L=results/sota/logs
while pgrep -f "bash results/sota/commands37.sh" > /dev/null; do sleep 20; done
COMMON="--data-dir .devdata/shd --device cpu --threads 1 --quiet --no-plots"
AUG="delayprop train -c configs/shd_eprop_final_aug.toml $COMMON"
PUB="delayprop train -c configs/shd_eprop_final.toml $COMMON"
run() {  # run the job lines of file $1, two at a time
    echo "$(date -u +%FT%TZ) $1: $(wc -l < "$1") jobs" >> $L/commands38.log
    xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands38.log' < "$1"
}
flags_of() {
    case "$1" in
        r13ema) echo "--ema 0.999" ;;
        idrop10) echo "--input-dropout 0.1" ;;
        lr25) echo "--lr 0.0025" ;;
        ep40) echo "--epochs 40" ;;
        *) return 1 ;;
    esac
}
if ! plan=$(python results/sota/table.py --round19-plan); then
    echo "$(date -u +%FT%TZ) table.py --round19-plan failed: stopped" >> $L/commands38.log
    exit 1
fi
plan=$(tail -1 <<< "$plan")
echo "$(date -u +%FT%TZ) round 19 plan: $plan" >> $L/commands38.log
[ "$plan" = none ] && exit 0
read -r w r <<< "$plan"
if ! fw=$(flags_of "$w") || ! fr=$(flags_of "$r"); then
    echo "$(date -u +%FT%TZ) unknown round 19 plan '$plan': stopped" >> $L/commands38.log
    exit 1
fi
flags="$fw $fr"
: > $L/commands38.jobs
for k in 0 1; do
    n=r19_stack_aug_seed$k
    echo "$AUG --seed $k --model-seed $k $flags --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands38.jobs
    for pair in "0,1" "2,3"; do
        n=cv_r19_stack_val${pair/,/}_seed$k
        echo "$AUG --seed $k --model-seed $k $flags --set data.val_speakers=[$pair] --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands38.jobs
    done
done
run $L/commands38.jobs
if ! answer=$(python results/sota/table.py --round19-winner); then
    echo "$(date -u +%FT%TZ) table.py --round19-winner failed: stopped" >> $L/commands38.log
    exit 1
fi
a=$(tail -1 <<< "$answer")
echo "$(date -u +%FT%TZ) round 19: $a" >> $L/commands38.log
[ "$a" = stack ] || exit 0
: > $L/commands38b.jobs
n=r19_stack_aug_seed2
echo "$AUG --seed 2 --model-seed 2 $flags --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands38b.jobs
for k in 0 1 2; do
    n=r19_stack_pub_seed$k
    echo "$PUB --seed $k --model-seed $k $flags --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands38b.jobs
done
run $L/commands38b.jobs
