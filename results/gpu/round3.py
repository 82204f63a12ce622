"""The third call on a lent GPU machine (one NVIDIA H200, 16 CPU cores): the dropout probe of
the e-prop recipe search (model.dropout, added after the second call), every run at once.

    python3 results/gpu/round3.py --data .devdata/shd --out $OUT --budget 360

Every run is the chosen recipe so far (tau_m 30, 40 epochs, ~32k parameters; dropout adds no
parameter) with dropout p, seeds 0-2, under both protocols: the augmentation protocol
(configs/shd_a_ff_syn_eprop_aug.toml, validation = held-out training speakers) and the
published one (configs/shd_a_ff_syn_eprop.toml). p = 0.1 and 0.25 on the CPU cores (one
thread each), p = 0.4 on the GPU. Selection, fixed before the run: the p with the highest mean
best validation accuracy over the three augmentation-protocol seeds, against the chosen recipe
so far (79.66%, results/sota/TABLE.md); its test accuracies under both protocols are the
result, the others are listed for the record. This script only runs and packs; the choice is
made by results/sota/table.py from the run directories. Runs left at the deadline are stopped
(checkpoints kept; `delayprop train --resume` continues them).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import time
from pathlib import Path

# results/gpu/orchestrate.py, the first call
from orchestrate import keep_small, log, start, stop_all

CONFIGS = {"aug": "configs/shd_a_ff_syn_eprop_aug.toml", "pub": "configs/shd_a_ff_syn_eprop.toml"}
BASE = ["--tau-m", "30", "--epochs", "40", "--no-plots"]
DEVICE = {0.1: "cpu", 0.25: "cpu", 0.4: "cuda"}
JOBS = [(f"r4_drop{p}_{proto}_seed{k}", CONFIGS[proto], k, BASE + ["--dropout", str(p)], dev)
        for p, dev in DEVICE.items() for proto in CONFIGS for k in range(3)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=float, default=360.0, help="seconds for everything")
    ap.add_argument("--dry", action="store_true",
                    help="rehearsal on a CPU machine: every job for one epoch on 128 samples")
    args = ap.parse_args()
    small = ["--epochs", "1", "--train-subset", "128"] if args.dry else []
    t0 = time.time()
    deadline = t0 + args.budget
    out = Path(args.out)
    work = Path("gpu_work3")
    runs, logs = work / "runs", work / "logs"
    runs.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    if not args.dry:
        info = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
        log(f"GPU: {info.strip()}")
    procs = {}
    for name, cfg, k, flags, dev in JOBS:
        procs[name] = start(name, cfg, k, flags + small, "cpu" if args.dry else dev, args.data,
                            runs, logs)
    while time.time() < deadline - 15 and any(p.poll() is None for p in procs.values()):
        time.sleep(5)
    stop_all(procs, runs, logs)

    keep = keep_small(work)

    with tarfile.open(out / "round3.tar.gz", "w:gz") as tar:
        tar.add(work, arcname=".", filter=keep)
    log(f"round3.tar.gz: {(out / 'round3.tar.gz').stat().st_size / 1e6:.1f} MB; "
        f"total {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
