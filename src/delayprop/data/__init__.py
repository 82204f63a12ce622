"""Data: SHD / SSC download, checks, binning to dense spike tensors, caching, splits, batches.

Example::

    from delayprop.data import load_dataset, train_val_split, batches
    ds = load_dataset("shd", "train", data_dir="../shared/data/shd-repro")  # x uint8 (N, 140, 140)
    tr, va = train_val_split(ds.y, ds.speaker, val_fraction=0.1, seed=0)
    for xb, yb in batches(ds.subset(tr), batch_size=256, seed=epoch):   # xb float (B, T, C)
        ...
"""

from .batching import Augment, batches
from .paths import default_cache_dir, default_data_dir
from .reader import NUM_UNITS, bin_spikes, open_h5
from .remote import BASE_URL, download, download_file, fetch_checksums, md5_of
from .shd import (
    CACHE_FORMAT_VERSION,
    SPLITS,
    FileStats,
    SpikeTensorDataset,
    cache_file_name,
    file_stats,
    find_file,
    load_dataset,
    load_file,
    num_steps_for,
    parse_file,
)
from .split import train_val_split

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
