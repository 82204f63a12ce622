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
from torch.nn import functional as F

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
    if mode == "smooth":
        return gaussian(lags(window, delay) - delay.unsqueeze(-1), sigma)
    idx = torch.round(delay) if rounded is None else rounded
    idx = idx.clamp(0, window - 1).long()
    onehot = delay.new_zeros(*delay.shape, window)
    onehot.scatter_(-1, idx.unsqueeze(-1), 1.0)
    if delay.requires_grad:
        # value of the one-hot, derivative of the Gaussian (straight-through surrogate)
        g = gaussian(lags(window, delay) - delay.unsqueeze(-1), sigma)
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


# --------------------------------------------------------------------------------------------
# Fast whole-sequence kernels: the delayed sum and the lagged correlation by FFT
#
# Both are a (post x pre) family of short convolutions over the lags 0..L (L = window - 1).
# Done directly they cost window x a dense layer's multiply-adds. Over blocks of c time steps
# (overlap-save, FFT length n = c + L), one FFT of every presynaptic and postsynaptic signal
# turns them into one complex (post x pre) product per frequency: n/2 + 1 frequencies per c
# steps, 4 real multiply-adds each, i.e. about 2 (1 + L/c) x a dense layer, whatever the
# window, the delays or the delay mode (hard or smooth). Exact up to floating-point rounding.

FFT_MIN_WINDOW = 8
"""Below this many lags the direct sums are at least as cheap as the FFT route."""


def fast_fft_size(n: int) -> int:
    """Smallest m >= n whose only prime factors are 2, 3 and 5 (fast FFT lengths)."""
    m = max(1, int(n))
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def fft_block(steps: int, window: int, block: int | None = None) -> tuple[int, int]:
    """Block length c and FFT length n = c + window - 1 for ``steps`` time steps.

    ``block`` (default max(4 window, 64)) is the wanted block length; it is capped at
    ``steps`` and then grown to fill the next fast FFT length.
    """
    lag = window - 1
    want = max(4 * window, 64) if block is None else int(block)
    c = max(1, min(int(steps), want))
    n = fast_fft_size(c + lag)
    return n - lag, n


def use_fft(method: str, dtype: torch.dtype, window: int) -> bool:
    """Whether the FFT route applies: ``method`` 'fft', 'direct' or 'auto'.

    'auto' takes it for float32 with at least FFT_MIN_WINDOW lags; float64 stays on the
    direct sums, so the float64 checks against autograd see the plain reference arithmetic.
    """
    if method not in ("auto", "fft", "direct"):
        raise ConfigError(f"method must be 'auto', 'fft' or 'direct', got {method!r}")
    if method == "auto":
        return dtype == torch.float32 and window >= FFT_MIN_WINDOW
    return method == "fft"


