#!/usr/bin/env bash
# The paper grid: {ff, rec} x {weights, syn, ax, both} x {eprop, bptt}, configs/{ff,rec}_*_*.toml
# (one hidden layer of 128 LIF neurons, 30 epochs, no augmentation, 10% random validation split),
# one seed. Two workers with one thread each, the slow recurrent BPTT runs split between them.
# `delayprop reproduce` skips finished runs and resumes killed ones, so re-running this script
# continues where it stopped. Logs: results/shd/paper_grid/worker{1,2}.log; run directories:
# results/shd/<name>/seed0/.
set -uo pipefail
cd "$(dirname "$0")/../../.."
DATA=${DATA:-/work/shared/data/shd-repro}
W1=ff_weights_eprop,ff_syn_eprop,ff_ax_eprop,ff_both_eprop,rec_weights_bptt,rec_syn_bptt,rec_weights_eprop,rec_syn_eprop
W2=ff_weights_bptt,ff_syn_bptt,ff_ax_bptt,ff_both_bptt,rec_ax_bptt,rec_both_bptt,rec_ax_eprop,rec_both_eprop

worker() {
    local k=$1 only=$2
    for name in ${only//,/ }; do
        echo "$(date -u +%FT%TZ) start $name" >> "results/shd/paper_grid/worker$k.log"
        delayprop reproduce --grid paper --only "$name" --data-dir "$DATA" --threads 1 \
            --out results -q >> "results/shd/paper_grid/worker$k.log" 2>&1
        echo "$(date -u +%FT%TZ) exit $? $name" >> "results/shd/paper_grid/worker$k.log"
    done
}
worker 1 "$W1" &
worker 2 "$W2" &
wait

# the table of the finished runs (trains nothing)
delayprop reproduce --grid paper --collect --data-dir "$DATA" --threads 1 --out results
