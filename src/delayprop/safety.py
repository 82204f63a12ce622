"""Checks that keep a training run from using bad input or saving a broken model silently.

* :class:`TrainingGuard`: after each batch's update, one fused finiteness check of the loss
  and all gradients, and after the optimiser step one of the parameters; a non-finite value
  stops the run with a :class:`~delayprop.errors.DivergenceError` (naming the parameter)
  before anything of that epoch is saved. A loss far above its running mean is warned about.
* :func:`check_splits`: labels of every split (integers, within the classes of the training
  data) and shapes, before training starts; the error names the file.
* :func:`data_identity` / :func:`check_same_data`: what a run was trained on (file names,
  sizes, sample counts and a sha256 of each split's tensors), stored in the checkpoint, so
  ``--resume`` on other data is refused.
* :func:`check_device`: a device name torch knows and this machine has.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import torch

from delayprop.errors import ConfigError, DataError, DivergenceError


def warn(msg: str) -> None:
    print(f"delayprop: warning: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Finiteness


def all_finite(tensors: Iterable[Optional[torch.Tensor]]) -> bool:
    """Whether every element of every floating-point tensor is finite.

    Cheap in the common case: one sum per tensor, one stack, one host sync (NaN and inf
    propagate through a sum). Only when that total is not finite are the tensors searched
    element by element, since a sum of huge but finite values can overflow.
    """
    ts = [t.detach() for t in tensors if t is not None and t.is_floating_point() and t.numel()]
    if not ts:
        return True
    sums = [t.sum() if t.dtype in (torch.float32, torch.float64) else t.float().sum()
            for t in ts]
    if bool(torch.isfinite(torch.stack(sums).sum())):  # stack promotes mixed dtypes
        return True
    return all(bool(torch.isfinite(t).all()) for t in ts)


def _first_bad(named: Iterable[tuple[str, Optional[torch.Tensor]]]) -> tuple[str, str]:
    """(name, 'NaN' | 'infinite') of the first tensor with a non-finite element."""
    for name, t in named:
        if t is None or not t.is_floating_point():
            continue
        if torch.isnan(t).any():
            return name, "NaN"
        if not torch.isfinite(t).all():
            return name, "infinite"
    return "?", "not finite"


_HINT = "lower --lr / --delay-lr or the initial weights (--weight-scale)"


class TrainingGuard:
    """Per-step checks of a network under training (see the module doc).

    ``check_update(loss, epoch, batch)`` after the gradients are written (before the
    optimiser step), ``check_step(epoch, batch)`` after the step; ``check_model(epoch)`` before
    a model is saved (parameters and floating-point buffers). Epochs and batches count from 1.
    """

    def __init__(self, net: torch.nn.Module, log: Optional[Callable[[str], None]] = None,
                 explode_factor: float = 10.0) -> None:
        self.net = net
        self.named = list(net.named_parameters())
        self.params = [p for _, p in self.named]
        self.log = log
        self.explode_factor = explode_factor
        self.ema: Optional[float] = None
        self.warned_epoch = -1

    def _stop(self, epoch: int, batch: int, what: str) -> DivergenceError:
        where = f"epoch {epoch}, batch {batch}" if batch else f"epoch {epoch}"
        msg = (f"training diverged at {where}: {what}; stopped before saving anything of epoch "
               f"{epoch} (checkpoint.pt, if any, holds the previous epoch); {_HINT}")
        if self.log is not None:
            self.log(msg)
        return DivergenceError(msg)

    def check_update(self, loss: float, epoch: int, batch: int) -> None:
        if not math.isfinite(loss):
            raise self._stop(epoch, batch, f"the loss is {loss}")
        grads = [p.grad for p in self.params]
        if not all_finite(grads):
            name, kind = _first_bad((n, p.grad) for n, p in self.named)
            raise self._stop(epoch, batch, f"the gradient of {name} is {kind}")
        self._watch(loss, epoch, batch)

    def check_step(self, epoch: int, batch: int) -> None:
        if not all_finite(self.params):
            name, kind = _first_bad(self.named)
            raise self._stop(epoch, batch, f"parameter {name} became {kind} in the update")

    def check_model(self, epoch: int) -> None:
        """Parameters and buffers (e.g. BatchNorm statistics) before a save."""
        named = list(self.net.named_parameters()) + list(self.net.named_buffers())
        if not all_finite(t for _, t in named):
            name, kind = _first_bad(named)
            raise self._stop(epoch, 0, f"{name} is {kind}")

    def check_initial(self) -> None:
        """The parameters a run starts from (new or resumed) are finite (ConfigError)."""
        if not all_finite(self.params):
            name, kind = _first_bad(self.named)
            raise ConfigError(f"the initial parameter {name} is {kind}; lower the initial "
                              "weights (model.weight_scale, --weight-scale)")

    def _watch(self, loss: float, epoch: int, batch: int) -> None:
        """Warn (once per epoch) when a batch's loss is far above its running mean."""
        ema = self.ema
        if ema is not None and loss > self.explode_factor * ema + 1.0 \
                and self.warned_epoch != epoch:
            self.warned_epoch = epoch
            ratio = loss / max(ema, 1e-12)
            msg = (f"epoch {epoch}, batch {batch}: loss {loss:.4g} is {ratio:.0f}x its running "
                   f"mean ({ema:.4g}); the run may be diverging ({_HINT})")
            warn(msg)
            if self.log is not None:
                self.log(msg)
        self.ema = loss if ema is None else 0.9 * ema + 0.1 * loss


