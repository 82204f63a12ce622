"""Reading and checking SHD-format HDF5 files (``.h5``, ``.h5.gz``, ``.h5.zip``), and binning
their spikes.

The format (Cramer et al. 2020; zenkelab.org/datasets): ``spikes/times`` and ``spikes/units``
hold one variable-length array per sample (spike times in seconds, channel 0..699),
``labels`` the class per sample, and optionally ``extra/speaker`` and ``extra/keys`` (class
names). Every problem is reported as a one-line :class:`~delayprop.errors.DataError` that names
the file, and the sample where there is one.

:func:`check_settings` validates the binning settings (bin width ``dt``, ``max_time``,
``channels``) every loader takes; :func:`bin_spikes` bins spikes into counts;
:func:`file_stats` gathers per-sample statistics of a file (``delayprop data info``).
"""

from __future__ import annotations

import contextlib
import gzip
import math
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import numpy as np

from delayprop.errors import ConfigError, DataError

from .paths import PathLike

#: Number of cochlea channels of the SHD/SSC file format.
NUM_UNITS = 700

#: The most classes a file may have (its largest label + 1, or its 'extra/keys').
MAX_CLASSES = 100_000

_COPY_CHUNK = 4 << 20


def one_line(exc: BaseException) -> str:
    """``exc`` as a short one-line string (type and message)."""
    msg = " ".join(str(exc).split())
    name = type(exc).__name__
    return f"{name}: {msg}" if msg else name


def _decompress_gz(path: Path, out, progress: bool) -> None:
    total = None
    try:  # the gzip trailer holds the uncompressed size mod 2**32: good enough for a progress bar
        with open(path, "rb") as raw:
            raw.seek(-4, 2)
            total = int.from_bytes(raw.read(4), "little") or None
    except OSError:
        total = None
    with gzip.open(path, "rb") as src:
        _copy(src, out, total, f"gunzip {path.name}", progress)


def _copy(src, out, total: int | None, desc: str, progress: bool) -> None:
    """Copy a binary stream in chunks, with a byte progress bar."""
    from tqdm.auto import tqdm

    with tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not progress,
              leave=False) as bar:
        while True:
            buf = src.read(_COPY_CHUNK)
            if not buf:
                break
            out.write(buf)
            bar.update(len(buf))


def _extract_zip(path: Path, out, progress: bool) -> None:
    with zipfile.ZipFile(path) as zf:
        members = [m for m in zf.infolist() if m.filename.endswith(".h5") and not m.is_dir()]
        members = [m for m in members if not Path(m.filename).name.startswith("._")]  # macOS junk
        if len(members) != 1:
            found = ", ".join(m.filename for m in members) or "none"
            raise DataError(
                f"{path}: expected exactly one .h5 file in the zip archive, found {found}"
            )
        info = members[0]
        with zf.open(info) as src:
            _copy(src, out, info.file_size, f"unzip {path.name}", progress)


