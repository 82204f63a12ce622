#!/usr/bin/env bash
# The must-show runs (a)-(d) with training-batch augmentation (channel shift +-6, time shift
# +-5 steps) and a speaker-disjoint validation split, configs/shd_*_aug.toml; recipe chosen on the
# held-out training speaker by results/shd/aug_probes/ (p2), never on the test file.
# Seeds 0 and 1 (seed k adds k to train.seed and model.seed, as `delayprop reproduce --seeds`).
# Two workers, one thread each; re-running resumes killed runs and skips finished ones.
set -uo pipefail
cd "$(dirname "$0")/../../.."
DATA=${DATA:-/work/shared/data/shd-repro}

run() {
    local name=$1 k=$2
    local dir=results/shd/$name/seed$k
    local log=results/shd/aug/${name}_seed$k.log
    local resume=""
    [ -f "$dir/final.json" ] && return 0
    [ -f "$dir/checkpoint.pt" ] && resume="--resume"
    echo "$(date -u +%FT%TZ) start $name seed$k $resume" >> "$log"
    delayprop train -c "configs/$name.toml" --data-dir "$DATA" --epochs 40 --threads 1 \
        --seed "$k" --model-seed "$k" --run-dir "$dir" --quiet $resume >> "$log" 2>&1
    echo "$(date -u +%FT%TZ) exit $? $name seed$k" >> "$log"
}

( run shd_a_ff_syn_eprop_aug 0; run shd_a_ff_syn_eprop_aug 1;
  run shd_d_ff_syn_bptt_aug 0; run shd_d_ff_syn_bptt_aug 1 ) &
( run shd_b_ff_weights_eprop_aug 0; run shd_b_ff_weights_eprop_aug 1;
  run shd_c_rec_syn_eprop_aug 0; run shd_c_rec_syn_eprop_aug 1 ) &
wait

# the table: collects the finished runs above (trains nothing more)
delayprop reproduce --grid must-show-aug --collect --epochs 40 --seeds 2 --data-dir "$DATA" \
    --threads 1 --out results
