"""Validation split held out from the training file: seeded, stratified, or by whole speakers."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

from delayprop.errors import ConfigError

ArrayLike = Union[torch.Tensor, np.ndarray, Sequence[int]]


def _np(a: ArrayLike) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a).astype(np.int64).reshape(-1)


def train_val_split(
    y: ArrayLike,
    speaker: Optional[ArrayLike] = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    by_speaker: bool = False,
    *,
    val_speakers: Optional[Sequence[int]] = None,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Split sample indices into ``(train_idx, val_idx)``, int64 tensors, sorted, disjoint.

    Default: stratified by class, each class contributes ``val_fraction`` of its samples
    (largest-remainder rounding, so the total is ``round(val_fraction * N)``), chosen with
    ``numpy.random.default_rng(seed)``. ``by_speaker=True`` holds out whole speakers instead
    (drawn with the seed until at least ``val_fraction`` of the samples are held out; at least
    one speaker on each side); ``val_speakers`` names them explicitly.
    """
    y = _np(y)
    n = y.size
    try:
        val_fraction = float(val_fraction)
    except (TypeError, ValueError):
        raise ConfigError(f"val_fraction must be a number, got {val_fraction!r}") from None
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    is_val = np.zeros(n, dtype=bool)
    if by_speaker or val_speakers is not None:
        if speaker is None:
            raise ConfigError("a speaker hold-out needs speaker ids")
        spk = _np(speaker)
        if spk.size != n:
            raise ConfigError(f"speaker has {spk.size} entries but y has {n}")
        if (spk < 0).any():
            raise ConfigError("a speaker hold-out needs speaker ids; this file has none")
        speakers, counts = np.unique(spk, return_counts=True)
        if val_speakers is not None:
            chosen = np.asarray(sorted(set(int(s) for s in val_speakers)), dtype=np.int64)
            unknown = np.setdiff1d(chosen, speakers)
            if unknown.size:
                raise ConfigError(f"val_speakers {unknown.tolist()} not in the data")
            if chosen.size == speakers.size:
                raise ConfigError("val_speakers would leave no training speaker")
        else:
            if val_fraction == 0.0:
                chosen = np.zeros(0, dtype=np.int64)
            else:
                if speakers.size < 2:
                    raise ConfigError("a speaker hold-out needs at least two speakers")
                order = rng.permutation(speakers.size)
                target = val_fraction * n
                take, total = [], 0
                for k in order[:-1]:  # never all speakers
                    take.append(speakers[k])
                    total += counts[k]
                    if total >= target:
                        break
                chosen = np.asarray(take, dtype=np.int64)
        is_val = np.isin(spk, chosen)
    elif n and val_fraction > 0:
        classes, inv = np.unique(y, return_inverse=True)
        counts = np.bincount(inv)
        quota = val_fraction * counts
        k = np.floor(quota).astype(np.int64)
        extra = int(round(val_fraction * n)) - int(k.sum())
        if extra > 0:  # largest remainders first, ties broken at random
            order = np.lexsort((rng.random(classes.size), -(quota - k)))
            k[order[:extra]] += 1
        for c in range(classes.size):
            members = np.flatnonzero(inv == c)
            is_val[rng.permutation(members)[: k[c]]] = True
    train_idx = torch.from_numpy(np.flatnonzero(~is_val).astype(np.int64))
    val_idx = torch.from_numpy(np.flatnonzero(is_val).astype(np.int64))
    return train_idx, val_idx
