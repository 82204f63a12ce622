#!/usr/bin/env bash
# Round 5: input dropout (train.input_dropout, --input-dropout p: one mask per sample and input
# channel, fixed over time, kept channels scaled by 1 / (1 - p)) on the chosen recipe
# (tau_m 30, 40 epochs), augmentation protocol, seeds 0 and 1, p = 0.1, 0.2, 0.3.
# Rule (fixed here before any run): the probe with the best mean validation accuracy over
# seeds 0-1 wins round 5 if that mean beats the final recipe's (tau_m 30 + 80 epochs, seeds
# 0-1: 80.26%); a winner becomes the final recipe and gets its augmentation-protocol seed 2 and
# published-protocol seeds 0-2 (the second part below; table.py applies the rule). Two runs at
# a time, one thread each. Run from the repository root: bash results/sota/commands8.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/sota/runs L=results/sota/logs
COMMON="--data-dir .devdata/shd --device cpu --threads 1 --quiet --tau-m 30 --epochs 40 --no-plots"
AUG="delayprop train -c configs/shd_a_ff_syn_eprop_aug.toml $COMMON"
PUB="delayprop train -c configs/shd_a_ff_syn_eprop.toml $COMMON"
: > $L/commands8.jobs
for k in 0 1; do
    for p in 0.1 0.2 0.3; do
        n=r5_indrop${p}_aug_seed$k
        echo "$AUG --seed $k --model-seed $k --input-dropout $p --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands8.jobs
    done
done
run() {  # run the job lines of file $1, two at a time
    echo "$(date -u +%FT%TZ) $1: $(wc -l < "$1") jobs" >> $L/commands8.log
    xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands8.log' < "$1"
}
run $L/commands8.jobs
p=$(python results/sota/table.py --round5-winner 2>/dev/null | tail -1)
if [ -z "$p" ] || [ "$p" = none ]; then
    echo "$(date -u +%FT%TZ) round 5: no winner" >> $L/commands8.log; exit 0
fi
echo "$(date -u +%FT%TZ) round 5 winner: input dropout $p" >> $L/commands8.log
: > $L/commands8b.jobs
n=r5_indrop${p}_aug_seed2
echo "$AUG --seed 2 --model-seed 2 --input-dropout $p --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands8b.jobs
for k in 0 1 2; do
    n=r5_indrop${p}_pub_seed$k
    echo "$PUB --seed $k --model-seed $k --input-dropout $p --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands8b.jobs
done
run $L/commands8b.jobs
