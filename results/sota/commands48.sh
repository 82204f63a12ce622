#!/usr/bin/env bash
# Latency against accuracy on round 22's recipe under the project's augmentation /
# speaker-disjoint protocol, for the record (thirteenth session; chosen by nothing).
# commands46.sh ran these two networks under the published protocol (370 ms: 83.79 +- 0.61%;
# 270 ms, no readout delays, 107 hidden: 83.88 +- 1.75%); this runs the same two under
# configs/shd_eprop_round22_aug.toml, seeds 0-2: readout delays of at most 10 steps (370 ms,
# 51% below DCLS's 750 ms) and no readout delays with 107 hidden neurons (270 ms, 64% below;
# 32,120 parameters). Every seed run is reported, whatever it gives.
# Starts when commands47.sh has finished. Two runs at a time, one thread each. Run from the
# repository root (resumable: rerun it; never edit it while it runs):
#     bash results/sota/commands48.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/sota/runs L=results/sota/logs
while pgrep -f "bash results/sota/commands47.sh" > /dev/null; do sleep 20; done
COMMON="-c configs/shd_eprop_round22_aug.toml --data-dir .devdata/shd --device cpu --threads 1 --quiet --no-plots"
: > $L/commands48.jobs
for k in 0 1 2; do
    n=r22_rmax10_aug_seed$k
    echo "delayprop train $COMMON --readout-max-delay 10 --seed $k --model-seed $k --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands48.jobs
    n=r22_nord_h107_aug_seed$k
    echo "delayprop train $COMMON --no-readout-delays --n-hidden 107 --seed $k --model-seed $k --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands48.jobs
done
echo "$(date -u +%FT%TZ) $L/commands48.jobs: $(wc -l < $L/commands48.jobs) jobs" >> $L/commands48.log
xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands48.log' < $L/commands48.jobs
