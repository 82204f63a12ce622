#!/usr/bin/env bash
# Latency against accuracy on the final recipe after round 22, published protocol, for the
# record (twelfth session; chosen by nothing). commands39.sh / commands40.sh measured it on
# round 18's recipe (520 / 370 / 270 ms: -1.28 / -1.45 / -3.45 points against DCLS); this repeats
# the two shorter bounds on round 22's recipe (configs/shd_eprop_round22.toml, 84.64 +- 0.62%
# at 520 ms): readout delays of at most 10 steps (370 ms, 51% below DCLS's 750 ms), and no
# readout delays with 107 hidden neurons (270 ms, 64% below; 32,120 parameters), seeds 0-2.
# Published protocol only (time: the session has under an hour left). Every seed is reported.
# Two runs at a time, one thread each. Run from the repository root (resumable: rerun it;
# never edit it while it runs):  bash results/sota/commands46.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/sota/runs L=results/sota/logs
COMMON="-c configs/shd_eprop_round22.toml --data-dir .devdata/shd --device cpu --threads 1 --quiet --no-plots"
: > $L/commands46.jobs
for k in 0 1 2; do
    n=r22_rmax10_pub_seed$k
    echo "delayprop train $COMMON --readout-max-delay 10 --seed $k --model-seed $k --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands46.jobs
    n=r22_nord_h107_pub_seed$k
    echo "delayprop train $COMMON --no-readout-delays --n-hidden 107 --seed $k --model-seed $k --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands46.jobs
done
echo "$(date -u +%FT%TZ) $L/commands46.jobs: $(wc -l < $L/commands46.jobs) jobs" >> $L/commands46.log
xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands46.log' < $L/commands46.jobs
