#!/usr/bin/env bash
# On-device adaptation to new voices with per-step e-prop (examples/online_adaptation.py), on
# networks of round 13's winning recipe (readout delays, per-step loss, dropout 0.1, 80 epochs;
# results/sota/commands25.sh), seed 0. Each new speaker's samples are split in halves
# (stratified by class); the network learns online, one sample at a time, from at most 200 of
# the first half (one pass, Adam, delay lr = 200 x lr) and is scored on the second half.
# 1. lr chosen on voices that are not the test's: the augmentation-protocol run's validation
#    speakers (6, 8: in the training file, never learned from), lr 3e-5 / 1e-4 / 3e-4 / 1e-3;
#    the best pooled held-out accuracy picks it (rule fixed here before any run).
# 2. That lr on the test speakers the networks never heard: the augmentation-protocol run
#    (test speakers 4, 5; 6 and 8 excluded, lr was chosen on them) and the published-protocol
#    run (4, 5).
# Run from the repository root:  bash results/online/commands.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
O=results/online R=results/sota/runs
A="python examples/online_adaptation.py --data-dir .devdata/shd --quiet --limit 200 --seed 0"
$A --run $R/r13_rd_sum80_drop10_aug_seed0 --pool val --lr 3e-5 1e-4 3e-4 1e-3 \
    --out $O/adapt_val.json > $O/adapt_val.log 2>&1
lr=$(python -c "import json; print(json.load(open('$O/adapt_val.json'))['best_lr'])")
echo "chosen lr: $lr" >> $O/adapt_val.log
$A --run $R/r13_rd_sum80_drop10_aug_seed0 --pool test --exclude 6 8 --lr "$lr" \
    --out $O/adapt_test_aug.json > $O/adapt_test_aug.log 2>&1
while [ ! -f $R/r13_rd_sum80_drop10_pub_seed0/final.json ]; do sleep 30; done
$A --run $R/r13_rd_sum80_drop10_pub_seed0 --pool test --lr "$lr" \
    --out $O/adapt_test_pub.json > $O/adapt_test_pub.log 2>&1
