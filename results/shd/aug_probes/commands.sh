#!/usr/bin/env bash
# Augmentation probes for run (a) (e-prop, ff 140-107-20, synaptic delays), model selection on a
# speaker-disjoint validation split (data.by_speaker: one whole training speaker held out), so
# that the choice does not look at the test file, whose samples are mostly two speakers absent
# from training. Two runs at a time, one thread each; re-running resumes / skips finished runs.
# Logs: results/shd/aug_probes/<name>.log; run directories results/shd/aug_probes/<name>/.
set -uo pipefail
cd "$(dirname "$0")/../../.."
DATA=${DATA:-/work/shared/data/shd-repro}

run() {
    local name=$1; shift
    local dir=results/shd/aug_probes/$name
    local resume=""
    [ -f "$dir/checkpoint.pt" ] && resume="--resume"
    echo "$(date -u +%FT%TZ) start $name $resume" >> "results/shd/aug_probes/$name.log"
    delayprop train -c configs/shd_a_ff_syn_eprop.toml --data-dir "$DATA" --epochs 40 \
        --threads 1 --by-speaker --name "$name" --run-dir "$dir" --quiet --no-plots $resume "$@" \
        >> "results/shd/aug_probes/$name.log" 2>&1
    echo "$(date -u +%FT%TZ) exit $? $name" >> "results/shd/aug_probes/$name.log"
}

( run p0_none; run p2_shift6_tshift5 --channel-shift 6 --time-shift 5 ) &
( run p1_shift3_jitter1 --channel-shift 3 --time-jitter 1.0;
  run p3_shift3_jitter1_wd --channel-shift 3 --time-jitter 1.0 --optimizer adamw --weight-decay 0.01 ) &
wait
