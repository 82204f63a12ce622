#!/usr/bin/env bash
# Second seed of (a) and (b), started on the CPU left after commands.sh: (a) seed 1 once (b)
# seed 0 has finished, (b) seed 1 once (c) seed 0 has finished. Seed k adds k to train.seed
# and model.seed, as `delayprop reproduce --seeds 2` does (run dirs .../seed1).
set -uo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-/work/shared/data/shd-repro}
EPOCHS=${EPOCHS:-40}

run1() {
    local name=$1
    local dir=results/shd/$name/seed1
    local resume=""
    [ -f "$dir/checkpoint.pt" ] && resume="--resume"
    echo "$(date -u +%FT%TZ) start $name seed1 $resume" >> "results/shd/${name}_seed1.log"
    delayprop train -c "configs/$name.toml" --data-dir "$DATA" --epochs "$EPOCHS" --threads 1 \
        --seed 1 --model-seed 1 --run-dir "$dir" --quiet $resume \
        >> "results/shd/${name}_seed1.log" 2>&1
    echo "$(date -u +%FT%TZ) exit $? $name seed1" >> "results/shd/${name}_seed1.log"
}
wait_for() { while [ ! -f "$1" ]; do sleep 20; done; }

( wait_for results/shd/shd_b_ff_weights_eprop/seed0/final.json; run1 shd_a_ff_syn_eprop ) &
( wait_for results/shd/shd_c_rec_syn_eprop/seed0/final.json; run1 shd_b_ff_weights_eprop ) &
wait
delayprop reproduce --grid must-show --collect --epochs "$EPOCHS" --seeds 2 --data-dir "$DATA" \
    --threads 1 --out results
