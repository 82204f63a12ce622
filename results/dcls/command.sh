#!/bin/sh
# The DCLS baseline run whose logs are in this folder (1 CPU thread, set by [train] threads).
# --resume continues from results/dcls/last.pt if the run was interrupted.
cd "$(dirname "$0")/../.." && \
python -m delayprop.baselines.dcls --config configs/dcls_shd.toml "$@" 2>&1 | tee -a results/dcls/train.log
