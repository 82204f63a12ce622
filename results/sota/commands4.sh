#!/usr/bin/env bash
# Round 3 of the e-prop recipe search, finished on this CPU (2 cores, one run per core).
# 1. The GPU call (results/gpu/round2.py) stopped eleven probe runs at 20-39 of their epochs
#    (its selection fired early, see results/gpu/round2/README.md); each resumes here from its
#    checkpoint with the command it started with (device cpu, same data: the packed files the
#    GPU read, .devdata/shd).
# 2. The five probes it never started run here from scratch.
# Run from the repository root:  bash results/sota/commands4.sh  (resumable: rerun to continue)
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/gpu/round2/runs L=results/sota/logs
mkdir -p $L
jobs=()
for log in results/gpu/round2/logs/r3_*_aug_seed0.log; do
    name=$(basename "$log" .log)
    [ -f $R/$name/final.json ] && continue
    # the GPU command, on the CPU, in this repository's copy of the run directory
    cmd=$(head -1 "$log" | sed -e 's#^[^ ]* -m delayprop#delayprop#' -e 's#--device cuda#--device cpu#' \
          -e "s#--run-dir gpu_work2/runs/#--run-dir $R/#")
    jobs+=("$cmd --resume >> $L/$name.log 2>&1")
done
AUG="delayprop train -c configs/shd_a_ff_syn_eprop_aug.toml --data-dir .devdata/shd --seed 0 --model-seed 0 --device cpu --threads 1 --quiet --tau-m 30 --epochs 40 --no-plots"
while read -r name flags; do
    [ -f $R/$name/final.json ] && continue
    jobs+=("$AUG --run-dir $R/$name $flags --resume >> $L/$name.log 2>&1")
done <<'LIST'
r3_delaylr0.3_aug_seed0 --delay-lr 0.3
r3_delaylr3_aug_seed0 --delay-lr 3
r3_maxdelay15_aug_seed0 --max-delay 15
r3_loss_sum_aug_seed0 --loss sum
r3_wscale2_aug_seed0 --weight-scale 2
LIST
printf '%s\n' "${jobs[@]}" > $L/commands4.jobs
echo "$(date -u +%FT%TZ) ${#jobs[@]} jobs" >> $L/commands4.log
xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands4.log' < $L/commands4.jobs
