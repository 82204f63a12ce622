#!/usr/bin/env bash
# Continues results/sota/commands.sh (stopped at 16:00 UTC): the DCLS run under the augmentation
# protocol ran at 52-142 s per epoch on one contended thread (150 epochs would take 2-6 hours),
# so it is left at its checkpoint (resumable: `results/sota/commands.sh a`); both cores go to
# e-prop. Same run() as commands.sh (sourced), two workers, one thread each; run directories
# are locked, so a run the other worker holds is skipped, and re-running resumes or skips.
set -uo pipefail
cd "$(dirname "$0")/../.."
DATA=${DATA:-/work/shared/data/shd-repro}
OUT=results/sota
eval "$(sed -n '/^run() {/,/^}/p;/^val() {/p' results/sota/commands.sh)"
AUG=configs/shd_a_ff_syn_eprop_aug.toml PUB=configs/shd_a_ff_syn_eprop.toml

choose() {  # the round-1 winner (tau_m 30) against round 2, on validation only
    local best=recipe_taum30 flags="--tau-m 30" bv n f v
    bv=$(val results/gpu/runs/recipe_taum30/final.json)
    for cand in "recipe2_taum20|--tau-m 20" "recipe2_taum30_maxdelay40|--tau-m 30 --max-delay 40"; do
        n=${cand%%|*} f=${cand#*|}
        v=$(val $OUT/runs/$n/final.json)
        if python -c "import sys; sys.exit(0 if $v > $bv else 1)"; then best=$n flags=$f bv=$v; fi
    done
    echo "chosen: $best ($flags), validation $bv" > $OUT/chosen_recipe.txt
}

worker1() {
    run recipe2_taum20 $AUG 0 --epochs 40 --tau-m 20
    while [ ! -f $OUT/runs/recipe2_taum30_maxdelay40/final.json ]; do sleep 20; done
    choose
    local flags; flags=$(sed 's/.*(\(.*\)).*/\1/' $OUT/chosen_recipe.txt)
    for k in 1 2; do run eprop_recipe_aug_seed$k $AUG $k --epochs 40 $flags; done
    for k in 0 1 2; do run eprop_recipe_pub_seed$k $PUB $k --epochs 40 $flags; done
}

worker2() {
    run recipe2_taum30_maxdelay40 $AUG 0 --epochs 40 --tau-m 30 --max-delay 40
    while [ ! -f $OUT/chosen_recipe.txt ]; do sleep 20; done
    local flags; flags=$(sed 's/.*(\(.*\)).*/\1/' $OUT/chosen_recipe.txt)
    for k in 2 1 0; do run eprop_recipe_pub_seed$k $PUB $k --epochs 40 $flags; done
    for k in 2 1; do run eprop_recipe_aug_seed$k $AUG $k --epochs 40 $flags; done
}

worker1 &
worker2 &
wait
