"""Why the benchmarks run with one thread on the shared machine: the cost of one element-wise
step of a time loop (the leaky filter of a (52, 256, 140) chunk, 104 small operations) with 1
and with 2 intra-op threads, plus a matrix product of the same data for scale.

Usage: python benchmarks/thread_stall.py [--out results/bench/thread_stall.json]
(prints one JSON object; ``--out`` also writes it, through a temporary file). Medians of 5,
the two settings interleaved twice. The stall shows where other processes keep the cores busy;
on idle cores the two settings are close.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import time
from datetime import datetime, timezone

import torch


def loop(x: torch.Tensor, decay: float) -> None:
    """The element-wise time loop, without layers.one_thread (which would hide the effect)."""
    out = torch.empty_like(x)
    out[0].copy_(x[0])
    for t in range(1, x.shape[0]):
        torch.mul(out[t - 1], decay, out=out[t])
        out[t].add_(x[t])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="", help="also write the JSON here")
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    x = torch.rand(52, 256, 140)
    w = torch.randn(140, 107)
    report: dict = {"command": shlex.join(["python", "benchmarks/thread_stall.py", *argv]),
                    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "torch": torch.__version__, "cores": os.cpu_count(),
                    "machine": platform.machine(),
                    "load_1min_before": os.getloadavg()[0], "shape": list(x.shape)}
    for threads in (1, 2, 1, 2):  # interleaved
        torch.set_num_threads(threads)
        loops, mms = [], []
        for _ in range(5):
            t0 = time.perf_counter()
            loop(x, 0.9)
            loops.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            x.view(-1, 140) @ w
            mms.append(time.perf_counter() - t0)
        key = f"threads_{threads}"
        report.setdefault(key, {"loop_ms": [], "matmul_ms": []})
        report[key]["loop_ms"].append(1e3 * statistics.median(loops))
        report[key]["matmul_ms"].append(1e3 * statistics.median(mms))
    report["load_1min_after"] = os.getloadavg()[0]
    text = json.dumps(report)
    print(text)
    if args.out:
        from delayprop.fileio import atomic_write_text

        atomic_write_text(args.out, text + "\n")


if __name__ == "__main__":
    main()
