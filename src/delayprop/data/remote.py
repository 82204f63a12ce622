"""Downloading SHD / SSC from the Zenke lab, with md5 checks and atomic writes.

The files and the published checksum list (``md5sums.txt``) live at
https://zenkelab.org/datasets/. The checksums are fetched at download time, not hard-coded.
A file is streamed into a hidden temporary file next to its destination and renamed into place
(``os.replace``) only once it is complete and its md5 matches, so an interrupted or corrupt
download never leaves a file that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from delayprop.errors import DataError
from delayprop.fileio import lock_fd, remove_stale_temps
from delayprop.progress import progress_bar

from .files import SPLITS, check_split, file_name
from .paths import PathLike, mark_data_dir, resolve_data_dir
from .reader import one_line

BASE_URL = "https://zenkelab.org/datasets"
#: Environment variable naming a mirror to use instead of :data:`BASE_URL`.
ENV_URL = "DELAYPROP_DATA_URL"
MD5_FILE = "md5sums.txt"
_CHUNK = 1 << 20


def _urlopen(url: str, timeout: float):
    """Indirection so tests can substitute the opener."""
    return urllib.request.urlopen(url, timeout=timeout)


def parse_md5sums(text: str) -> Dict[str, str]:
    """``{file name: md5}`` from ``md5sum``-style lines (``<hex>  [*]<name>``)."""
    out: Dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split()
        if len(parts) != 2 or len(parts[0]) != 32:
            continue
        digest, fname = parts
        try:
            int(digest, 16)
        except ValueError:
            continue
        fname = fname.lstrip("*")
        out[Path(fname).name] = digest.lower()
    return out


def base_url_default() -> str:
    """``$DELAYPROP_DATA_URL`` if set, else the Zenke lab URL."""
    return os.environ.get(ENV_URL, "").strip() or BASE_URL


def _fetch_checksums(base_url: str, timeout: float) -> Tuple[Optional[Dict[str, str]], str]:
    """(the published md5 list or None, why it is None: 'could not fetch URL (...)')."""
    url = f"{base_url.rstrip('/')}/{MD5_FILE}"
    try:
        with _urlopen(url, timeout) as resp:
            text = resp.read().decode("utf-8", "replace")
    except Exception as exc:  # network errors come in many types
        return None, f"could not fetch {url} ({one_line(exc)})"
    return parse_md5sums(text), ""


def fetch_checksums(
    base_url: Optional[str] = None, timeout: float = 30.0
) -> Optional[Dict[str, str]]:
    """The published md5 list, or None (with a warning) if it cannot be fetched."""
    sums, why = _fetch_checksums(base_url or base_url_default(), timeout)
    if sums is None:
        print(f"delayprop: warning: {why}; downloads will not be verified", file=sys.stderr)
    return sums


def md5_of(path: PathLike) -> str:
    """Hex md5 of a file."""
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for buf in iter(lambda: fh.read(_CHUNK), b""):
            h.update(buf)
    return h.hexdigest()


def download_file(
    url: str,
    dest: PathLike,
    md5: Optional[str] = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` atomically; verify ``md5`` if given. Returns ``dest``.

    On any failure (network error, short read, checksum mismatch, Ctrl-C) the temporary file
    is removed and ``dest`` is left as it was.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        lock_fd(fd)  # held while downloading: remove_stale_temps skips live downloads
    except OSError as exc:
        raise DataError(
            f"{dest.parent}: cannot write the data directory ({one_line(exc)})"
        ) from None
    try:
        h = hashlib.md5()
        received = 0
        with os.fdopen(fd, "wb") as out:
            try:
                resp = _urlopen(url, timeout)
            except Exception as exc:
                raise DataError(f"{url}: download failed ({one_line(exc)})") from None
            with resp:
                length = resp.headers.get("Content-Length") if resp.headers else None
                total = int(length) if length and str(length).isdigit() else None
                with progress_bar(total=total, unit="B", unit_scale=True, desc=dest.name,
                                  enabled=progress, leave=True, final_line=True) as bar:
                    while True:
                        try:
                            buf = resp.read(_CHUNK)
                        except Exception as exc:
                            raise DataError(
                                f"{url}: download interrupted after {received} bytes "
                                f"({one_line(exc)}); nothing was saved"
                            ) from None
                        if not buf:
                            break
                        out.write(buf)
                        h.update(buf)
                        received += len(buf)
                        bar.update(len(buf))
            if total is not None and received != total:
                raise DataError(
                    f"{url}: download interrupted: got {received} of {total} bytes; "
                    "nothing was saved"
                )
            out.flush()
            os.fsync(out.fileno())
        got = h.hexdigest()
        if md5 is not None and got != md5.lower():
            raise DataError(
                f"{dest.name}: checksum mismatch (md5 {got}, published {md5.lower()}); "
                "the download was discarded"
            )
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return dest


def download(
    name: str = "shd",
    data_dir: Optional[PathLike] = None,
    splits: Optional[Sequence[str]] = None,
    base_url: Optional[str] = None,
    progress: bool = True,
    force: bool = False,
    verify: bool = True,
    timeout: float = 60.0,
) -> List[Path]:
    """Download the ``splits`` (default: all) of dataset ``name`` into ``data_dir``.

    Files already present are kept if their md5 matches the published one (or if no checksum
    is available); ``force`` downloads again. ``base_url`` defaults to ``$DELAYPROP_DATA_URL``
    or https://zenkelab.org/datasets. Returns the paths, in the order of ``splits``.
    """
    base_url = base_url or base_url_default()
    name = str(name).lower()
    splits = [check_split(name, s) for s in (splits or SPLITS.get(name, ()))]
    if not splits:
        check_split(name, "train")  # raises the unknown-dataset error
    ddir = resolve_data_dir(data_dir)
    # a missing checksum list is reported once a file has arrived unverified, so that a
    # download that fails altogether ends in one error line
    sums, why = _fetch_checksums(base_url, timeout) if verify else (None, "")
    paths = []
    for split in splits:
        fname = file_name(name, split)
        dest = ddir / fname
        md5 = sums.get(fname) if sums else None
        if verify and sums is not None and md5 is None:
            print(f"delayprop: warning: no published checksum for {fname}; not verified",
                  file=sys.stderr)
        if dest.is_file() and not force:
            if md5 is None:
                print(f"{dest}: already present (not verified)", file=sys.stderr)
                paths.append(dest)
                continue
            if md5_of(dest) == md5:
                print(f"{dest}: already present, md5 ok", file=sys.stderr)
                paths.append(dest)
                continue
            print(f"{dest}: md5 does not match the published one; downloading again",
                  file=sys.stderr)
        url = f"{base_url.rstrip('/')}/{fname}"
        remove_stale_temps(ddir, min_age=60)  # .part files of killed downloads
        paths.append(download_file(url, dest, md5=md5, progress=progress, timeout=timeout))
        mark_data_dir(ddir)  # delayprop downloaded into it: its cache may live here too
        if why:
            print(f"delayprop: warning: {why}; {fname} was downloaded but will not be verified",
                  file=sys.stderr)
    return paths


__all__ = [
    "BASE_URL", "ENV_URL", "MD5_FILE", "base_url_default", "download", "download_file",
    "fetch_checksums", "file_name", "md5_of", "parse_md5sums",
]
