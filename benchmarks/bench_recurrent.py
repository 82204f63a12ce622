"""Time recurrent against feedforward layers on the no-autograd paths (streaming forward and
streaming e-prop): the paper-size layer (140 -> 107 -> 20), batch 64, T = 100, synthetic
SHD-like input (``bench.make_batch``), untrained weights (hidden spike density ~15% per step,
about what trained SHD networks show: 15-19%).

    python benchmarks/bench_recurrent.py --out results/bench/recurrent.json
    python benchmarks/bench_recurrent.py --sparse-max 0.25   # FutureCurrents' earlier threshold

``--sparse-max`` sets ``layers.FutureCurrents.SPARSE_MAX`` (the largest spike density handled
by the sparse-spike route; 0 = always the dense product) and ``--kernel-sparse-max``
``FutureCurrents.KERNEL_SPARSE_MAX`` (the largest kernel density run as one CSR matrix; 0 =
never, as before that route existed), so one command times each setting. Median of --reps
after --warmup, one thread unless --threads.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone

import torch
from bench import make_batch  # the same synthetic SHD-like input as bench.py

from delayprop.layers import DelayNet, FutureCurrents, NetConfig
from delayprop.rules import EpropConfig, eprop_gradients

NETS = {
    "ff": dict(recurrent=False),
    "rec": dict(recurrent=True, recurrent_delays=False),
    "rec+delays": dict(recurrent=True, recurrent_delays=True),
}


def median_time(fn, reps: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sparse-max", type=float, default=None,
                    help="FutureCurrents.SPARSE_MAX for this run (default: the package's)")
    ap.add_argument("--kernel-sparse-max", type=float, default=None,
                    help="FutureCurrents.KERNEL_SPARSE_MAX for this run (default: the package's)")
    ap.add_argument("--out", default=None, help="write the numbers as JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.sparse_max is not None:
        FutureCurrents.SPARSE_MAX = args.sparse_max
    if args.kernel_sparse_max is not None:
        FutureCurrents.KERNEL_SPARSE_MAX = args.kernel_sparse_max
    x, y = make_batch(args.batch, args.T, 140, "cpu")
    cfg = EpropConfig(loss="mean")
    rows = {}
    for name, kw in NETS.items():
        net = DelayNet(NetConfig(n_in=140, n_hidden=(107,), n_out=20, kappa=0.9, tau_m=30.0,
                                 **kw))
        with torch.no_grad():
            density = float(net(x, record=True)[1][0].z.mean())
            fwd = median_time(lambda n=net: n(x), args.reps, args.warmup)
        ep = median_time(lambda n=net: eprop_gradients(n, x, y, cfg, keep_output=False),
                         args.reps, args.warmup)
        rows[name] = {"density": density, "forward_s": fwd, "eprop_s": ep}
        print(f"{name:11s} density {density:.3f}  forward {fwd * 1e3:7.1f} ms  "
              f"e-prop {ep * 1e3:7.1f} ms", flush=True)
    for name in ("rec", "rec+delays"):
        print(f"{name} / ff: forward {rows[name]['forward_s'] / rows['ff']['forward_s']:.2f}x, "
              f"e-prop {rows[name]['eprop_s'] / rows['ff']['eprop_s']:.2f}x")
    if args.out:
        from pathlib import Path

        from delayprop.fileio import atomic_write_text

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(args.out), json.dumps(
            {"argv": sys.argv, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "cores": os.cpu_count(), "load_1min": os.getloadavg()[0],
             "sparse_max": FutureCurrents.SPARSE_MAX,
             "kernel_sparse_max": FutureCurrents.KERNEL_SPARSE_MAX, "threads": args.threads,
             "torch": torch.__version__, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
