#!/usr/bin/env bash
# Round 11: readout delays with a per-step loss. Round 10's readout delays did not help
# e-prop, but e-prop's recipe takes the cross-entropy of the time-mean readout ('mean'), and
# a time average hardly depends on when each spike arrives: only spikes pushed past the window
# change it. DCLS's loss is per step (the time-summed softmax), where the delays line up each
# class's evidence. Probes on the chosen recipe (tau_m 30, 40 epochs) with readout delays and
# 100 hidden neurons (32,020 parameters), augmentation protocol, seeds 0 and 1:
#   rd_sum      --loss sum              (per-step cross-entropy, readout leak kappa 0.9)
#   rd_sum_k0   --loss sum --kappa 0    (per-step, no readout leak: DCLS's readout keeps 0.5%)
# Rule (fixed here before any run): the probe with the best mean validation accuracy over
# seeds 0-1 wins round 11 if that mean beats the recipe after round 10 (the final recipe,
# tau_m 30 + 80 epochs, seeds 0-1: 80.26%); a winner gets its augmentation-protocol seed 2 and
# published-protocol seeds 0-2 (`table.py --round11-winner` applies the rule; the script stops
# if it fails). Without a winner, for the record (chosen by nothing): the best probe under
# the published protocol, seeds 0-1. Two runs at a time, one thread each.
# Run from the repository root (resumable: rerun it; never edit it while it runs: bash reads
# a script as it goes):  bash results/sota/commands22.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/sota/runs L=results/sota/logs
COMMON="--data-dir .devdata/shd --device cpu --threads 1 --quiet --tau-m 30 --epochs 40 --no-plots --n-hidden 100 --readout-delays"
AUG="delayprop train -c configs/shd_a_ff_syn_eprop_aug.toml $COMMON"
PUB="delayprop train -c configs/shd_a_ff_syn_eprop.toml $COMMON"
PROBES="rd_sum:--loss sum
rd_sum_k0:--loss sum --kappa 0"
run() {  # run the job lines of file $1, two at a time
    echo "$(date -u +%FT%TZ) $1: $(wc -l < "$1") jobs" >> $L/commands22.log
    xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands22.log' < "$1"
}
: > $L/commands22.jobs
for k in 0 1; do
    while IFS=: read -r name flags; do
        n=r11_${name}_aug_seed$k
        echo "$AUG --seed $k --model-seed $k $flags --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands22.jobs
    done <<< "$PROBES"
done
run $L/commands22.jobs
if ! answer=$(python results/sota/table.py --round11-winner); then
    echo "$(date -u +%FT%TZ) table.py --round11-winner failed: stopped" >> $L/commands22.log
    exit 1
fi
w=$(tail -1 <<< "$answer")
: > $L/commands22b.jobs
if [ "$w" = none ]; then
    w=$(python results/sota/table.py --round11-best | tail -1)
    echo "$(date -u +%FT%TZ) round 11: no winner; best probe $w under the published protocol for the record" >> $L/commands22.log
    seeds="0 1"
else
    echo "$(date -u +%FT%TZ) round 11 winner: $w" >> $L/commands22.log
    seeds="0 1 2"
    n=r11_${w}_aug_seed2
    flags=$(grep "^$w:" <<< "$PROBES" | cut -d: -f2-)
    echo "$AUG --seed 2 --model-seed 2 $flags --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands22b.jobs
fi
flags=$(grep "^$w:" <<< "$PROBES" | cut -d: -f2-)
for k in $seeds; do
    n=r11_${w}_pub_seed$k
    echo "$PUB --seed $k --model-seed $k $flags --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands22b.jobs
done
run $L/commands22b.jobs
