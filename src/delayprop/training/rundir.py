"""The run directory: the names of its files, its lock, its log and its metrics.

A run directory holds ``config.json`` (resolved), ``train.log``, ``metrics.jsonl`` (one line
per epoch), ``checkpoint.pt`` (every epoch, atomic), ``init.pt`` (the untrained model),
``best.pt`` (the selected model) and at the end ``final.json``, ``test_confusion.npy``,
``test_predictions.npy`` and the plots (:mod:`delayprop.training.checkpoint` says what the
``.pt`` files hold).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable

from delayprop import safety
from delayprop.fileio import DirLock, atomic_write_text, remove_stale_temps

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
INIT = "init.pt"
FINAL = "final.json"
METRICS = "metrics.jsonl"
CONFIG = "config.json"
LOG = "train.log"
#: The files that make a directory a run directory: a new run into it is refused unless it
#: resumes it or overwrites it (:func:`run_files`).
RUN_FILES = (CONFIG, METRICS, FINAL, BEST, CHECKPOINT, INIT)
#: Everything a run writes besides :data:`RUN_FILES` (removed too by ``--overwrite``).
OUTPUTS = (LOG, "test_confusion.npy", "test_predictions.npy", "learning_curves.png",
           "delays.png", "raster.png", "confusion.png", "tb")


def run_files(run_dir: Path) -> list[str]:
    """The :data:`RUN_FILES` present in ``run_dir``."""
    return [name for name in RUN_FILES if (run_dir / name).exists()]


def remove_run(run_dir: Path) -> list[str]:
    """Remove a previous run's files (:data:`RUN_FILES` and :data:`OUTPUTS`, nothing else)
    from ``run_dir``; returns the names removed."""
    import shutil

    removed = []
    for name in RUN_FILES + OUTPUTS:
        p = run_dir / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
        else:
            continue
        removed.append(name)
    return removed


def locked_run_dir(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Run ``fn(cfg, run_dir, **kw)`` with the run directory locked (one process per run
    directory: ConfigError if it is in use) and temporary files of killed writes removed."""

    @functools.wraps(fn)
    def locked(cfg: dict[str, Any], run_dir: str | os.PathLike, **kw: Any) -> dict[str, Any]:
        run_dir = Path(run_dir)
        safety.check_device(cfg["train"]["device"])
        with DirLock(run_dir):
            stale = remove_stale_temps(run_dir)  # left by a write that was killed
            if stale:
                safety.warn(f"{run_dir}: removed {len(stale)} temporary file(s) of an "
                            f"interrupted write ({', '.join(p.name for p in stale)})")
            return fn(cfg, run_dir, **kw)

    return locked


def run_logger(run_dir: Path) -> logging.Logger:
    """The logger writing the run's ``train.log`` (its handlers replaced on each call)."""
    log = logging.getLogger(f"delayprop.train.{run_dir.resolve()}")
    log.setLevel(logging.INFO)
    log.propagate = False
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    fh = logging.FileHandler(run_dir / LOG)
    fh.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    log.addHandler(fh)
    return log


def write_metrics(run_dir: Path, history: list[dict]) -> None:
    """Rewrite ``metrics.jsonl``: one JSON line per epoch of ``history``."""
    atomic_write_text(run_dir / METRICS, "".join(json.dumps(h) + "\n" for h in history))


def log_notes(log: logging.Logger, cfg: dict[str, Any], notes: list[str]) -> None:
    """The data notes (files, spikes dropped past max_time, validation split) to train.log
    and stderr."""
    for note in notes:
        log.info("data: %s", note)
        print(f"{cfg.get('name', '')}: data: {note}", file=sys.stderr, flush=True)


def tensorboard(run_dir: Path):
    """A TensorBoard writer into ``run_dir/tb``, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed
        return None
    return SummaryWriter(str(run_dir / "tb"))
