"""The binned spike tensors every loader returns, and the parse of a file into them.

:class:`SpikeTensorDataset` holds one split as dense uint8 counts (N, T, C) with labels and
speaker ids; :func:`parse_file` reads, checks and bins an SHD-format file into one, without
a cache (:func:`delayprop.data.cache.load_file` adds the cache).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from delayprop.errors import DataError
from delayprop.memory import check_memory

from .paths import PathLike
from .reader import bin_spikes, check_settings, iter_chunks, open_h5, read_raw

# Memory of one binning block: n * T * C int64 counts of at most this many bytes.
_BLOCK_BYTES = 64 << 20

Indices = Union[torch.Tensor, np.ndarray, Sequence[int], slice]


@dataclass
class SpikeTensorDataset:
    """Binned spike trains of one file.

    ``x`` uint8 (N, T, C) spike counts per step and channel (clipped to 1 if ``binary``,
    saturating at 255); ``y`` int64 (N,) class; ``speaker`` int64 (N,) speaker id or -1.
    """

    x: torch.Tensor
    y: torch.Tensor
    speaker: torch.Tensor
    dt: float
    num_classes: int
    class_names: List[str]
    source: str
    max_time: float = float("nan")
    binary: bool = False
    dropped_spikes: int = 0  # spikes at t >= max_time, not in x
    cache_path: Optional[str] = None
    from_cache: bool = False
    meta: Dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int):
        """``(x[i], y[i])``: uint8 (T, C) and an int64 scalar (so it works with a DataLoader)."""
        return self.x[i], self.y[i]

    @property
    def num_steps(self) -> int:
        """T, the number of time steps."""
        return int(self.x.shape[1])

    @property
    def channels(self) -> int:
        """C, the number of input channels."""
        return int(self.x.shape[2])

    def subset(self, indices: Indices) -> "SpikeTensorDataset":
        """The samples at ``indices`` (index tensor/array/list, boolean mask or slice)."""
        if not isinstance(indices, slice):
            idx = torch.as_tensor(np.asarray(indices))
            if idx.dtype != torch.bool:
                idx = idx.long()
            indices = idx
        return replace(
            self, x=self.x[indices], y=self.y[indices], speaker=self.speaker[indices],
            cache_path=None, from_cache=False, meta=dict(self.meta),
        )

    def __repr__(self) -> str:
        return (
            f"SpikeTensorDataset(N={len(self)}, T={self.num_steps}, C={self.channels}, "
            f"dt={self.dt}, classes={self.num_classes}, binary={self.binary}, "
            f"source={self.source!r})"
        )


def parse_file(
    path: PathLike,
    dt: float = 0.01,
    max_time: float = 1.4,
    channels: int = 140,
    binary: bool = False,
    progress: bool = True,
) -> SpikeTensorDataset:
    """Read, check and bin an SHD-format file (no cache). x is uint8 (N, T, channels)."""
    from tqdm.auto import tqdm

    path = Path(path)
    steps = check_settings(dt, max_time, channels)
    t0 = time.perf_counter()
    with open_h5(path, progress=progress) as f:
        raw = read_raw(f, path)
        n = len(raw)
        check_memory(n * steps * channels + _BLOCK_BYTES * 3,
                     f"{path}: binning {n} samples x {steps} steps x {channels} channels "
                     "(uint8)", error=DataError)
        x = np.zeros((n, steps, channels), dtype=np.uint8)
        chunk = max(1, _BLOCK_BYTES // (8 * steps * channels))
        dropped = 0
        total_spikes = 0
        with tqdm(total=n, unit="sample", desc=f"binning {path.name}", disable=not progress,
                  leave=False) as bar:
            for start, times, units, lengths in iter_chunks(raw, chunk):
                block, d = bin_spikes(times, units, lengths, dt, steps, channels, binary)
                x[start:start + len(lengths)] = block
                dropped += d
                total_spikes += int(lengths.sum())
                bar.update(len(lengths))
    return SpikeTensorDataset(
        x=torch.from_numpy(x), y=torch.from_numpy(raw.labels),
        speaker=torch.from_numpy(raw.speaker), dt=float(dt), num_classes=raw.num_classes,
        class_names=raw.class_names, source=str(path), max_time=float(max_time), binary=binary,
        dropped_spikes=dropped,
        meta={"spikes": total_spikes, "parse_seconds": time.perf_counter() - t0},
    )
