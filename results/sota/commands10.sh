#!/usr/bin/env bash
# Round 6: depth. Two hidden layers at the same budget (140 -> 72 -> 72 -> 20, synaptic delays
# in both layers: 31,988 parameters against one layer's 32,120) on the chosen recipe (tau_m 30,
# 40 epochs), augmentation protocol, seeds 0 and 1. e-prop's learning signal reaches the first
# layer through a fixed random broadcast matrix ('symmetric' feedback is W_out^T for the last
# hidden layer only), so no error travels back through the second layer.
# Rule (fixed here before any run): 2 x 72 wins round 6 if its mean validation accuracy over
# seeds 0-1 beats the final recipe's (tau_m 30 + 80 epochs, seeds 0-1: 80.26%); a winner gets
# its augmentation-protocol seed 2 and published-protocol seeds 0-2 (second part below;
# table.py applies the rule).
# For the record, chosen by nothing: the same two-layer net trained by BPTT (seed 0), to tell
# what depth gives from what e-prop's broadcast approximation loses.
# Two runs at a time, one thread each. Run from the repository root (resumable: rerun it):
#   bash results/sota/commands10.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/sota/runs L=results/sota/logs
COMMON="--data-dir .devdata/shd --device cpu --threads 1 --quiet --tau-m 30 --epochs 40 --no-plots --n-hidden 72 72"
AUG="delayprop train -c configs/shd_a_ff_syn_eprop_aug.toml $COMMON"
PUB="delayprop train -c configs/shd_a_ff_syn_eprop.toml $COMMON"
run() {  # run the job lines of file $1, two at a time
    echo "$(date -u +%FT%TZ) $1: $(wc -l < "$1") jobs" >> $L/commands10.log
    xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands10.log' < "$1"
}
: > $L/commands10.jobs
for k in 0 1; do
    n=r6_h72x2_aug_seed$k
    echo "$AUG --seed $k --model-seed $k --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands10.jobs
done
n=r6_h72x2_bptt_aug_seed0
echo "$AUG --method bptt --seed 0 --model-seed 0 --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands10.jobs
run $L/commands10.jobs
w=$(python results/sota/table.py --round6-winner 2>/dev/null | tail -1)
if [ "$w" != yes ]; then
    echo "$(date -u +%FT%TZ) round 6: no winner ($w)" >> $L/commands10.log; exit 0
fi
echo "$(date -u +%FT%TZ) round 6 winner: 2 x 72" >> $L/commands10.log
: > $L/commands10b.jobs
n=r6_h72x2_aug_seed2
echo "$AUG --seed 2 --model-seed 2 --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands10b.jobs
for k in 0 1 2; do
    n=r6_h72x2_pub_seed$k
    echo "$PUB --seed $k --model-seed $k --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands10b.jobs
done
run $L/commands10b.jobs
