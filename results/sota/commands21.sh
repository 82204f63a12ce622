#!/usr/bin/env bash
# Round 10: learned readout delays. DCLS at e-prop's shape (one hidden layer of 100) loses its
# lead without them (commands20.sh, seed 0: 79.52% test against 84.14% with them, published
# protocol), and e-prop's readout had none. New here: `--readout-delays` (one learned delay
# per readout synapse, e-prop's learning signal sum_k W_kj err_k(t + D_kj), exact for one
# layer: tests/test_readout_delays.py). 100 hidden neurons keep the budget (32,020
# parameters). Probes on the chosen recipe (tau_m 30), augmentation protocol, seeds 0 and 1:
#   rd          --n-hidden 100 --readout-delays                         (30 epochs)
#               (this line said 40 epochs when the runs started; COMMON has no --epochs 40, as
#               commands8-15.sh had, so rd runs the config's 30: corrected after the start)
#   rd80        --n-hidden 100 --readout-delays --epochs 80             (the final recipe's)
#   rd_drop40   --n-hidden 100 --readout-delays --dropout 0.4 --epochs 150   (DCLS's)
# Rule (fixed here before any run): the probe with the best mean validation accuracy over
# seeds 0-1 wins round 10 if that mean beats the recipe after round 9 (the final recipe,
# tau_m 30 + 80 epochs, seeds 0-1: 80.26%); a winner gets its augmentation-protocol seed 2 and
# published-protocol seeds 0-2 (second part; `table.py --round10-winner` applies the rule and
# must answer: the script stops if it fails). Without a winner, for the record (chosen by
# nothing): the best probe under the published protocol, seeds 0-1.
# Two runs at a time, one thread each.
# Run from the repository root (resumable: rerun it):  bash results/sota/commands21.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/sota/runs L=results/sota/logs
COMMON="--data-dir .devdata/shd --device cpu --threads 1 --quiet --tau-m 30 --no-plots"
AUG="delayprop train -c configs/shd_a_ff_syn_eprop_aug.toml $COMMON"
PUB="delayprop train -c configs/shd_a_ff_syn_eprop.toml $COMMON"
PROBES="rd_drop40:--n-hidden 100 --readout-delays --dropout 0.4 --epochs 150
rd80:--n-hidden 100 --readout-delays --epochs 80
rd:--n-hidden 100 --readout-delays"
run() {  # run the job lines of file $1, two at a time
    echo "$(date -u +%FT%TZ) $1: $(wc -l < "$1") jobs" >> $L/commands21.log
    xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands21.log' < "$1"
}
: > $L/commands21.jobs
for k in 0 1; do
    while IFS=: read -r name flags; do
        n=r10_${name}_aug_seed$k
        echo "$AUG --seed $k --model-seed $k $flags --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands21.jobs
    done <<< "$PROBES"
done
run $L/commands21.jobs
if ! answer=$(python results/sota/table.py --round10-winner); then
    echo "$(date -u +%FT%TZ) table.py --round10-winner failed: stopped" >> $L/commands21.log
    exit 1
fi
w=$(tail -1 <<< "$answer")
: > $L/commands21b.jobs
if [ "$w" = none ]; then
    w=$(python results/sota/table.py --round10-best | tail -1)
    echo "$(date -u +%FT%TZ) round 10: no winner; best probe $w under the published protocol for the record" >> $L/commands21.log
    seeds="0 1"
else
    echo "$(date -u +%FT%TZ) round 10 winner: $w" >> $L/commands21.log
    seeds="0 1 2"
    n=r10_${w}_aug_seed2
    flags=$(grep "^$w:" <<< "$PROBES" | cut -d: -f2-)
    echo "$AUG --seed 2 --model-seed 2 $flags --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands21b.jobs
fi
flags=$(grep "^$w:" <<< "$PROBES" | cut -d: -f2-)
for k in $seeds; do
    n=r10_${w}_pub_seed$k
    echo "$PUB --seed $k --model-seed $k $flags --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands21b.jobs
done
run $L/commands21b.jobs