def _blocks(sig: torch.Tensor, history: torch.Tensor | None, lag: int, c: int,
            n: int) -> torch.Tensor:
    """Overlapping blocks of a time-major signal (T, B, N), each with ``lag`` steps of past:
    a view (n, nblk, B, N) with [m, k] = sig[k c - lag + m]; ``history`` (lag, B, N) is the
    signal before t = 0 (zeros if None)."""
    T, B, N = sig.shape
    nblk = -(-T // c)
    parts = [sig.new_zeros(lag, B, N) if history is None else history, sig]
    if nblk * c > T:
        parts.append(sig.new_zeros(nblk * c - T, B, N))
    padded = torch.cat(parts, 0) if len(parts) > 1 else sig.contiguous()
    s0 = B * N
    return padded.as_strided((n, nblk, B, N), (s0, c * s0, N, 1))


def delayed_sum_fft(x: torch.Tensor, wk: torch.Tensor, history: torch.Tensor | None = None,
                    block: int | None = None) -> torch.Tensor:
    """I[t, b, j] = sum_{i, tau} wk[j, i, tau] x[t - tau, b, i] by blocked FFT (time-major).

    x (T, B, pre); wk (post, pre, window); history (window - 1, B, pre): x before t = 0
    (zeros if None). Returns (T, B, post). Differentiable in x and wk.
    """
    T, B, pre = x.shape
    post, _, window = wk.shape
    lag = window - 1
    c, n = fft_block(T, window, block)
    xb = _blocks(x, history, lag, c, n)
    nblk, nf = xb.shape[1], n // 2 + 1
    spec_x = torch.fft.rfft(xb, n=n, dim=0).reshape(nf, nblk * B, pre)
    spec_k = torch.fft.rfft(wk, n=n, dim=-1).permute(2, 1, 0).contiguous()  # (nf, pre, post)
    spec_i = torch.bmm(spec_x, spec_k).reshape(nf, nblk, B, post)
    out = torch.fft.irfft(spec_i, n=n, dim=0)[lag:]  # (c, nblk, B, post)
    if nblk > 1:
        out = out.transpose(0, 1).reshape(nblk * c, B, post)
    else:
        out = out.reshape(c, B, post)
    return out[:T]


def lagged_correlation_fft(h: torch.Tensor, xbar: torch.Tensor, window: int,
                           history: torch.Tensor | None = None,
                           block: int | None = None) -> torch.Tensor:
    """C[j, i, tau] = sum_{t, b} h[t, b, j] xbar[t - tau, b, i], tau < window, by blocked FFT.

    Time-major h (T, B, post), xbar (T, B, pre); history (window - 1, B, pre): xbar before
    t = 0 (zeros if None). Returns (post, pre, window).
    """
    T, B, post = h.shape
    pre = xbar.shape[-1]
    lag = window - 1
    c, n = fft_block(T, window, block)
    xb = _blocks(xbar, history, lag, c, n)
    nblk, nf = xb.shape[1], n // 2 + 1
    spec_x = torch.fft.rfft(xb, n=n, dim=0).reshape(nf, nblk * B, pre)
    hp = h if nblk * c == T else torch.cat([h, h.new_zeros(nblk * c - T, B, post)], 0)
    # block k of h starts at position 0 of its FFT window (lag steps before the block's own
    # position in xb), so the circular correlation comes out shifted by -lag
    hb = hp.reshape(nblk, c, B, post).transpose(0, 1)
    spec_h = torch.fft.rfft(hb, n=n, dim=0).reshape(nf, nblk * B, post)
    # (nf, pre, post) = sum_b conj(X) H; the conjugate is materialised once, as the batched
    # product would otherwise copy it matrix by matrix
    cross_t = torch.bmm(spec_x.conj().resolve_conj().mT, spec_h)
    circ = torch.fft.irfft(cross_t, n=n, dim=0)  # circ[m] = C[(m + lag) mod n], transposed
    idx = torch.arange(-lag, 1, device=h.device) % n
    return circ.index_select(0, idx).permute(2, 1, 0).contiguous()


def delayed_sum(x: torch.Tensor, wk: torch.Tensor, history: torch.Tensor | None = None,
                method: str = "auto") -> torch.Tensor:
    """Currents of a synapse group over a sequence, time-major: x (T, B, pre) -> (T, B, post),
    I[t, j] = sum_{i, tau} wk[j, i, tau] x[t - tau, i]; ``history`` (window - 1, B, pre) is x
    before t = 0 (zeros if None). ``method`` as in :func:`use_fft`. Differentiable."""
    window = wk.shape[-1]
    if window == 1:
        return x @ wk[..., 0].t()
    if use_fft(method, x.dtype, window):
        return delayed_sum_fft(x, wk, history)
    lag = window - 1
    front = x.new_zeros(lag, *x.shape[1:]) if history is None else history
    xt = torch.cat([front, x], 0).permute(1, 2, 0)  # (B, pre, T + lag)
    # conv1d correlates: out[t] = sum_k w[k] in[t + k]; flipping the lags makes it causal.
    return F.conv1d(xt, wk.flip(-1)).permute(2, 0, 1)


def lagged_correlation_tm(h: torch.Tensor, xbar: torch.Tensor, window: int,
                          history: torch.Tensor | None = None,
                          method: str = "auto") -> torch.Tensor:
    """C[j, i, tau] = sum_{t, b} h[t, b, j] xbar[t - tau, b, i] (time-major inputs), (post, pre,
    window); ``history`` (window - 1, B, pre) is xbar before t = 0 (zeros if None)."""
    T, B, post = h.shape
    pre = xbar.shape[-1]
    hf = h.reshape(T * B, post).t()
    if window == 1:
        return (hf @ xbar.reshape(T * B, pre)).unsqueeze(-1)
    if use_fft(method, h.dtype, window):
        return lagged_correlation_fft(h, xbar, window, history)
    lag = window - 1
    front = xbar.new_zeros(lag, B, pre) if history is None else history
    xp = torch.cat([front, xbar], 0)
    corr = h.new_empty(post, pre, window)
    for tau in range(window):
        corr[..., tau] = hf @ xp[lag - tau : lag - tau + T].reshape(T * B, pre)
    return corr


def kernel_cost(steps: int, n_pre: int, n_post: int, window: int,
                dtype: torch.dtype = torch.float32, method: str = "auto") -> dict:
    """Real multiply-adds per sample of one synapse group's whole-sequence kernels (the
    forward currents and the lagged correlation), with the route ``use_fft`` picks.

    FFT route: n/2 + 1 complex (pre x post) products per block of c steps, 4 real
    multiply-adds each (the FFTs themselves, O(n log n) per signal, are not counted);
    direct route: one multiply-add per synapse and lag per step.
    """
    if window > 1 and use_fft(method, dtype, window):
        c, n = fft_block(steps, window)
        nblk = -(-steps // c)
        macs = 4 * nblk * (n // 2 + 1) * n_pre * n_post
        model = "blocked FFT: 4 (n/2+1) pre*post per block of c steps"
    else:
        macs = steps * n_pre * n_post * window
        model = "direct: pre*post*window per step"
    return {"current": macs, "correlation": macs, "model": model}