@contextlib.contextmanager
def open_h5(path: PathLike, progress: bool = False) -> Iterator["object"]:
    """Open an SHD-format file read-only and yield the ``h5py.File``.

    ``.gz`` and ``.zip`` files are decompressed into an anonymous temporary file (deleted on
    close, never inside the data directory).
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    name = path.name.lower()
    with contextlib.ExitStack() as stack:
        if name.endswith(".gz") or name.endswith(".zip"):
            tmp = stack.enter_context(tempfile.TemporaryFile(prefix="delayprop-", suffix=".h5"))
            try:
                if name.endswith(".gz"):
                    _decompress_gz(path, tmp, progress)
                else:
                    _extract_zip(path, tmp, progress)
            except DataError:
                raise
            except (EOFError, OSError, zlib.error, zipfile.BadZipFile, ValueError) as exc:
                kind = "gzip" if name.endswith(".gz") else "zip"
                raise DataError(
                    f"{path}: truncated or corrupt {kind} file ({one_line(exc)})"
                ) from None
            tmp.flush()
            tmp.seek(0)
            target = tmp
        else:
            target = str(path)
        try:
            f = h5py.File(target, "r")
        except Exception as exc:  # h5py raises OSError, but be safe about the rest
            raise DataError(
                f"{path}: not a readable HDF5 file, truncated or corrupt ({one_line(exc)})"
            ) from None
        stack.callback(f.close)
        yield f


@dataclass
class RawFile:
    """The datasets of an open SHD-format file, checked for presence and consistent lengths."""

    path: Path
    times: "object"  # h5py dataset of variable-length arrays, (N,)
    units: "object"  # h5py dataset of variable-length arrays, (N,)
    labels: np.ndarray  # int64 (N,)
    speaker: np.ndarray  # int64 (N,), -1 where absent
    class_names: List[str]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _get(f, key: str, path: Path, required: bool = True):
    try:
        obj = f[key]
    except KeyError:
        if required:
            raise DataError(f"{path}: missing key '{key}' (not an SHD-format file?)") from None
        return None
    except Exception as exc:
        raise DataError(f"{path}: cannot read '{key}' ({one_line(exc)})") from None
    if not hasattr(obj, "shape"):
        raise DataError(f"{path}: '{key}' is a group, expected a dataset")
    return obj


def _read_array(ds, key: str, path: Path) -> np.ndarray:
    try:
        return np.asarray(ds[()])
    except Exception as exc:
        raise DataError(f"{path}: cannot read '{key}' ({one_line(exc)})") from None


def read_raw(f, path: PathLike) -> RawFile:
    """Check the layout of an open SHD-format file and read its small datasets."""
    path = Path(path)
    times = _get(f, "spikes/times", path)
    units = _get(f, "spikes/units", path)
    labels_ds = _get(f, "labels", path)
    n = len(labels_ds) if labels_ds.shape else 0
    if labels_ds.ndim != 1:
        raise DataError(f"{path}: 'labels' must be one-dimensional, has shape {labels_ds.shape}")
    for key, ds in (("spikes/times", times), ("spikes/units", units)):
        if ds.ndim != 1 or len(ds) != n:
            raise DataError(
                f"{path}: '{key}' has shape {ds.shape}, expected ({n},) like 'labels'"
            )
    labels = _read_array(labels_ds, "labels", path)
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(
            labels == np.round(labels)
        ):
            labels = labels.astype(np.int64)
        else:
            raise DataError(f"{path}: 'labels' must be integers, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if n and labels.min() < 0:
        i = int(np.argmax(labels < 0))
        raise DataError(f"{path}: sample {i}: negative label {labels[i]}")

    spk_ds = _get(f, "extra/speaker", path, required=False)
    if spk_ds is None:
        speaker = np.full(n, -1, dtype=np.int64)
    else:
        speaker = _read_array(spk_ds, "extra/speaker", path)
        if speaker.shape != (n,) or speaker.dtype.kind not in "iu":
            raise DataError(
                f"{path}: 'extra/speaker' has shape {speaker.shape} and dtype {speaker.dtype}, "
                f"expected ({n},) integers"
            )
        speaker = speaker.astype(np.int64)

    keys_ds = _get(f, "extra/keys", path, required=False)
    class_names: Optional[List[str]] = None
    if keys_ds is not None:
        raw = _read_array(keys_ds, "extra/keys", path).reshape(-1)
        if raw.size > MAX_CLASSES:
            raise DataError(f"{path}: 'extra/keys' names {raw.size} classes; at most "
                            f"{MAX_CLASSES}")
        class_names = [
            k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k) for k in raw
        ]
        if n and labels.max() >= len(class_names):
            i = int(np.argmax(labels >= len(class_names)))
            raise DataError(
                f"{path}: sample {i}: label {labels[i]} >= number of classes in 'extra/keys' "
                f"({len(class_names)})"
            )
    if class_names is None:
        k = int(labels.max()) + 1 if n else 0
        if k > MAX_CLASSES:
            i = int(np.argmax(labels))
            raise DataError(
                f"{path}: sample {i}: label {labels[i]} would make {k} classes (without "
                f"'extra/keys' the classes are the largest label + 1; at most {MAX_CLASSES}); "
                "a stray label?"
            )
        class_names = [str(i) for i in range(k)]
    return RawFile(path, times, units, labels, speaker, class_names)


def _read_vlen(ds, start: int, stop: int, key: str, path: Path) -> List[np.ndarray]:
    try:
        arr = ds[start:stop]
    except Exception as exc:
        raise DataError(
            f"{path}: cannot read '{key}' samples {start}..{stop - 1} ({one_line(exc)})"
        ) from None
    if arr.dtype != object:  # a fixed-size 2-D layout is not the SHD format
        raise DataError(f"{path}: '{key}' must hold one variable-length array per sample")
    return list(arr)


def iter_chunks(
    raw: RawFile, chunk: int
) -> Iterator[Tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(start, times, units, lengths)`` for consecutive blocks of at most ``chunk`` samples.

    ``times`` float64 and ``units`` int64 are the concatenated spikes of the block (checked:
    finite, non-negative times; units in 0..699; no empty sample), ``lengths`` int64 the
    spikes per sample.
    """
    path = raw.path
    n = len(raw)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        tl = _read_vlen(raw.times, start, stop, "spikes/times", path)
        ul = _read_vlen(raw.units, start, stop, "spikes/units", path)
        lengths = np.fromiter((a.size for a in tl), dtype=np.int64, count=len(tl))
        ulen = np.fromiter((a.size for a in ul), dtype=np.int64, count=len(ul))
        if not np.array_equal(lengths, ulen):
            i = start + int(np.argmax(lengths != ulen))
            raise DataError(
                f"{path}: sample {i}: {lengths[i - start]} spike times but "
                f"{ulen[i - start]} spike units"
            )
        if (lengths == 0).any():
            i = start + int(np.argmax(lengths == 0))
            raise DataError(f"{path}: sample {i}: empty sample (no spikes)")
        times = np.concatenate(tl).astype(np.float64, copy=False)
        units = np.concatenate(ul)
        if units.dtype.kind not in "iu":
            if units.dtype.kind == "f" and np.all(units == np.floor(units)):
                pass  # integral floats are tolerated
            else:
                raise DataError(f"{path}: 'spikes/units' must be integers, got {units.dtype}")
        units = units.astype(np.int64, copy=False)
        offsets = np.cumsum(lengths)

        def sample_of(j: int, start: int = start, offsets: np.ndarray = offsets) -> int:
            return start + int(np.searchsorted(offsets, j, side="right"))

        bad = ~(times >= 0.0) | ~np.isfinite(times)  # catches NaN, inf and negatives
        if bad.any():
            j = int(np.argmax(bad))
            raise DataError(
                f"{path}: sample {sample_of(j)}: invalid spike time {float(times[j])!r} "
                "(times must be finite and >= 0 seconds)"
            )
        bad = (units < 0) | (units >= NUM_UNITS)
        if bad.any():
            j = int(np.argmax(bad))
            raise DataError(
                f"{path}: sample {sample_of(j)}: unit index {units[j]} out of range "
                f"0..{NUM_UNITS - 1}"
            )
        yield start, times, units, lengths


