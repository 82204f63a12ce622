#!/usr/bin/env bash
# The one command of the third GPU call (device tool, timeout_s 390, carry [".devdata"]; the
# 444 s of device time left after command2.sh). .devdata/shd: see command2.sh.
export PYTHONPATH=$PWD/src:$PWD/results/gpu PYTHONUNBUFFERED=1
python3 results/gpu/round3.py --data .devdata/shd --out "$OUT" --budget 340 2>&1 | tee "$OUT/round3.log"
