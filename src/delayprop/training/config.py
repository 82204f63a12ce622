"""The configuration of a run: its options, their defaults and meaning, reading, resolving and
checking them.

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

:func:`resolve_config` layers the built-in :data:`DEFAULTS`, the dataset's preset
(:func:`delayprop.data.registry.preset`), the file (:func:`load_config`) and the overrides,
and checks the result (:func:`check_config`; the [model] section is checked by the method that
will build the network, :meth:`delayprop.training.methods.Method.check_model`).
:data:`OPTION_DOCS` says what each [method], [train] and [data] option means (``delayprop train
--help`` shows it). :func:`config_difference` compares two resolved configurations, ignoring the
:data:`RUNTIME_OPTIONS` that do not change results.
"""

from __future__ import annotations

import copy
import math
import os
import sys
from pathlib import Path
from typing import Any

from delayprop.data.batching import Augment
from delayprop.data.registry import check_data_config, preset
from delayprop.errors import ConfigError
from delayprop.losses import LOSSES
from delayprop.training.methods import METHOD_CLASSES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: The learning methods ``[method] name`` may name (:mod:`delayprop.training.methods`).
METHODS = tuple(METHOD_CLASSES)

#: The sections of a configuration (a file may also set a top-level ``name``).
SECTIONS = ("model", "method", "train", "data")

#: The built-in default of every [method], [train] and [data] option.
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
        "threads": 0,  # 0: 1 for a small network, else torch's default (delayprop.threads)
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
        "threads": "torch CPU threads (0: 1 for a small network, else torch's default)",
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


def load_config(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Read a TOML configuration file into a nested dict (sections as in the module doc)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such configuration file")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start}); TOML files must be "
                          "UTF-8") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML ({exc})") from None
    unknown = sorted(k for k in raw if k not in SECTIONS and k != "name")
    if unknown:
        raise ConfigError(f"{p}: unknown section(s) {', '.join(unknown)}; expected {SECTIONS}")
    return raw


