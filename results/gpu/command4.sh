#!/usr/bin/env bash
# PREPARED, NOT YET RUN: the one command for the next lent GPU (device tool, timeout_s 560,
# carry [".devdata/packed"]). .devdata/packed holds SHD-repro packed here by
# `delayprop data pack shd --data-dir .devdata/shd --out .devdata/packed` (16 MB; the raw
# .gz files exceed the tool's 64 MiB carry limit).
# Since calls 1-3 (2026-12-04) the code gained readout delays, bounded readout delays, input
# dropout and the CSR route for recurrent delays; none of them has run on a GPU. This call:
#   1. benchmarks/cuda_check.py on every path, now with recurrent- and readout-delay
#      configurations (~1 min);
#   2. benchmarks/bench.py --device cuda, the same command as call 1, on today's code;
#   3. side by side on the GPU: DCLS as published (configs/dcls_shd.toml, seed 0, 150 epochs,
#      165 s in call 1) and the final e-prop recipe (configs/shd_eprop_round22.toml, seed 0,
#      80 epochs), each stopped by its own timeout so the call returns what it has; both run
#      directories resume with --resume.
# Everything lands in $OUT; copy it to results/gpu/call4/ and report in results/BENCH.md.
# Rehearsal on a CPU machine (small sizes, one epoch on 256 samples; tests the plumbing only):
#     OUT=$(mktemp -d) DEV=cpu REHEARSE=1 bash results/gpu/command4.sh
set -uo pipefail
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
D=.devdata/packed DEV=${DEV:-cuda}
BENCH=(--T 100 300 1000 --reps 3 --warmup 1) QUICK=()
if [ -n "${REHEARSE:-}" ]; then
    BENCH=(--T 25 --batch 16 --reps 1 --warmup 0 --nets paper) QUICK=(--epochs 1 --train-subset 256)
fi
python3 -c "import torch; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))" \
    | tee "$OUT/env.txt"
t0=$SECONDS
timeout 120 python3 benchmarks/cuda_check.py --device "$DEV" --out "$OUT/cuda_check.json" \
    > "$OUT/cuda_check.log" 2>&1
echo "cuda_check exit $? at $((SECONDS - t0)) s" | tee -a "$OUT/call4.log"
timeout 150 python3 benchmarks/bench.py --device "$DEV" "${BENCH[@]}" \
    --shd-epoch --no-memory --data-dir "$D" --out "$OUT/bench_cuda.json" \
    --md "$OUT/bench_cuda.md" > "$OUT/bench_cuda.log" 2>&1
echo "bench exit $? at $((SECONDS - t0)) s" | tee -a "$OUT/call4.log"
left=$((530 - (SECONDS - t0)))
train() {  # name config seed
    timeout "$left" python3 -m delayprop train -c "$2" --data-dir "$D" --device "$DEV" \
        --threads 1 --quiet --no-plots --seed "$3" --model-seed "$3" --run-dir "$OUT/$1" \
        --resume "${QUICK[@]}" > "$OUT/$1.log" 2>&1
    echo "$1 exit $? at $((SECONDS - t0)) s" | tee -a "$OUT/call4.log"
}
train dcls_shd_pub_seed0_cuda configs/dcls_shd.toml 0 &
train r22_pub_seed0_cuda configs/shd_eprop_round22.toml 0 &
wait
