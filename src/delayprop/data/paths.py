"""Where data and caches live: ``--data-dir``, else ``$DELAYPROP_DATA``, else the default."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

ENV_DATA = "DELAYPROP_DATA"
ENV_CACHE = "DELAYPROP_CACHE"
#: Written by ``delayprop data download`` into a data directory it downloads into: only such
#: a directory gets its cache next to the data (``<data dir>/cache``).
MARKER = ".delayprop-data"


def default_data_dir() -> Path:
    """The data directory: ``$DELAYPROP_DATA`` if set, else ``~/.cache/delayprop/data``."""
    env = os.environ.get(ENV_DATA, "").strip()
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "delayprop" / "data"


def default_cache_dir() -> Path:
    """Fallback cache folder: ``$DELAYPROP_CACHE`` if set, else ``~/.cache/delayprop/data/cache``.

    Independent of ``$DELAYPROP_DATA`` so that a read-only data directory still has a cache.
    """
    env = os.environ.get(ENV_CACHE, "").strip()
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "delayprop" / "data" / "cache"


def resolve_data_dir(data_dir: Optional[PathLike]) -> Path:
    """``data_dir`` if given, else :func:`default_data_dir`."""
    return Path(data_dir).expanduser() if data_dir else default_data_dir()


def is_writable_dir(path: PathLike) -> bool:
    """Whether ``path`` (or, if missing, its nearest existing ancestor) may be written.

    Looks at the permission bits as well as ``os.access``: a directory marked read-only
    (``r-x``) counts as read-only even for root, who could write it anyway.
    """
    p = Path(path).expanduser().absolute()
    while not p.exists():
        if p.parent == p:
            return False
        p = p.parent
    if not p.is_dir():
        return False
    try:
        mode = p.stat().st_mode
    except OSError:
        return False
    if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        return False
    return os.access(p, os.W_OK | os.X_OK)


def owns_data_dir(data_dir: PathLike) -> bool:
    """Whether delayprop downloaded into ``data_dir`` (it holds the :data:`MARKER` file)."""
    return (Path(data_dir).expanduser() / MARKER).is_file()


def mark_data_dir(data_dir: PathLike) -> None:
    """Mark ``data_dir`` as one delayprop downloads into (and may keep its cache in)."""
    p = Path(data_dir).expanduser() / MARKER
    if not p.is_file():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("delayprop downloaded data into this directory; its tensor cache may "
                     "live in ./cache\n")


def pick_cache_dir(preferred: Path) -> Optional[Path]:
    """``preferred`` (``<data dir>/cache``) if delayprop downloaded into that data directory
    (:func:`owns_data_dir`) and it is writable, else :func:`default_cache_dir` if writable, else
    ``None``. A data directory delayprop did not download into is never written to, whatever
    its permissions (root can write anything)."""
    preferred = Path(preferred)
    if owns_data_dir(preferred.parent) and is_writable_dir(preferred):
        return preferred
    fallback = default_cache_dir()
    return fallback if is_writable_dir(fallback) else None
