"""Packed datasets: binned spike tensors in one compressed, checksummed ``.npz`` per split.

``delayprop data pack shd --data-dir D --out P`` bins SHD (or SSC) once and writes
``P/<name>_<split>-dt10ms-T100-C140.npz`` (the tag is the cache file's: bin width, steps,
channels, ``-bin`` if binary). ``load_dataset(name, split, data_dir=P, ...)`` uses such a file
when the directory holds no raw ``.h5`` file of that split and the file's settings are the ones
asked for. For moving a dataset to a machine without the raw files (SHD-repro's 118 MB of gzip
files pack to about 16 MB at 10 ms / 140 channels / 1 s), not a replacement for the official
files.

The file names (:func:`packed_name`) belong to :mod:`delayprop.data.files`, which every
loader asks where a split is; this module writes and reads the files.

The payload is checked on load: SHA-256s of the spike tensor, the labels and the speaker ids are
stored beside them and compared, so a damaged or edited file (say, permuted labels) is an error
that names it, never used silently; a file without checksums is refused.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from delayprop.errors import DataError
from delayprop.fileio import atomic_write_bytes

from .files import pack_tag, packed_files, packed_name
from .paths import PathLike
from .tensors import SpikeTensorDataset

PACK_FORMAT = 1


__all__ = ["PACK_FORMAT", "load_packed", "pack_tag", "packed_files", "packed_name",
           "save_packed"]


#: What the metadata of a packed file must hold besides its checksums.
_META_KEYS = ("format", "dt", "max_time", "channels", "binary", "num_classes", "class_names",
              "source", "dropped_spikes")


def _digest(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()


def save_packed(ds: SpikeTensorDataset, path: PathLike) -> Path:
    """Write ``ds`` as a compressed ``.npz`` (atomically: temporary name, then rename)."""
    import io

    x, y, spk = ds.x.numpy(), ds.y.numpy(), ds.speaker.numpy()
    meta = {
        "format": PACK_FORMAT, "dt": float(ds.dt), "max_time": float(ds.max_time),
        "channels": int(ds.channels), "binary": bool(ds.binary),
        "num_classes": int(ds.num_classes), "class_names": list(ds.class_names),
        "source": ds.source, "dropped_spikes": int(ds.dropped_spikes), "x_sha256": _digest(x),
        "y_sha256": _digest(y), "speaker_sha256": _digest(spk),
    }
    buf = io.BytesIO()
    np.savez_compressed(buf, x=x, y=y, speaker=spk,
                        meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_packed(path: PathLike, dt: Optional[float] = None, max_time: Optional[float] = None,
                channels: Optional[int] = None, binary: Optional[bool] = None
                ) -> SpikeTensorDataset:
    """Read a packed split; checks the checksum and (where given) the binning settings."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(bytes(f["meta"]).decode())
            x, y, spk = f["x"], f["y"], f["speaker"]
    except Exception as exc:
        raise DataError(f"{path}: not a readable packed dataset ({type(exc).__name__}: "
                        f"{exc})") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: packed metadata is not a JSON object; pack it again")
    if meta.get("format") != PACK_FORMAT:
        raise DataError(f"{path}: packed format {meta.get('format')!r}, expected {PACK_FORMAT}")
    if not isinstance(meta.get("x_sha256"), str):
        raise DataError(f"{path}: no checksum in its metadata (not written by `delayprop data "
                        "pack`, or damaged); pack it again")
    missing = [k for k in _META_KEYS if k not in meta]
    if missing:
        raise DataError(f"{path}: packed metadata without {', '.join(missing)}; pack it again")
    if _digest(x) != meta["x_sha256"]:
        raise DataError(f"{path}: checksum mismatch: the file is damaged; pack it again")
    for name, arr in (("y", y), ("speaker", spk)):
        key = f"{name}_sha256"
        if key not in meta:  # packed before labels were checksummed
            print(f"delayprop: warning: {path}: packed by an older delayprop, its '{name}' "
                  "array has no checksum (not verified); pack it again", file=sys.stderr)
            continue
        if _digest(arr) != meta[key]:
            raise DataError(f"{path}: checksum mismatch of '{name}' (the {name} array was "
                            "changed after packing); pack it again")
    want = {"dt": dt, "max_time": max_time, "channels": channels, "binary": binary}
    for k, v in want.items():
        if v is not None and (abs(float(meta[k]) - float(v)) > 1e-12 if k != "binary"
                              else bool(meta[k]) != bool(v)):
            raise DataError(f"{path}: packed with {k} = {meta[k]}, but {k} = {v} was asked for")
    if x.dtype != np.uint8 or x.ndim != 3 or not (len(x) == len(y) == len(spk)):
        raise DataError(f"{path}: unexpected array shapes {x.shape}, {y.shape}, {spk.shape}")
    return SpikeTensorDataset(
        x=torch.from_numpy(x), y=torch.from_numpy(y).long(),
        speaker=torch.from_numpy(spk).long(), dt=float(meta["dt"]),
        num_classes=int(meta["num_classes"]), class_names=list(meta["class_names"]),
        source=f"{meta['source']} (packed: {path})", max_time=float(meta["max_time"]),
        binary=bool(meta["binary"]), dropped_spikes=int(meta["dropped_spikes"]),
        meta={"packed": str(path)},
    )
