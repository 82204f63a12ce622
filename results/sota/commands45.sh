#!/usr/bin/env bash
# Seeds 3 and 4 of DCLS as published (configs/dcls_shd.toml, 214,016 parameters, 150 epochs),
# for the record (twelfth session). The headline comparison's standard error is mostly DCLS's
# seed spread (seeds 0-2: 85.40 +- 1.90% test); two more seeds narrow it from the DCLS side as
# commands41.sh / commands44.sh did from e-prop's. Seeds 0-2 ran on an H200 (results/gpu/); no
# GPU is lent to this session, so these run on the CPU (one thread each, ~1.5-2 h): the same
# code and configuration, a different device's floating-point order. Chosen by nothing;
# every seed run is reported, whatever it gives.
# Starts when commands44.sh has finished. Run from the repository root (resumable: rerun it;
# never edit it while it runs):  bash results/sota/commands45.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/sota/runs L=results/sota/logs
while pgrep -f "bash results/sota/commands44.sh" > /dev/null; do sleep 20; done
: > $L/commands45.jobs
for k in 3 4; do
    n=dcls_shd_pub_seed$k
    echo "delayprop train -c configs/dcls_shd.toml --data-dir .devdata/shd --device cpu --threads 1 --quiet --no-plots --seed $k --model-seed $k --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands45.jobs
done
echo "$(date -u +%FT%TZ) $L/commands45.jobs: $(wc -l < $L/commands45.jobs) jobs" >> $L/commands45.log
xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands45.log' < $L/commands45.jobs
