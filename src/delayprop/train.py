r"""The training loop: configuration, optimisers, schedules, checkpoints, metrics, final test.

A run is described by one nested configuration (TOML file + command-line overrides):

* ``[model]``  the :class:`~delayprop.layers.NetConfig` fields (or DCLS's for method "dcls");
* ``[method]`` ``name`` = "eprop" | "bptt" | "dcls", ``loss`` = "sum" | "mean", ``feedback``,
  ``reg_rate``, ``target_rate``;
* ``[train]``  epochs, batch_size, optimizer, lr, delay_lr, weight_decay, lr_schedule, the
  Gaussian width schedule (sigma0 -> sigma1), seed, device, threads;
* ``[data]``   dataset (shd, ssc, h5, timing or a path: :mod:`delayprop.data.registry`),
  data_dir, download, dt, max_time, channels, binary, val_fraction, by_speaker, val_speakers,
  split_seed, train_subset; augmentation of the training batches (:class:`delayprop.data.Augment`):
  channel_shift, time_jitter, time_shift.

:data:`OPTION_DOCS` says what each [method], [train] and [data] option means (``delayprop train
--help`` shows it).

One epoch: for every batch (order drawn from ``seed * 100003 + epoch``) compute the updates
(:func:`~delayprop.rules.eprop_gradients` or :func:`~delayprop.rules.bptt_gradients`, both
write ``.grad``), take an optimiser step, clamp the delays to [0, max_delay]; then evaluate the
validation split. Delay parameters (names ending in ``_delay``) have their own learning rate.
With ``train.ema`` > 0 the validation, the selection of ``best.pt`` and the test use an
exponential moving average of the parameters (:mod:`delayprop.averaging`) while training goes
on with the raw ones; ``metrics.jsonl`` then also has the raw parameters' ``val_acc_raw``.
The Gaussian width follows an exponential decay per epoch,

.. math::
    \sigma(e) = \sigma_0 (\sigma_1 / \sigma_0)^{\min(1,\, e / (f E))}

(``sigma_decay_fraction`` :math:`f` of the :math:`E` epochs), then stays at :math:`\sigma_1`.

The run directory holds ``config.json`` (resolved), ``train.log``, ``metrics.jsonl`` (one line
per epoch), ``checkpoint.pt`` (every epoch, atomic; model, optimiser, scheduler, RNG states,
history, best validation), ``init.pt`` (the untrained model), ``best.pt`` (the model with the
best validation accuracy), and at the end ``final.json`` and the plots. The test split is
evaluated once, at the end, on ``best.pt``. ``resume=True`` continues from ``checkpoint.pt``
and yields the same metrics as an uninterrupted run (CPU).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from delayprop import safety
from delayprop.averaging import WeightAverage
from delayprop.errors import ConfigError, CorruptFileError, DataError
from delayprop.fileio import (
    DirLock,
    atomic_np_save,
    atomic_torch_save,
    atomic_write_text,
    remove_stale_temps,
    torch_load_checked,
)
from delayprop.layers import DelayNet, NetConfig
from delayprop.losses import LOSSES, loss_value, predict

if TYPE_CHECKING:
    from delayprop.data import Augment

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

METHODS = ("eprop", "bptt", "dcls")
SECTIONS = ("model", "method", "train", "data")

DEFAULTS: dict[str, dict[str, Any]] = {
    "model": {},  # NetConfig (or DCLSConfig) defaults fill the rest
    "method": {
        "name": "eprop",
        "loss": "sum",
        "feedback": "symmetric",
        "reg_rate": 0.0,
        "target_rate": 0.01,
    },
    "train": {
        "epochs": 30,
        "batch_size": 64,
        "optimizer": "adam",
        "lr": 2e-3,
        "delay_lr": 0.1,
        "weight_decay": 0.0,
        "input_dropout": 0.0,  # 0: off
        "ema": 0.0,  # 0: off; else the decay of the evaluated weight average (averaging.py)
        "lr_schedule": "cosine",
        "sigma0": 0.0,  # 0: keep the model's sigma, no schedule
        "sigma1": 0.0,
        "sigma_decay_fraction": 0.5,
        "seed": 0,
        "device": "cpu",
        "threads": 0,  # 0: leave torch's default
        "eval_batch_size": 512,
    },
    "data": {
        "dataset": "shd",
        "data_dir": "",
        "dt": 0.01,
        "max_time": 1.0,
        "channels": 140,
        "binary": False,
        "val_fraction": 0.1,
        "by_speaker": False,
        "val_speakers": [],  # speaker ids to hold out; empty: by_speaker / val_fraction decide
        "split_seed": 0,
        "train_subset": 0,  # 0: all training samples
        # training-batch augmentation (data.Augment), off by default
        "channel_shift": 0,  # +-k input channels per sample
        "time_jitter": 0.0,  # per-spike Gaussian jitter, in steps
        "time_shift": 0,  # +-k steps per sample
        "download": True,  # shd/ssc: fetch missing files (md5-checked)
    },
}

#: What each [method], [train] and [data] option means, with its unit; ``delayprop train
#: --help`` shows these (the [model] options are documented in NetConfig's docstring).
OPTION_DOCS: dict[str, dict[str, str]] = {
    "method": {
        "name": "learning rule: e-prop, BPTT or the DCLS baseline",
        "loss": "sum: cross-entropy at every step; mean: of the time-averaged output",
        "feedback": "e-prop learning-signal weights: symmetric (W_out^T) or fixed random",
        "reg_rate": "firing-rate regularisation strength (0: off)",
        "target_rate": "target firing rate of the regularisation, spikes per step",
    },
    "train": {
        "epochs": "passes over the training split",
        "batch_size": "samples per update",
        "optimizer": "optimiser (SGD with momentum 0.9)",
        "lr": "learning rate of the weights",
        "delay_lr": "learning rate of the delays, in steps per unit update",
        "weight_decay": "weight decay of the weights (not the delays)",
        "input_dropout": "training only: each sample drops each input channel for the whole "
                         "sequence with this probability; kept channels are scaled by "
                         "1 / (1 - p)",
        "ema": "weight averaging: validate, select and test an exponential moving average of "
               "the parameters with this decay per optimiser step (0: off; 0.999: a horizon "
               "of 1000 steps); training continues on the raw parameters",
        "lr_schedule": "cosine: decay the learning rates over the epochs; none: constant",
        "sigma0": "Gaussian delay width at the first epoch, in steps (0: keep model.sigma)",
        "sigma1": "Gaussian delay width at the end of the decay, in steps",
        "sigma_decay_fraction": "fraction of the epochs over which sigma0 decays to sigma1",
        "seed": "seed of the batch order and of Python/NumPy/torch",
        "device": "torch device (cpu, cuda, cuda:1, ...)",
        "threads": "torch CPU threads (0: torch's default)",
        "eval_batch_size": "samples per batch when evaluating",
    },
    "data": {
        "dataset": "shd, ssc, h5 (SHD-format files in --data-dir, classes from the files), "
                   "timing (built-in synthetic task, no files; brings its own model and train "
                   "defaults, see --print-config) or the path of an SHD-format "
                   "training file",
        "data_dir": "folder of the data files (shd, ssc, h5)",
        "dt": "time step of the binned input, in seconds",
        "max_time": "input duration, in seconds; later spikes are dropped (and counted)",
        "channels": "input channels: SHD's 700 summed in groups (must divide 700); timing: "
                    "A, B and channels - 2 noise channels",
        "binary": "clip spike counts per step and channel to 1",
        "val_fraction": "share of the training file held out for validation",
        "by_speaker": "hold out whole speakers for validation (needs speaker ids)",
        "val_speakers": "hold out exactly these speakers (ids in the training file) for "
                        "validation; overrides by_speaker and val_fraction",
        "split_seed": "seed of the validation split (and of train_subset)",
        "train_subset": "train on this many samples of the training split (0: all)",
        "channel_shift": "augmentation: shift each sample by up to +-k channels",
        "time_jitter": "augmentation: per-spike Gaussian jitter, std in steps",
        "time_shift": "augmentation: shift each sample by up to +-k steps",
        "download": "shd/ssc: download missing files (md5-checked)",
    },
}

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
INIT = "init.pt"
FINAL = "final.json"
METRICS = "metrics.jsonl"
CONFIG = "config.json"
LOG = "train.log"


# --------------------------------------------------------------------------------------------
# Configuration


def load_config(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read a TOML configuration file into a nested dict (sections as in the module doc)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such configuration file")
    try:
        with open(p, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML ({exc})") from None
    unknown = sorted(k for k in raw if k not in SECTIONS and k != "name")
    if unknown:
        raise ConfigError(f"{p}: unknown section(s) {', '.join(unknown)}; expected {SECTIONS}")
    return raw


def resolve_config(
    raw: dict[str, Any] | None = None, overrides: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Defaults <- file <- overrides, checked. Returns a new nested dict (JSON-serialisable)."""
    cfg: dict[str, Any] = copy.deepcopy(DEFAULTS)
    cfg["name"] = ""
    for src in _dataset_preset(raw or {}, overrides or {}), (raw or {}), (overrides or {}):
        for sec, values in src.items():
            if sec == "name":
                if values:
                    cfg["name"] = str(values)
                continue
            if sec not in SECTIONS:
                raise ConfigError(f"unknown configuration section {sec!r}")
            if not isinstance(values, dict):
                raise ConfigError(f"section [{sec}] must be a table")
            for k, v in values.items():
                if v is None:
                    continue
                if sec != "model" and k not in DEFAULTS[sec]:
                    raise ConfigError(f"unknown option {sec}.{k}")
                cfg[sec][k] = v
    check_config(cfg)
    return cfg


