"""A synthetic task whose class is carried only by the relative timing of spikes.

Each sample has two signal channels, A and B, each spiking once: A at a random time, B a
class-specific offset later (or earlier). Everything else (which channels spike, how often,
absolute times) is the same for every class, so firing counts carry no information. With a
short membrane time constant a weights-only feedforward network cannot tell the classes
apart; a neuron whose delays align A and B detects its offset by coincidence. Optional noise
channels add background Poisson spikes.
"""

from __future__ import annotations

import torch

from delayprop.errors import ConfigError

from .tensors import SpikeTensorDataset


def timing_task(
    n_samples: int,
    offsets: tuple[int, ...] = (-6, -3, 3, 6),
    steps: int = 40,
    noise_channels: int = 8,
    noise_rate: float = 0.02,
    seed: int = 0,
) -> SpikeTensorDataset:
    """Generate the task: x uint8 (N, steps, 2 + noise_channels), y = index into ``offsets``.

    Channel 0 (A) spikes at t_A, channel 1 (B) at t_A + offsets[y]; t_A is drawn so both fit.
    """
    if n_samples <= 0:
        raise ConfigError(f"n_samples must be positive, got {n_samples}")
    if len(set(offsets)) < 2:
        raise ConfigError("offsets must hold at least two different values")
    span = max(offsets) - min(offsets)
    lo, hi = max(0, -min(offsets)), steps - 1 - max(0, max(offsets))
    if hi < lo or steps <= span:
        raise ConfigError(f"{steps} steps are too few for offsets {offsets}")
    if not 0 <= noise_rate < 1:
        raise ConfigError(f"noise_rate must be in [0, 1), got {noise_rate}")
    g = torch.Generator().manual_seed(seed)
    n_ch = 2 + noise_channels
    y = torch.randint(0, len(offsets), (n_samples,), generator=g)
    t_a = torch.randint(lo, hi + 1, (n_samples,), generator=g)
    t_b = t_a + torch.tensor(offsets)[y]
    x = (torch.rand(n_samples, steps, n_ch, generator=g) < noise_rate).to(torch.uint8)
    x[:, :, :2] = 0
    idx = torch.arange(n_samples)
    x[idx, t_a, 0] = 1
    x[idx, t_b, 1] = 1
    return SpikeTensorDataset(
        x=x, y=y, speaker=torch.full((n_samples,), -1, dtype=torch.long), dt=0.01,
        num_classes=len(offsets), class_names=[f"B-A={o:+d}" for o in offsets],
        source=f"timing_task(seed={seed})",
    )