# --------------------------------------------------------------------------------------------
# Labels and shapes


def _labels(ds: Any, role: str, where: str) -> torch.Tensor:
    y = torch.as_tensor(ds.y)
    if y.is_floating_point():
        if y.numel() and not bool((torch.isfinite(y) & (y == y.round())).all()):
            raise DataError(f"{where}: the {role} labels must be integers, got {y.dtype} values "
                            "with a fractional part")
    elif y.dtype == torch.bool or y.is_complex():
        raise DataError(f"{where}: the {role} labels must be integers, got {y.dtype}")
    return y


def check_labels(ds: Any, num_classes: int, role: str, file_level: bool = False) -> None:
    """Labels of ``ds`` are integers in [0, num_classes). ``file_level``: ``ds`` is a whole
    file, so its sample numbers are the file's (else the error names the split)."""
    where = str(getattr(ds, "source", "") or role)
    y = _labels(ds, role, where)
    if not y.numel():
        return
    bad = (y < 0) | (y >= num_classes)
    if bool(bad.any()):
        i = int(bad.to(torch.uint8).argmax())
        label = y[i].item()
        label = int(label) if float(label).is_integer() else label
        at = f"sample {i}: " if file_level else f"the {role} split holds "
        raise DataError(f"{where}: {at}label {label} out of range 0..{num_classes - 1} "
                        f"(the training data has {num_classes} classes)")


def warn_label_holes(ds: Any, role: str = "training") -> None:
    """Warn about classes below the largest label without any sample (a stray label?)."""
    y = torch.as_tensor(ds.y).long()
    if not y.numel():
        return
    counts = torch.bincount(y.clamp(min=0))
    empty = (counts == 0).nonzero().flatten().tolist()
    if empty:
        shown = ", ".join(map(str, empty[:10])) + (", ..." if len(empty) > 10 else "")
        warn(f"{getattr(ds, 'source', role)}: classes {shown} have no {role} samples, but "
             f"label {int(y.max())} does (a stray label?)")


def warn_unseen_test_labels(train: Any, test: Any) -> None:
    """Warn about test labels no training sample has (a stray label? With classes taken from
    the files, it also adds a class)."""
    y_tr = torch.as_tensor(train.y).long()
    y_te = torch.as_tensor(test.y).long()
    if not y_te.numel():
        return
    seen = torch.isin(y_te, y_tr.unique())
    if not bool(seen.all()):
        i = int((~seen).to(torch.uint8).argmax())
        n = int((~seen).sum())
        warn(f"{getattr(test, 'source', 'test')}: sample {i}: label {int(y_te[i])} has no "
             f"training sample ({n} test sample(s) with such labels; a stray label?)")


def check_splits(splits: Any) -> None:
    """Before training: every split's labels lie within the training data's classes, the
    splits have time steps and the same channels."""
    n_cls = int(splits.num_classes)
    c = None
    for role in ("train", "val", "test"):
        ds = getattr(splits, role)
        if ds is None:
            continue
        where = str(getattr(ds, "source", "") or role)
        x = ds.x
        if x.dim() != 3 or x.shape[1] < 1 or x.shape[2] < 1:
            raise DataError(f"{where}: the {role} split has shape {tuple(x.shape)}; expected "
                            "(samples, time steps >= 1, channels >= 1)")
        if c is not None and x.shape[2] != c:
            raise DataError(f"{where}: the {role} split has {x.shape[2]} channels, the training "
                            f"split {c}")
        c = x.shape[2] if c is None else c
        check_labels(ds, n_cls, role)


