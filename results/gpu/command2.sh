#!/usr/bin/env bash
# The one command of the second GPU session (device tool, timeout_s 590, carry [".devdata"]).
# .devdata/shd holds SHD-repro packed here by `delayprop data pack shd --data-dir
# /work/shared/data/shd-repro --out .devdata/shd` (140 channels) and the same with
# `--channels 70` (for the ch70 probe).
export PYTHONPATH=$PWD/src:$PWD/results/gpu PYTHONUNBUFFERED=1
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
python3 results/gpu/round2.py --data .devdata/shd --out "$OUT" --budget 545 2>&1 | tee "$OUT/round2.log"
