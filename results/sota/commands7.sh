#!/usr/bin/env bash
# The final recipe's remaining runs: when round 3 (results/sota/commands6.sh) has a winner and
# results/sota/table.py's final_recipe() prefers it to round 4's (dropout), run its
# augmentation-protocol seed 2 and its published-protocol seeds 0-2 here, two at a time, one
# thread each (the directories table.py reads: results/sota/runs/r3final_<probe>_*).
# Run from the repository root: bash results/sota/commands7.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
L=results/sota/logs
while pgrep -f "results/sota/commands[456].sh" > /dev/null; do sleep 10; done
read -r name flags < <(python - <<'PY' 2>/dev/null
import sys
sys.path[:0] = ["results/sota", "results/gpu"]
import table
from round2 import PROBES
ch = table.chosen_recipe()
_, r3 = table.round3_section(ch[1])
_, r4 = table.dropout_section(ch[1])
_, final = table.final_recipe(r3, r4)
if r3 is not None and final is not None and final[1][0].endswith(f"r3_{r3[1]}_aug_seed0"):
    print(r3[1], " ".join(dict(PROBES)[r3[1]]))
PY
)
if [ -z "${name:-}" ]; then
    echo "$(date -u +%FT%TZ) no round-3 recipe to finish" >> $L/commands7.log; exit 0
fi
COMMON="--data-dir .devdata/shd --device cpu --threads 1 --quiet --tau-m 30 --epochs 40 --no-plots"
R=results/sota/runs
{
    echo "delayprop train -c configs/shd_a_ff_syn_eprop_aug.toml $COMMON --seed 2 --model-seed 2 --run-dir $R/r3final_${name}_aug_seed2 $flags --resume >> $L/r3final_${name}_aug_seed2.log 2>&1"
    for k in 0 1 2; do
        echo "delayprop train -c configs/shd_a_ff_syn_eprop.toml $COMMON --seed $k --model-seed $k --run-dir $R/r3final_${name}_pub_seed$k $flags --resume >> $L/r3final_${name}_pub_seed$k.log 2>&1"
    done
} > $L/commands7.jobs
echo "$(date -u +%FT%TZ) $name ($flags): $(wc -l < $L/commands7.jobs) jobs" >> $L/commands7.log
xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands7.log' < $L/commands7.jobs
