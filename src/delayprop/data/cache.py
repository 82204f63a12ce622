"""The on-disk cache of binned tensors: the second load of a file reads one tensor file and
never opens HDF5.

:func:`load_file` reads an SHD-format file (:func:`~delayprop.data.tensors.parse_file`) and
caches its tensors in ``cache_dir`` (default ``<file's folder>/cache`` if delayprop downloaded
into that folder, else the default cache folder, :func:`~delayprop.data.paths.pick_cache_dir`)
under a key of the file's identity (name, size, mtime) and the binning settings
(:func:`cache_file_name`). A cache file is checksummed; an unreadable, corrupt or stale one is
rebuilt with a warning.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from delayprop.errors import CorruptFileError, DataError
from delayprop.fileio import atomic_torch_save, remove_stale_temps, torch_load_checked

from .paths import PathLike, pick_cache_dir
from .reader import check_settings, num_steps_for, one_line
from .tensors import SpikeTensorDataset, parse_file

#: Bump when the cached tensors' meaning changes; part of the cache key.
CACHE_FORMAT_VERSION = 1


def _stem(path: Path) -> str:
    """The file name without its extensions, the start of its cache file names."""
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


def warn(msg: str) -> None:
    """A warning line on stderr."""
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
            warn(f"ignoring unreadable cache file {cache_path} (no checksum: corrupt or written "
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
        warn(f"ignoring corrupt cache file {cache_path} (checksum mismatch); rebuilding it")
        return None
    except Exception as exc:
        warn(f"ignoring unreadable cache file {cache_path} ({one_line(exc)}); rebuilding it")
        return None
    if not ok:
        warn(f"ignoring cache file {cache_path} with unexpected contents; rebuilding it")
        return None
    return SpikeTensorDataset(
        x=obj["x"], y=obj["y"], speaker=obj["speaker"], dt=obj["dt"],
        num_classes=obj["num_classes"], class_names=list(obj["class_names"]), source=source,
        max_time=obj["max_time"], binary=obj["binary"], dropped_spikes=obj["dropped_spikes"],
        cache_path=str(cache_path), from_cache=True, meta=dict(obj.get("meta", {})),
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
            warn(f"no writable cache directory for {path}; the tensors will not be cached")
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
            warn(f"could not write cache file {cache_path} ({one_line(exc)})")
    return ds
