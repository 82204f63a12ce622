#!/usr/bin/env bash
# The one command given to the `device` tool (timeout_s 595, carry [".devdata"]); .devdata/shd
# was made here by: delayprop data pack shd --data-dir /work/shared/data/shd-repro --out .devdata/shd
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
python3 results/gpu/orchestrate.py --data .devdata/shd --out "$OUT" --budget 540 2>&1 | tee "$OUT/orchestrate.log"