# --------------------------------------------------------------------------------------------
# Data identity


def _split_identity(ds: Any) -> dict[str, Any]:
    sha = hashlib.sha256()
    for t in (ds.x, ds.y):
        t = torch.as_tensor(t).detach().cpu().contiguous()
        sha.update(f"{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            sha.update(t.view(torch.uint8).numpy() if t.dtype != torch.bool
                       else t.to(torch.uint8).numpy())
    src = str(getattr(ds, "source", "") or "")
    size = None
    try:
        if src and Path(src).is_file():
            size = Path(src).stat().st_size
    except OSError:
        pass
    path = ""
    if size is not None:
        with contextlib.suppress(OSError):
            path = str(Path(src).resolve())
    return {"file": Path(src).name if src else "", "path": path or src, "bytes": size,
            "samples": len(ds), "shape": list(ds.x.shape[1:]), "sha256": sha.hexdigest()}


def data_identity(splits: Any) -> dict[str, Any]:
    """What a run trains on: per split the file name, its size, the sample count, the (T, C)
    shape and a sha256 of x and y; and the number of classes."""
    out: dict[str, Any] = {"num_classes": int(splits.num_classes)}
    for role in ("train", "val", "test"):
        ds = getattr(splits, role)
        out[role] = None if ds is None else _split_identity(ds)
    return out


def _describe(ident: Optional[dict[str, Any]], contents: bool = False) -> str:
    """A split's identity in words: its file (the full path where recorded), size and sample
    count; with ``contents`` also the start of its sha256."""
    if not ident:
        return "none"
    size = f"{ident['bytes']} bytes, " if ident.get("bytes") is not None else ""
    sha = f", contents sha256 {str(ident.get('sha256'))[:12]}" if contents else ""
    return (f"{ident.get('path') or ident.get('file') or '?'} "
            f"({size}{ident.get('samples')} samples{sha})")


def split_differences(saved: dict[str, Any], now: dict[str, Any],
                      roles: tuple[str, ...] = ("train", "val", "test")) -> list[str]:
    """Where two data identities (:func:`data_identity`) differ, per split, in words that tell
    them apart (the contents' sha256 where names, sizes and counts agree)."""
    diffs = []
    if saved.get("num_classes") != now.get("num_classes"):
        diffs.append(f"classes: was {saved.get('num_classes')}, now {now.get('num_classes')}")
    for role in roles:
        a, b = saved.get(role), now.get(role)
        if role == "test" and (a is None or b is None):
            continue  # a run may have been started without a test split
        if (a or {}).get("sha256") != (b or {}).get("sha256"):
            same = _describe(a) == _describe(b)
            note = ": same files, other contents" if same else ""
            diffs.append(f"{role} split: was {_describe(a, same)}, now {_describe(b, same)}"
                         f"{note}")
    return diffs


def check_same_data(saved: Optional[dict[str, Any]], now: dict[str, Any], where: str) -> None:
    """Refuse to resume on data other than the checkpoint's (ConfigError); warn if the
    checkpoint records none (written before this check existed)."""
    if not saved:
        warn(f"{where}: the checkpoint records no data identity (older delayprop); resuming "
             "without checking that the data are the same")
        return
    diffs = split_differences(saved, now)
    if diffs:
        raise ConfigError(f"{where}: --resume with other data than the checkpoint was trained "
                          f"on ({'; '.join(diffs)}); use the same --data-dir and data options, "
                          "or start a new --run-dir")


# --------------------------------------------------------------------------------------------
# Devices and logs


def check_device(name: Any) -> torch.device:
    """``torch.device(name)`` if this machine has it, else a one-line ConfigError."""
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"unknown device {name!r}; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r}: no CUDA device is available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s)")
        return dev
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(f"device {name!r}: MPS is not available on this machine")
        return dev
    raise ConfigError(f"device {name!r} is not supported; use cpu, cuda, cuda:N or mps")


def quiet_log_errors(log: logging.Logger) -> None:
    """A log file that cannot be written (full disk) gives one warning, not a traceback per
    record; the run itself stops at its next checkpoint write if the disk stays full."""
    warned: list[bool] = []

    def handle_error(record: logging.LogRecord) -> None:
        if not warned:
            warned.append(True)
            exc = sys.exc_info()[1]
            warn(f"cannot write the log file ({type(exc).__name__}: {exc})")

    for h in log.handlers:
        h.handleError = handle_error  # type: ignore[method-assign]
