#!/usr/bin/env bash
# Round 9: dropout with DCLS's training length. commands17.sh found that DCLS at e-prop's
# budget owes its lead to its dropout of 0.4 (without it: 79.30% test, below e-prop's 80.72%),
# and DCLS trains 150 epochs. e-prop's dropout probes (round 4) ran 40 epochs only, and a
# dropped-out network learns more slowly. Two changes together to the chosen recipe (tau_m 30),
# augmentation protocol, seeds 0 and 1:
#   dropout 0.4, 150 epochs    (--dropout 0.4 --epochs 150: DCLS's values)
#   dropout 0.25, 150 epochs   (--dropout 0.25 --epochs 150: round 4's best on published test)
# Rule (fixed here before any run): the probe with the best mean validation accuracy over
# seeds 0-1 wins round 9 if that mean beats the recipe after round 8 (seeds 0-1; the final
# recipe tau_m 30 + 80 epochs, 80.26%, as rounds 5-8 had no winner); a winner gets its
# augmentation-protocol seed 2 and published-protocol seeds 0-2 (second part below; table.py
# applies the rule). Without a winner, for the record (chosen by nothing): dropout 0.4 and
# 150 epochs under the published protocol, seeds 0-1, the protocol DCLS-32k's 83.42% is from.
# Two runs at a time, one thread each.
# Run from the repository root (resumable: rerun it):  bash results/sota/commands18.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/sota/runs L=results/sota/logs
COMMON="--data-dir .devdata/shd --device cpu --threads 1 --quiet --tau-m 30 --no-plots"
AUG="delayprop train -c configs/shd_a_ff_syn_eprop_aug.toml $COMMON"
PUB="delayprop train -c configs/shd_a_ff_syn_eprop.toml $COMMON"
PROBES="drop40e150:--dropout 0.4 --epochs 150
drop25e150:--dropout 0.25 --epochs 150"
run() {  # run the job lines of file $1, two at a time
    echo "$(date -u +%FT%TZ) $1: $(wc -l < "$1") jobs" >> $L/commands18.log
    xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands18.log' < "$1"
}
: > $L/commands18.jobs
for k in 0 1; do
    while IFS=: read -r name flags; do
        n=r9_${name}_aug_seed$k
        echo "$AUG --seed $k --model-seed $k $flags --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands18.jobs
    done <<< "$PROBES"
done
run $L/commands18.jobs
w=$(python results/sota/table.py --round9-winner 2>/dev/null | tail -1)
: > $L/commands18b.jobs
if [ -z "$w" ] || [ "$w" = none ]; then
    echo "$(date -u +%FT%TZ) round 9: no winner; published protocol for the record" >> $L/commands18.log
    w=drop40e150 seeds="0 1"
else
    echo "$(date -u +%FT%TZ) round 9 winner: $w" >> $L/commands18.log
    seeds="0 1 2"
    n=r9_${w}_aug_seed2
    flags=$(grep "^$w:" <<< "$PROBES" | cut -d: -f2-)
    echo "$AUG --seed 2 --model-seed 2 $flags --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands18b.jobs
fi
flags=$(grep "^$w:" <<< "$PROBES" | cut -d: -f2-)
for k in $seeds; do
    n=r9_${w}_pub_seed$k
    echo "$PUB --seed $k --model-seed $k $flags --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands18b.jobs
done
run $L/commands18b.jobs
