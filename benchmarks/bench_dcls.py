"""Time the DCLS baseline (SNN-delays' SHD network, 0.21M parameters): training step, evaluation
forward, and the SHD-repro epoch they add up to.

Usage (from the repository root)::

    python benchmarks/bench_dcls.py --threads 2 --reps 5 --out dcls_step.json
    python benchmarks/bench_dcls.py --device cuda

A training step is what ``delayprop train`` does per batch with method ``dcls``: forward in
training mode (Gaussian kernels, BatchNorm, dropout), the time-summed-softmax loss, backward,
both Adam steps, both scheduler steps and the position clamp. The evaluation forward runs in
``eval()`` mode (rounded single-tap kernels) without autograd. Inputs are synthetic spike counts
with SHD-repro's statistics at 10 ms / 140 channels (``bench.make_batch``: 13.8% non-zero bins,
0.41 spikes per bin); T = 100 (max_time 1 s). The epoch estimate is ceil(7335 / 256) = 29
training steps plus ceil(815 / 256) = 4 evaluation batches (the validation split of
``configs/dcls_shd.toml``). Only the public API of :mod:`delayprop.baselines.dcls` that every
version has is used, so the same command times the code before and after a change.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import torch
from bench import make_batch, sync  # the same synthetic SHD-like input as bench.py

from delayprop.baselines.dcls import DCLSConfig, DCLSNet, dcls_loss, make_optimizers

N_TRAIN, N_VAL = 7335, 815


def timed(fn, reps: int, warmup: int, device: str) -> list[float]:
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--label", default="")
    ap.add_argument("--out", default="", help="also write the JSON here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = args.device
    net = DCLSNet(DCLSConfig(seed=0)).to(dev)
    steps = math.ceil(N_TRAIN / args.batch)
    opts, scheds = make_optimizers(net, {}, steps, 150)
    x, y = make_batch(args.batch, args.T, 140, dev, seed=0)

    def train_step() -> None:
        net.train()
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss = dcls_loss(net(x), y)
        loss.backward()
        for o in opts:
            o.step()
        for s in scheds:
            s.step()
        net.clamp_delays_()
        float(loss.detach())

    @torch.no_grad()
    def eval_step() -> None:
        net.eval()
        float(net(x).sum())

    tr = timed(train_step, args.reps, args.warmup, dev)
    ev = timed(eval_step, args.reps, args.warmup, dev)
    t_tr, t_ev = statistics.median(tr), statistics.median(ev)
    epoch = steps * t_tr * 1.0 + math.ceil(N_VAL / args.batch) * t_ev
    res = {
        "label": args.label, "device": dev, "threads": torch.get_num_threads(),
        "batch": args.batch, "T": args.T, "train_step_s": tr, "eval_step_s": ev,
        "train_step_median_s": t_tr, "eval_step_median_s": t_ev,
        "epoch_estimate_s": epoch, "train_steps_per_epoch": steps,
        "torch": torch.__version__, "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "argv": sys.argv,
        "gpu": torch.cuda.get_device_name(0) if dev.startswith("cuda") else None,
    }
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        with open(args.out + ".tmp", "w", encoding="utf-8") as f:
            f.write(text + "\n")
        os.replace(args.out + ".tmp", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
