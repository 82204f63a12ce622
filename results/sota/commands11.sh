#!/usr/bin/env bash
# Round 7: the neuron model, untouched by rounds 1-6. One change each to the chosen recipe
# (tau_m 30, 40 epochs), augmentation protocol, seeds 0 and 1:
#   surrogate atan, scale 2      (pseudo-derivative narrower than the triangle's, heavy tails)
#   surrogate fast_sigmoid, 5    (SuperSpike's shape)
#   reset to zero                (instead of subtracting theta)
# (The triangle's scale alone is not probed: Adam divides a layer's gradient scale out.)
# Rule (fixed here before any run): the probe with the best mean validation accuracy over
# seeds 0-1 wins round 7 if that mean beats the recipe after round 6 (seeds 0-1; the final
# recipe tau_m 30 + 80 epochs, 80.26%, unless round 6 has a winner); a winner gets its
# augmentation-protocol seed 2 and published-protocol seeds 0-2 (second part below; table.py
# applies the rule). Starts when commands10.sh has ended. Two runs at a time, one thread each.
# Run from the repository root (resumable: rerun it):  bash results/sota/commands11.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/sota/runs L=results/sota/logs
while pgrep -f "results/sota/commands10.sh" > /dev/null; do sleep 10; done
COMMON="--data-dir .devdata/shd --device cpu --threads 1 --quiet --tau-m 30 --epochs 40 --no-plots"
AUG="delayprop train -c configs/shd_a_ff_syn_eprop_aug.toml $COMMON"
PUB="delayprop train -c configs/shd_a_ff_syn_eprop.toml $COMMON"
PROBES="atan2:--surrogate atan --surrogate-scale 2
fsig5:--surrogate fast_sigmoid --surrogate-scale 5
reset0:--reset zero"
run() {  # run the job lines of file $1, two at a time
    echo "$(date -u +%FT%TZ) $1: $(wc -l < "$1") jobs" >> $L/commands11.log
    xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands11.log' < "$1"
}
: > $L/commands11.jobs
for k in 0 1; do
    while IFS=: read -r name flags; do
        n=r7_${name}_aug_seed$k
        echo "$AUG --seed $k --model-seed $k $flags --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands11.jobs
    done <<< "$PROBES"
done
run $L/commands11.jobs
w=$(python results/sota/table.py --round7-winner 2>/dev/null | tail -1)
if [ -z "$w" ] || [ "$w" = none ]; then
    echo "$(date -u +%FT%TZ) round 7: no winner" >> $L/commands11.log; exit 0
fi
echo "$(date -u +%FT%TZ) round 7 winner: $w" >> $L/commands11.log
flags=$(grep "^$w:" <<< "$PROBES" | cut -d: -f2-)
: > $L/commands11b.jobs
n=r7_${w}_aug_seed2
echo "$AUG --seed 2 --model-seed 2 $flags --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands11b.jobs
for k in 0 1 2; do
    n=r7_${w}_pub_seed$k
    echo "$PUB --seed $k --model-seed $k $flags --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands11b.jobs
done
run $L/commands11b.jobs