def _dataset_preset(*sources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The defaults of the dataset the sources name (e.g. ``timing``'s small network)."""
    from delayprop.data.registry import preset

    dataset, method = DEFAULTS["data"]["dataset"], DEFAULTS["method"]["name"]
    for src in sources:
        d, m = src.get("data"), src.get("method")
        if isinstance(d, dict) and d.get("dataset") is not None:
            dataset = d["dataset"]
        if isinstance(m, dict) and m.get("name") is not None:
            method = m["name"]
    return preset(dataset, method)


def check_config(cfg: dict[str, Any]) -> None:
    """Raise ConfigError on an invalid resolved configuration."""
    m, t, d = cfg["method"], cfg["train"], cfg["data"]
    if m["name"] not in METHODS:
        raise ConfigError(f"method.name must be one of {METHODS}, got {m['name']!r}")
    if m["loss"] not in LOSSES:
        raise ConfigError(f"method.loss must be one of {LOSSES}, got {m['loss']!r}")
    if m["name"] == "dcls":
        from delayprop.baselines.dcls import check_dcls_model

        check_dcls_model(cfg["model"], m["loss"])
    else:
        known = {f.name for f in fields(NetConfig)}
        unknown = sorted(set(cfg["model"]) - known)
        if unknown:
            raise ConfigError(f"unknown model option(s): {', '.join(unknown)}")
        NetConfig.from_dict(cfg["model"])  # validates
    for k in ("epochs", "batch_size", "eval_batch_size"):
        if not isinstance(t[k], int) or isinstance(t[k], bool) or t[k] < 1:
            raise ConfigError(f"train.{k} must be a positive integer, got {t[k]!r}")
    for k in ("lr", "delay_lr", "weight_decay", "sigma0", "sigma1"):
        if not isinstance(t[k], (int, float)) or t[k] < 0 or not math.isfinite(t[k]):
            raise ConfigError(f"train.{k} must be a finite number >= 0, got {t[k]!r}")
    p_in = t["input_dropout"]
    if isinstance(p_in, bool) or not isinstance(p_in, (int, float)) or not 0 <= p_in < 1:
        raise ConfigError(f"train.input_dropout must be in [0, 1), got {p_in!r}")
    ema = t["ema"]
    if isinstance(ema, bool) or not isinstance(ema, (int, float)) or not 0 <= ema < 1:
        raise ConfigError(f"train.ema must be in [0, 1) (0: off), got {ema!r}")
    if t["optimizer"] not in ("adam", "adamw", "sgd"):
        raise ConfigError(f"train.optimizer must be adam, adamw or sgd, got {t['optimizer']!r}")
    if t["lr_schedule"] not in ("none", "cosine"):
        raise ConfigError(f"train.lr_schedule must be none or cosine, got {t['lr_schedule']!r}")
    if (t["sigma0"] > 0) != (t["sigma1"] > 0):
        raise ConfigError("train.sigma0 and train.sigma1 must both be > 0 (schedule) or both 0")
    if not 0 < t["sigma_decay_fraction"] <= 1:
        raise ConfigError("train.sigma_decay_fraction must be in (0, 1]")
    if not 0 < d["val_fraction"] < 1:
        raise ConfigError(f"data.val_fraction must be in (0, 1), got {d['val_fraction']}")
    if d["train_subset"] < 0:
        raise ConfigError("data.train_subset must be >= 0")
    vs = d["val_speakers"]
    if not isinstance(vs, list) or any(isinstance(v, bool) or not isinstance(v, int) or v < 0
                                       for v in vs):
        raise ConfigError(f"data.val_speakers must be a list of speaker ids (integers >= 0), "
                          f"got {vs!r}")
    augment_of(d)  # validates the augmentation options
    from delayprop.data.registry import check_data_config

    check_data_config(d)


def augment_of(d: dict[str, Any]) -> Augment | None:
    """The training-batch augmentation of a [data] section, or None when it is off."""
    from delayprop.data import Augment

    try:
        aug = Augment(channel_shift=d["channel_shift"], time_jitter=float(d["time_jitter"]),
                      time_shift=d["time_shift"])
    except (TypeError, ValueError) as e:
        raise ConfigError(f"data augmentation: {e}") from None
    return aug if aug.active else None


# options that do not change the results (where and how fast a run computes)
RUNTIME_OPTIONS = {("train", "threads"), ("train", "device"), ("train", "eval_batch_size"),
                   ("data", "data_dir"), ("data", "download")}


def config_difference(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The options ('section.key') in which two resolved configurations differ, ignoring
    :data:`RUNTIME_OPTIONS`; an option one of them lacks (a run from before the option
    existed) counts as its default."""
    def get(c: dict[str, Any], s: str, k: str) -> Any:
        return c[s].get(k, DEFAULTS[s].get(k))

    diff = [f"{s}.{k}" for s in SECTIONS for k in set(a[s]) | set(b[s])
            if (s, k) not in RUNTIME_OPTIONS and get(a, s, k) != get(b, s, k)]
    if a.get("name", "") != b.get("name", ""):
        diff.append("name")
    return sorted(diff)


def sigma_at(epoch: int, epochs: int, sigma0: float, sigma1: float, fraction: float) -> float:
    """Exponential decay sigma0 -> sigma1 over the first ``fraction`` of the epochs."""
    span = max(1.0, fraction * epochs)
    s = min(1.0, epoch / span)
    return float(sigma0 * (sigma1 / sigma0) ** s)


# --------------------------------------------------------------------------------------------
# Small utilities


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def _logger(run_dir: Path) -> logging.Logger:
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


# --------------------------------------------------------------------------------------------
# Models and their update rules


def fit_model_config(cfg: dict[str, Any], n_in: int, n_classes: int | None) -> dict[str, Any]:
    """``cfg['model']`` with ``n_in``, ``n_out`` (and ``dt``, ms) taken from the data where not
    given; ConfigError if the given ones do not fit the data (``n_classes`` None: unknown)."""
    model_cfg = dict(cfg["model"])
    model_cfg.setdefault("n_in", n_in)
    if n_classes is not None:
        model_cfg.setdefault("n_out", n_classes)
    if cfg["method"]["name"] != "dcls":  # the neuron time step follows the data's bin width
        model_cfg.setdefault("dt", float(cfg["data"]["dt"]) * 1000.0)
    if model_cfg["n_in"] != n_in:
        raise ConfigError(f"model.n_in={model_cfg['n_in']} but the data has {n_in} channels")
    if n_classes is not None and model_cfg["n_out"] < n_classes:
        from delayprop.data.registry import class_hint

        raise ConfigError(f"model.n_out={model_cfg['n_out']} but the data has {n_classes} "
                          f"classes ({class_hint(cfg['data']['dataset'])})")
    return model_cfg


def param_groups(net: torch.nn.Module, lr: float, delay_lr: float,
                 weight_decay: float = 0.0) -> list[dict[str, Any]]:
    """Optimiser parameter groups: the weights (``lr``, ``weight_decay``) and, if the net has
    any, the delays (``*_delay`` parameters: ``delay_lr``, no weight decay)."""
    named = list(net.named_parameters())
    groups = [{"params": [p for n, p in named if not n.endswith("_delay")], "lr": lr,
               "weight_decay": weight_decay}]
    delays = [p for n, p in named if n.endswith("_delay")]
    if delays:
        groups.append({"params": delays, "lr": delay_lr, "weight_decay": 0.0})
    return groups


class Model:
    """A network with its learning rule: ``update(x, y) -> (loss, y_out)`` fills ``.grad`` (or
    steps) for one batch; ``output(x)`` is the evaluation forward; ``predict(y)`` the labels."""

    def __init__(self, cfg: dict[str, Any], n_in: int, n_out: int, device: torch.device):
        self.cfg = cfg
        self.method = cfg["method"]["name"]
        self.loss = cfg["method"]["loss"]
        self.model_cfg = model_cfg = fit_model_config(cfg, n_in, n_out)
        if self.method == "dcls":
            from delayprop.baselines.dcls import DCLSConfig, DCLSNet

            self.net: torch.nn.Module = DCLSNet(DCLSConfig(**model_cfg))
        else:
            from delayprop.rules.eprop import EpropConfig

            self.net = DelayNet(NetConfig.from_dict(model_cfg))
            m = cfg["method"]
            self.eprop_cfg = EpropConfig(
                loss=m["loss"], feedback=m["feedback"], reg_rate=float(m["reg_rate"]),
                target_rate=float(m["target_rate"]),
            )
        self.net.to(device)

    # -- optimisation ------------------------------------------------------------------------
    def make_optimizers(self, steps_per_epoch: int) -> tuple[list, list, str]:
        """Optimisers and LR schedulers; the string says when schedulers step ('batch'/'epoch')."""
        t = self.cfg["train"]
        if self.method == "dcls":
            from delayprop.baselines.dcls import make_optimizers

            opts, scheds = make_optimizers(self.net, dict(t), steps_per_epoch, t["epochs"])
            return list(opts), list(scheds), "batch"
        groups = param_groups(self.net, t["lr"], t["delay_lr"], t["weight_decay"])
        kind = t["optimizer"]
        if kind == "adam":
            opt: torch.optim.Optimizer = torch.optim.Adam(groups)
        elif kind == "adamw":
            opt = torch.optim.AdamW(groups)
        else:
            opt = torch.optim.SGD(groups, momentum=0.9)
        scheds = []
        if t["lr_schedule"] == "cosine":
            scheds.append(torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t["epochs"]))
        return [opt], scheds, "epoch"

    def epoch_begin(self, epoch: int, epochs: int) -> float | None:
        """Set the Gaussian width for this epoch; returns it (None if not scheduled)."""
        if self.method == "dcls":
            from delayprop.baselines.dcls import epoch_begin

            return float(epoch_begin(self.net, epoch, epochs))
        t = self.cfg["train"]
        if t["sigma0"] > 0:
            s = sigma_at(epoch, epochs, t["sigma0"], t["sigma1"], t["sigma_decay_fraction"])
            self.net.set_sigma(s)
            return s
        return None

    def drop_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Training-time input dropout (``train.input_dropout`` p): x (B, T, C) times one mask
        per sample and channel, fixed over time, kept channels scaled by 1 / (1 - p) (drawn from
        torch's global generator, which checkpoints save). Every rule then learns from the
        masked input as it is, so e-prop stays exact where it was."""
        p = float(self.cfg["train"]["input_dropout"])
        if p == 0.0:
            return x
        keep = torch.bernoulli(x.new_full((x.shape[0], 1, x.shape[2]), 1.0 - p))
        return x * keep.div_(1.0 - p)

    def update(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
        """Write the updates of one batch into ``.grad``; returns (loss, predicted class per
        sample (B,)). E-prop keeps no output sequence (its memory stays flat in T): the
        prediction comes from its per-sample scores."""
        net = self.net
        x = self.drop_inputs(x)
        if self.method == "eprop":
            from delayprop.rules import eprop_gradients

            with net.dropped_out(x.shape[0]):
                r = eprop_gradients(net, x, y, self.eprop_cfg, set_grad=True,
                                    keep_output=False)
            return r.loss, r.scores.argmax(-1)
        if self.method == "bptt":
            from delayprop.rules import bptt_gradients

            m = self.cfg["method"]
            with net.dropped_out(x.shape[0]):
                r = bptt_gradients(net, x, y, loss=self.loss, reg_rate=float(m["reg_rate"]),
                                   target_rate=float(m["target_rate"]), set_grad=True)
            return r.loss, self.predict(r.y)
        from delayprop.baselines.dcls import dcls_loss

        out = net(x)
        value = dcls_loss(out, y)
        value.backward()
        return float(value.detach()), self.predict(out.detach())

    def clamp(self) -> None:
        self.net.clamp_delays_()

    def train_mode(self) -> None:
        self.net.train()

    def eval_mode(self) -> None:
        self.net.eval()

    @torch.no_grad()
    def output(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def predict(self, y: torch.Tensor) -> torch.Tensor:
        if self.method == "dcls":
            from delayprop.baselines.dcls import dcls_predict

            return dcls_predict(y)
        return predict(y, self.loss)

    def batch_loss(self, y: torch.Tensor, target: torch.Tensor) -> float:
        if self.method == "dcls":
            from delayprop.baselines.dcls import dcls_loss

            return float(dcls_loss(y, target))
        return float(loss_value(y, target, self.loss))

    def count_parameters(self) -> dict[str, int]:
        return dict(self.net.count_parameters())

    def improves(self, epoch: int, epochs: int, val: "EvalResult", best: dict) -> bool:
        """Whether epoch ``epoch`` (0-based) becomes the selected model: higher validation
        accuracy. DCLS follows SNN-delays: no selection before epoch epochs // 4 - 1 (the
        Gaussian widths are still shrinking), ties go to the lower validation loss."""
        if self.method != "dcls":
            return val.accuracy > best["best_val"]
        if epoch < max(epochs // 4 - 1, 0):
            return False
        return (val.accuracy, -val.loss) > (best["best_val"],
                                            -best.get("best_val_loss", math.inf))


# --------------------------------------------------------------------------------------------
# Data


@dataclass
class Splits:
    train: Any  # SpikeTensorDataset
    val: Any
    test: Any | None
    num_classes: int
    class_names: list[str]
    notes: list[str] = field(default_factory=list)  # for the log: files, dropped spikes, split


def load_splits(cfg: dict[str, Any], progress: bool = True, need_test: bool = True) -> Splits:
    """Load the dataset of ``cfg['data']`` (:mod:`delayprop.data.registry`) and hold out the
    validation split from train."""
    from delayprop.data.registry import load_data

    data = load_data(cfg["data"], need_test=need_test, progress=progress)
    splits = split_datasets(cfg, data.train, data.test)
    splits.notes[:0] = data.notes
    return splits


def split_datasets(cfg: dict[str, Any], train: Any, test: Any | None) -> Splits:
    """Validation hold-out (and optional training subset) of already loaded datasets."""
    from delayprop.data import train_val_split

    d = cfg["data"]
    safety.check_labels(train, int(train.num_classes), "training", file_level=True)
    safety.warn_label_holes(train)
    if test is not None:  # before training, not after it
        safety.check_labels(test, int(train.num_classes), "test", file_level=True)
        safety.warn_unseen_test_labels(train, test)
    tr_idx, va_idx = train_val_split(train.y, train.speaker, d["val_fraction"],
                                     seed=d["split_seed"], by_speaker=d["by_speaker"],
                                     val_speakers=d.get("val_speakers") or None)
    if len(va_idx) == 0 or len(tr_idx) == 0:
        raise DataError("the validation split left no training or no validation samples")
    if d["train_subset"] and d["train_subset"] < len(tr_idx):
        g = torch.Generator().manual_seed(int(d["split_seed"]))
        tr_idx = tr_idx[torch.randperm(len(tr_idx), generator=g)[: d["train_subset"]]].sort()[0]
    n_cls = int(train.num_classes)
    names = list(getattr(train, "class_names", [str(i) for i in range(n_cls)]))
    return Splits(train.subset(tr_idx), train.subset(va_idx), test, n_cls, names,
                  [_split_note(d, train, tr_idx, va_idx)])


def _split_note(d: dict[str, Any], train: Any, tr_idx: Any, va_idx: Any) -> str:
    """Which samples the validation split holds, in words (for the log)."""
    if d["by_speaker"] or d.get("val_speakers"):
        held = sorted(int(s) for s in train.speaker[va_idx].unique())
        kept = sorted(int(s) for s in train.speaker[tr_idx].unique())
        return (f"validation: speaker{'s' if len(held) > 1 else ''} "
                f"{', '.join(map(str, held))} held out ({len(va_idx)} samples); training "
                f"speakers {', '.join(map(str, kept))} ({len(tr_idx)} samples)")
    return (f"validation: {len(va_idx)} samples ({100 * d['val_fraction']:g}% of the training "
            f"file, stratified by class, split_seed {d['split_seed']}); training: {len(tr_idx)}")


# --------------------------------------------------------------------------------------------
# Evaluation


@dataclass
class EvalResult:
    accuracy: float
    loss: float
    preds: np.ndarray
    targets: np.ndarray

    def per_class(self, num_classes: int) -> np.ndarray:
        """Accuracy per class (NaN for classes without samples), (num_classes,)."""
        out = np.full(num_classes, np.nan)
        for c in range(num_classes):
            m = self.targets == c
            if m.any():
                out[c] = float((self.preds[m] == c).mean())
        return out

    def confusion(self, num_classes: int) -> np.ndarray:
        """Counts [true, predicted], (num_classes, num_classes)."""
        cm = np.zeros((num_classes, num_classes), dtype=np.int64)
        np.add.at(cm, (self.targets, self.preds), 1)
        return cm

    def per_speaker(self, speakers: Any, seen: Any = ()) -> list[dict[str, Any]]:
        """Accuracy per speaker: ``speakers`` (N,) the id of each evaluated sample (-1: none,
        left out), ``seen`` the ids the model was trained on. One dict per speaker, in id
        order: speaker, n, accuracy, seen."""
        spk = np.asarray(speakers, dtype=np.int64).reshape(-1)
        if spk.shape != self.targets.shape:
            raise DataError(f"{spk.size} speaker ids for {self.targets.size} evaluated samples")
        seen = {int(s) for s in np.asarray(seen).reshape(-1)}
        right = self.preds == self.targets
        return [{"speaker": int(s), "n": int((spk == s).sum()),
                 "accuracy": float(right[spk == s].mean()), "seen": int(s) in seen}
                for s in np.unique(spk[spk >= 0])]


def seen_unseen(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Pool :meth:`EvalResult.per_speaker` rows into the speakers seen in training and the
    others: {"seen"|"unseen": {"n", "accuracy", "speakers"}}, a group only if it has samples."""
    out = {}
    for key, want in (("seen", True), ("unseen", False)):
        group = [r for r in rows if r["seen"] == want]
        n = sum(r["n"] for r in group)
        if n:
            out[key] = {"n": n, "accuracy": sum(r["accuracy"] * r["n"] for r in group) / n,
                        "speakers": [r["speaker"] for r in group]}
    return out


def evaluate(model: Model, ds: Any, batch_size: int = 512, device: str = "cpu") -> EvalResult:
    """Accuracy and mean loss of ``model`` on dataset ``ds`` (evaluation mode, no autograd)."""
    from delayprop.data import batches

    if ds is None:
        raise DataError("no data to evaluate on (this dataset has no test file)")
    model.eval_mode()
    preds, targets, total, n = [], [], 0.0, 0
    with torch.no_grad():
        for xb, yb in batches(ds, batch_size=batch_size, shuffle=False, device=device):
            y = model.output(xb)
            preds.append(model.predict(y).cpu())
            targets.append(yb.cpu())
            total += model.batch_loss(y, yb) * len(yb)
            n += len(yb)
    model.train_mode()
    if n == 0:
        raise DataError("cannot evaluate on an empty dataset")
    p, t = torch.cat(preds).numpy(), torch.cat(targets).numpy()
    return EvalResult(float((p == t).mean()), total / n, p, t)


# --------------------------------------------------------------------------------------------
# Checkpoints


def _checkpoint(model: Model, opts: list, scheds: list, epoch: int, state: dict) -> dict:
    return {
        "format": 1,
        "config": model.cfg,
        "model_config": model.model_cfg,
        "epoch": epoch,  # epochs completed
        "model": model.net.state_dict(),
        "optimizers": [o.state_dict() for o in opts],
        "schedulers": [s.state_dict() for s in scheds],
        "rng": rng_state(),
        **state,
    }


def load_checkpoint(path: str | os.PathLike) -> dict:
    """torch.load a checkpoint written by :func:`train` (CPU tensors), after verifying its
    sha256 (a mismatch is a :class:`~delayprop.errors.CorruptFileError`; a checkpoint written
    before checksums loads with a warning)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such checkpoint")
    try:
        ckpt, verified = torch_load_checked(p, weights_only=False)
    except CorruptFileError:
        raise
    except Exception as exc:  # corrupted or not a checkpoint
        raise ConfigError(f"{p}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if verified is None:
        safety.warn(f"{p} has no checksum (written by an older delayprop); not verified")
    return ckpt


def model_from_checkpoint(ckpt: dict, device: str = "cpu") -> Model:
    """Rebuild the :class:`Model` a checkpoint (``checkpoint.pt`` or ``best.pt``) stores."""
    cfg = ckpt["config"]
    mc = ckpt["model_config"]
    model = Model(cfg, mc["n_in"], mc["n_out"], torch.device(device))
    model.net.load_state_dict(ckpt["model"])
    return model


# --------------------------------------------------------------------------------------------
# The loop


def _write_metrics(run_dir: Path, history: list[dict]) -> None:
    atomic_write_text(run_dir / METRICS, "".join(json.dumps(h) + "\n" for h in history))


def _log_notes(log: logging.Logger, cfg: dict[str, Any], notes: list[str]) -> None:
    """The data notes (files, spikes dropped past max_time, validation split) to train.log
    and stderr."""
    for note in notes:
        log.info("data: %s", note)
        print(f"{cfg.get('name', '')}: data: {note}", file=sys.stderr, flush=True)


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed
        return None
    return SummaryWriter(str(run_dir / "tb"))


def _locked_run_dir(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
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


@_locked_run_dir
def train(
    cfg: dict[str, Any],
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    splits: Splits | None = None,
    progress: bool = True,
    plots: bool = True,
    stop_after: int | None = None,
    on_epoch: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Train according to the resolved configuration ``cfg`` in ``run_dir``.

    ``resume`` continues from ``run_dir/checkpoint.pt`` (and returns ``final.json`` if the run
    had finished). ``splits`` overrides data loading (tests). ``progress`` shows the batch
    progress (a bar on a terminal, else a line every 30 s; one line per epoch goes to stderr
    either way). ``stop_after`` ends the call after
    that many completed epochs without the final test (simulates a killed run). Returns the
    final summary (or ``{'stopped_at': epoch}``). The run directory is created only once the
    data and the model are ready, so a failed start leaves none behind.

    Reliability: the run directory is locked for the call (a second process gets a
    ConfigError) and temporary files of killed writes are removed; labels of all splits are
    checked before training; the data identity is stored in the checkpoint and a resume on
    other data is refused; a non-finite loss, gradient or parameter stops the run with a
    DivergenceError before anything of that epoch is saved.
    """
    from delayprop.data import batches
    from delayprop.progress import progress_bar

    run_dir = Path(run_dir)
    t_cfg = cfg["train"]
    if t_cfg["threads"]:
        torch.set_num_threads(int(t_cfg["threads"]))
    if (run_dir / CHECKPOINT).exists() and not resume:
        raise ConfigError(f"{run_dir} already holds a run; pass --resume to continue it "
                          f"or choose another --run-dir")
    if resume and (run_dir / FINAL).exists():
        return json.loads((run_dir / FINAL).read_text())
    device = torch.device(t_cfg["device"])
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is cuda but no CUDA device is available")

    ckpt = None
    if resume and (run_dir / CHECKPOINT).exists():
        ckpt = load_checkpoint(run_dir / CHECKPOINT)
        diff = config_difference(ckpt["config"], cfg)
        if diff:
            raise ConfigError(f"{run_dir}: --resume with a different configuration "
                              f"({', '.join(diff)})")

    if splits is None:
        splits = load_splits(cfg, progress=progress)
    safety.check_splits(splits)
    data_id = safety.data_identity(splits)
    if ckpt is not None:
        safety.check_same_data(ckpt.get("data"), data_id, str(run_dir))
    n_in = splits.train.channels
    seed = int(t_cfg["seed"])
    seed_everything(seed)
    model = Model(cfg, n_in, splits.num_classes, device)
    epochs, bs = t_cfg["epochs"], t_cfg["batch_size"]
    steps = math.ceil(len(splits.train) / bs)
    opts, scheds, sched_when = model.make_optimizers(steps)
    average = WeightAverage(model.net, t_cfg["ema"]) if t_cfg["ema"] else None
    history: list[dict] = []
    best = {"best_val": -1.0, "best_epoch": 0, "best_val_loss": math.inf}
    start = 0
    wall_before = 0.0
    params = model.count_parameters()
    run_dir.mkdir(parents=True, exist_ok=True)
    log = _logger(run_dir)
    safety.quiet_log_errors(log)
    if ckpt is not None:
        model.net.load_state_dict(ckpt["model"])
        for o, s in zip(opts, ckpt["optimizers"]):
            o.load_state_dict(s)
        for s, st in zip(scheds, ckpt["schedulers"]):
            s.load_state_dict(st)
        set_rng_state(ckpt["rng"])
        if average is not None:
            average.load_state_dict(ckpt["ema"])
        history = list(ckpt["history"])
        best = {"best_val": ckpt["best_val"], "best_epoch": ckpt["best_epoch"],
                "best_val_loss": ckpt.get("best_val_loss", math.inf)}
        start = int(ckpt["epoch"])
        wall_before = float(ckpt.get("wall_s", 0.0))
        log.info("resumed at epoch %d from %s", start, run_dir / CHECKPOINT)
    guard = safety.TrainingGuard(model.net, log=log.info)
    guard.check_initial()  # e.g. an initial weight scale that overflows
    if ckpt is None:
        atomic_write_text(run_dir / CONFIG, json.dumps(cfg, indent=2, sort_keys=True) + "\n")
        atomic_torch_save({"config": cfg, "model_config": model.model_cfg,
                           "model": model.net.state_dict(), "epoch": 0, "data": data_id},
                          run_dir / INIT)
        log.info("config %s", json.dumps(cfg, sort_keys=True))
        log.info("data: train %d, val %d, test %s; params %s", len(splits.train),
                 len(splits.val), len(splits.test) if splits.test is not None else "-", params)
    _log_notes(log, cfg, splits.notes)
    _write_metrics(run_dir, history)  # drop lines of epochs the checkpoint does not have
    tb = _tensorboard(run_dir)
    t_start = time.time()
    augment = augment_of(cfg["data"])

    for epoch in range(start, epochs):
        t0 = time.time()
        sigma = model.epoch_begin(epoch, epochs)
        model.train_mode()
        tot_loss, correct, seen = 0.0, 0, 0
        bar = progress_bar(batches(splits.train, batch_size=bs, shuffle=True,
                                   seed=seed * 100003 + epoch, device=device, augment=augment),
                           total=steps, desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                           enabled=progress)
        for batch, (xb, yb) in enumerate(bar, 1):
            for o in opts:
                o.zero_grad(set_to_none=True)
            loss, pred = model.update(xb, yb)
            guard.check_update(loss, epoch + 1, batch)  # loss and gradients finite
            for o in opts:
                o.step()
            if sched_when == "batch":
                for s in scheds:
                    s.step()
            model.clamp()
            guard.check_step(epoch + 1, batch)  # parameters finite
            if average is not None:
                average.update()
            tot_loss += loss * len(yb)
            correct += int((pred.cpu() == yb.cpu()).sum())
            seen += len(yb)
            bar.set_postfix(loss=f"{tot_loss / seen:.3g}", acc=f"{correct / seen:.3f}")
        bar.close()
        if sched_when == "epoch":
            for s in scheds:
                s.step()
        raw_val = None
        if average is not None:  # an extra evaluation: it must not move the global generator
            with torch.random.fork_rng(devices=[]):  # (dropout masks are drawn from it)
                raw_val = evaluate(model, splits.val, t_cfg["eval_batch_size"],
                                   device=str(device))
        with average.swapped() if average is not None else contextlib.nullcontext():
            val = evaluate(model, splits.val, t_cfg["eval_batch_size"], device=str(device))
            improved = model.improves(epoch, epochs, val, best)
            # the selected parameters (the average, if any), copied: the swap-back overwrites
            selected = ({k: v.clone() for k, v in model.net.state_dict().items()}
                        if improved else None)
        row = {
            "epoch": epoch + 1,
            "train_loss": tot_loss / seen,
            "train_acc": correct / seen,
            "val_loss": val.loss,
            "val_acc": val.accuracy,
            "lr": opts[0].param_groups[0]["lr"],
            "sigma": sigma,
            "epoch_s": time.time() - t0,
        }
        if raw_val is not None:
            row.update(val_loss_raw=raw_val.loss, val_acc_raw=raw_val.accuracy)
        history.append(row)
        guard.check_model(epoch + 1)  # never save a non-finite model
        if not math.isfinite(val.loss):
            safety.warn(f"epoch {epoch + 1}: the validation loss is {val.loss}")
        if improved:
            best = {"best_val": val.accuracy, "best_epoch": epoch + 1,
                    "best_val_loss": val.loss}
            atomic_torch_save({"config": cfg, "model_config": model.model_cfg,
                               "model": selected, "epoch": epoch + 1,
                               "data": data_id}, run_dir / BEST)
        wall = wall_before + time.time() - t_start
        extra = {"ema": average.state_dict()} if average is not None else {}
        atomic_torch_save(_checkpoint(model, opts, scheds, epoch + 1,
                                      {"history": history, "wall_s": wall, "data": data_id,
                                       **best, **extra}),
                          run_dir / CHECKPOINT)
        _write_metrics(run_dir, history)
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
    wall = wall_before + time.time() - t_start

    # final: the test split, once, on the best-validation model
    best_ckpt = load_checkpoint(run_dir / BEST)
    model.net.load_state_dict(best_ckpt["model"])
    final: dict[str, Any] = {
        "name": cfg.get("name", ""),
        "method": cfg["method"]["name"],
        "params": params,
        "epochs": epochs,
        "best_epoch": best["best_epoch"],
        "val_acc": best["best_val"],
        "wall_s": round(wall, 1),
    }
    if splits.test is not None:
        test = evaluate(model, splits.test, t_cfg["eval_batch_size"], device=str(device))
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
        from delayprop import plots as plotting

        try:
            plotting.plot_run(run_dir, model=model, splits=splits,
                              confusion=np.load(run_dir / "test_confusion.npy")
                              if splits.test is not None else None)
        except Exception as exc:  # a plot must never lose a finished run
            log.info("plots failed: %s: %s", type(exc).__name__, exc)
            print(f"delayprop: warning: plots failed ({exc})", file=sys.stderr)
    atomic_write_text(run_dir / FINAL, json.dumps(final, indent=2) + "\n")
    log.info("final %s", json.dumps(final))
    return final


