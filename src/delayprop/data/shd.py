"""SHD / SSC as dense spike-count tensors: binning, channel pooling, on-disk cache.

``load_file(path)`` reads any SHD-format file (``.h5``, ``.h5.gz``, ``.h5.zip``);
``load_dataset("shd", "train", data_dir=D)`` finds ``shd_train.h5[.gz|.zip]`` in ``D``
(downloading it on request). The dense tensors are cached in ``cache_dir`` (default
``<data_dir>/cache``, or the default cache directory when the data directory is read-only)
under a key of the file's identity and the preprocessing settings, so the second load reads one
tensor file and never opens HDF5.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from delayprop.errors import ConfigError, CorruptFileError, DataError
from delayprop.fileio import atomic_torch_save, remove_stale_temps, torch_load_checked

from .paths import PathLike, pick_cache_dir, resolve_data_dir
from .reader import NUM_UNITS, bin_spikes, iter_chunks, one_line, open_h5, read_raw

#: Bump when the cached tensors' meaning changes; part of the cache key.
CACHE_FORMAT_VERSION = 1

#: Splits per dataset and their file stems.
SPLITS: Dict[str, Sequence[str]] = {"shd": ("train", "test"), "ssc": ("train", "valid", "test")}
NUM_CLASSES = {"shd": 20, "ssc": 35}
_EXTENSIONS = (".h5", ".h5.gz", ".h5.zip")
# Memory of one binning block: n * T * C int64 counts of at most this many bytes.
_BLOCK_BYTES = 64 << 20

Indices = Union[torch.Tensor, np.ndarray, Sequence[int], slice]


@dataclass
class SpikeTensorDataset:
    """Binned spike trains of one file.

    ``x`` uint8 (N, T, C) spike counts per step and channel (clipped to 1 if ``binary``,
    saturating at 255); ``y`` int64 (N,) class; ``speaker`` int64 (N,) speaker id or -1.
    """

    x: torch.Tensor
    y: torch.Tensor
    speaker: torch.Tensor
    dt: float
    num_classes: int
    class_names: List[str]
    source: str
    max_time: float = float("nan")
    binary: bool = False
    dropped_spikes: int = 0  # spikes at t >= max_time, not in x
    cache_path: Optional[str] = None
    from_cache: bool = False
    meta: Dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int):
        """``(x[i], y[i])``: uint8 (T, C) and an int64 scalar (so it works with a DataLoader)."""
        return self.x[i], self.y[i]

    @property
    def num_steps(self) -> int:
        """T, the number of time steps."""
        return int(self.x.shape[1])

    @property
    def channels(self) -> int:
        """C, the number of input channels."""
        return int(self.x.shape[2])

    def subset(self, indices: Indices) -> "SpikeTensorDataset":
        """The samples at ``indices`` (index tensor/array/list, boolean mask or slice)."""
        if not isinstance(indices, slice):
            idx = torch.as_tensor(np.asarray(indices))
            if idx.dtype != torch.bool:
                idx = idx.long()
            indices = idx
        return replace(
            self, x=self.x[indices], y=self.y[indices], speaker=self.speaker[indices],
            cache_path=None, from_cache=False, meta=dict(self.meta),
        )

    def __repr__(self) -> str:
        return (
            f"SpikeTensorDataset(N={len(self)}, T={self.num_steps}, C={self.channels}, "
            f"dt={self.dt}, classes={self.num_classes}, binary={self.binary}, "
            f"source={self.source!r})"
        )


def num_steps_for(dt: float, max_time: float) -> int:
    """T = ceil(max_time / dt), tolerant of decimal rounding (1.4 / 0.01 -> 140)."""
    return max(1, int(math.ceil(max_time / dt - 1e-9)))


def check_settings(dt: float, max_time: float, channels: int) -> int:
    """Validate the preprocessing settings; returns T. Raises ConfigError."""
    try:
        dt, max_time = float(dt), float(max_time)
    except (TypeError, ValueError):
        raise ConfigError(f"dt and max_time must be numbers, got {dt!r}, {max_time!r}") from None
    if not (math.isfinite(dt) and dt > 0):
        raise ConfigError(f"dt must be a positive number of seconds, got {dt}")
    if not (math.isfinite(max_time) and max_time > 0):
        raise ConfigError(f"max_time must be a positive number of seconds, got {max_time}")
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)):
        raise ConfigError(f"channels must be an integer, got {channels!r}")
    if not (1 <= channels <= NUM_UNITS) or NUM_UNITS % channels:
        raise ConfigError(
            f"channels must divide {NUM_UNITS} (e.g. 700, 350, 140, 100, 70), got {channels}"
        )
    steps = num_steps_for(dt, max_time)
    if steps > 100_000:
        raise ConfigError(f"max_time / dt = {steps} time steps is too many")
    return steps


def _stem(path: Path) -> str:
    name = path.name
    for ext in (".gz", ".zip", ".h5", ".hdf5"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
    return name or "data"


def cache_key(path: PathLike, dt: float, max_time: float, channels: int, binary: bool) -> str:
    """Hash of the file's identity (name, size, mtime) and the preprocessing settings."""
    st = Path(path).stat()
    ident = {
        "name": Path(path).name, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
        "dt": float(dt), "max_time": float(max_time), "channels": int(channels),
        "binary": bool(binary), "version": CACHE_FORMAT_VERSION,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def cache_file_name(
    path: PathLike, dt: float, max_time: float, channels: int, binary: bool
) -> str:
    """A readable, unique cache file name, e.g. ``shd_train-dt10ms-T140-C140-<key>.pt``."""
    steps = num_steps_for(dt, max_time)
    tag = f"dt{float(dt) * 1000:g}ms-T{steps}-C{channels}" + ("-bin" if binary else "")
    return f"{_stem(Path(path))}-{tag}-{cache_key(path, dt, max_time, channels, binary)}.pt"


def _warn(msg: str) -> None:
    print(f"delayprop: warning: {msg}", file=sys.stderr)


def _to_payload(ds: SpikeTensorDataset, channels: int) -> Dict[str, Any]:
    return {
        "format_version": CACHE_FORMAT_VERSION,
        "x": ds.x, "y": ds.y, "speaker": ds.speaker,
        "dt": float(ds.dt), "max_time": float(ds.max_time), "channels": int(channels),
        "binary": bool(ds.binary), "num_classes": int(ds.num_classes),
        "class_names": list(ds.class_names), "source": ds.source,
        "dropped_spikes": int(ds.dropped_spikes),
        "meta": {k: v for k, v in ds.meta.items() if isinstance(v, (int, float, str, bool))},
    }


def _from_cache(
    cache_path: Path, dt: float, max_time: float, channels: int, binary: bool, source: str
) -> Optional[SpikeTensorDataset]:
    """The cached dataset, or None (with a warning) if the cache file is unreadable, corrupt
    (its sha256 does not match), has no checksum, or is stale."""
    try:
        obj, verified = torch_load_checked(cache_path, weights_only=True)
        if verified is None:
            _warn(f"ignoring unreadable cache file {cache_path} (no checksum: corrupt or written "
                  "by an older delayprop); rebuilding it")
            return None
        ok = (
            isinstance(obj, dict)
            and obj.get("format_version") == CACHE_FORMAT_VERSION
            and obj["channels"] == channels
            and obj["binary"] == binary
            and abs(obj["dt"] - dt) < 1e-12
            and abs(obj["max_time"] - max_time) < 1e-12
            and obj["x"].dtype == torch.uint8
            and obj["x"].shape[1:] == (num_steps_for(dt, max_time), channels)
            and obj["y"].shape == obj["speaker"].shape == obj["x"].shape[:1]
        )
    except CorruptFileError:
        _warn(f"ignoring corrupt cache file {cache_path} (checksum mismatch); rebuilding it")
        return None
    except Exception as exc:
        _warn(f"ignoring unreadable cache file {cache_path} ({one_line(exc)}); rebuilding it")
        return None
    if not ok:
        _warn(f"ignoring cache file {cache_path} with unexpected contents; rebuilding it")
        return None
    return SpikeTensorDataset(
        x=obj["x"], y=obj["y"], speaker=obj["speaker"], dt=obj["dt"],
        num_classes=obj["num_classes"], class_names=list(obj["class_names"]), source=source,
        max_time=obj["max_time"], binary=obj["binary"], dropped_spikes=obj["dropped_spikes"],
        cache_path=str(cache_path), from_cache=True, meta=dict(obj.get("meta", {})),
    )


def parse_file(
    path: PathLike,
    dt: float = 0.01,
    max_time: float = 1.4,
    channels: int = 140,
    binary: bool = False,
    progress: bool = True,
) -> SpikeTensorDataset:
    """Read, check and bin an SHD-format file (no cache). x is uint8 (N, T, channels)."""
    from tqdm.auto import tqdm

    path = Path(path)
    steps = check_settings(dt, max_time, channels)
    t0 = time.perf_counter()
    with open_h5(path, progress=progress) as f:
        raw = read_raw(f, path)
        n = len(raw)
        x = np.zeros((n, steps, channels), dtype=np.uint8)
        chunk = max(1, _BLOCK_BYTES // (8 * steps * channels))
        dropped = 0
        total_spikes = 0
        with tqdm(total=n, unit="sample", desc=f"binning {path.name}", disable=not progress,
                  leave=False) as bar:
            for start, times, units, lengths in iter_chunks(raw, chunk):
                block, d = bin_spikes(times, units, lengths, dt, steps, channels, binary)
                x[start:start + len(lengths)] = block
                dropped += d
                total_spikes += int(lengths.sum())
                bar.update(len(lengths))
    return SpikeTensorDataset(
        x=torch.from_numpy(x), y=torch.from_numpy(raw.labels),
        speaker=torch.from_numpy(raw.speaker), dt=float(dt), num_classes=raw.num_classes,
        class_names=raw.class_names, source=str(path), max_time=float(max_time), binary=binary,
        dropped_spikes=dropped,
        meta={"spikes": total_spikes, "parse_seconds": time.perf_counter() - t0},
    )


def load_file(
    path: PathLike,
    dt: float = 0.01,
    max_time: float = 1.4,
    channels: int = 140,
    binary: bool = False,
    cache_dir: Optional[PathLike] = None,
    progress: bool = True,
    *,
    cache: bool = True,
    rebuild: bool = False,
) -> SpikeTensorDataset:
    """Load an SHD-format file as a :class:`SpikeTensorDataset`, x uint8 (N, T, channels).

    T = ceil(max_time / dt); channel pooling sums groups of 700 // channels units. The result
    is cached in ``cache_dir`` (default ``<file's folder>/cache``, or the default cache folder if
    that is read-only); ``cache=False`` neither reads nor writes the cache, ``rebuild=True``
    re-parses and replaces the cache entry. Raises DataError / ConfigError on bad input.
    """
    path = Path(path).expanduser()
    check_settings(dt, max_time, channels)
    binary = bool(binary)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    cache_path: Optional[Path] = None
    if cache:
        cdir = Path(cache_dir).expanduser() if cache_dir else pick_cache_dir(path.parent / "cache")
        if cdir is None:
            _warn(f"no writable cache directory for {path}; the tensors will not be cached")
        else:
            cache_path = cdir / cache_file_name(path, dt, max_time, channels, binary)
            if not rebuild and cache_path.is_file():
                ds = _from_cache(cache_path, float(dt), float(max_time), channels, binary,
                                 str(path))
                if ds is not None:
                    return ds
    ds = parse_file(path, dt, max_time, channels, binary, progress)
    if cache_path is not None:
        remove_stale_temps(cache_path.parent, min_age=60)  # of killed writes (shared folder)
        try:
            atomic_torch_save(_to_payload(ds, channels), cache_path)
            ds.cache_path = str(cache_path)
        except OSError as exc:
            _warn(f"could not write cache file {cache_path} ({one_line(exc)})")
    return ds


def check_split(name: str, split: str) -> str:
    """Normalise and validate a dataset name / split pair; returns the split."""
    if name not in SPLITS:
        raise ConfigError(f"unknown dataset {name!r}; choose from {', '.join(SPLITS)}")
    split = {"val": "valid", "validation": "valid"}.get(split, split)
    if split not in SPLITS[name]:
        raise ConfigError(
            f"dataset {name!r} has no split {split!r}; choose from {', '.join(SPLITS[name])}"
        )
    return split


def find_file(name: str, split: str, data_dir: Path) -> Optional[Path]:
    """``<data_dir>/<name>_<split>.h5``, ``.h5.gz`` or ``.h5.zip`` (first that exists), or None.

    Also looks in ``<data_dir>/<name>/``, a common layout.
    """
    for folder in (data_dir, data_dir / name):
        for ext in _EXTENSIONS:
            cand = folder / f"{name}_{split}{ext}"
            if cand.is_file():
                return cand
    return None


def load_dataset(
    name: str = "shd",
    split: str = "train",
    data_dir: Optional[PathLike] = None,
    dt: float = 0.01,
    max_time: float = 1.4,
    channels: int = 140,
    binary: bool = False,
    cache_dir: Optional[PathLike] = None,
    download: bool = False,
    progress: bool = True,
    *,
    cache: bool = True,
    rebuild: bool = False,
) -> SpikeTensorDataset:
    """Load split ``split`` ("train"/"test"; SSC also "valid") of dataset ``name`` ("shd"/"ssc").

    Looks for ``<name>_<split>.h5[.gz|.zip]`` in ``data_dir`` (default: ``$DELAYPROP_DATA`` or
    ``~/.cache/delayprop/data``); downloads it if missing and ``download``. The cache defaults
    to ``<data_dir>/cache`` (the default cache folder if the data directory is read-only).
    Returns x uint8 (N, T, channels), T = ceil(max_time / dt).
    """
    name = str(name).lower()
    split = check_split(name, split)
    check_settings(dt, max_time, channels)
    ddir = resolve_data_dir(data_dir)
    path = find_file(name, split, ddir)
    if path is None:
        from .packed import load_packed, pack_tag, packed_files, packed_name

        packed = ddir / packed_name(name, split, dt, max_time, channels, binary)
        if packed.is_file():  # made by `delayprop data pack`
            return _pad_classes(name, load_packed(packed, dt, max_time, channels, binary))
        others = packed_files(name, split, ddir)
        if others:
            raise DataError(
                f"{ddir}: no {name}_{split}.h5 here, and its packed files "
                f"({', '.join(p.name for p in others)}) were made with other settings than "
                f"{pack_tag(dt, max_time, channels, binary)}; pack it again with these"
            )
    if path is None:
        if not download:
            raise DataError(
                f"{ddir}: no {name}_{split}.h5, .h5.gz or .h5.zip here; run "
                f"`delayprop data download {name} --data-dir {ddir}` or pass download=True"
            )
        from .remote import download as _download

        path = _download(name, data_dir=ddir, splits=[split], progress=progress)[0]
    if cache_dir is None and cache:
        cache_dir = pick_cache_dir(ddir / "cache")
        if cache_dir is None:
            _warn(f"no writable cache directory for {ddir}; the tensors will not be cached")
            cache = False
    ds = load_file(path, dt, max_time, channels, binary, cache_dir, progress,
                   cache=cache, rebuild=rebuild)
    return _pad_classes(name, ds)


def _pad_classes(name: str, ds: SpikeTensorDataset) -> SpikeTensorDataset:
    """A split of a known dataset has all its classes even if some have no sample here; a
    label beyond them (a stray label, which would add classes) is a DataError."""
    if name in NUM_CLASSES and ds.num_classes > NUM_CLASSES[name]:
        k = NUM_CLASSES[name]
        bad = ds.y >= k
        if bool(bad.any()):
            i = int(torch.argmax(bad.to(torch.uint8)))
            raise DataError(f"{ds.source}: sample {i}: label {int(ds.y[i])} out of range for "
                            f"{name} ({k} classes, 0..{k - 1})")
        raise DataError(f"{ds.source}: 'extra/keys' names {ds.num_classes} classes; {name} "
                        f"has {k}")
    if name in NUM_CLASSES and ds.num_classes < NUM_CLASSES[name]:
        ds.num_classes = NUM_CLASSES[name]
        ds.class_names = ds.class_names + [
            str(i) for i in range(len(ds.class_names), NUM_CLASSES[name])
        ]
    return ds


@dataclass
class FileStats:
    """Per-sample statistics of an SHD-format file (for ``delayprop data info``)."""

    path: str
    labels: np.ndarray  # (N,)
    speaker: np.ndarray  # (N,), -1 if absent
    class_names: List[str]
    spikes: np.ndarray  # (N,) spikes per sample
    duration: np.ndarray  # (N,) time of the last spike, seconds
    first_spike: np.ndarray  # (N,) time of the first spike, seconds
    units_used: int  # distinct units with at least one spike


def file_stats(path: PathLike, progress: bool = True) -> FileStats:
    """Read and check a whole SHD-format file and gather per-sample statistics."""
    from tqdm.auto import tqdm

    path = Path(path).expanduser()
    with open_h5(path, progress=progress) as f:
        raw = read_raw(f, path)
        n = len(raw)
        spikes = np.zeros(n, dtype=np.int64)
        duration = np.zeros(n)
        first = np.zeros(n)
        used = np.zeros(NUM_UNITS, dtype=bool)
        with tqdm(total=n, unit="sample", desc=f"reading {path.name}", disable=not progress,
                  leave=False) as bar:
            for start, times, units, lengths in iter_chunks(raw, 2048):
                stop = start + len(lengths)
                offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
                spikes[start:stop] = lengths
                duration[start:stop] = np.maximum.reduceat(times, offsets)
                first[start:stop] = np.minimum.reduceat(times, offsets)
                used[units] = True
                bar.update(len(lengths))
    return FileStats(str(path), raw.labels, raw.speaker, raw.class_names, spikes, duration,
                     first, int(used.sum()))
