#!/usr/bin/env bash
# Round 22 (eleventh session): the delays' step size on the final recipe after round 21.
# Written, rule included, while round 20 ran and before any result of round 21 existed (round
# 20 had 6 of its 12 runs finished).
#
# Candidate: dlr05 = the final recipe after round 21 + --delay-lr 0.5 (Adam's step for the
# delays, in time steps, 1.0 -> 0.5). 1.0 was chosen in issue 4's first probes and probed
# again in round 3 (0.3 / 3) with the time-mean loss and no readout delays; since then the
# readout delays and the per-step loss changed what the delays learn from, and no other
# delay step size has been run.
# Incumbent: the final recipe after round 21 (`table.py --round20-winner` and
# `--round21-winner` say which flags it adds to round 18's recipe).
# Cells, statistic and rule: round 18's. Augmentation protocol, validation speakers {6+8,
# 0+1, 2+3} x seeds {0, 1}:
#   r22_dlr05_aug_seed{0,1}, cv_r22_dlr05_val{01,23}_seed{0,1}
# per run the mean val_acc over the last eighth of its epochs, per candidate the mean over its
# six runs; dlr05 wins if its score is higher than the incumbent's (`table.py
# --round22-winner`; the script stops if it fails) and then gets seed 2 on speakers 6 + 8 and
# published-protocol seeds 0-2. Test accuracy is recorded and read by no rule.
# Two runs at a time, one thread each; starts when commands42.sh has finished.
# Run from the repository root (resumable: rerun it; never edit it while it runs: bash reads
# a script as it goes):  bash results/sota/commands43.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/sota/runs L=results/sota/logs
while pgrep -f "bash results/sota/commands4[12].sh" > /dev/null; do sleep 20; done
COMMON="--data-dir .devdata/shd --device cpu --threads 1 --quiet --no-plots"
AUG="delayprop train -c configs/shd_eprop_round18_aug.toml $COMMON"
PUB="delayprop train -c configs/shd_eprop_round18.toml $COMMON"
run() {  # run the job lines of file $1, two at a time
    echo "$(date -u +%FT%TZ) $1: $(wc -l < "$1") jobs" >> $L/commands43.log
    xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands43.log' < "$1"
}
if ! w20=$(python results/sota/table.py --round20-winner) \
        || ! w21=$(python results/sota/table.py --round21-winner); then
    echo "$(date -u +%FT%TZ) table.py --round20-winner / --round21-winner failed: stopped" >> $L/commands43.log
    exit 1
fi
w20=$(tail -1 <<< "$w20") w21=$(tail -1 <<< "$w21")
case "$w20" in
    none) base="" ;;
    drop20) base="--dropout 0.2" ;;
    sigma2) base="--sigma 2" ;;
    *) echo "$(date -u +%FT%TZ) unknown round 20 answer '$w20': stopped" >> $L/commands43.log; exit 1 ;;
esac
case "$w21" in
    none) ;;
    kappa95) base="$base --kappa 0.95" ;;
    *) echo "$(date -u +%FT%TZ) unknown round 21 answer '$w21': stopped" >> $L/commands43.log; exit 1 ;;
esac
f="$base --delay-lr 0.5"
echo "$(date -u +%FT%TZ) round 22: rounds 20-21 gave '$w20' '$w21', candidate flags '$f'" >> $L/commands43.log
: > $L/commands43.jobs
for k in 0 1; do
    n=r22_dlr05_aug_seed$k
    echo "$AUG --seed $k --model-seed $k $f --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands43.jobs
    for pair in "0,1" "2,3"; do
        n=cv_r22_dlr05_val${pair/,/}_seed$k
        echo "$AUG --seed $k --model-seed $k $f --set data.val_speakers=[$pair] --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands43.jobs
    done
done
run $L/commands43.jobs
if ! answer=$(python results/sota/table.py --round22-winner); then
    echo "$(date -u +%FT%TZ) table.py --round22-winner failed: stopped" >> $L/commands43.log
    exit 1
fi
a=$(tail -1 <<< "$answer")
echo "$(date -u +%FT%TZ) round 22: $a" >> $L/commands43.log
[ "$a" = dlr05 ] || exit 0
: > $L/commands43b.jobs
n=r22_dlr05_aug_seed2
echo "$AUG --seed 2 --model-seed 2 $f --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands43b.jobs
for k in 0 1 2; do
    n=r22_dlr05_pub_seed$k
    echo "$PUB --seed $k --model-seed $k $f --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands43b.jobs
done
run $L/commands43b.jobs