def resolve_config(
    raw: dict[str, Any] | None = None, overrides: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Defaults <- the dataset's preset <- file <- overrides, checked. Returns a new nested
    dict (JSON-serialisable)."""
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
    dataset, method = DEFAULTS["data"]["dataset"], DEFAULTS["method"]["name"]
    for src in sources:
        d, m = src.get("data"), src.get("method")
        if isinstance(d, dict) and d.get("dataset") is not None:
            dataset = d["dataset"]
        if isinstance(m, dict) and m.get("name") is not None:
            method = m["name"]
    return preset(dataset, method)


#: The largest learning rate (or weight decay, width, rate) accepted: 1e30 keeps every rate
#: derived from it (DCLS: 100 x lr for the positions, a 5 x lr peak) inside float32's range
#: (3.4e38), where torch's optimisers would fail with an overflow; a run with such a rate
#: diverges and stops with a DivergenceError instead.
LARGEST = 1e30

#: Options and what they take: "int>=0", "int>=1", "bool", "num>=0", "rate" (num in [0, 1)),
#: "fraction" (num in (0, 1)), or a tuple of the allowed strings. The rest are checked below.
KINDS: dict[str, dict[str, Any]] = {
    "method": {"name": METHODS, "loss": LOSSES, "feedback": ("symmetric", "random"),
               "reg_rate": "num>=0", "target_rate": "num>=0"},
    "train": {"epochs": "int>=1", "batch_size": "int>=1", "eval_batch_size": "int>=1",
              "optimizer": ("adam", "adamw", "sgd"), "lr": "num>=0", "delay_lr": "num>=0",
              "weight_decay": "num>=0", "input_dropout": "rate", "ema": "rate",
              "lr_schedule": ("none", "cosine"), "sigma0": "num>=0", "sigma1": "num>=0",
              "sigma_decay_fraction": "(0,1]", "seed": "int>=0", "threads": "int>=0"},
    "data": {"binary": "bool", "val_fraction": "fraction", "by_speaker": "bool",
             "split_seed": "int>=0", "train_subset": "int>=0", "channel_shift": "int>=0",
             "time_jitter": "num>=0", "time_shift": "int>=0", "download": "bool",
             "dt": "num>0", "max_time": "num>0", "channels": "int>=1"},
}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_option(sec: str, key: str, v: Any) -> None:
    """ConfigError (naming ``sec.key`` and the value) if ``v`` is not what the option takes
    (:data:`KINDS`)."""
    kind = KINDS.get(sec, {}).get(key)
    name = f"{sec}.{key}"
    if key in ("channel_shift", "time_jitter", "time_shift"):
        name = f"data augmentation: {name}"
    if kind is None:
        return
    if isinstance(kind, tuple):
        if not isinstance(v, str) or v not in kind:
            raise ConfigError(f"{name} must be one of {', '.join(kind)}, got {v!r}")
    elif kind == "bool":
        if not isinstance(v, bool):
            raise ConfigError(f"{name} must be true or false, got {v!r}")
    elif kind.startswith("int"):
        low = int(kind[-1])
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            what = "a positive integer" if low else "an integer >= 0"
            raise ConfigError(f"{name} must be {what}, got {v!r}")
        if v >= 2**63:
            raise ConfigError(f"{name} is too large: {v}")
    else:
        lo, hi, lo_open, hi_open = {"num>=0": (0, LARGEST, False, False),
                                    "num>0": (0, LARGEST, True, False),
                                    "rate": (0, 1, False, True), "fraction": (0, 1, True, True),
                                    "(0,1]": (0, 1, True, False)}[kind]
        ok = _is_number(v) and math.isfinite(v) and (lo < v if lo_open else lo <= v) and (
            v < hi if hi_open else v <= hi)
        if not ok:
            rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
            raise ConfigError(f"{name} must be a number in {rng}, got {v!r}")


def check_config(cfg: dict[str, Any]) -> None:
    """Raise ConfigError on an invalid resolved configuration (the error names the option)."""
    m, t, d = cfg["method"], cfg["train"], cfg["data"]
    if not isinstance(cfg.get("name", ""), str):
        raise ConfigError(f"name must be a string, got {cfg['name']!r}")
    for sec in ("method", "train", "data"):
        for k, v in cfg[sec].items():
            if d.get("dataset") == "timing" and sec == "data" and k == "channels":
                continue  # the timing task's own rule (check_data_config)
            check_option(sec, k, v)
    METHOD_CLASSES[m["name"]].check_model(cfg["model"], m["loss"])
    if not isinstance(t["device"], str) or not t["device"]:
        raise ConfigError(f"train.device must be a device name (cpu, cuda, ...), "
                          f"got {t['device']!r}")
    for k in ("dataset", "data_dir"):
        if not isinstance(d[k], str):
            raise ConfigError(f"data.{k} must be a string, got {d[k]!r}")
    if (t["sigma0"] > 0) != (t["sigma1"] > 0):
        raise ConfigError("train.sigma0 and train.sigma1 must both be > 0 (schedule) or both 0")
    vs = d["val_speakers"]
    if not isinstance(vs, list) or any(isinstance(v, bool) or not isinstance(v, int) or v < 0
                                       for v in vs):
        raise ConfigError(f"data.val_speakers must be a list of speaker ids (integers >= 0), "
                          f"got {vs!r}")
    augment_of(d)  # validates the augmentation options
    check_data_config(d)


def augment_of(d: dict[str, Any]) -> Augment | None:
    """The training-batch augmentation of a [data] section, or None when it is off."""
    try:
        aug = Augment(channel_shift=d["channel_shift"], time_jitter=float(d["time_jitter"]),
                      time_shift=d["time_shift"])
    except (TypeError, ValueError) as e:
        raise ConfigError(f"data augmentation: {e}") from None
    return aug if aug.active else None


#: Options that do not change the results (where and how fast a run computes).
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
