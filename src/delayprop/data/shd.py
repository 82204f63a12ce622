"""SHD and SSC by name: ``load_dataset("shd", "train", data_dir=D)`` as dense spike tensors.

The path of a split, one step after the other: the file
(:func:`~delayprop.data.files.find_file`: ``<name>_<split>.h5[.gz|.zip]`` in ``D`` or
``D/<name>/``), else a packed split made with the same settings (:mod:`delayprop.data.packed`),
else a download (:mod:`delayprop.data.remote`, on request); then the file is read and binned
with its tensors cached (:func:`~delayprop.data.cache.load_file`). The cache defaults to
``<data_dir>/cache`` (the default cache folder if the data directory is read-only or not one
delayprop downloaded into).

The names this module held before the data package was split up (``load_file``,
``SpikeTensorDataset``, ``SPLITS``, ...) are still importable from here.
"""

from __future__ import annotations

from typing import Optional

import torch

from delayprop.errors import DataError

from .cache import CACHE_FORMAT_VERSION, cache_file_name, cache_key, load_file, warn
from .files import (
    NUM_CLASSES,
    SPLITS,
    check_split,
    find_file,
    pack_tag,
    packed_files,
    packed_name,
)
from .packed import load_packed
from .paths import PathLike, pick_cache_dir, resolve_data_dir
from .reader import FileStats, check_settings, file_stats, num_steps_for
from .remote import download as fetch
from .tensors import SpikeTensorDataset, parse_file

__all__ = [
    "CACHE_FORMAT_VERSION", "FileStats", "NUM_CLASSES", "SPLITS", "SpikeTensorDataset",
    "cache_file_name", "cache_key", "check_settings", "check_split", "file_stats", "find_file",
    "load_dataset", "load_file", "num_steps_for", "parse_file",
]


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
        path = fetch(name, data_dir=ddir, splits=[split], progress=progress)[0]
    if cache_dir is None and cache:
        cache_dir = pick_cache_dir(ddir / "cache")
        if cache_dir is None:
            warn(f"no writable cache directory for {ddir}; the tensors will not be cached")
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
