"""Figures of a training run (matplotlib, Agg backend, PNG files in the run directory).

* ``learning_curves.png``  loss and accuracy per epoch (train and validation), from
  ``metrics.jsonl``;
* ``delays.png``           histograms of every delay parameter before (``init.pt``) and after
  training (``best.pt``), in time steps;
* ``raster.png``           spikes of one validation sample: the input and every hidden layer,
  plus the readout output over time;
* ``confusion.png``        the test confusion matrix (rows: true class, normalised per row).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from delayprop.fileio import atomic_open


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    """Save atomically (temporary name in the same folder, then os.replace)."""
    try:
        with atomic_open(path, suffix=".png") as f:
            fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    finally:
        _plt().close(fig)


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    p = Path(run_dir) / "metrics.jsonl"
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def plot_learning_curves(history: list[dict], path: Path, title: str = "") -> Path:
    """Loss (left) and accuracy (right) per epoch, train and validation."""
    plt = _plt()
    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
    a1.plot(ep, [h["train_loss"] for h in history], label="train")
    a1.plot(ep, [h["val_loss"] for h in history], label="val")
    a1.set_xlabel("epoch")
    a1.set_ylabel("loss")
    a1.legend()
    a2.plot(ep, [h["train_acc"] for h in history], label="train")
    a2.plot(ep, [h["val_acc"] for h in history], label="val")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy")
    a2.set_ylim(0, 1)
    a2.grid(alpha=0.3)
    a2.legend()
    if title:
        fig.suptitle(title)
    _save(fig, path)
    return path


def _delays_of(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().ravel() for k, v in state.items()
            if k.endswith("_delay") and v.is_floating_point()}


def plot_delay_histograms(
    before: dict[str, np.ndarray], after: dict[str, np.ndarray], path: Path
) -> Path | None:
    """One panel per delay parameter: histogram before and after training (steps)."""
    names = [n for n in after if n in before]
    if not names:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), squeeze=False)
    for ax, n in zip(axes[0], names):
        hi = max(float(before[n].max(initial=0)), float(after[n].max(initial=0)), 1.0)
        bins = np.linspace(0, hi, 41)
        ax.hist(before[n], bins=bins, alpha=0.5, label="before")
        ax.hist(after[n], bins=bins, alpha=0.5, label="after")
        ax.set_title(n, fontsize=9)
        ax.set_xlabel("delay (steps)")
        ax.legend(fontsize=8)
    _save(fig, path)
    return path


def plot_raster(x: torch.Tensor, spikes: list[torch.Tensor], y: torch.Tensor | None,
                path: Path, title: str = "", dt_ms: float = 10.0) -> Path:
    """Raster of one sample: x (T, C) input, spikes [(T, n_l)] per hidden layer, y (T, K)."""
    plt = _plt()
    rows = 1 + len(spikes) + (y is not None)
    fig, axes = plt.subplots(rows, 1, figsize=(8, 2.2 * rows), sharex=True)
    axes = np.atleast_1d(axes)
    t_axis = np.arange(x.shape[0]) * dt_ms
    for ax, (lab, s) in zip(axes, [("input", x)] + [(f"hidden {i}", z)
                                                     for i, z in enumerate(spikes)]):
        s = s.detach().cpu().numpy()
        tt, nn_ = np.nonzero(s > 0)
        ax.scatter(tt * dt_ms, nn_, s=1.5, c="k", marker="|")
        ax.set_ylabel(f"{lab}\nneuron")
        ax.set_ylim(-0.5, s.shape[1] - 0.5)
    if y is not None:
        ax = axes[-1]
        ax.plot(t_axis, y.detach().cpu().numpy(), lw=0.8)
        ax.set_ylabel("readout y")
    axes[-1].set_xlabel("time (ms)")
    if title:
        axes[0].set_title(title)
    _save(fig, path)
    return path


def plot_confusion(cm: np.ndarray, path: Path, class_names: list[str] | None = None) -> Path:
    """Row-normalised confusion matrix (true class per row)."""
    plt = _plt()
    k = cm.shape[0]
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(norm, cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, label="fraction of true class")
    labels = class_names if class_names and len(class_names) == k else [str(i) for i in range(k)]
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(labels, rotation=90, fontsize=6)
    ax.set_yticklabels(labels, fontsize=6)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"test confusion (accuracy {acc:.3f})")
    _save(fig, path)
    return path


def plot_run(run_dir: str | os.PathLike, model: Any = None, splits: Any = None,
             confusion: np.ndarray | None = None) -> list[Path]:
    """Every figure of a run that its files (and the optional model / data) allow."""
    run_dir = Path(run_dir)
    out: list[Path] = []
    history = read_metrics(run_dir)
    name = ""
    if (run_dir / "config.json").exists():
        name = json.loads((run_dir / "config.json").read_text()).get("name", "")
    if history:
        out.append(plot_learning_curves(history, run_dir / "learning_curves.png", name))
    init, best = run_dir / "init.pt", run_dir / "best.pt"
    if init.exists() and best.exists():
        before = _delays_of(torch.load(init, map_location="cpu", weights_only=False)["model"])
        after = _delays_of(torch.load(best, map_location="cpu", weights_only=False)["model"])
        p = plot_delay_histograms(before, after, run_dir / "delays.png")
        if p is not None:
            out.append(p)
    if model is not None and splits is not None and hasattr(model.net, "layers") \
            and model.method != "dcls":
        x, label = splits.val[0]
        xb = x.unsqueeze(0).to(torch.float32)
        model.eval_mode()
        with torch.no_grad():
            y, records = model.net(xb, record=True)
        model.train_mode()
        pred = int(model.predict(y)[0])
        names = splits.class_names
        title = f"true {names[int(label)]}, predicted {names[pred]}"
        dt_ms = float(getattr(model.net.config, "dt", 10.0))
        out.append(plot_raster(x, [r.z[0] for r in records], y[0], run_dir / "raster.png",
                               title, dt_ms))
    if confusion is not None:
        names = splits.class_names if splits is not None else None
        out.append(plot_confusion(confusion, run_dir / "confusion.png", names))
    return out
