#!/usr/bin/env bash
# For the record (chosen by nothing; no rule reads it): does validating on the moving average
# (--ema 0.999, round 15) change which checkpoint other held-out pairs choose, and what it
# tests, as it did on speakers 6 + 8? Round 13's recipe (configs/shd_eprop_final_aug.toml),
# seed 0, validation speakers 0 + 1 and 2 + 3, as commands28.sh's cv_r13_val01 / cv_r13_val23.
# The averaging leaves the training as it is, so each run repeats that run's training and
# differs only in what it validates, selects and tests. Pairs fixed here before any run; it
# waits for commands31.sh to finish. Two runs at a time.
# Run from the repository root (resumable: rerun it):  bash results/sota/commands32.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/sota/runs L=results/sota/logs
while pgrep -f "bash results/sota/commands31.sh" > /dev/null; do sleep 20; done
AUG="delayprop train -c configs/shd_eprop_final_aug.toml --data-dir .devdata/shd --device cpu --threads 1 --quiet --no-plots --ema 0.999 --seed 0 --model-seed 0"
echo "$(date -u +%FT%TZ) start" >> $L/commands32.log
for pair in "0,1" "2,3"; do
    tag=${pair/,/}
    echo "$AUG --set data.val_speakers=[$pair] --run-dir $R/cv_r15_ema999_val$tag --resume >> $L/cv_r15_ema999_val$tag.log 2>&1"
done | xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands32.log'
