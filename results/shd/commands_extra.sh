#!/usr/bin/env bash
# Extra seeds on the CPU left after commands_seed1.sh's (b) seed 1: (c) seed 1, then (b) seed 2
# if it can still finish before ~21:15 UTC (the session's end). Same conventions as
# commands_seed1.sh (seed k adds k to train.seed and model.seed; run dirs .../seed<k>).
set -uo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-/work/shared/data/shd-repro}
EPOCHS=${EPOCHS:-40}

runk() {
    local name=$1 k=$2
    local dir=results/shd/$name/seed$k
    local resume=""
    [ -f "$dir/checkpoint.pt" ] && resume="--resume"
    echo "$(date -u +%FT%TZ) start $name seed$k $resume" >> "results/shd/${name}_seed$k.log"
    delayprop train -c "configs/$name.toml" --data-dir "$DATA" --epochs "$EPOCHS" --threads 1 \
        --seed "$k" --model-seed "$k" --run-dir "$dir" --quiet $resume \
        >> "results/shd/${name}_seed$k.log" 2>&1
    echo "$(date -u +%FT%TZ) exit $? $name seed$k" >> "results/shd/${name}_seed$k.log"
}
while [ ! -f results/shd/shd_b_ff_weights_eprop/seed1/final.json ]; do sleep 20; done
runk shd_c_rec_syn_eprop 1
if [ "$(date -u +%H%M)" -lt 2058 ]; then runk shd_b_ff_weights_eprop 2; fi
delayprop reproduce --grid must-show --collect --epochs "$EPOCHS" --seeds 3 --data-dir "$DATA" \
    --threads 1 --out results
