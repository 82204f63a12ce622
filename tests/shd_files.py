"""Tiny SHD-format files for the tests (the official layout: spikes/times, spikes/units as
variable-length arrays, labels, extra/speaker, extra/keys), written in memory and saved in
one go; ``.gz`` and ``.zip`` endings compress."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import h5py
import numpy as np


def write_shd_file(path, times, units, labels, speakers=None, keys=None, omit=(),
                   tdtype=np.float32, udtype=np.uint16) -> Path:
    """Write an SHD-format file; ``.h5``, ``.h5.gz`` or ``.h5.zip`` by the name's ending."""
    path = Path(path)
    bio = io.BytesIO()
    with h5py.File(bio, "w") as f:
        n = len(labels)
        if "spikes/times" not in omit:
            ds = f.create_dataset("spikes/times", (len(times),), dtype=h5py.vlen_dtype(tdtype))
            for i, t in enumerate(times):
                ds[i] = np.asarray(t, dtype=tdtype)
        if "spikes/units" not in omit:
            ds = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(udtype))
            for i, u in enumerate(units):
                ds[i] = np.asarray(u, dtype=udtype)
        if "labels" not in omit:
            f.create_dataset("labels", data=np.asarray(labels, dtype=np.uint16))
        if speakers is not None:
            f.create_dataset("extra/speaker", data=np.asarray(speakers, dtype=np.uint16))
        if keys is not None:
            f.create_dataset("extra/keys", data=np.asarray(keys))
        assert n == len(labels)
    data = bio.getvalue()
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    elif path.name.endswith(".zip"):
        zb = io.BytesIO()
        with zipfile.ZipFile(zb, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(path.name[: -len(".zip")], data)
        data = zb.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_shd(path: Path, n: int, seed: int = 0) -> Path:
    """SHD-format file, 3 classes: class k has a burst on units 100k..100k+20 at 0.05(k+1) s."""
    rng = np.random.default_rng(seed)
    times, units = [], []
    for i in range(n):
        k = i % 3
        burst = 0.05 * (k + 1) + rng.uniform(0, 0.01, 20)
        t = np.concatenate([rng.uniform(0, 0.2, 10), burst])
        u = np.concatenate([rng.integers(0, 700, 10), 100 * k + rng.integers(0, 20, 20)])
        order = np.argsort(t)
        times.append(t[order])
        units.append(u[order])
    return write_shd_file(path, times, units, np.arange(n) % 3, speakers=np.arange(n) % 4,
                          keys=[b"null", b"eins", b"zwei"], tdtype=np.float16)
