"""Delays matter: a task whose class is carried only by relative spike timing.

Trains the same feedforward LIF network by e-prop twice on :func:`timing_task` — weights only,
then weights + synaptic delays — and prints both test accuracies. With a short membrane time
constant (tau_m = 5 ms, dt = 10 ms: alpha = e^-2) a neuron forgets an input spike within a
step or two, so weights alone cannot compare the times of channels A and B; learned delays
line them up.

    python examples/delays_matter.py [--out results/delays_matter] [--epochs 12]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from delayprop.data.synthetic import timing_task
from delayprop.train import Splits, resolve_config, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/delays_matter")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: the matrices are small)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    offsets = (-6, -3, 3, 6)
    data = [timing_task(n, offsets=offsets, seed=args.seed + k)
            for k, n in enumerate((2000, 500, 1000))]
    splits = Splits(*data, num_classes=len(offsets), class_names=data[0].class_names)

    out = Path(args.out)
    summary = {}
    for name, delays in (("weights_only", False), ("weights_and_delays", True)):
        cfg = resolve_config(
            {
                "name": f"timing_{name}",
                "model": dict(n_hidden=[64], synaptic_delays=delays, max_delay=8, sigma=1.5,
                              tau_m=5.0, weight_scale=4.0, kappa=0.8, seed=args.seed),
                "method": dict(name="eprop", loss="sum"),
                "train": dict(epochs=args.epochs, batch_size=64, lr=1e-2, delay_lr=2.0,
                              seed=args.seed),
                "data": dict(dataset="timing", dt=0.01),
            }
        )
        run_dir = out / name
        if run_dir.exists():
            shutil.rmtree(run_dir)
        t0 = time.time()
        final = train(cfg, run_dir, splits=splits, progress=False)
        summary[name] = {
            "test_acc": final["test_acc"],
            "val_acc": final["val_acc"],
            "params": final["params"],
            "wall_s": round(time.time() - t0, 1),
        }
        print(f"{name:20s} test accuracy {final['test_acc']:.3f} "
              f"(val {final['val_acc']:.3f}, {final['params']['total']} parameters, "
              f"{summary[name]['wall_s']} s)")
    summary["chance"] = 1 / len(offsets)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
