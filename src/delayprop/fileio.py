"""Atomic file writes: a file is written under a temporary name in its folder and renamed into
place only when complete, so a crash or an error never leaves a half-written file (and never
replaces a good one).

Also here, for the reliability of runs and caches:

* **checksums**: :func:`atomic_torch_save` appends a short trailer with the sha256 of the
  ``torch.save`` bytes (``torch.load`` still reads the file); :func:`torch_load_checked`
  verifies it before loading, so a file changed anywhere after it was written (flipped bytes,
  a bad copy) is detected. Files without the trailer (older delayprop) still load, unverified;
* **stale temporary files** of writes killed half-way: the writer holds a lock on its
  temporary file, so :func:`remove_stale_temps` can tell a dead writer's leftovers from a
  live write and removes only those;
* **directory locks** (:class:`DirLock`): one process per run directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Iterator, Optional

from delayprop.errors import ConfigError, CorruptFileError, WriteError

try:  # POSIX; elsewhere the locks below are no-ops
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


def _short(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def lock_fd(fd: int, blocking: bool = True) -> bool:
    """flock(LOCK_EX) on ``fd``; False if ``blocking`` is off and another holder has it."""
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[IO[bytes]]:
    """``with atomic_open(p) as f: f.write(...)`` — binary file at a temporary name; on success
    flushed, fsynced, made 0644 and renamed to ``p``; on any exception removed. The folder is
    created if missing. The temporary file is locked while it is written (see
    :func:`remove_stale_temps`). An OSError (full disk, unwritable folder) is raised as
    :class:`~delayprop.errors.WriteError` naming ``p`` (still an OSError)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
        with os.fdopen(fd, "wb") as f:
            lock_fd(fd)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, WriteError):
            raise WriteError(f"{path}: cannot write ({_short(exc)})") from None
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_np_save(path: str | os.PathLike, array: Any) -> None:
    """``numpy.save`` through :func:`atomic_open` (``path`` is used as given)."""
    import numpy as np

    with atomic_open(path) as f:
        np.save(f, array)


# --------------------------------------------------------------------------------------------
# Checksummed torch files

_TAG = b"\nDELAYPROP-SHA256:"
_TRAILER_LEN = len(_TAG) + 64 + 1
_CHUNK = 4 << 20


class _HashingWriter:
    """Passes writes to a file, hashing them; keeps the OSError torch.save would hide."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.sha = hashlib.sha256()
        self.error: Optional[OSError] = None

    def write(self, data: Any) -> int:
        try:
            n = self.f.write(data)
        except OSError as exc:
            self.error = exc
            raise
        self.sha.update(data)
        return n

    def flush(self) -> None:
        self.f.flush()


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` atomically, followed by a sha256 trailer of the saved bytes."""
    import torch

    with atomic_open(path) as f:
        w = _HashingWriter(f)
        try:
            torch.save(obj, w)  # type: ignore[arg-type]
        except Exception:
            if w.error is not None:  # torch turns the OSError into a RuntimeError
                raise w.error from None
            raise
        f.write(_TAG + w.sha.hexdigest().encode("ascii") + b"\n")


