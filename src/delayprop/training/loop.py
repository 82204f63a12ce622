"""The training loop: epochs of updates, validation, selection, checkpoints, the final test.

:func:`train` runs one resolved configuration (:mod:`delayprop.training.config`) in a run
directory (:mod:`delayprop.training.rundir`). It talks to the learning method only through
the :class:`~delayprop.training.methods.Method` interface, whichever method it is.

One epoch: the method's epoch hook (:meth:`~delayprop.training.methods.Method.epoch_begin`,
the Gaussian width schedule), then for every batch (order drawn from ``seed * 100003 +
epoch``, augmented per ``[data]``) the method's training step writes ``.grad``
(:meth:`~delayprop.training.methods.Method.update`), the optimisers step, and the method clamps
its delays (:meth:`~delayprop.training.methods.Method.after_step`); then the validation split
is evaluated and the method's selection rule
(:meth:`~delayprop.training.methods.Method.improves`) decides whether the epoch's model
becomes ``best.pt``. With ``train.ema`` > 0 the validation, the selection of ``best.pt`` and
the test use an exponential moving average of the parameters (:mod:`delayprop.averaging`)
while training goes on with the raw ones; ``metrics.jsonl`` then also has the raw
parameters' ``val_acc_raw``.

Every epoch ends with an atomic ``checkpoint.pt`` and ``metrics.jsonl``. The test split is
evaluated once, at the end, on ``best.pt``. ``resume=True`` continues from ``checkpoint.pt``
and yields the same metrics as an uninterrupted run (CPU).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from delayprop import plots as plotting
from delayprop import safety
from delayprop.averaging import WeightAverage
from delayprop.data.batching import Augment, batches
from delayprop.errors import ConfigError
from delayprop.fileio import atomic_np_save, atomic_torch_save, atomic_write_text
from delayprop.progress import progress_bar
from delayprop.threads import apply_threads
from delayprop.training.checkpoint import (
    checkpoint_state,
    load_checkpoint,
    model_snapshot,
    seed_everything,
    set_rng_state,
)
from delayprop.training.config import augment_of, config_difference
from delayprop.training.evaluation import EvalResult, evaluate, seen_unseen
from delayprop.training.methods import Method, Optimization
from delayprop.training.resources import check_resources
from delayprop.training.rundir import (
    BEST,
    CHECKPOINT,
    CONFIG,
    FINAL,
    INIT,
    METRICS,
    locked_run_dir,
    log_notes,
    remove_run,
    run_files,
    run_logger,
    tensorboard,
    write_metrics,
)
from delayprop.training.splits import Splits, load_splits


@dataclass
class Progress:
    """Where a run stands: the metrics of the epochs done, the best validation so far, and
    the wall time of earlier calls (a resumed run)."""

    history: list[dict] = field(default_factory=list)
    best: dict[str, float] = field(default_factory=lambda: {
        "best_val": -1.0, "best_epoch": 0, "best_val_loss": math.inf})
    start: int = 0  # epochs completed
    wall_before: float = 0.0


@locked_run_dir
def train(
    cfg: dict[str, Any],
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    overwrite: bool = False,
    splits: Splits | None = None,
    progress: bool = True,
    plots: bool = True,
    stop_after: int | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Train according to the resolved configuration ``cfg`` in ``run_dir``.

    ``resume`` continues from ``run_dir/checkpoint.pt`` (and returns ``final.json`` if the run
    had finished with the same configuration; another configuration is a ConfigError, as is
    ``train.epochs`` changed to extend a finished run). A directory that holds any of
    :data:`~delayprop.training.rundir.RUN_FILES` is refused unless ``resume`` (with its
    checkpoint) or ``overwrite`` (the previous run's files are removed once the new run's data
    and model are ready); a run that never completed an epoch (no checkpoint, no metrics) with
    the same configuration is started again. ``splits`` overrides data loading (tests).
    ``progress`` shows the batch progress (a bar on a terminal, else a line every 30 s; one
    line per epoch goes to stderr either way). ``stop_after`` ends the call after
    that many completed epochs without the final test (simulates a killed run). Returns the
    final summary (or ``{'stopped_at': epoch}``). The run directory is created only once the
    data and the model are ready, so a failed start leaves none behind.

    Reliability: the run directory is locked for the call (a second process gets a
    ConfigError) and temporary files of killed writes are removed; labels of all splits are
    checked before training; the data identity is stored in the checkpoint and a resume on
    other data is refused; a non-finite loss, gradient or parameter stops the run with a
    DivergenceError before anything of that epoch is saved.
    """
    run_dir = Path(run_dir)
    t_cfg = cfg["train"]
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other: continue the run in "
                          f"{run_dir} or replace it")
    if resume and (run_dir / FINAL).exists():
        return _finished(cfg, run_dir)
    existing = run_files(run_dir)
    if existing and not overwrite and not (resume and CHECKPOINT in existing):
        _check_restart(cfg, run_dir, existing)
    apply_threads(cfg)  # train.threads, else 1 thread for a small network
    device = torch.device(t_cfg["device"])
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is cuda but no CUDA device is available")
    ckpt = _checkpoint_to_resume(cfg, run_dir) if resume else None
    if splits is None:
        check_resources(cfg)  # memory and max_delay, before any data or tensor

    if splits is None:
        splits = load_splits(cfg, progress=progress)
    safety.check_splits(splits)
    data_id = safety.data_identity(splits)
    if ckpt is not None:
        safety.check_same_data(ckpt.get("data"), data_id, str(run_dir))
    seed_everything(int(t_cfg["seed"]))
    method = Method(cfg, splits.train.channels, splits.num_classes, device)
    epochs = t_cfg["epochs"]
    steps = math.ceil(len(splits.train) / t_cfg["batch_size"])
    optimization = method.make_optimizers(steps)
    average = WeightAverage(method.net, t_cfg["ema"]) if t_cfg["ema"] else None
    params = method.count_parameters()
    run_dir.mkdir(parents=True, exist_ok=True)
    if overwrite and existing:  # only now: a start that fails above loses nothing
        removed = remove_run(run_dir)
        safety.warn(f"--overwrite: removed the previous run's files from {run_dir} "
                    f"({', '.join(removed)})")
    log = run_logger(run_dir)
    safety.quiet_log_errors(log)
    state = Progress()
    if ckpt is not None:
        state = _restore(ckpt, method, optimization, average)
        log.info("resumed at epoch %d from %s", state.start, run_dir / CHECKPOINT)
    guard = safety.TrainingGuard(method.net, log=log.info)
    guard.check_initial()  # e.g. an initial weight scale that overflows
    if ckpt is None:
        atomic_write_text(run_dir / CONFIG, json.dumps(cfg, indent=2, sort_keys=True) + "\n")
        atomic_torch_save(model_snapshot(method, method.net.state_dict(), 0, data_id),
                          run_dir / INIT)
        log.info("config %s", json.dumps(cfg, sort_keys=True))
        log.info("data: train %d, val %d, test %s; params %s", len(splits.train),
                 len(splits.val), len(splits.test) if splits.test is not None else "-", params)
    log_notes(log, cfg, splits.notes)
    write_metrics(run_dir, state.history)  # drop lines of epochs the checkpoint does not have
    tb = tensorboard(run_dir)
    t_start = time.time()
    augment = augment_of(cfg["data"])

    for epoch in range(state.start, epochs):
        t0 = time.time()
        sigma = method.epoch_begin(epoch, epochs)
        train_loss, train_acc = _train_epoch(method, optimization, guard, average, splits.train,
                                             epoch, epochs, steps, device, augment, progress)
        optimization.end_epoch()
        val, raw_val, selected = _validate(method, average, splits.val, epoch, epochs,
                                           state.best, t_cfg["eval_batch_size"], device)
        row = {
            "epoch": epoch + 1,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val.loss,
            "val_acc": val.accuracy,
            "lr": optimization.lr,
            "sigma": sigma,
            "epoch_s": time.time() - t0,
        }
        if raw_val is not None:
            row.update(val_loss_raw=raw_val.loss, val_acc_raw=raw_val.accuracy)
        state.history.append(row)
        guard.check_model(epoch + 1)  # never save a non-finite model
        if not math.isfinite(val.loss):
            safety.warn(f"epoch {epoch + 1}: the validation loss is {val.loss}")
        if selected is not None:
            state.best = {"best_val": val.accuracy, "best_epoch": epoch + 1,
                          "best_val_loss": val.loss}
            atomic_torch_save(model_snapshot(method, selected, epoch + 1, data_id),
                              run_dir / BEST)
        wall = state.wall_before + time.time() - t_start
        extra = {"ema": average.state_dict()} if average is not None else {}
        atomic_torch_save(checkpoint_state(method, optimization, epoch + 1,
                                           {"history": state.history, "wall_s": wall,
                                            "data": data_id, **state.best, **extra}),
                          run_dir / CHECKPOINT)
        write_metrics(run_dir, state.history)
        if tb is not None:
            for k in ("train_loss", "train_acc", "val_loss", "val_acc"):
                tb.add_scalar(k, row[k], epoch + 1)
        msg = (f"epoch {epoch + 1}/{epochs} train loss {row['train_loss']:.4g} acc "
               f"{row['train_acc']:.4f} | val loss {val.loss:.4g} acc {val.accuracy:.4f} | "
               f"{row['epoch_s']:.1f} s")
        log.info(msg)
        print(f"{cfg.get('name', '')}: {msg}", file=sys.stderr, flush=True)
        if on_epoch is not None:
            on_epoch(row)
        if stop_after is not None and epoch + 1 >= stop_after and epoch + 1 < epochs:
            return {"stopped_at": epoch + 1}
    if tb is not None:
        tb.close()
    wall = state.wall_before + time.time() - t_start
    return _final_test(cfg, run_dir, method, splits, state.best, params, wall, device, log,
                       plots)


