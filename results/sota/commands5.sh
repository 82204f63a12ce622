#!/usr/bin/env bash
# The dropout probe (results/gpu/round3.py) finished on this CPU: its twelve CPU-core runs
# were stopped at 33-36 of their 40 epochs by the call's deadline; each resumes here from its
# checkpoint with the command it started with (device cpu, the same packed data), two at a
# time, after commands4.sh's queue. Run from the repository root: bash results/sota/commands5.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/gpu/round3/runs L=results/sota/logs
while pgrep -f "results/sota/commands4.sh" > /dev/null; do sleep 10; done
: > $L/commands5.jobs
for log in results/gpu/round3/logs/r4_*.log; do
    name=$(basename "$log" .log)
    [ -f $R/$name/final.json ] && continue
    head -1 "$log" | sed -e 's#^[^ ]* -m delayprop#delayprop#' -e 's#--device cuda#--device cpu#' \
        -e "s#--run-dir gpu_work3/runs/#--run-dir $R/#" \
        -e "s#\$# --resume >> $L/$name.log 2>\&1#" >> $L/commands5.jobs
done
echo "$(date -u +%FT%TZ) $(wc -l < $L/commands5.jobs) jobs" >> $L/commands5.log
xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands5.log' < $L/commands5.jobs
