#!/usr/bin/env bash
# For the record (chosen by nothing; no rule reads it): the other end of the latency trade-off.
# Round 18's recipe (configs/shd_eprop_round18{_aug,}.toml) without readout delays
# (--no-readout-delays), with 107 hidden neurons to keep the budget (32,120 parameters, as
# the recipes before round 12): latency bound 270 ms (25 + 2 steps), 64% below DCLS's 750 ms
# (the paper: 67%). Beside commands39.sh's readout delays of at most 10 steps (370 ms) and
# the final recipe's 25 (520 ms). Seeds 0-2, both protocols. It waits for commands39.sh.
# Two at a time.
# Run from the repository root (resumable: rerun it):  bash results/sota/commands40.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/sota/runs L=results/sota/logs
while pgrep -f "bash results/sota/commands39.sh" > /dev/null; do sleep 20; done
COMMON="--data-dir .devdata/shd --device cpu --threads 1 --quiet --no-plots --no-readout-delays --n-hidden 107"
echo "$(date -u +%FT%TZ) start" >> $L/commands40.log
for k in 0 1 2; do
    for proto in aug pub; do
        cfg=configs/shd_eprop_round18$([ $proto = aug ] && echo _aug).toml
        n=nord_h107_${proto}_seed$k
        echo "delayprop train -c $cfg $COMMON --seed $k --model-seed $k --run-dir $R/$n --resume >> $L/$n.log 2>&1"
    done
done | xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands40.log'
