#!/usr/bin/env bash
# Round 3, completed: round2.py meant to score every probe on seeds 0 and 1; seed 1 never ran.
# Rule (fixed here before any seed-1 result): seed 1 for every probe whose seed-0 validation is
# within 0.7 points (about the chosen recipe's seed std, 0.59) of the chosen recipe's seed 0
# (80.34%), i.e. >= 79.64%; the winner is the best mean of seeds 0-1 if it beats the chosen
# recipe's mean of seeds 0-1 (80.34 / 79.36 -> 79.85%). table.py applies it. Runs after
# commands5.sh, two at a time, one thread each. Run from the repository root.
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/gpu/round2/runs L=results/sota/logs
while pgrep -f "results/sota/commands[45].sh" > /dev/null; do sleep 10; done
AUG="delayprop train -c configs/shd_a_ff_syn_eprop_aug.toml --data-dir .devdata/shd --seed 1 --model-seed 1 --device cpu --threads 1 --quiet --tau-m 30 --epochs 40 --no-plots"
: > $L/commands6.jobs
for d in $R/r3_*_aug_seed0; do
    name=$(basename "$d" _aug_seed0)
    val=$(python -c "import json,sys; print(json.load(open('$d/final.json'))['val_acc'])" 2>/dev/null) || continue
    python -c "import sys; sys.exit(0 if $val >= 0.7964 else 1)" || continue
    flags=$(head -1 results/gpu/round2/logs/${name}_aug_seed0.log 2>/dev/null | sed -e 's#.*--tau-m 30 --epochs 40 ##' -e 's# --no-plots.*##')
    [ -z "$flags" ] && flags=$(grep "^${name}_aug_seed0 " <<'LIST' | cut -d' ' -f2-
r3_delaylr0.3_aug_seed0 --delay-lr 0.3
r3_delaylr3_aug_seed0 --delay-lr 3
r3_maxdelay15_aug_seed0 --max-delay 15
r3_loss_sum_aug_seed0 --loss sum
r3_wscale2_aug_seed0 --weight-scale 2
LIST
)
    echo "$AUG --run-dir $R/${name}_aug_seed1 $flags --resume >> $L/${name}_aug_seed1.log 2>&1" >> $L/commands6.jobs
done
echo "$(date -u +%FT%TZ) $(wc -l < $L/commands6.jobs) jobs" >> $L/commands6.log
xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands6.log' < $L/commands6.jobs
