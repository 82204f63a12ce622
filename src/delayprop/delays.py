r"""Delay kernels: how a spike train is shifted by a learnable, real-valued delay.

A delayed presynaptic signal is written with a kernel over integer lags
:math:`\tau = 0..L` (``L`` = the layer's lag window):

.. math::
    \tilde x_i(t - D) = \sum_{\tau=0}^{L} x_i[t-\tau] \, K(\tau; D)

* ``hard`` (what hardware runs): :math:`K(\tau; D) = [\tau = \mathrm{round}(D)]`;
* ``smooth`` (the DCLS-style forward pass): :math:`K(\tau; D) = G_\sigma(\tau - D)`, with
  :math:`G_\sigma(u) = e^{-u^2/2\sigma^2} / (\sqrt{2\pi}\sigma)`.

In both modes the derivative with respect to the delay is the Gaussian surrogate of method.md,

.. math::
    \partial K / \partial D = G_\sigma(\tau - D) (\tau - D) / \sigma^2 ,

which is what the e-prop delay eligibility uses and what autograd sees: in hard mode the kernel
is built as ``onehot + (G - G.detach())`` (values of the one-hot, derivative of the Gaussian).
"""

from __future__ import annotations

import math
from collections import deque

import torch

from delayprop.errors import ConfigError

MODES = ("hard", "smooth")


def check_delay_settings(max_delay: float, mode: str, sigma: float) -> None:
    """Raise ConfigError on impossible delay settings."""
    if not (isinstance(max_delay, (int, float)) and math.isfinite(max_delay)):
        raise ConfigError(f"max_delay must be a finite number of steps, got {max_delay!r}")
    if max_delay < 0:
        raise ConfigError(f"max_delay must be >= 0 steps, got {max_delay}")
    if int(max_delay) != max_delay:
        raise ConfigError(f"max_delay must be a whole number of steps, got {max_delay}")
    if mode not in MODES:
        raise ConfigError(f"delay mode must be one of {MODES}, got {mode!r}")
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        what = "the smooth forward pass" if mode == "smooth" else "the delay surrogate"
        raise ConfigError(f"sigma must be > 0 for {what}, got {sigma!r}")


def lags(window: int, like: torch.Tensor) -> torch.Tensor:
    """Integer lags 0..window-1 as a tensor with the dtype/device of ``like``."""
    return torch.arange(window, dtype=like.dtype, device=like.device)


def gaussian(u: torch.Tensor, sigma: float) -> torch.Tensor:
    """G_sigma(u) = exp(-u^2 / 2 sigma^2) / (sqrt(2 pi) sigma)."""
    return torch.exp(-0.5 * (u / sigma) ** 2) / (math.sqrt(2 * math.pi) * sigma)


def delay_kernel(
    delay: torch.Tensor, window: int, mode: str, sigma: float, rounded: torch.Tensor | None = None
) -> torch.Tensor:
    """Forward kernel K(tau; D) for every delay: (...,) -> (..., window).

    ``rounded`` (hard mode only) gives the integer delay the spike is shifted by, if it is not
    simply ``round(delay)`` (synaptic + axonal delays are rounded one by one, as hardware
    stores them). Values outside the window are clipped to its ends.
    """
    u = lags(window, delay) - delay.unsqueeze(-1)
    g = gaussian(u, sigma)
    if mode == "smooth":
        return g
    idx = torch.round(delay) if rounded is None else rounded
    idx = idx.clamp(0, window - 1).long()
    onehot = torch.zeros(g.shape, dtype=g.dtype, device=g.device)
    onehot.scatter_(-1, idx.unsqueeze(-1), 1.0)
    if delay.requires_grad:
        # value of the one-hot, derivative of the Gaussian (straight-through surrogate)
        return onehot + (g - g.detach())
    return onehot


def delay_kernel_derivative(delay: torch.Tensor, window: int, sigma: float) -> torch.Tensor:
    """dK/dD = G_sigma(tau - D) (tau - D) / sigma^2: (...,) -> (..., window)."""
    u = lags(window, delay) - delay.unsqueeze(-1)
    return gaussian(u, sigma) * u / sigma**2


class DelayLine:
    """The last ``window`` values of a signal, for step-by-step (online) use.

    ``history()`` returns (B, N, window) with ``[..., tau]`` = the value pushed ``tau`` steps
    ago (tau = 0 is the newest; zeros before the first push). Memory is B x N x window,
    independent of the sequence length. Functional (no in-place writes), so autograd can run
    through it.
    """

    def __init__(self, batch: int, n: int, window: int, dtype, device) -> None:
        self.window = window
        zero = torch.zeros(batch, n, dtype=dtype, device=device)
        self.items: deque[torch.Tensor] = deque([zero] * window, maxlen=window)

    def push(self, value: torch.Tensor) -> None:
        self.items.appendleft(value)

    def history(self) -> torch.Tensor:
        return torch.stack(tuple(self.items), dim=-1)