def verify_checksum(path: str | os.PathLike) -> Optional[bool]:
    """True if the file's sha256 trailer matches its contents, False if it does not, None if
    the file has no trailer (written before checksums, or not by delayprop)."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size < _TRAILER_LEN:
            return None
        fh.seek(size - _TRAILER_LEN)
        trailer = fh.read(_TRAILER_LEN)
        if not trailer.startswith(_TAG) or not trailer.endswith(b"\n"):
            return None
        want = trailer[len(_TAG):-1]
        sha = hashlib.sha256()
        fh.seek(0)
        left = size - _TRAILER_LEN
        while left:
            buf = fh.read(min(_CHUNK, left))
            if not buf:
                return False
            sha.update(buf)
            left -= len(buf)
    return sha.hexdigest().encode("ascii") == want


def torch_load_checked(path: str | os.PathLike, *, weights_only: bool = False,
                       map_location: Any = "cpu") -> tuple[Any, Optional[bool]]:
    """``(torch.load(path), verified)``: the checksum is verified first (a mismatch raises
    :class:`~delayprop.errors.CorruptFileError`); ``verified`` is None for files without one.
    Other load errors propagate as torch raises them."""
    import torch

    ok = verify_checksum(path)
    if ok is False:
        raise CorruptFileError(f"{path}: checksum mismatch, the file is corrupt (changed after "
                               "it was written: disk or copy error?)")
    obj = torch.load(path, map_location=map_location, weights_only=weights_only)
    return obj, ok


# --------------------------------------------------------------------------------------------
# Leftovers of killed writes

# atomic_open: ".<name>.<8 random chars>.tmp"; downloads: ".<name>.<8 chars>.part"
_TEMP_RE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.(tmp|part)$")


def _in_use(path: Path) -> bool:
    """Whether a live writer holds the lock of a temporary file."""
    if fcntl is None:  # pragma: no cover
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return True  # gone or unreadable: leave it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def remove_stale_temps(folder: str | os.PathLike, min_age: float = 0.0) -> list[Path]:
    """Remove the temporary files of atomic writes (and downloads) in ``folder`` whose writer
    died: files named like ours, not locked by a live writer and at least ``min_age`` seconds
    old (a margin for folders other processes write into). Returns the removed paths; never
    raises."""
    removed: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    now = time.time()
    for p in entries:
        if not _TEMP_RE.match(p.name):
            continue
        try:
            if not p.is_file() or now - p.stat().st_mtime < min_age or _in_use(p):
                continue
            p.unlink()
            removed.append(p)
        except OSError:
            continue
    return removed


# --------------------------------------------------------------------------------------------
# Directory locks


class DirLock:
    """An exclusive lock on a directory (``<dir>/.lock``, flock): ``with DirLock(d): ...``.

    Creates the directory. A second holder, in this or another process, gets a ConfigError at
    once (no waiting). The kernel drops the lock when its process ends, however it ends, so a
    killed run never leaves a stale lock (only an unlocked ``.lock`` file, taken over by the
    next holder). On release the ``.lock`` file is removed, and the directory too if this lock
    created it and nothing else was written there (a failed start leaves no directory, nor the
    parents it had to create).
    """

    NAME = ".lock"

    def __init__(self, folder: str | os.PathLike, what: str = "run directory") -> None:
        self.folder = Path(folder)
        self.what = what
        self.fd: Optional[int] = None
        self.created: list[Path] = []  # folders this lock made, innermost first

    def acquire(self) -> "DirLock":
        path = self.folder / self.NAME
        try:
            self.created = [p for p in [self.folder, *self.folder.parents] if not p.exists()]
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteError(f"{self.folder}: cannot create or write the {self.what} "
                             f"({_short(exc)})") from None
        for _ in range(100):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                self._remove_dir()
                raise WriteError(f"{self.folder}: cannot create or write the {self.what} "
                                 f"({_short(exc)})") from None
            if not lock_fd(fd, blocking=False):
                try:
                    holder = os.read(fd, 200).decode("utf-8", "replace").strip()
                except OSError:
                    holder = ""
                os.close(fd)
                raise ConfigError(f"{self.folder}: the {self.what} is in use by another process"
                                  f"{' (' + holder + ')' if holder else ''}; wait for it to end "
                                  "or choose another directory")
            try:  # a holder that was releasing may have removed the file we locked: retry
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except OSError:
                same = False
            if same:
                break
            os.close(fd)
        else:  # pragma: no cover
            raise ConfigError(f"{self.folder}: could not lock the {self.what}")
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
                     .encode())
        except OSError:
            pass  # the lock holds without the note (e.g. full disk)
        self.fd = fd
        return self

    def _remove_dir(self) -> None:
        for p in self.created:
            try:
                p.rmdir()  # only if empty
            except OSError:
                break

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.folder / self.NAME)  # still locked: nobody else holds this file
        self._remove_dir()
        os.close(self.fd)  # closing drops the flock
        self.fd = None

    def __enter__(self) -> "DirLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