#: What checkpoint.pt holds beyond a model snapshot (best.pt / init.pt).
_RUN_STATE = ("config", "model", "optimizers", "schedulers", "rng", "epoch", "history")


def _saved_config(run_dir: Path) -> dict[str, Any] | None:
    """The configuration a run directory's run was started with (config.json, else its
    checkpoint's), or None if it has neither."""
    if (run_dir / CONFIG).is_file():
        try:
            saved = json.loads((run_dir / CONFIG).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{run_dir / CONFIG}: unreadable ({exc}); choose another "
                              "--run-dir or --overwrite") from None
        if isinstance(saved, dict) and all(isinstance(saved.get(s), dict)
                                           for s in ("model", "method", "train", "data")):
            return saved
        raise ConfigError(f"{run_dir / CONFIG}: not a run configuration; choose another "
                          "--run-dir or --overwrite")
    for name in (CHECKPOINT, BEST):
        if (run_dir / name).is_file():
            ckpt = load_checkpoint(run_dir / name)
            if isinstance(ckpt, dict) and isinstance(ckpt.get("config"), dict):
                return ckpt["config"]
    return None


def _finished(cfg: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """``--resume`` on a finished run: its final.json if the configuration is the same;
    ConfigError naming the options otherwise (more epochs included: a finished run is not
    extended)."""
    saved = _saved_config(run_dir)
    diff = config_difference(saved, cfg) if saved is not None else []
    if diff == ["train.epochs"] and saved is not None:
        was, now = saved["train"]["epochs"], cfg["train"]["epochs"]
        raise ConfigError(
            f"{run_dir}: the run finished its {was} epochs; --resume with train.epochs {now} "
            f"does not extend a finished run (its learning-rate and width schedules were laid "
            f"out for {was} epochs): train {now} epochs in another --run-dir, or replace this "
            "run with --overwrite")
    if diff:
        raise ConfigError(f"{run_dir}: --resume on a finished run with a different "
                          f"configuration ({', '.join(diff)}); its final.json belongs to the "
                          "configuration it was trained with: choose another --run-dir, or "
                          "replace the run with --overwrite")
    try:
        return json.loads((run_dir / FINAL).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{run_dir / FINAL}: unreadable ({exc})") from None


def _check_restart(cfg: dict[str, Any], run_dir: Path, existing: list[str]) -> None:
    """A directory holding run files, for a new run (not resumed, not overwritten): allowed
    only if its run never completed an epoch (its config.json and init.pt, no checkpoint,
    final.json nor metrics; a best.pt written just before the first checkpoint is rewritten)
    and has the same configuration (it is started again; init.pt comes out the same);
    ConfigError otherwise."""
    metrics = run_dir / METRICS
    have = set(existing)
    started_only = not ({CHECKPOINT, FINAL} & have) and {CONFIG, INIT} <= have and (
        not metrics.exists() or not metrics.read_text(encoding="utf-8", errors="replace")
        .strip())
    how = ("pass --resume to continue it, --overwrite to replace it, or choose another "
           "--run-dir")
    if CHECKPOINT not in existing:
        how = "pass --overwrite to replace it or choose another --run-dir"
    files = ", ".join(existing)
    if not started_only:
        raise ConfigError(f"{run_dir} already holds a run ({files}); {how}")
    saved = _saved_config(run_dir)
    diff = config_difference(saved, cfg) if saved is not None else ["config.json missing"]
    if diff:
        raise ConfigError(f"{run_dir} already holds a run that never completed an epoch "
                          f"({files}) with another configuration ({', '.join(diff)}); {how}")
    safety.warn(f"{run_dir}: its run never completed an epoch; starting it again")


def _checkpoint_to_resume(cfg: dict[str, Any], run_dir: Path) -> dict | None:
    """The run directory's checkpoint (None if there is none yet); ConfigError if it is no
    training checkpoint (a model snapshot, a cache file) or was written with a configuration
    that differs in more than the runtime options."""
    path = run_dir / CHECKPOINT
    if not path.exists():
        return None
    ckpt = load_checkpoint(path)
    missing = [k for k in _RUN_STATE if k not in ckpt] if isinstance(ckpt, dict) else ["all"]
    if missing:
        what = ("a model snapshot such as best.pt or init.pt"
                if isinstance(ckpt, dict) and "model" in ckpt and "config" in ckpt
                else "no run state")
        raise ConfigError(f"{path}: not a training checkpoint (it holds {what}, without "
                          f"{', '.join(missing)}); --resume needs the checkpoint.pt its run "
                          "wrote: start again with --overwrite")
    diff = config_difference(ckpt["config"], cfg)
    if diff:
        raise ConfigError(f"{run_dir}: --resume with a different configuration "
                          f"({', '.join(diff)})")
    return ckpt


def _restore(ckpt: dict, method: Method, optimization: Optimization,
             average: WeightAverage | None) -> Progress:
    """Put the model, optimisers, schedulers, RNGs and weight average back as a checkpoint
    saved them; returns where the run stood."""
    method.net.load_state_dict(ckpt["model"])
    optimization.load_state_dict(ckpt)
    set_rng_state(ckpt["rng"])
    if average is not None:
        average.load_state_dict(ckpt["ema"])
    return Progress(
        history=list(ckpt["history"]),
        best={"best_val": ckpt["best_val"], "best_epoch": ckpt["best_epoch"],
              "best_val_loss": ckpt.get("best_val_loss", math.inf)},
        start=int(ckpt["epoch"]),
        wall_before=float(ckpt.get("wall_s", 0.0)),
    )


def _train_epoch(method: Method, optimization: Optimization, guard: safety.TrainingGuard,
                 average: WeightAverage | None, train_set: Any, epoch: int, epochs: int,
                 steps: int, device: torch.device, augment: Augment | None,
                 progress: bool) -> tuple[float, float]:
    """One pass over the training split: per batch the method's update, a guarded optimiser
    step, the method's post-step hook and the weight average. Returns the epoch's mean
    training loss and accuracy."""
    t_cfg = method.cfg["train"]
    method.train_mode()
    tot_loss, correct, seen = 0.0, 0, 0
    bar = progress_bar(batches(train_set, batch_size=t_cfg["batch_size"], shuffle=True,
                               seed=int(t_cfg["seed"]) * 100003 + epoch, device=device,
                               augment=augment),
                       total=steps, desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                       enabled=progress)
    for batch, (xb, yb) in enumerate(bar, 1):
        optimization.zero_grad()
        loss, pred = method.update(xb, yb)
        guard.check_update(loss, epoch + 1, batch)  # loss and gradients finite
        optimization.step()
        guard.check_step(epoch + 1, batch)  # parameters finite
        method.after_step()
        if average is not None:
            average.update()
        tot_loss += loss * len(yb)
        correct += int((pred.cpu() == yb.cpu()).sum())
        seen += len(yb)
        bar.set_postfix(loss=f"{tot_loss / seen:.3g}", acc=f"{correct / seen:.3f}")
    bar.close()
    return tot_loss / seen, correct / seen


def _validate(method: Method, average: WeightAverage | None, val_set: Any, epoch: int,
              epochs: int, best: dict[str, float], batch_size: int, device: torch.device
              ) -> tuple[EvalResult, EvalResult | None, dict[str, torch.Tensor] | None]:
    """Evaluate the validation split with the parameters the run selects on (the weight
    average, if any) and, with an average, also the raw parameters. Returns (validation
    result, raw result or None, a copy of the selected parameters if the method's selection
    rule takes this epoch, else None)."""
    raw_val = None
    if average is not None:  # an extra evaluation: it must not move the global generator
        with torch.random.fork_rng(devices=[]):  # (dropout masks are drawn from it)
            raw_val = evaluate(method, val_set, batch_size, device=str(device))
    with average.swapped() if average is not None else contextlib.nullcontext():
        val = evaluate(method, val_set, batch_size, device=str(device))
        improved = method.improves(epoch, epochs, val.accuracy, val.loss, best)
        # the selected parameters (the average, if any), copied: the swap-back overwrites
        selected = ({k: v.clone() for k, v in method.net.state_dict().items()}
                    if improved else None)
    return val, raw_val, selected


def _final_test(cfg: dict[str, Any], run_dir: Path, method: Method, splits: Splits,
                best: dict[str, float], params: dict[str, int], wall: float,
                device: torch.device, log: logging.Logger, plots: bool) -> dict[str, Any]:
    """The test split, once, on ``best.pt``; writes the test files, the plots and
    ``final.json``, and returns the final summary."""
    best_ckpt = load_checkpoint(run_dir / BEST)
    method.net.load_state_dict(best_ckpt["model"])
    final: dict[str, Any] = {
        "name": cfg.get("name", ""),
        "method": cfg["method"]["name"],
        "params": params,
        "epochs": cfg["train"]["epochs"],
        "best_epoch": best["best_epoch"],
        "val_acc": best["best_val"],
        "wall_s": round(wall, 1),
    }
    if splits.test is not None:
        test = evaluate(method, splits.test, cfg["train"]["eval_batch_size"], device=str(device))
        final["test_acc"] = test.accuracy
        final["test_loss"] = test.loss
        final["test_per_class"] = [None if math.isnan(a) else a
                                   for a in test.per_class(splits.num_classes)]
        atomic_np_save(run_dir / "test_confusion.npy", test.confusion(splits.num_classes))
        atomic_np_save(run_dir / "test_predictions.npy", np.stack([test.targets, test.preds]))
        log.info("test (epoch %d): acc %.4f", best["best_epoch"], test.accuracy)
        if (splits.test.speaker >= 0).any():  # unseen speakers are what SHD's test file tests
            groups = seen_unseen(test.per_speaker(splits.test.speaker.numpy(),
                                                  splits.train.speaker.unique().numpy()))
            final["test_speakers"] = groups
            log.info("test by speaker: %s", "; ".join(
                f"{k} in training ({len(g['speakers'])} speakers, {g['n']} samples) acc "
                f"{g['accuracy']:.4f}" for k, g in groups.items()))
    if plots:
        try:
            plotting.plot_run(run_dir, model=method, splits=splits,
                              confusion=np.load(run_dir / "test_confusion.npy")
                              if splits.test is not None else None)
        except Exception as exc:  # a plot must never lose a finished run
            log.info("plots failed: %s: %s", type(exc).__name__, exc)
            print(f"delayprop: warning: plots failed ({exc})", file=sys.stderr)
    atomic_write_text(run_dir / FINAL, json.dumps(final, indent=2) + "\n")
    log.info("final %s", json.dumps(final))
    return final
