"""Mini-batches from a :class:`SpikeTensorDataset`, with optional SHD-style augmentation.

The dataset stays uint8 on the CPU; each batch is gathered, augmented (on the CPU, with a
seeded generator), moved to the device and only then converted to the compute dtype, so the
transfer is 4x smaller than float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional, Tuple, Union

import torch

from delayprop.errors import ConfigError

from .tensors import SpikeTensorDataset


@dataclass(frozen=True)
class Augment:
    """Random augmentation of spike tensors, as used for SHD (e.g. Nowotny et al. 2022).

    - ``channel_shift``: each sample is shifted along the channel axis by a uniform random
      integer in [-channel_shift, channel_shift] channels (of the pooled channels; spikes
      shifted out are dropped, zeros shifted in).
    - ``time_jitter``: each spike moves independently by round(N(0, time_jitter)) time steps;
      spikes leaving [0, T) are dropped.
    - ``time_shift``: each sample is shifted in time by a uniform random integer in
      [-time_shift, time_shift] steps.
    """

    channel_shift: int = 0
    time_jitter: float = 0.0
    time_shift: int = 0

    def __post_init__(self) -> None:
        for name in ("channel_shift", "time_shift"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"Augment.{name} must be an integer >= 0, got {v!r}")
        if not (float(self.time_jitter) >= 0.0):
            raise ConfigError(f"Augment.time_jitter must be >= 0, got {self.time_jitter!r}")

    @property
    def active(self) -> bool:
        return bool(self.channel_shift or self.time_jitter > 0 or self.time_shift)

    def __call__(
        self, x: torch.Tensor, generator: Optional[torch.Generator] = None, max_count: float = 255
    ) -> torch.Tensor:
        """Augment a float batch x (B, T, C) on its device; counts are clipped to ``max_count``."""
        if not self.active or x.numel() == 0:
            return x
        b, t, c = x.shape
        if self.channel_shift:
            k = self.channel_shift
            s = torch.randint(-k, k + 1, (b,), generator=generator)
            x = _shift(x, s.to(x.device), dim=2)
        if self.time_shift:
            s = torch.randint(-self.time_shift, self.time_shift + 1, (b,), generator=generator)
            x = _shift(x, s.to(x.device), dim=1)
        if self.time_jitter > 0:
            x = _jitter(x, float(self.time_jitter), generator)
        return x.clamp_(max=max_count)


def _shift(x: torch.Tensor, shift: torch.Tensor, dim: int) -> torch.Tensor:
    """out[b, ..., i, ...] = x[b, ..., i - shift[b], ...] along ``dim`` (1 or 2), zero-filled."""
    size = x.shape[dim]
    src = torch.arange(size, device=x.device)[None, :] - shift[:, None]  # (B, size)
    valid = (src >= 0) & (src < size)
    src = src.clamp(0, size - 1)
    if dim == 2:
        idx = src[:, None, :].expand_as(x)
        mask = valid[:, None, :]
    else:
        idx = src[:, :, None].expand_as(x)
        mask = valid[:, :, None]
    return torch.gather(x, dim, idx) * mask.to(x.dtype)


def _jitter(x: torch.Tensor, std: float, generator: Optional[torch.Generator]) -> torch.Tensor:
    """Move every spike (a count of k is k spikes) by round(N(0, std)) steps."""
    b, t, c = x.shape
    nz = x.nonzero()  # (S, 3)
    counts = x[nz[:, 0], nz[:, 1], nz[:, 2]].round().long()
    nz = nz.repeat_interleave(counts, dim=0)
    noise = torch.randn(nz.shape[0], generator=generator).mul_(std).round_().long()
    new_t = nz[:, 1] + noise.to(x.device)
    keep = (new_t >= 0) & (new_t < t)
    out = torch.zeros_like(x)
    out.index_put_(
        (nz[keep, 0], new_t[keep], nz[keep, 2]),
        torch.ones(int(keep.sum()), dtype=x.dtype, device=x.device),
        accumulate=True,
    )
    return out


def batches(
    ds: SpikeTensorDataset,
    batch_size: int = 256,
    shuffle: bool = True,
    seed: Optional[int] = None,
    device: Union[str, torch.device] = "cpu",
    dtype: torch.dtype = torch.float32,
    augment: Optional[Augment] = None,
    drop_last: bool = False,
) -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(xb, yb)``: xb ``dtype`` (B, T, C) on ``device``, yb int64 (B,).

    ``shuffle`` permutes with ``seed`` (pass the epoch number for a new, reproducible order
    each epoch; None draws from torch's global generator). ``augment`` (off by default) is
    applied per batch with the same seeded generator. The last batch is smaller unless
    ``drop_last``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    n = len(ds)
    gen = torch.Generator()
    if seed is None:
        gen.manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
    else:
        gen.manual_seed(int(seed))
    order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
    device = torch.device(device)
    max_count = 1.0 if ds.binary else 255.0
    use_aug = augment is not None and augment.active
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        xb = ds.x.index_select(0, idx) if shuffle else ds.x[start:start + batch_size]
        yb = ds.y.index_select(0, idx)
        if use_aug:
            xb = augment(xb.to(torch.float32), gen, max_count)
            xb = xb.to(device=device, dtype=dtype)
        else:
            xb = xb.to(device=device).to(dtype)
        yield xb, yb.to(device)
