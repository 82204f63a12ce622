"""Data: SHD / SSC download, checks, binning to dense spike tensors, caching, splits, batches.

The path from ``--dataset`` to tensors runs one way through these modules:

* :mod:`~delayprop.data.registry`: what ``[data] dataset`` names (shd, ssc, h5, timing, a
  path), its presets and shape, and :func:`~delayprop.data.registry.load_data`;
* :mod:`~delayprop.data.shd`: SHD / SSC by name (file, else packed split, else download);
* :mod:`~delayprop.data.files`: which files hold a split (:mod:`~delayprop.data.paths`:
  where the data and cache directories are); :mod:`~delayprop.data.remote` downloads them,
  :mod:`~delayprop.data.packed` reads packed splits;
* :mod:`~delayprop.data.cache`: a file's tensors, cached;
* :mod:`~delayprop.data.tensors`: :class:`SpikeTensorDataset` and the parse of a file;
* :mod:`~delayprop.data.reader`: SHD-format HDF5 files, checked, and spike binning.

Beside it: :mod:`~delayprop.data.synthetic` (the timing task), :mod:`~delayprop.data.split`
(validation hold-out) and :mod:`~delayprop.data.batching` (mini-batches, augmentation).

Example::

    from delayprop.data import load_dataset, train_val_split, batches
    ds = load_dataset("shd", "train", data_dir="../shared/data/shd-repro")  # x uint8 (N, 140, 140)
    tr, va = train_val_split(ds.y, ds.speaker, val_fraction=0.1, seed=0)
    for xb, yb in batches(ds.subset(tr), batch_size=256, seed=epoch):   # xb float (B, T, C)
        ...
"""

from .batching import Augment, batches
from .cache import CACHE_FORMAT_VERSION, cache_file_name, load_file
from .files import SPLITS, find_file
from .paths import default_cache_dir, default_data_dir
from .reader import NUM_UNITS, FileStats, bin_spikes, file_stats, num_steps_for, open_h5
from .remote import BASE_URL, download, download_file, fetch_checksums, md5_of
from .shd import load_dataset
from .split import train_val_split
from .tensors import SpikeTensorDataset, parse_file

__all__ = [
    "Augment",
    "BASE_URL",
    "CACHE_FORMAT_VERSION",
    "FileStats",
    "NUM_UNITS",
    "SPLITS",
    "SpikeTensorDataset",
    "batches",
    "bin_spikes",
    "cache_file_name",
    "default_cache_dir",
    "default_data_dir",
    "download",
    "download_file",
    "fetch_checksums",
    "file_stats",
    "find_file",
    "load_dataset",
    "load_file",
    "md5_of",
    "num_steps_for",
    "open_h5",
    "parse_file",
    "train_val_split",
]
