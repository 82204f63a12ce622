"""The on-disk cache of binned tensors: the second load of a file reads one tensor file and
never opens HDF5.

:func:`load_file` reads an SHD-format file (:func:`~delayprop.data.tensors.parse_file`) and
caches its tensors in ``cache_dir`` (default ``<file's folder>/cache`` if delayprop downloaded
into that folder, else the default cache folder, :func:`~delayprop.data.paths.pick_cache_dir`)
under a key of the file's contents (its sha256, remembered beside the cache per path, size,
mtime, ctime and inode so that a large file is not hashed on every load: :func:`file_sha256`)
and the binning settings (:func:`cache_file_name`). A cache file is checksummed; an
unreadable, corrupt or stale one is rebuilt with a warning.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from delayprop.errors import CorruptFileError, DataError
from delayprop.fileio import (
    atomic_torch_save,
    atomic_write_text,
    remove_stale_temps,
    torch_load_checked,
)

from .paths import PathLike, pick_cache_dir
from .reader import check_settings, num_steps_for, one_line
from .tensors import SpikeTensorDataset, parse_file

#: Bump when the cached tensors' meaning changes; part of the cache key.
CACHE_FORMAT_VERSION = 1


#: A file name part this long at most (the cache name must stay below NAME_MAX = 255).
_STEM_MAX = 80
_CHUNK = 4 << 20
#: A hash memo younger than this after the file's last change is not trusted (a change in the
#: same clock tick as the hashing would leave size, mtime and ctime alike: "racy" entries).
_RACY_NS = 2_000_000_000


def _stem(path: Path) -> str:
    """The file name without its extensions (at most 80 characters), the start of its cache
    file names."""
    name = path.name
    for ext in (".gz", ".zip", ".h5", ".hdf5"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
    return (name or "data")[:_STEM_MAX]


def _stat_ident(path: Path) -> Dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns, "ino": st.st_ino, "dev": st.st_dev}


def _memo_path(path: Path, ident: Dict[str, Any], memo_dir: PathLike) -> Path:
    tag = hashlib.sha256(ident["path"].encode()).hexdigest()[:16]
    return Path(memo_dir) / f"{_stem(path)}-{tag}.sha256.json"


def _digest(path: Path, memo_dir: Optional[PathLike]) -> tuple[str, Optional[Dict[str, Any]]]:
    """(sha256 of the file, the memo to remember it by, or None if it came from the memo or
    there is none to write)."""
    ident = _stat_ident(path)
    if memo_dir is not None:
        try:
            saved = json.loads(_memo_path(path, ident, memo_dir).read_text(encoding="utf-8"))
            if (saved.get("ident") == ident and isinstance(saved.get("sha256"), str)
                    and saved.get("hashed_at_ns", 0) - max(ident["mtime_ns"],
                                                           ident["ctime_ns"]) > _RACY_NS):
                return saved["sha256"], None
        except (OSError, ValueError, AttributeError):
            pass
    hashed_at = time.time_ns()
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            buf = f.read(_CHUNK)
            if not buf:
                break
            sha.update(buf)
    digest = sha.hexdigest()
    if memo_dir is None or _stat_ident(path) != ident:  # changed while it was read
        return digest, None
    return digest, {"memo": str(_memo_path(path, ident, memo_dir)), "ident": ident,
                    "sha256": digest, "hashed_at_ns": hashed_at}


def _remember(memo: Optional[Dict[str, Any]]) -> None:
    """Write a memo of :func:`_digest` (never raises: it is only a memo)."""
    if memo is None:
        return
    try:
        atomic_write_text(memo["memo"], json.dumps(
            {k: v for k, v in memo.items() if k != "memo"}) + "\n")
    except OSError:
        pass


def file_sha256(path: PathLike, memo_dir: Optional[PathLike] = None) -> str:
    """The sha256 of a file's contents (streamed). With ``memo_dir`` the digest is remembered
    in a small sidecar (``<stem>-<path hash>.sha256.json``) under the file's path, size,
    mtime, ctime, inode and device, and read from there while all of these are unchanged (and
    the file's last change was well before the hashing), so a large file is not hashed on every
    load; any change of the file changes its ctime, which no user can set."""
    digest, memo = _digest(Path(path), memo_dir)
    _remember(memo)
    return digest


def cache_key(path: PathLike, dt: float, max_time: float, channels: int, binary: bool,
              *, memo_dir: Optional[PathLike] = None, sha256: Optional[str] = None) -> str:
    """Hash of the file's contents (:func:`file_sha256`, or ``sha256`` if given) and the
    preprocessing settings: two files with the same name, size and mtime but other contents
    never share a cache entry."""
    ident = {
        "sha256": sha256 or file_sha256(path, memo_dir),
        "dt": float(dt), "max_time": float(max_time), "channels": int(channels),
        "binary": bool(binary), "version": CACHE_FORMAT_VERSION,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def cache_file_name(
    path: PathLike, dt: float, max_time: float, channels: int, binary: bool,
    *, memo_dir: Optional[PathLike] = None, sha256: Optional[str] = None,
) -> str:
    """A readable, unique cache file name, e.g. ``shd_train-dt10ms-T140-C140-<key>.pt`` (the
    file's name shortened to 80 characters)."""
    steps = num_steps_for(dt, max_time)
    tag = f"dt{float(dt) * 1000:g}ms-T{steps}-C{channels}" + ("-bin" if binary else "")
    key = cache_key(path, dt, max_time, channels, binary, memo_dir=memo_dir, sha256=sha256)
    return f"{_stem(Path(path))}-{tag}-{key}.pt"


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
    memo = None
    if cache:
        cdir = Path(cache_dir).expanduser() if cache_dir else pick_cache_dir(path.parent / "cache")
        if cdir is None:
            warn(f"no writable cache directory for {path}; the tensors will not be cached")
        else:
            sha, memo = _digest(path, cdir)  # the memo is written once the entry exists
            cache_path = cdir / cache_file_name(path, dt, max_time, channels, binary,
                                                sha256=sha)
            if not rebuild and cache_path.is_file():
                ds = _from_cache(cache_path, float(dt), float(max_time), channels, binary,
                                 str(path))
                if ds is not None:
                    _remember(memo)
                    return ds
    ds = parse_file(path, dt, max_time, channels, binary, progress)
    if cache_path is not None:
        remove_stale_temps(cache_path.parent, min_age=60)  # of killed writes (shared folder)
        try:
            atomic_torch_save(_to_payload(ds, channels), cache_path)
            ds.cache_path = str(cache_path)
            _remember(memo)
        except OSError as exc:
            warn(f"could not write cache file {cache_path} ({one_line(exc)})")
    return ds