def bin_spikes(
    times: np.ndarray,
    units: np.ndarray,
    lengths: np.ndarray,
    dt: float,
    num_steps: int,
    channels: int = NUM_UNITS,
    binary: bool = False,
) -> Tuple[np.ndarray, int]:
    """Bin concatenated spikes of ``len(lengths)`` samples into a dense count tensor.

    Spike at time t goes to step ``floor(t / dt)`` (a 1e-6 step tolerance absorbs decimal
    rounding, so t = 0.03 with dt = 0.01 lands in step 3); steps >= ``num_steps`` are dropped.
    Unit u goes to channel ``u // (700 // channels)``. Counts saturate at 255 (1 if ``binary``).
    Returns ``(x, dropped)``: x uint8 (n, num_steps, channels) and the number of spikes dropped.
    """
    n = len(lengths)
    group = NUM_UNITS // channels
    sample = np.repeat(np.arange(n, dtype=np.int64), lengths)
    with np.errstate(over="ignore", invalid="ignore"):  # huge times: dropped below
        fstep = np.floor(times * (1.0 / dt) + 1e-6)
    keep = fstep < num_steps  # before the int cast: 1e30 s must not wrap into step 0
    dropped = int(keep.size - np.count_nonzero(keep))
    if dropped:
        sample, fstep, units = sample[keep], fstep[keep], units[keep]
    step = fstep.astype(np.int64)
    flat = (sample * num_steps + step) * channels + units // group
    counts = np.bincount(flat, minlength=n * num_steps * channels)
    np.minimum(counts, 1 if binary else 255, out=counts)
    return counts.astype(np.uint8).reshape(n, num_steps, channels), dropped


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
