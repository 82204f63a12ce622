r"""Weight averaging for evaluation: an exponential moving average of a network's parameters.

Training goes on with the raw parameters :math:`\theta_n` (after the optimiser's step ``n``
and the delay clamp); evaluation, checkpoint selection and ``best.pt`` use

.. math::
    \bar\theta_n = d_n \bar\theta_{n-1} + (1 - d_n)\, \theta_n,\qquad
    d_n = \min\!\left(d,\ \frac{1 + n}{10 + n}\right),\qquad \bar\theta_0 = \theta_0,

Polyak averaging with the warm-up of TensorFlow's ``ExponentialMovingAverage`` (``num_updates``),
so the first updates are not tied to the initial weights. :math:`1/(1-d)` is the horizon in
optimiser steps (``train.ema`` 0.999 at SHD's 110-115 batches of 64 per epoch: about 9
epochs). The average of delays clamped to [0, max_delay] stays in that range, so the averaged
network is a valid one; buffers (masks, Gaussian widths, the DCLS baseline's BatchNorm running
statistics) are the live network's. Nothing here touches the learning rule: e-prop's updates
are computed and applied to the raw parameters exactly as without averaging.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator

import torch

from delayprop.errors import ConfigError


class WeightAverage:
    """Exponential moving average of ``net``'s parameters with decay ``decay`` in (0, 1)."""

    def __init__(self, net: torch.nn.Module, decay: float):
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) \
                or not math.isfinite(decay) or not 0 < decay < 1:
            raise ConfigError(f"the weight-average decay must be in (0, 1), got {decay!r}")
        self.net = net
        self.decay = float(decay)
        self.updates = 0
        self.avg = {n: p.detach().clone() for n, p in net.named_parameters()}

    def current_decay(self) -> float:
        """The decay the next :meth:`update` uses (with the warm-up)."""
        n = self.updates + 1
        return min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self) -> None:
        """Fold the network's current parameters into the average (call after each step)."""
        d = self.current_decay()
        for n, p in self.net.named_parameters():
            self.avg[n].lerp_(p.detach(), 1.0 - d)
        self.updates += 1

    @contextmanager
    def swapped(self) -> Iterator[torch.nn.Module]:
        """Within the block the network holds the averaged parameters; the raw ones (bit for
        bit) come back on exit, also after an exception."""
        raw = {}
        with torch.no_grad():
            for n, p in self.net.named_parameters():
                raw[n] = p.detach().clone()
                p.copy_(self.avg[n])
        try:
            yield self.net
        finally:
            with torch.no_grad():
                for n, p in self.net.named_parameters():
                    p.copy_(raw[n])

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates,
                "avg": {n: t.detach().cpu().clone() for n, t in self.avg.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        avg = state["avg"]
        if set(avg) != set(self.avg):
            raise ConfigError("the checkpoint's weight average is of another network "
                              f"(parameters {sorted(avg)} vs {sorted(self.avg)})")
        with torch.no_grad():
            for n, t in avg.items():
                if t.shape != self.avg[n].shape:
                    raise ConfigError(f"the checkpoint's weight average of {n} has shape "
                                      f"{tuple(t.shape)}, the network {tuple(self.avg[n].shape)}")
                self.avg[n].copy_(t)
        self.updates = int(state["updates"])
