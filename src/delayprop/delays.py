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
from delayprop.workspace import clear, kept

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
    """G_sigma(u) = exp(-u^2 / 2 sigma^2) / (sqrt(2 pi) sigma).

    The exponent is clamped at :func:`exp_floor`: far from the centre (|u| > 13 sigma in
    float32) exp would return subnormal numbers, which cost the CPU ~50x more per operation
    in everything that touches them; the clamped values (below 1e-30 in float32, 1e-300 in
    float64) are far below the dtype's resolution of the kernel's peak."""
    return torch.exp((-0.5 * (u / sigma) ** 2).clamp(min=exp_floor(u.dtype))) / (
        math.sqrt(2 * math.pi) * sigma)


def exp_floor(dtype: torch.dtype) -> float:
    """A floor for exponents whose exp, and products of it with a few factors of order
    1e-3..1e3, stay normal numbers: log(smallest normal) + 16."""
    return math.log(torch.finfo(dtype).tiny) + 16.0


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
    if torch.is_grad_enabled() and u.requires_grad:
        return gaussian(u, sigma) * u / sigma**2
    # the same arithmetic as gaussian() in place, in one buffer besides u
    g = torch.div(u, sigma).square_().mul_(-0.5).clamp_(min=exp_floor(u.dtype)).exp_()
    return g.div_(math.sqrt(2 * math.pi) * sigma).mul_(u).div_(sigma**2)


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
# Fast whole-sequence kernels: the delayed sum and the lagged correlation in the frequency domain
#
# Both are a (post x pre) family of short convolutions over the lags 0..L (L = window - 1).
# Done directly they cost window x a dense layer's multiply-adds. Over blocks of c time steps
# (overlap-save, transform length n = c + L) a real DFT of every presynaptic and postsynaptic
# signal turns them into one complex (pre x post) product per frequency, nf = n//2 + 1 of
# them per block. The DFTs are products with small (n x nf) cosine/sine matrices, so that every
# step is a large real matrix product on time-major data, with no transposition in between
# (torch.fft, tried first, leaves the transformed axis innermost, and the copies needed
# around it cost more than the transforms on this 2-core CPU).
# Exact up to floating-point rounding, for any window, delays and delay mode.

SPECTRAL_MIN_WINDOW = 8
"""'auto' keeps the direct sums below this many lags: the spectral route costs about 3-4x a
dense layer's multiply-adds (:func:`kernel_cost`), the direct sums window x."""


def block_size(steps: int, window: int, block: int | None = None) -> tuple[int, int]:
    """Block length c and transform length n = c + window - 1 for ``steps`` time steps.

    ``block`` defaults to max(2 window, 32), which about minimises the multiply-adds per step
    (the DFT costs grow with n, the overlap with L / c); it is capped at ``steps``.
    """
    want = max(2 * window, 32) if block is None else int(block)
    c = max(1, min(int(steps), want))
    return c, c + window - 1


