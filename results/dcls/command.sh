#!/bin/sh
# The DCLS baseline run whose logs are in this folder (1 CPU thread, set by [train] threads).
# It read results/dcls/config.toml (= configs/dcls_shd.toml at commit e058e62).
# --resume continues from results/dcls/last.pt if the run was interrupted.
cd "$(dirname "$0")/../.." && \
python -m delayprop.baselines.dcls --config results/dcls/config.toml "$@" 2>&1 | tee -a results/dcls/train.log
