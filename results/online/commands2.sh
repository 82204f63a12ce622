#!/usr/bin/env bash
# The other seeds of results/online/commands.sh's step 2: the lr chosen there (3e-4, on the
# augmentation-protocol seed-0 run's validation speakers 6, 8) on the round-13 networks of
# seeds 1 and 2, test speakers never heard (augmentation runs: 4, 5, with 6 and 8 excluded;
# published runs: 4, 5). Two at a time, one thread each.
# Run from the repository root:  bash results/online/commands2.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
O=results/online R=results/sota/runs
A="python examples/online_adaptation.py --data-dir .devdata/shd --quiet --limit 200 --seed 0 --lr 3e-4"
for k in 1 2; do
    echo "$A --run $R/r13_rd_sum80_drop10_aug_seed$k --pool test --exclude 6 8 --out $O/adapt_test_aug_seed$k.json > $O/adapt_test_aug_seed$k.log 2>&1"
    echo "$A --run $R/r13_rd_sum80_drop10_pub_seed$k --pool test --out $O/adapt_test_pub_seed$k.json > $O/adapt_test_pub_seed$k.log 2>&1"
done | xargs -P 2 -d '\n' -I{} bash -c '{}'
