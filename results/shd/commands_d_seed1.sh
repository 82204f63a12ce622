#!/usr/bin/env bash
# Seed 1 of (d), started when (a) seed 1 has finished (CPU permitting; the session ends ~21:35
# UTC, so it may not finish: then its partial metrics are committed but it is not in the table).
set -uo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-/work/shared/data/shd-repro}
EPOCHS=${EPOCHS:-40}
name=shd_d_ff_syn_bptt
dir=results/shd/$name/seed1
while [ ! -f results/shd/shd_a_ff_syn_eprop/seed1/final.json ]; do sleep 20; done
resume=""
[ -f "$dir/checkpoint.pt" ] && resume="--resume"
echo "$(date -u +%FT%TZ) start $name seed1 $resume" >> "results/shd/${name}_seed1.log"
delayprop train -c "configs/$name.toml" --data-dir "$DATA" --epochs "$EPOCHS" --threads 1 \
    --seed 1 --model-seed 1 --run-dir "$dir" --quiet $resume >> "results/shd/${name}_seed1.log" 2>&1
echo "$(date -u +%FT%TZ) exit $? $name seed1" >> "results/shd/${name}_seed1.log"
delayprop reproduce --grid must-show --collect --epochs "$EPOCHS" --seeds 3 --data-dir "$DATA" \
    --threads 1 --out results