def even_chunk(steps: int, window: int) -> int:
    """Streaming e-prop's default chunk: about :func:`block_size`'s block, adjusted so that
    the chunks of a ``steps``-long sequence are equal (the last one at most a few steps
    shorter): ceil(T / ceil(T / c))."""
    pref = block_size(steps, window)[0]
    return -(-steps // -(-steps // pref))


def use_spectral(method: str, dtype: torch.dtype, window: int) -> bool:
    """Whether the spectral route applies: ``method`` 'spectral', 'direct' or 'auto'.

    'auto' takes it for float32 with at least SPECTRAL_MIN_WINDOW lags; float64 stays on the
    direct sums, so the float64 checks against autograd see the plain reference arithmetic.
    """
    if method not in ("auto", "spectral", "direct"):
        raise ConfigError(f"method must be 'auto', 'spectral' or 'direct', got {method!r}")
    if method == "auto":
        return dtype == torch.float32 and window >= SPECTRAL_MIN_WINDOW
    return method == "spectral"


_DFT_CACHE: dict[tuple, tuple[torch.Tensor, ...]] = {}


def dft_matrices(n: int, dtype: torch.dtype, device: torch.device | str) -> tuple[
    torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor
]:
    """Real DFT of length n as matrices (computed in float64, cached).

    Returns (fr, fi, ir, ii): fr, fi (nf, n) give Re X = fr @ x, Im X = fi @ x; ir, ii (n, nf)
    invert a Hermitian spectrum, x = ir @ Re X + ii @ Im X.
    """
    key = (n, dtype, str(device))
    if key not in _DFT_CACHE:
        nf = n // 2 + 1
        k = torch.arange(nf, dtype=torch.float64)
        m = torch.arange(n, dtype=torch.float64)
        ang = 2 * math.pi * torch.outer(k, m).remainder_(n) / n  # (nf, n), reduced mod n
        cos, sin = torch.cos(ang), torch.sin(ang)
        w = torch.full((nf,), 2.0, dtype=torch.float64)
        w[0] = 1.0
        if n % 2 == 0:
            w[-1] = 1.0
        mats = (cos, -sin, (cos * w[:, None] / n).t(), (-sin * w[:, None] / n).t())
        if len(_DFT_CACHE) > 64:
            _DFT_CACHE.clear()
        _DFT_CACHE[key] = tuple(t.to(dtype=dtype, device=device).contiguous() for t in mats)
    return _DFT_CACHE[key]


def dft_stacked(n: int, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """[fr; fi] of :func:`dft_matrices` as one (2 nf, n) matrix (cached): Re and Im of a
    spectrum in one product, which reads the signal once (about 25% faster than two products
    at the DCLS layer sizes)."""
    key = (n, dtype, str(device), "stacked")
    if key not in _DFT_CACHE:
        fr, fi, _, _ = dft_matrices(n, dtype, device)
        _DFT_CACHE[key] = (torch.cat([fr, fi], 0).contiguous(),)
    return _DFT_CACHE[key][0]


def idft_stacked(n: int, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """[ir, ii] of :func:`dft_matrices` as one (n, 2 nf) matrix (cached): the inverse of a
    spectrum stored as [Re; Im] (2 nf rows) in one product."""
    key = (n, dtype, str(device), "inverse stacked")
    if key not in _DFT_CACHE:
        _, _, ir, ii = dft_matrices(n, dtype, device)
        _DFT_CACHE[key] = (torch.cat([ir, ii], 1).contiguous(),)
    return _DFT_CACHE[key][0]


def _block_pieces(sig: torch.Tensor, history: torch.Tensor | None, start: int, n: int
                  ) -> list[tuple[int, torch.Tensor, bool]]:
    """The parts of the window [start, start + n) of history ++ sig that are not zero:
    (column in the window, piece (rows, B, N), whether it is history)."""
    T = sig.shape[0]
    lag = 0 if history is None else history.shape[0]
    parts = []
    if history is not None and start < 0:
        a, b = start + lag, min(lag, start + lag + n)
        if b > a:
            parts.append((a - start - lag, history[a:b], True))
    lo, hi = max(start, 0), min(start + n, T)
    if hi > lo:
        # the whole signal as it is, not as a slice: a slice's backward allocates a zero
        # tensor of the full size and copies into it
        parts.append((lo - start, sig if (lo, hi) == (0, T) else sig[lo:hi], False))
    return parts


class _SpectralSum(torch.autograd.Function):
    """The frequency-domain delayed sum of :func:`delayed_sum_spectral` as one autograd node.

    Per block: [Xr; Xi] = F2 x (one product), Y = X K with three real products (Gauss) written
    into one [Yr; Yi] buffer, out = [ir, ii] Y (one product). The backward pass runs the same
    products transposed: [gYr; gYi] = [ir, ii]^T g (one product), the kernel-spectrum
    gradients (three batched products), the spectrum gradient of x (three) and F2^T of it
    (one); without autograd's bookkeeping between them (gradient sums, stacks, slices).
    """

    @staticmethod
    def forward(ctx, x, history, k2, steps: int, c: int, n: int,
                lag: int):  # type: ignore[override]
        B, pre = x.shape[1], x.shape[2]
        nf, post = k2.shape[1], k2.shape[3]
        kr = k2[0]
        k_sum, k_dif = k2[0] + k2[1], k2[1] - k2[0]
        f2 = dft_stacked(n, x.dtype, x.device)
        i2 = idft_stacked(n, x.dtype, x.device)[lag:]  # the c wrap-free outputs of a block
        nblk = -(-steps // c)
        out = x.new_empty(nblk * c, B, post)
        xs = x.new_empty(nblk, 2, nf, B, pre)  # [Xr; Xi] of every block, kept for backward
        y = x.new_empty(2, nf, B, post)
        for k in range(nblk):
            _block_spectrum(f2, x, history, k * c - lag, n, out=xs[k].view(2 * nf, B * pre))
            xr, xi = xs[k, 0], xs[k, 1]
            # k1 written once and copied once (baddbmm with out= would copy its input twice)
            torch.bmm(xr + xi, kr, out=y[0])
            y[1].copy_(y[0])
            y[0].baddbmm_(xi, k_sum, alpha=-1.0)
            y[1].baddbmm_(xr, k_dif)
            torch.mm(i2, y.view(2 * nf, B * post), out=out[k * c:(k + 1) * c].view(c, B * post))
        ctx.save_for_backward(x, history, kr, k_sum, k_dif, xs)
        ctx.k2_shape = k2.shape
        ctx.sizes = (steps, c, n, lag)
        return out if out.shape[0] == steps else out[:steps]

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        x, history, kr, k_sum, k_dif, xs = ctx.saved_tensors
        steps, c, n, lag = ctx.sizes
        B, pre = x.shape[1], x.shape[2]
        nf, post = kr.shape[0], kr.shape[2]
        f2 = dft_stacked(n, x.dtype, x.device)
        i2 = idft_stacked(n, x.dtype, x.device)[lag:]
        need_x, need_h, need_k = ctx.needs_input_grad[:3]
        # contiguous, whatever x's strides; no zero fill where one block covers all of x
        whole = xs.shape[0] == 1 and history is None
        g_x = (x.new_empty(x.shape) if whole else x.new_zeros(x.shape)) if need_x else None
        g_h = history.new_zeros(history.shape) if need_h else None
        g_kr = torch.zeros_like(kr) if need_k else None
        g_ks = torch.zeros_like(k_sum) if need_k else None
        g_kd = torch.zeros_like(k_dif) if need_k else None
        gy = grad.new_empty(2 * nf, B * post)
        gxs = grad.new_empty(2, nf, B, pre) if (need_x or need_h) else None
        for k in range(xs.shape[0]):
            rows = min(c, steps - k * c)
            g_k = grad[k * c:k * c + rows].reshape(rows, B * post)
            torch.mm(i2[:rows].t(), g_k, out=gy)
            g_yr, g_yi = gy.view(2, nf, B, post).unbind(0)
            g_k1 = g_yr + g_yi
            xr, xi = xs[k, 0], xs[k, 1]
            if need_k:
                g_kr.baddbmm_((xr + xi).transpose(1, 2), g_k1)
                g_ks.baddbmm_(xi.transpose(1, 2), g_yr, alpha=-1.0)
                g_kd.baddbmm_(xr.transpose(1, 2), g_yi)
            if gxs is None:
                continue
            torch.bmm(g_k1, kr.transpose(1, 2), out=gxs[0])
            gxs[1].copy_(gxs[0])
            gxs[0].baddbmm_(g_yi, k_dif.transpose(1, 2))
            gxs[1].baddbmm_(g_yr, k_sum.transpose(1, 2), alpha=-1.0)
            gm = gxs.view(2 * nf, B * pre)
            for col, piece, is_hist in _block_pieces(x, history, k * c - lag, n):
                target = g_h if is_hist else g_x
                if target is None:
                    continue
                # the piece's rows of the full signal, as (rows, B * pre) of the target
                if is_hist:
                    a = k * c - lag + history.shape[0] + col
                else:
                    a = max(k * c - lag, 0)
                dst = target[a:a + piece.shape[0]].view(piece.shape[0], B * pre)
                f2_t = f2[:, col:col + piece.shape[0]].t()
                if whole:
                    torch.mm(f2_t, gm, out=dst)
                else:
                    dst.addmm_(f2_t, gm)
        g_k2 = None
        if need_k:  # Re K enters as kr, k_sum = kr + ki and k_dif = ki - kr; Im K as both
            g_k2 = grad.new_empty(ctx.k2_shape)
            torch.add(g_ks, g_kd, out=g_k2[1])
            torch.sub(g_ks, g_kd, out=g_k2[0]).add_(g_kr)
        return g_x, g_h, g_k2, None, None, None, None


def _block_spectrum(f2: torch.Tensor, sig: torch.Tensor,
                    history: torch.Tensor | None, start: int, n: int,
                    out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Re and Im of the DFT of the window [start, start + n) of the time-major signal
    history ++ sig (history: the ``lag`` steps before t = 0, zeros if None; zeros after the
    end), as products with the matching columns of the stacked DFT matrix f2
    (:func:`dft_stacked`; no concatenation of the signal), written into ``out`` (2 nf,
    B * N) if given. Returns two (nf, B * N) matrices, views of one (2 nf, B * N) product."""
    width = sig.shape[1] * sig.shape[2]
    parts = _block_pieces(sig, history, start, n)
    for j, (col, piece, _) in enumerate(parts):
        m = piece.reshape(piece.shape[0], width)
        cols = f2[:, col:col + piece.shape[0]]
        if j > 0:
            out.addmm_(cols, m)
        elif out is None:
            out = cols @ m
        else:
            torch.mm(cols, m, out=out)
    if not parts:
        out = sig.new_zeros(f2.shape[0], width) if out is None else out.zero_()
    # unbind: one backward node that stacks the two gradients (two slices would each give
    # theirs a zero tensor of the full size)
    re, im = out.view(2, f2.shape[0] // 2, width).unbind(0)
    return re, im


def kernel_spectrum_stacked(wk: torch.Tensor, n: int) -> torch.Tensor:
    """Length-n real DFT of the kernels wk (post, pre, window) as [Re K; Im K], (2, nf, pre,
    post), one product (only the first ``window`` taps are non-zero). Differentiable in wk."""
    post, pre, window = wk.shape
    f2 = dft_stacked(n, wk.dtype, wk.device)
    # a copy unless wk is a view of a (window, pre, post) tensor
    wk_t = wk.permute(2, 1, 0).reshape(window, pre * post)
    return (f2[:, :window] @ wk_t).view(2, f2.shape[0] // 2, pre, post)


def kernel_spectrum(wk: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor,
                                                         torch.Tensor]:
    """:func:`kernel_spectrum_stacked` as the three (nf, pre, post) factors of the Gauss
    complex product: Re K, Re K + Im K, Im K - Re K. Differentiable in wk."""
    kr, ki = kernel_spectrum_stacked(wk, n).unbind(0)
    return kr, kr + ki, ki - kr


def delayed_sum_spectral(x: torch.Tensor, wk: torch.Tensor,
                         history: torch.Tensor | None = None,
                         block: int | None = None, steps: int | None = None) -> torch.Tensor:
    """I[t, b, j] = sum_{i, tau} wk[j, i, tau] x[t - tau, b, i] in the frequency domain.

    Time-major x (T_x, B, pre); wk (post, pre, window); history (window - 1, B, pre): x before
    t = 0 (zeros if None). ``steps`` (default T_x, at least T_x): the output length, x being
    zero after its end (a zero-padded input without the padding). Returns (steps, B, post).
    Differentiable in x and wk.
    """
    T, B, pre = x.shape
    if steps is not None:
        if steps < T:
            raise ConfigError(f"steps ({steps}) must be at least the input's length ({T})")
        T = int(steps)
    post, _, window = wk.shape
    lag = window - 1
    c, n = block_size(T, window, block)
    # X K with three real products (Gauss): k1 = (Xr + Xi) Kr, Re = k1 - Xi (Kr + Ki),
    # Im = k1 + Xr (Ki - Kr); per block of c steps the last c samples of the length-n circular
    # convolution are free of wrap-around (overlap-save); one autograd node (_SpectralSum)
    return _SpectralSum.apply(x, history, kernel_spectrum_stacked(wk, n), T, c, n, lag)


def lagged_correlation_spectral(h: torch.Tensor, xbar: torch.Tensor, window: int,
                                history: torch.Tensor | None = None,
                                block: int | None = None) -> torch.Tensor:
    """C[j, i, tau] = sum_{t, b} h[t, b, j] xbar[t - tau, b, i], tau < window, in the frequency
    domain: per block the cross-spectrum sum_b H conj(X) accumulates, and one inverse DFT at
    the window's lags gives C.

    Time-major h (T, B, post), xbar (T, B, pre); history (window - 1, B, pre): xbar before
    t = 0 (zeros if None). Returns (post, pre, window).
    """
    T, B, post = h.shape
    pre = xbar.shape[-1]
    lag = window - 1
    c, n = block_size(T, window, block)
    nblk = -(-T // c)
    _, _, ir, ii = dft_matrices(n, h.dtype, h.device)
    f2 = dft_stacked(n, h.dtype, h.device)
    nf = ir.shape[1]
    sr = h.new_zeros(nf, pre, post)
    si = h.new_zeros(nf, pre, post)
    for k in range(nblk):
        xr, xi = _block_spectrum(f2, xbar, history, k * c - lag, n)
        xr = xr.view(nf, B, pre).transpose(1, 2)
        xi = xi.view(nf, B, pre).transpose(1, 2)
        # h of block k sits at positions 0..c-1 of its window (lag steps before where it
        # belongs), so the circular correlation comes out shifted by -lag
        hr, hi = _block_spectrum(f2, h, None, k * c, c)
        hr, hi = hr.view(nf, B, post), hi.view(nf, B, post)
        # conj(X) H with three real products (Gauss): k1 = (Xr - Xi)^T Hr,
        # Re = k1 + Xi^T (Hr + Hi), Im = k1 + Xr^T (Hi - Hr); summed over batch and blocks
        k1 = torch.bmm(xr - xi, hr)
        sr.add_(k1).baddbmm_(xi, hr + hi)  # Re(conj(X) H), (nf, pre, post)
        si.add_(k1).baddbmm_(xr, hi - hr)  # Im(conj(X) H)
    rows = torch.arange(-lag, 1, device=h.device) % n  # circular index of lags 0..lag
    corr = torch.mm(ir[rows], sr.view(nf, pre * post)).addmm_(ii[rows], si.view(nf, pre * post))
    return corr.view(window, pre, post).permute(2, 1, 0).contiguous()


def delayed_sum(x: torch.Tensor, wk: torch.Tensor, history: torch.Tensor | None = None,
                method: str = "auto") -> torch.Tensor:
    """Currents of a synapse group over a sequence, time-major: x (T, B, pre) -> (T, B, post),
    I[t, j] = sum_{i, tau} wk[j, i, tau] x[t - tau, i]; ``history`` (window - 1, B, pre) is x
    before t = 0 (zeros if None). ``method`` as in :func:`use_spectral`. Differentiable."""
    window = wk.shape[-1]
    if window == 1:
        return x @ wk[..., 0].t()
    if use_spectral(method, x.dtype, window):
        return delayed_sum_spectral(x, wk, history)
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
    if use_spectral(method, h.dtype, window):
        return lagged_correlation_spectral(h, xbar, window, history)
    lag = window - 1
    front = xbar.new_zeros(lag, B, pre) if history is None else history
    xp = torch.cat([front, xbar], 0)
    corr = h.new_empty(post, pre, window)
    for tau in range(window):
        corr[..., tau] = hf @ xp[lag - tau : lag - tau + T].reshape(T * B, pre)
    return corr


def kernel_cost(steps: int, n_pre: int, n_post: int, window: int,
                dtype: torch.dtype = torch.float32, method: str = "auto") -> dict:
    """Real multiply-adds per sample of one feedforward synapse group's kernels in streaming
    e-prop (the forward currents and the lagged correlation), on the route ``use_spectral``
    picks.

    Spectral route (:class:`SpectralStream`), per chunk of c steps (:func:`even_chunk`;
    n = c + L, nf = n//2 + 1): the window's transform, 4 nf + 1 rows of n + 1 per
    presynaptic signal, half of it (X) charged to the currents and half (x-bar, state) to the
    correlation; the complex products 3 nf pre post for each (Gauss); the inverse DFT of the
    currents 2 nf c post and the DFT of h 2 nf c post. Not counted: the inverse transform of
    the accumulated correlation (once per batch, not per sample) and O(n) element-wise work.
    Direct route: pre * post * window per step, for each.
    """
    if window > 1 and use_spectral(method, dtype, window):
        c0 = even_chunk(steps, window)
        chunks = [min(c0, steps - t0) for t0 in range(0, steps, c0)]
        current = corr = 0
        for c in chunks:
            n = c + window - 1
            nf = n // 2 + 1
            current += 2 * nf * (n + 1) * n_pre + 3 * nf * n_pre * n_post + 2 * nf * c * n_post
            corr += ((2 * nf + 1) * (n + 1) * n_pre + 2 * nf * c * n_post
                     + 3 * nf * n_pre * n_post)
        model = "spectral stream: one window transform + 3 nf pre*post per chunk, each"
    else:
        current = corr = steps * n_pre * n_post * window
        model = "direct: pre*post*window per step"
    return {"current": current, "correlation": corr, "model": model}


# --------------------------------------------------------------------------------------------
# Streaming e-prop's fused kernel: currents and eligibility correlation of one synapse group


_STREAM_CACHE: dict[tuple, tuple[torch.Tensor, ...]] = {}


def decay_matrix(n: int, alpha: float) -> torch.Tensor:
    """(n, n) float64 on the CPU: [t, s] = alpha^(t - s) for s <= t, else 0. Applied to a
    time-major signal it is the leaky filter y[t] = alpha y[t-1] + x[t] from rest."""
    m = torch.arange(n, dtype=torch.float64)
    diff = m[:, None] - m[None, :]
    return torch.where(diff >= 0, float(alpha) ** diff.clamp(min=0), torch.zeros(()))


def stream_matrices(n: int, c: int, alpha: float, dtype: torch.dtype,
                    device: torch.device | str) -> tuple[torch.Tensor, ...]:
    """Matrices for one block of n = c + lag steps: a chunk of c steps after the ``lag``
    steps before it (computed in float64, cached; every matrix contiguous).

    Returns (g, h_dft, inv_c, inv_lags):

    * g (4 nf + 1, n + 1), nf = n // 2 + 1, applied to the window x (n steps) with the leaky
      filter's state s (x-bar at the step before the window) appended as step n. Its rows
      give Re F x, Im F x (F the real DFT), the spectrum of the filtered copy x-bar,
      Re and Im of F (A x + s alpha^(m+1)) (A the filter as a lower-triangular Toeplitz
      matrix, A[m, u] = alpha^(m-u), m >= u), and last x-bar at the window's step c - 1, the
      state the next window starts from. One matrix product does the transforms, the filter
      and the state bookkeeping;
    * h_dft = [Re F; Im F] restricted to the first c columns (2 nf, c): the spectrum of a
      signal that fills the first c steps of the window;
    * inv_c (c, 2 nf) = [ir | ii] at the window's last c steps (the overlap-save output of a
      spectrum stacked as [Re; Im]); inv_lags (lag + 1, 2 nf): at the circular positions
      -lag..0 (the correlation's lags 0..lag).
    """
    key = (n, c, float(alpha), dtype, str(device))
    if key not in _STREAM_CACHE:
        lag = n - c
        fr, fi, ir, ii = dft_matrices(n, torch.float64, "cpu")
        nf = fr.shape[0]
        m = torch.arange(n, dtype=torch.float64)
        a = decay_matrix(n, alpha)
        decay = float(alpha) ** (m + 1)  # what the state s contributes to x-bar at step m
        g = torch.zeros(4 * nf + 1, n + 1, dtype=torch.float64)
        g[:nf, :n], g[nf: 2 * nf, :n] = fr, fi
        g[2 * nf: 3 * nf, :n], g[3 * nf: 4 * nf, :n] = fr @ a, fi @ a
        g[2 * nf: 3 * nf, n], g[3 * nf: 4 * nf, n] = fr @ decay, fi @ decay
        g[4 * nf, :n], g[4 * nf, n] = a[c - 1], decay[c - 1]
        rows = torch.arange(-lag, 1) % n
        mats = (g, torch.cat([fr[:, :c], fi[:, :c]], 0), torch.cat([ir[lag:], ii[lag:]], 1),
                torch.cat([ir[rows], ii[rows]], 1))
        if len(_STREAM_CACHE) > 64:
            _STREAM_CACHE.clear()
        _STREAM_CACHE[key] = tuple(t.to(dtype=dtype, device=device).contiguous() for t in mats)
    return _STREAM_CACHE[key]


def _stream_workspace(slot: object, c: int, B: int, pre: int, post: int, lag: int,
                      like: torch.Tensor, traces: bool) -> dict[str, torch.Tensor]:
    """Buffers of a stream for chunks of c steps: kept between calls when ``slot`` is given
    (:mod:`delayprop.workspace`), fresh otherwise."""
    n = c + lag
    nf = n // 2 + 1
    shapes = {
        "win": (n + 1, B, pre),  # history, chunk, filter state
        "spec": (4 * nf + 1 if traces else 2 * nf, B * pre),  # X; X-bar; next state
        "xsum": (nf, B, pre),
        "y": (2 * nf, B, post),
        "cur": (c, B, post),
    }
    if traces:
        shapes.update({
            "hspec": (2 * nf, B * post),
            "c1": (nf, pre, post),
            "acc": (2 * nf, pre, post),  # accumulated cross-spectrum [Re; Im]
        })
    # named by c as well: chunk lengths differing by one can give equal shapes, and the
    # accumulator of each chunk length must stay its own
    return {name: kept(slot, f"stream.{name}.{c}", shape, like)
            for name, shape in shapes.items()}


def clear_workspaces() -> None:
    """Drop the kept buffers of :class:`SpectralStream` and streaming e-prop (frees their
    memory); the same as :func:`delayprop.workspace.clear`."""
    clear()


class SpectralStream:
    """Forward currents and e-prop correlation of one synapse group, chunk by chunk, in the
    frequency domain, with one spectrum shared by both.

    For a chunk of c steps, the window of n = c + lag steps (the last ``lag`` = window - 1
    steps before the chunk, then the chunk) is transformed by one matrix product
    (:func:`stream_matrices`): the input's spectrum X gives the currents (:meth:`currents`,
    overlap-save as in :func:`delayed_sum_spectral`), and the spectrum of its leaky-filtered
    copy x-bar (decay ``alpha``, state carried from chunk to chunk) is kept for
    :meth:`correlate`, which adds the chunk's cross-spectrum sum_b conj(X-bar) H to an
    accumulator. x-bar itself is never formed (no time loop for the filter);
    :meth:`correlation` returns C[j, i, tau] = sum_{t, b} h[t, b, j] x-bar[t - tau, b, i]
    over all chunks so far.

    Buffers are allocated once per chunk length and reused (fresh large allocations cost page
    faults comparable to the arithmetic): the window (input history, chunk, filter state),
    the spectra and the currents. :meth:`input_buffer` is where a caller can write the next
    chunk directly; the tensor :meth:`currents` returns is overwritten by its next call with
    the same chunk length. With a ``slot`` (any hashable name, e.g. a layer index) the
    buffers outlive the stream and serve the next stream of the same slot, thread and shapes
    (:mod:`delayprop.workspace`, :func:`clear_workspaces`): two streams alive at once need
    different slots.

    Same numbers as :func:`delayed_sum` + :func:`lagged_correlation_tm` with a
    leaky-filtered input, up to rounding (tests/test_fast_paths.py). Time-major tensors.
    """

    def __init__(self, wk: torch.Tensor, alpha: float, slot: object = None,
                 traces: bool = True) -> None:
        self.slot = slot
        self.traces = traces
        self.wk = wk  # (post, pre, window)
        self.post, self.pre, self.window = wk.shape
        self.lag = self.window - 1
        self.alpha = float(alpha)
        self._kspec: dict[int, tuple[torch.Tensor, ...]] = {}
        self._acc: dict[int, torch.Tensor] = {}  # n -> (2 nf, pre, post): [Re; Im]
        self._ws: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
        self._last: tuple[int, int] | None = None  # workspace holding the history
        self._pending: tuple[int, int] | None = None

    def _kernel_spectrum(self, n: int) -> tuple[torch.Tensor, ...]:
        if n not in self._kspec:
            self._kspec[n] = kernel_spectrum(self.wk, n)
        return self._kspec[n]

    def _workspace(self, c: int, B: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
        key = (c, B)
        if key not in self._ws:
            self._ws[key] = _stream_workspace(self.slot, c, B, self.pre, self.post, self.lag,
                                              like, self.traces)
        return self._ws[key]

    def input_buffer(self, c: int, batch: int, like: torch.Tensor) -> torch.Tensor:
        """The (c, batch, pre) slot of the window where the next chunk goes: a chunk written
        here is not copied again by :meth:`currents`. ``like`` gives dtype and device."""
        return self._workspace(c, batch, like)["win"][self.lag: c + self.lag]

    def currents(self, x: torch.Tensor) -> torch.Tensor:
        """Advance over one chunk x (c, B, pre): returns the currents (c, B, post) and keeps
        the chunk's x-bar spectrum for :meth:`correlate`."""
        c, B, pre = x.shape
        if pre != self.pre:
            raise ConfigError(f"chunk has {pre} presynaptic channels, expected {self.pre}")
        lag, n = self.lag, c + self.lag
        g, _, inv_c, _ = stream_matrices(n, c, self.alpha, x.dtype, x.device)
        nf = n // 2 + 1
        ws = self._workspace(c, B, x)
        win = ws["win"]
        if x.data_ptr() != win[lag].data_ptr() or x.stride() != win[lag:n].stride():
            win[lag:n].copy_(x)
        if self._last is None:  # the sequence starts: zero history and filter state
            win[:lag].zero_()
            win[n].zero_()
        elif self._last != (c, B):  # history and state sit in another workspace
            other = self._ws[self._last]["win"]
            win[:lag].copy_(other[:lag])
            win[n].copy_(other[-1])
        if self.traces:
            spec = torch.mm(g, win.view(n + 1, B * pre), out=ws["spec"])
            win[n].copy_(spec[4 * nf].view(B, pre))  # x-bar state for the next window
        else:  # the input's spectrum only
            spec = torch.mm(g[: 2 * nf, :n], win[:n].view(n, B * pre), out=ws["spec"])
        if lag:  # history for the next chunk: the window's last lag steps
            tail = win[c:n] if c >= lag else win[c:n].clone()
            win[:lag].copy_(tail)
        self._last = (c, B)
        self._pending = (c, B)
        xr, xi = spec[:nf].view(nf, B, pre), spec[nf: 2 * nf].view(nf, B, pre)
        kr, k_sum, k_dif = self._kernel_spectrum(n)
        # X K with three real products (Gauss), as in delayed_sum_spectral; [Re; Im] stacked
        y = ws["y"]
        k1 = torch.bmm(torch.add(xr, xi, out=ws["xsum"]), kr, out=y[nf:])
        torch.baddbmm(k1, xi, k_sum, alpha=-1.0, out=y[:nf])
        k1.baddbmm_(xr, k_dif)
        cur = torch.mm(inv_c, y.view(2 * nf, B * self.post), out=ws["cur"].view(c, -1))
        return cur.view(c, B, self.post)

    def correlate(self, h: torch.Tensor) -> None:
        """Add the cross-spectrum of the last chunk's x-bar with h (c, B, post)."""
        if not self.traces:
            raise RuntimeError("this stream keeps no traces (traces=False): no correlate()")
        if self._pending is None or self._pending != (h.shape[0], h.shape[1]):
            raise RuntimeError("correlate(h) needs currents() of the same chunk first")
        self._pending = None
        c, B, post = h.shape
        n = c + self.lag
        nf = n // 2 + 1
        h_dft = stream_matrices(n, c, self.alpha, h.dtype, h.device)[1]
        ws = self._ws[(c, B)]
        hspec = torch.mm(h_dft, h.reshape(c, B * post), out=ws["hspec"])
        hr, hi = hspec[:nf].view(nf, B, post), hspec[nf:].view(nf, B, post)
        spec = ws["spec"]
        br = spec[2 * nf: 3 * nf].view(nf, B, self.pre)
        bi = spec[3 * nf: 4 * nf].view(nf, B, self.pre)
        if n not in self._acc:
            self._acc[n] = ws["acc"].zero_()
        sr, si = self._acc[n][:nf], self._acc[n][nf:]
        # conj(X) H with three real products (Gauss), as in lagged_correlation_spectral:
        # k1 = (Xr - Xi)^T Hr, Re += k1 + Xi^T (Hr + Hi), Im += k1 + Xr^T (Hi - Hr)
        diff = torch.sub(br, bi, out=ws["xsum"])
        k1 = torch.bmm(diff.transpose(1, 2), hr, out=ws["c1"])
        hsum = torch.add(hr, hi, out=ws["y"][:nf])
        sr.add_(k1).baddbmm_(bi.transpose(1, 2), hsum)
        si.add_(k1).baddbmm_(br.transpose(1, 2), hi.sub_(hr))

    def correlation(self) -> torch.Tensor:
        """C (post, pre, window) accumulated over the chunks so far."""
        total = None
        for n, acc in self._acc.items():
            inv_lags = stream_matrices(n, n - self.lag, self.alpha, acc.dtype, acc.device)[3]
            part = inv_lags @ acc.view(acc.shape[0], -1)
            total = part if total is None else total.add_(part)
        if total is None:
            return self.wk.new_zeros(self.post, self.pre, self.window)
        return total.view(self.window, self.pre, self.post).permute(2, 1, 0).contiguous()
