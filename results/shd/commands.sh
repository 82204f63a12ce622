#!/usr/bin/env bash
# The must-show SHD runs (a)-(d) of issue 4, exactly as run for results/RESULTS.md.
# Two runs at a time, one torch thread each (the machine has 2 shared cores). Re-running this
# script resumes killed runs from their last checkpoint and skips finished ones.
# Logs: results/shd/<name>.log (stderr: one line per epoch); run directories:
# results/shd/<name>/seed0/ (metrics.jsonl, train.log, config.json, final.json, plots).
set -uo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-/work/shared/data/shd-repro}
EPOCHS=${EPOCHS:-40}

run() {
    local name=$1
    local dir=results/shd/$name/seed0
    local resume=""
    [ -f "$dir/checkpoint.pt" ] && resume="--resume"
    echo "$(date -u +%FT%TZ) start $name $resume" >> "results/shd/$name.log"
    delayprop train -c "configs/$name.toml" --data-dir "$DATA" --epochs "$EPOCHS" --threads 1 \
        --run-dir "$dir" --quiet $resume >> "results/shd/$name.log" 2>&1
    echo "$(date -u +%FT%TZ) exit $? $name" >> "results/shd/$name.log"
}

( run shd_a_ff_syn_eprop; run shd_c_rec_syn_eprop ) &
( run shd_d_ff_syn_bptt; run shd_b_ff_weights_eprop ) &
wait

# the table: collects the finished runs above (trains nothing more)
delayprop reproduce --grid must-show --collect --epochs "$EPOCHS" --data-dir "$DATA" \
    --threads 1 --out results
