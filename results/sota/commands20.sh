#!/usr/bin/env bash
# For the record, chosen by nothing: what in DCLS's model is worth its lead over e-prop at the
# same shape? DCLS with one hidden layer of 100 (commands17.sh, e-prop's shape, 32,200
# parameters) reaches 84.05 +- 0.12% test (published protocol) against e-prop's 80.72 +- 0.84%
# (final recipe) and 81.08% (dropout 0.4, 150 epochs, round 9): the same dropout and epochs,
# and for one layer e-prop is BPTT's gradient (results/shd: (a) against (d)), so the rest is the
# model. Two parts of it that e-prop's network lacks, removed one at a time from DCLS-h100,
# published protocol, seeds 0-1:
#   readout without delays   (--set model.readout_delays=false: the readout synapses fixed at
#                             delay 0, as e-prop's readout; 30,200 parameters)
#   sharp delays in training (--set model.sigma0=0.23: the Gaussian kernels at their final
#                             width from the first epoch, as e-prop's near-hard delays, instead
#                             of 12 -> 0.23 over the first quarter; 32,200 parameters)
# Two runs at a time, one thread each.
# Run from the repository root (resumable: rerun it):  bash results/sota/commands20.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
R=results/sota/runs L=results/sota/logs
DCLS="delayprop train -c configs/dcls_shd.toml --data-dir .devdata/shd --device cpu --threads 1 --quiet --no-plots --n-hidden 100"
VARIANTS="noreaddelay:--set model.readout_delays=false
sharp:--set model.sigma0=0.23"
: > $L/commands20.jobs
for k in 0 1; do
    while IFS=: read -r name flags; do
        n=dcls32k_h100_${name}_pub_seed$k
        echo "$DCLS $flags --seed $k --model-seed $k --run-dir $R/$n --resume >> $L/$n.log 2>&1" >> $L/commands20.jobs
    done <<< "$VARIANTS"
done
echo "$(date -u +%FT%TZ) $(wc -l < $L/commands20.jobs) jobs" >> $L/commands20.log
xargs -P 2 -d '\n' -I{} bash -c '{}; echo "$(date -u +%FT%TZ) exit $? {}" >> results/sota/logs/commands20.log' < $L/commands20.jobs
