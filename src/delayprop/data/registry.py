"""The datasets ``[data] dataset`` may name, how each loads, and its shape before loading.

* ``shd`` / ``ssc``: the Spiking Heidelberg Digits (always 20 classes) / Spiking Speech
  Commands (35), files ``<name>_<split>.h5[.gz|.zip]`` in the data directory; missing files
  are downloaded (md5-checked, with a progress report) unless ``download = false``.
* ``h5``: your own SHD-format files in the data directory: one ``*train.h5`` and (optional)
  one ``*test.h5`` (``.gz`` / ``.zip`` too). The classes come from the files (``extra/keys``,
  else the largest label + 1; the larger of the two files).
* a path: an SHD-format training file (its test file is the same name with ``train`` ->
  ``test``, if present) or a folder of files (as ``h5``).
* ``timing``: the synthetic timing task of :mod:`delayprop.data.synthetic`, built in (no
  files): ``channels`` = A, B and ``channels - 2`` noise channels, ``max_time / dt`` steps,
  2000 training and 1000 test samples, 4 classes. It brings its own defaults
  (:data:`PRESETS`: a small network with short membranes, 10 epochs), which a configuration
  file or flags override.

:func:`load_data` returns the training and test sets and one line per notable fact (files,
samples, spikes dropped past ``max_time``) for the training log.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from delayprop.errors import ConfigError, DataError
from delayprop.progress import is_terminal

from .cache import load_file
from .files import (
    EXTENSIONS,
    NUM_CLASSES,
    file_name,
    find_file,
    matching_test_file,
    names_split,
    packed_files,
    split_files,
    strip_extension,
)
from .paths import resolve_data_dir
from .reader import check_settings, num_steps_for, open_h5, read_raw
from .remote import base_url_default
from .remote import download as fetch
from .shd import load_dataset
from .synthetic import timing_task
from .tensors import SpikeTensorDataset

#: Named datasets and what they are (``--dataset`` also takes a path).
DATASETS: Dict[str, str] = {
    "shd": "Spiking Heidelberg Digits, 20 classes (downloaded if missing)",
    "ssc": "Spiking Speech Commands, 35 classes (downloaded if missing)",
    "h5": "SHD-format files in the data directory (*train.h5, *test.h5); classes from the files",
    "timing": "the built-in synthetic timing task (no files), 4 classes",
}
#: Datasets with a fixed number of classes (files with fewer labels are padded to it).
FIXED_CLASSES = NUM_CLASSES

TIMING_OFFSETS = (-6, -3, 3, 6)
TIMING_SAMPLES = {"train": 2000, "test": 1000}
TIMING_SEEDS = {"train": 0, "test": 1}

#: Defaults a dataset brings along (between the built-in defaults and the configuration file).
#: The timing task: tau_m = 5 ms at 10 ms steps forgets a spike within a step or two, so only
#: delays can line up the two timed spikes (README, "Delays matter").
PRESETS: Dict[str, Dict[str, Dict[str, Any]]] = {
    "timing": {
        "model": {"n_hidden": [64], "max_delay": 8, "sigma": 1.5, "tau_m": 5.0,
                  "weight_scale": 4.0, "kappa": 0.8},
        "method": {"loss": "sum"},
        "train": {"epochs": 10, "batch_size": 64, "lr": 0.01, "delay_lr": 2.0, "threads": 1},
        "data": {"dt": 0.01, "max_time": 0.4, "channels": 10},
    },
}


def kind_of(dataset: Any) -> str:
    """``"shd"``, ``"ssc"``, ``"h5"``, ``"timing"`` or ``"path"``; ConfigError otherwise."""
    if not isinstance(dataset, str) or not dataset.strip():
        raise ConfigError(f"data.dataset must be a name or a path, got {dataset!r}")
    name = dataset.strip()
    if name.lower() in DATASETS:
        return name.lower()
    looks_like_path = ("/" in name or os.sep in name or name.startswith(("~", "."))
                       or name.lower().endswith(EXTENSIONS))
    if looks_like_path or Path(name).expanduser().exists():
        return "path"
    raise ConfigError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)} "
                      "or give the path of an SHD-format file")


def dataset_label(dataset: str) -> str:
    """A short name for folders and tables: the dataset's name, or for a path its file name
    without ``_train`` and extension (``digits_train.h5.gz`` -> ``digits``)."""
    kind = kind_of(dataset)
    if kind != "path":
        return kind
    p = Path(dataset).expanduser()
    stem = strip_extension(p.name) if not p.is_dir() else p.name
    if names_split(stem, "train"):
        stem = stem[: -len("train")].rstrip("_-.") or p.parent.name  # train.h5: its folder
    return stem or "data"


def preset(dataset: Any, method: str = "eprop") -> Dict[str, Dict[str, Any]]:
    """The defaults dataset ``dataset`` brings (its model defaults only for DelayNet methods)."""
    try:
        kind = kind_of(dataset)
    except ConfigError:
        return {}  # check_data_config reports it
    out = {sec: dict(v) for sec, v in PRESETS.get(kind, {}).items()}
    if method == "dcls":
        out.pop("model", None)
    return out


def check_data_config(d: Dict[str, Any]) -> None:
    """Raise ConfigError on a [data] section that cannot load (name, dt, max_time, channels)."""
    kind = kind_of(d["dataset"])
    if not isinstance(d.get("download", True), bool):
        raise ConfigError(f"data.download must be true or false, got {d['download']!r}")
    if kind == "timing":
        _timing_steps(d)
    else:
        check_settings(d["dt"], d["max_time"], d["channels"])


def _timing_steps(d: Dict[str, Any]) -> int:
    dt, max_time, channels = d["dt"], d["max_time"], d["channels"]
    for k, v in (("dt", dt), ("max_time", max_time)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not (
                math.isfinite(v) and v > 0):
            raise ConfigError(f"data.{k} must be a positive number of seconds, got {v!r}")
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 2:
        raise ConfigError(f"the timing task needs data.channels >= 2 (A, B and noise), "
                          f"got {channels!r}")
    steps = num_steps_for(dt, max_time)
    span = max(TIMING_OFFSETS) - min(TIMING_OFFSETS)
    if steps <= span + 1:
        raise ConfigError(f"the timing task needs more than {span + 1} steps "
                          f"(max_time / dt), got {steps}")
    return steps


def data_files(d: Dict[str, Any]) -> Tuple[Path, Optional[Path]]:
    """(training file, test file or None) of an ``h5`` or path dataset
    (:mod:`delayprop.data.files` says which files those are)."""
    kind = kind_of(d["dataset"])
    if kind == "path":
        p = Path(d["dataset"]).expanduser()
        if p.is_file():
            return p, matching_test_file(p)
        if not p.is_dir():
            raise DataError(f"{p}: no such file or folder")
        return split_files(p)
    if kind == "h5":
        return split_files(resolve_data_dir(d.get("data_dir") or None))
    raise ConfigError(f"dataset {kind!r} has no files of its own choosing")


@dataclass(frozen=True)
class DataShape:
    """What a model needs to know of the data before loading it."""

    channels: int
    num_classes: Optional[int]  # None: only the files can tell (not inspected)
    steps: int


def data_shape(d: Dict[str, Any], inspect_files: bool = True) -> DataShape:
    """Input channels, classes and time steps of the [data] section ``d``. Named datasets
    know theirs; for ``h5`` and paths the files' labels are read (not the spikes) when
    ``inspect_files``."""
    kind = kind_of(d["dataset"])
    steps = num_steps_for(d["dt"], d["max_time"])
    if kind in FIXED_CLASSES:
        return DataShape(int(d["channels"]), FIXED_CLASSES[kind], steps)
    if kind == "timing":
        return DataShape(int(d["channels"]), len(TIMING_OFFSETS), steps)
    if not inspect_files:
        return DataShape(int(d["channels"]), None, steps)
    classes = 0
    for path in data_files(d):
        if path is not None:
            with open_h5(path) as f:
                classes = max(classes, read_raw(f, path).num_classes)
    return DataShape(int(d["channels"]), classes, steps)


def class_hint(dataset: str) -> str:
    """Where the number of classes of ``dataset`` comes from (for error messages)."""
    kind = kind_of(dataset)
    if kind in FIXED_CLASSES:
        return (f"dataset {kind!r} always has {FIXED_CLASSES[kind]} classes; for SHD-format "
                "files with another number of classes use --dataset h5 (classes from the files)")
    if kind == "timing":
        return f"the timing task has one class per offset {TIMING_OFFSETS}"
    return "classes from the files: their extra/keys, else the largest label + 1"


# --------------------------------------------------------------------------------------------
# Loading


@dataclass
class LoadedData:
    train: SpikeTensorDataset
    test: Optional[SpikeTensorDataset]
    notes: List[str] = field(default_factory=list)


def _say(msg: str) -> None:
    print(f"delayprop: {msg}", file=sys.stderr, flush=True)


def _pad_classes(ds: SpikeTensorDataset, k: int) -> None:
    if ds.num_classes < k:
        ds.num_classes = k
        ds.class_names = list(ds.class_names) + [str(i) for i in range(len(ds.class_names), k)]


def _file_notes(split: str, ds: SpikeTensorDataset) -> List[str]:
    how = "from the cache" if ds.from_cache else "parsed"
    notes = [f"{split}: {ds.source}, {len(ds)} samples, {ds.num_classes} classes, "
             f"x {tuple(ds.x.shape)} ({how})"]
    if ds.dropped_spikes:
        total = ds.meta.get("spikes")
        share = f" ({100.0 * ds.dropped_spikes / total:.2f}% of {total})" if total else ""
        notes.append(f"{split}: {ds.dropped_spikes} spikes at t >= {ds.max_time:g} s dropped"
                     f"{share}; a larger data.max_time keeps them")
    return notes


def ensure_files(name: str, data_dir: Any, splits: List[str], download: bool,
                 progress: bool = True) -> None:
    """Download the missing ``splits`` of ``shd`` / ``ssc`` into ``data_dir`` (md5-checked)
    when ``download``; else, or when that fails, a one-line DataError."""
    ddir = resolve_data_dir(data_dir)
    # packed splits (`delayprop data pack`) count as present; load_dataset checks their settings
    missing = [s for s in splits
               if find_file(name, s, ddir) is None and not packed_files(name, s, ddir)]
    if not missing:
        return
    files = ", ".join(file_name(name, s) for s in missing)
    if not download:
        raise DataError(f"{ddir}: {files} missing; run `delayprop data download {name} "
                        f"--data-dir {ddir}` or allow downloads (--download)")
    _say(f"{files} not in {ddir}; downloading from {base_url_default()}")
    new_dirs = [p for p in [ddir, *ddir.parents] if not p.exists()]  # innermost first
    try:
        fetch(name, data_dir=ddir, splits=missing, progress=progress)
    except DataError as exc:
        for p in new_dirs:  # leave no empty data directory behind
            with contextlib.suppress(OSError):
                p.rmdir()
        raise DataError(f"{exc}. Put {files} into {ddir} yourself (or point --data-dir at "
                        "them), or try the built-in task: delayprop train --dataset timing"
                        ) from None


def load_data(d: Dict[str, Any], need_test: bool = True, progress: bool = True) -> LoadedData:
    """Load the training (and test) set of the [data] section ``d``; see the module doc."""
    kind = kind_of(d["dataset"])
    splits = ["train", "test"] if need_test else ["train"]
    if kind == "timing":
        return _load_timing(d, splits)
    bars = progress and is_terminal()  # plain lines instead of bars when not on a terminal
    opts = dict(dt=d["dt"], max_time=d["max_time"], channels=d["channels"],
                binary=bool(d["binary"]), progress=bars)
    out: Dict[str, Any] = {}
    if kind in FIXED_CLASSES:
        ensure_files(kind, d.get("data_dir") or None, splits, d.get("download", True), progress)
        for s in splits:
            if progress and not bars:
                _say(f"loading {kind} {s} ...")
            out[s] = load_dataset(kind, s, data_dir=d.get("data_dir") or None, **opts)
        notes: List[str] = []
    else:
        train_path, test_path = data_files(d)
        notes = []
        paths = {"train": train_path, "test": test_path if need_test else None}
        if need_test and test_path is None:
            notes.append(f"no test file next to {train_path}; the final test is skipped")
        for s, p in paths.items():
            if p is None:
                continue
            if progress and not bars:
                _say(f"loading {p} ...")
            out[s] = load_file(p, **opts)
        k = max(ds.num_classes for ds in out.values())
        for ds in out.values():
            _pad_classes(ds, k)
    for s, ds in out.items():
        notes += _file_notes(s, ds)
    return LoadedData(out["train"], out.get("test"), notes)


def _load_timing(d: Dict[str, Any], splits: List[str]) -> LoadedData:
    steps = _timing_steps(d)
    out, notes = {}, []
    for s in splits:
        t0 = time.perf_counter()
        ds = timing_task(TIMING_SAMPLES[s], offsets=TIMING_OFFSETS, steps=steps,
                         noise_channels=int(d["channels"]) - 2, seed=TIMING_SEEDS[s])
        ds.dt, ds.max_time = float(d["dt"]), float(d["max_time"])
        if d.get("binary"):
            ds.binary = True  # one spike per channel and step already
        out[s] = ds
        notes.append(f"{s}: {ds.source}, {len(ds)} samples, {ds.num_classes} classes "
                     f"(offsets B-A {', '.join(f'{o:+d}' for o in TIMING_OFFSETS)} steps), "
                     f"x {tuple(ds.x.shape)}, {time.perf_counter() - t0:.2f} s")
    return LoadedData(out["train"], out.get("test"), notes)


__all__ = [
    "DATASETS", "DataShape", "FIXED_CLASSES", "LoadedData", "PRESETS", "check_data_config",
    "class_hint", "data_files", "data_shape", "dataset_label", "ensure_files", "kind_of",
    "load_data", "preset",
]
