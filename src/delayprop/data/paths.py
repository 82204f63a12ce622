"""Where data and caches live: ``--data-dir``, else ``$DELAYPROP_DATA``, else the default."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

ENV_DATA = "DELAYPROP_DATA"
ENV_CACHE = "DELAYPROP_CACHE"


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


def pick_cache_dir(preferred: Path) -> Optional[Path]:
    """``preferred`` if writable, else :func:`default_cache_dir` if writable, else ``None``."""
    for cand in (preferred, default_cache_dir()):
        if is_writable_dir(cand):
            return cand
    return None
