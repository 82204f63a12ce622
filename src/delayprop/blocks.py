r"""The building blocks of a :class:`~delayprop.layers.DelayNet`: delayed synapses, a layer of
LIF neurons, the leaky readout, and the no-autograd time loops that run them.

* :class:`DelayedSynapses`: weights with learnable synaptic / axonal delays (kernels from
  :mod:`delayprop.delays`); :class:`Readout` is such a group with a bias and a leak.
* :class:`LIFLayer`: LIF neurons (:mod:`delayprop.neurons`) fed by feedforward and optional
  recurrent delayed synapses.
* :func:`integrate_tm`, :func:`leaky_filter_tm` and :class:`FutureCurrents`: the time loops
  without autograd, time-major, with the state a sequence carries from one chunk to the next
  (:class:`LIFCarry`). :mod:`delayprop.stream` chains them into the chunked forward pass,
  :mod:`delayprop.layers` into the network.

Dependencies point one way: neurons, delays <- blocks <- stream <- layers <- rules.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from typing import Iterator, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from delayprop.delays import (
    check_delay_settings,
    delay_kernel,
    delay_kernel_derivative,
    delayed_sum,
)
from delayprop.errors import ConfigError
from delayprop.neurons import LIFParameters
from delayprop.workspace import kept


class DelayedSynapses(nn.Module):
    r"""Weights with optional learnable synaptic delays :math:`D_{ji}` (one per synapse) and
    axonal delays :math:`D_i` (one per presynaptic neuron).

    Parameters: ``weight`` (post, pre); ``syn_delay`` (post, pre) or None; ``ax_delay`` (pre,)
    or None. Delays are in time steps and kept inside [0, max_delay] by :meth:`clamp_`.
    The lag window covers the largest total delay: ``window = 1 + max_delay * (#delay kinds)``.
    """

    def __init__(
        self,
        n_pre: int,
        n_post: int,
        *,
        synaptic: bool = True,
        axonal: bool = False,
        max_delay: int = 25,
        mode: str = "hard",
        sigma: float = 1.0,
        weight_scale: float | None = 1.0,
        delay_init: str = "uniform",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_delay_settings(max_delay, mode, sigma)
        if n_pre <= 0 or n_post <= 0:
            raise ConfigError(f"layer sizes must be positive, got {n_pre} -> {n_post}")
        if delay_init not in ("uniform", "zero"):
            raise ConfigError(f"delay_init must be 'uniform' or 'zero', got {delay_init!r}")
        self.n_pre, self.n_post = n_pre, n_post
        self.max_delay = int(max_delay)
        self.mode = mode
        self.sigma = float(sigma)
        w = torch.randn(n_post, n_pre, generator=generator)
        # None: N(0, 1 / n_pre) computed as the readout always has (divided, not multiplied)
        w = w / math.sqrt(n_pre) if weight_scale is None else w * (weight_scale / math.sqrt(n_pre))
        self.weight = nn.Parameter(w)

        def init_delay(*shape: int) -> nn.Parameter:
            if delay_init == "zero":
                return nn.Parameter(torch.zeros(*shape))
            return nn.Parameter(torch.rand(*shape, generator=generator) * self.max_delay)

        self.syn_delay = init_delay(n_post, n_pre) if synaptic and max_delay > 0 else None
        self.ax_delay = init_delay(n_pre) if axonal and max_delay > 0 else None
        kinds = (self.syn_delay is not None) + (self.ax_delay is not None)
        self.window = 1 + self.max_delay * kinds

    @property
    def has_delays(self) -> bool:
        return self.syn_delay is not None or self.ax_delay is not None

    def extra_repr(self) -> str:
        return (
            f"{self.n_pre} -> {self.n_post}, synaptic={self.syn_delay is not None}, "
            f"axonal={self.ax_delay is not None}, max_delay={self.max_delay}, "
            f"mode={self.mode!r}, sigma={self.sigma:g}"
        )

    # -- delays and kernels ------------------------------------------------------------------
    def total_delay(self) -> torch.Tensor:
        """D_ji + D_i, (post, pre)."""
        d = torch.zeros_like(self.weight)
        if self.syn_delay is not None:
            d = d + self.syn_delay
        if self.ax_delay is not None:
            d = d + self.ax_delay.unsqueeze(0)
        return d

    def rounded_delay(self) -> torch.Tensor:
        """Integer delays the hard forward pass uses: round(D_ji) + round(D_i), (post, pre)."""
        d = torch.zeros_like(self.weight)
        if self.syn_delay is not None:
            d = d + torch.round(self.syn_delay.detach())
        if self.ax_delay is not None:
            d = d + torch.round(self.ax_delay.detach()).unsqueeze(0)
        return d

    def delay_index(self) -> torch.Tensor:
        """The lag the hard forward pass reads each synapse at: the rounded delay clipped to
        the window (as :func:`delayprop.delays.delay_kernel` clips it), int64 (post, pre)."""
        return self.rounded_delay().clamp(0, self.window - 1).long()

    def kernel(self) -> torch.Tensor:
        """K(tau; D_ji + D_i), (post, pre, window); differentiable in the delays."""
        if not self.has_delays:
            return torch.ones_like(self.weight).unsqueeze(-1)
        rounded = self.rounded_delay() if self.mode == "hard" else None
        return delay_kernel(self.total_delay(), self.window, self.mode, self.sigma, rounded)

    def kernel_derivative(self) -> torch.Tensor:
        """dK/dD at D_ji + D_i (the Gaussian surrogate), (post, pre, window)."""
        return delay_kernel_derivative(self.total_delay(), self.window, self.sigma)

    def weighted_kernel(self) -> torch.Tensor:
        """W_ji K(tau; D), (post, pre, window): the effective temporal filter of each synapse."""
        return self.weight.unsqueeze(-1) * self.kernel()

    @torch.no_grad()
    def clamp_(self) -> None:
        """Project delays back into [0, max_delay] (call after every optimiser step)."""
        for d in (self.syn_delay, self.ax_delay):
            if d is not None:
                d.clamp_(0.0, float(self.max_delay))

    # -- currents ----------------------------------------------------------------------------
    def current_sequence(self, x: torch.Tensor, wk: torch.Tensor | None = None, *,
                         history: torch.Tensor | None = None,
                         method: str = "auto") -> torch.Tensor:
        """Whole sequence: x (B, T, pre) -> I (B, T, post), a causal convolution over lags.

        ``history`` (B, window - 1, pre) is x before t = 0 (zeros if None), for running a long
        sequence in chunks; ``method`` 'direct', 'spectral' or 'auto' (spectral for float32,
        see :func:`delayprop.delays.use_spectral`). Differentiable in x, the weights and the delays.
        """
        wk = self.weighted_kernel() if wk is None else wk
        hist = None if history is None else history.transpose(0, 1)
        return delayed_sum(x.transpose(0, 1), wk, hist, method).transpose(0, 1)

    def current_step(self, history: torch.Tensor, wk: torch.Tensor | None = None) -> torch.Tensor:
        """One step: history (B, pre, window), [..., tau] = x[t - tau] -> I (B, post)."""
        if wk is None and not (torch.is_grad_enabled()
                               and any(p.requires_grad for p in self.parameters())):
            if not self.has_delays:  # K = 1: a weight matrix
                return history[..., 0] @ self.weight.t()
            if self.mode == "hard":  # K one-hot at the rounded delay: read x[t - D] directly
                idx = self.delay_index().t()  # (pre, post)
                B = history.shape[0]
                x_d = history.gather(2, idx.unsqueeze(0).expand(B, -1, -1))  # (B, pre, post)
                return torch.einsum("bij,ji->bj", x_d, self.weight)
        wk = self.weighted_kernel() if wk is None else wk
        return history.reshape(history.shape[0], -1) @ wk.reshape(wk.shape[0], -1).t()


class LIFLayer(nn.Module):
    """A population of LIF neurons fed by delayed synapses ``ff`` and, when recurrent, by its
    own spikes of the previous step through ``rec`` (optionally with delays)."""

    def __init__(
        self,
        n_pre: int,
        n: int,
        lif: LIFParameters,
        *,
        recurrent: bool = False,
        recurrent_delays: bool = False,
        rec_weight_scale: float = 0.5,
        generator: torch.Generator | None = None,
        **synapse_kwargs,
    ) -> None:
        super().__init__()
        self.lif = lif
        self.n = n
        self.ff = DelayedSynapses(n_pre, n, generator=generator, **synapse_kwargs)
        self.rec: DelayedSynapses | None = None
        if recurrent:
            kw = dict(synapse_kwargs)
            kw.update(synaptic=recurrent_delays, axonal=False, weight_scale=rec_weight_scale)
            self.rec = DelayedSynapses(n, n, generator=generator, **kw)


class Readout(DelayedSynapses):
    """Leaky, non-spiking readout: y[t] = kappa y[t-1] + sum_j W_kj z_j(t - D_kj) + b.
    Weight (C, H), bias (C,); with ``delay_settings`` (``max_delay``, ``mode``, ``sigma``,
    ``delay_init``) also one learned delay per readout synapse, ``syn_delay`` (C, H), as the
    hidden layers' synaptic delays; without, D = 0 and the readout is a weight matrix."""

    def __init__(
        self, n_in: int, n_out: int, kappa: float = 0.0, bias: bool = True,
        generator: torch.Generator | None = None, delay_settings: dict | None = None,
    ) -> None:
        if not 0.0 <= kappa < 1.0:
            raise ConfigError(f"readout kappa must be in [0, 1), got {kappa}")
        kw = dict(delay_settings or {}, synaptic=delay_settings is not None, axonal=False,
                  weight_scale=None)
        kw.setdefault("max_delay", 0)
        super().__init__(n_in, n_out, generator=generator, **kw)
        self.kappa = float(kappa)
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None

    def biased(self, current: torch.Tensor) -> torch.Tensor:
        """The delayed synapses' current (..., C) plus the bias, if any."""
        return current if self.bias is None else current + self.bias

    def sequence(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, T, H) -> y (B, T, C)."""
        if self.has_delays:
            drive = self.biased(self.current_sequence(z))
        else:
            drive = F.linear(z, self.weight, self.bias)
        if self.kappa == 0.0:
            return drive
        return leaky_filter(drive, self.kappa)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the body with one intra-op thread (restored afterwards).

    For the time loops: their per-step operations ((B, n) tensors) gain nothing from a
    second thread, and on a loaded machine every parallel region can wait a whole scheduler
    slice for a descheduled worker (benchmarks/thread_stall.py on 2 shared cores at load ~4:
    about 18 ms per element-wise operation with 2 threads, under 0.1 ms with 1).
    """
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def leaky_filter(x: torch.Tensor, decay: float, reverse: bool = False) -> torch.Tensor:
    """Filter along dim 1: out[t] = decay * out[t-1] + x[t] (or backwards in time if reverse).

    x (B, T, ...) -> same shape. Differentiable.
    """
    if torch.is_grad_enabled() and x.requires_grad:
        steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
        outs = [None] * x.shape[1]
        acc = torch.zeros_like(x[:, 0])
        with one_thread():
            for t in steps:
                acc = decay * acc + x[:, t]
                outs[t] = acc
        return torch.stack(outs, dim=1)
    out = leaky_filter_tm(x.transpose(0, 1), decay, reverse=reverse)[0]
    return out.transpose(0, 1).contiguous()


def leaky_filter_tm(x: torch.Tensor, decay: float, state: torch.Tensor | None = None,
                    reverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Time-major, no autograd: x (T, ...) -> (out, last), out[t] = decay * out[t-1] + x[t]
    with out[-1] = ``state`` (zeros if None); ``last`` is the final value (the next state).
    Same arithmetic as :func:`leaky_filter`, written into one preallocated buffer."""
    out = torch.empty_like(x)
    order = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    prev = None if state is None else state
    with one_thread():
        for t in order:
            if prev is None:
                out[t].copy_(x[t])  # decay * 0 + x[t]
            else:
                torch.mul(prev, decay, out=out[t])
                out[t].add_(x[t])
            prev = out[t]
    last = prev if prev is not None else (torch.zeros_like(x[0]) if state is None else state)
    return out, last


SPARSE_MIN_WINDOW = 8


class FutureCurrents:
    r"""The recurrent current that spikes already emitted will deliver (no autograd).

    A spike of neuron i at step s reaches neuron j at step s + 1 + tau with weight
    ``wk[j, i, tau]`` (``wk`` = the recurrent group's weighted kernel, (post, pre, window)), so
    each step's spikes are added once to a ring buffer of the next ``window`` steps' currents
    instead of multiplying the whole spike history of the window with the kernels every step:
    :math:`I^{rec}_j[t] = \sum_{i, \tau} wk_{ji\tau}\, z_i[t - 1 - \tau]` either way: the
    contributions of a step are one (B, pre) x (pre, window * post) product. Three routes:

    * **sparse kernels** (CPU; at most ``KERNEL_SPARSE_MAX`` of the kernel entries non-zero,
      which hard delays give: one tap per synapse, 1 / window of the entries): the kernels as
      one CSR matrix (window * post, pre) times the step's spikes (pre, B), so a step costs
      what a recurrent layer without delays costs, pre * post multiply-adds per sample, added
      in place (``addmm_``) into a buffer of 2 * window steps (window, then post, B) whose
      second half moves to the first every ``window`` steps, so the coming steps are always
      one contiguous block.
    * **sparse spikes** (CPU, smooth kernels, steps with at most ``SPARSE_MAX`` of the entries
      spiking): ``torch.sparse.mm`` of the COO spikes, one kernel row per spike.
    * **dense**: the plain product (other devices, short windows, denser steps).

    Measured at batch 64, 107 neurons, 26 taps, 15% spikes, one thread (100 steps, the push
    with its buffer adds): sparse kernels 7 ms, sparse spikes 27 ms, dense 38 ms
    (``benchmarks/bench_recurrent.py`` times whole layers).
    """

    SPARSE_MAX = 0.2
    KERNEL_SPARSE_MAX = 0.25

    def __init__(self, wk: torch.Tensor, batch: int) -> None:
        post, pre, window = wk.shape
        self.window, self.post = window, post
        cpu_long = wk.device.type == "cpu" and window >= SPARSE_MIN_WINDOW
        self.csr = None
        if cpu_long and int(torch.count_nonzero(wk)) <= self.KERNEL_SPARSE_MAX * wk.numel():
            with warnings.catch_warnings():  # torch calls its CSR support beta
                warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support")
                # row tau * post + j holds wk[j, :, tau]
                self.csr = wk.permute(2, 0, 1).reshape(window * post, pre).to_sparse_csr()
            self.buf = wk.new_zeros(2 * window, post, batch)
        else:
            self.rows = wk.permute(1, 2, 0).reshape(pre, window * post).contiguous()
            self.buf = wk.new_zeros(window, batch, post)
        self.head = 0  # slot of the next step
        self.sparse_ok = cpu_long

    def take(self, current: torch.Tensor) -> torch.Tensor:
        """``current`` + this step's recurrent current (a new tensor); advances one step."""
        slot = self.buf[self.head]
        if self.csr is None:
            out = current + slot
            slot.zero_()
            self.head = (self.head + 1) % self.window
            return out
        out = current + slot.t()
        slot.zero_()
        self.head += 1
        if self.head == self.window:  # the coming steps move to the front
            self.buf[: self.window].copy_(self.buf[self.window:])
            self.buf[self.window:].zero_()
            self.head = 0
        return out

    def push(self, z: torch.Tensor) -> None:
        """Add the contributions of this step's spikes z (B, pre) to the coming steps."""
        B = z.shape[0]
        if self.csr is not None:  # slots head.. hold steps +1.. (tau = 0..)
            block = self.buf[self.head: self.head + self.window]
            block.view(self.window * self.post, B).addmm_(self.csr, z.t())
            return
        c = None
        if self.sparse_ok:
            zs = z.to_sparse()  # COO: (b, i) of each spike and its value (graded too)
            nnz = zs._nnz()
            if nnz == 0:
                return
            if nnz <= self.SPARSE_MAX * z.numel():
                c = torch.sparse.mm(zs, self.rows)
        if c is None:
            c = z @ self.rows
        c = c.view(B, self.window, self.post).transpose(0, 1)  # (window, B, post)
        k = self.window - self.head  # slots head.. hold steps +1.. (tau = 0..k-1)
        self.buf[self.head:].add_(c[:k])
        if k < self.window:
            self.buf[: self.head].add_(c[k:])


class LIFCarry(NamedTuple):
    """State a layer carries from one chunk of a sequence to the next (no autograd): membrane
    v and spikes z (B, n), and the coming recurrent currents of its own spikes."""

    v: torch.Tensor
    z: torch.Tensor
    line: FutureCurrents | None


def integrate_tm(
    layer: LIFLayer, current: torch.Tensor, carry: LIFCarry | None = None,
    slot: object = None,
) -> tuple[torch.Tensor, torch.Tensor, LIFCarry]:
    """LIF dynamics without autograd, time-major: feedforward current (T, B, n) ->
    (v, z, carry) with v, z (T, B, n); ``carry`` continues a sequence (zeros if None).

    The same arithmetic as :func:`delayprop.neurons.lif_step` (spikes are 0 or 1, so
    theta * z is exact), with every step written into preallocated buffers. With a ``slot``
    (layers without recurrent synapses only) v and z are buffers kept between calls
    (:mod:`delayprop.workspace`): valid until the next call with that slot and shape.
    """
    T, B, n = current.shape
    p = layer.lif
    if carry is None:
        v, z = current.new_zeros(B, n), current.new_zeros(B, n)
        line = None
        if layer.rec is not None:
            line = FutureCurrents(layer.rec.weighted_kernel().detach(), B)
    else:
        v, z, line = carry
    if slot is not None and layer.rec is None:  # (recurrent layers: fresh buffers, as before)
        # named by the chunk length too: a sequence may end with a shorter chunk
        vs = kept(slot, f"lif.v.{current.shape[0]}", current.shape, current)
        zs = kept(slot, f"lif.z.{current.shape[0]}", current.shape, current)
    else:
        vs = torch.empty_like(current)
        zs = torch.empty_like(current)
    with one_thread():
        for t in range(T):
            i_t = current[t] if line is None else line.take(current[t])
            v_t = vs[t]
            if p.reset == "subtract":
                torch.add(i_t, v, alpha=p.alpha, out=v_t).sub_(z, alpha=p.theta)
            else:
                torch.mul(v, p.alpha, out=v_t).mul_(1.0 - z).add_(i_t)
            torch.ge(v_t, p.theta, out=zs[t])
            v, z = v_t, zs[t]
            if line is not None:  # this step's spikes reach the recurrent targets from t + 1
                line.push(z)
    # the carried state is a copy: callers may overwrite vs (streaming e-prop turns it into
    # psi), and kept buffers are overwritten by the next call
    return vs, zs, LIFCarry(v.clone(), z.clone(), line)

