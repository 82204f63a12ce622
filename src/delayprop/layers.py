r"""Layers built from LIF neurons (:mod:`delayprop.neurons`) and delay kernels
(:mod:`delayprop.delays`): delayed synapses, LIF layers (feedforward or recurrent), a leaky
readout and the network that chains them.

Model (method.md), hidden layer :math:`l` with presynaptic signal :math:`x`:

.. math::
    I_j[t] = \sum_i W_{ji}\, \tilde x_i(t - D_{ji} - D_i)
           + \sum_k R_{jk}\, \tilde z_k(t - 1 - D^r_{jk})

    y_k[t] = \kappa\, y_k[t-1] + \sum_j W^{out}_{kj} z_j(t - D^{out}_{kj}) + b_k

(readout delays :math:`D^{out}` only with ``readout_delays``; otherwise zero).

The same modules run under both learning rules: :mod:`delayprop.rules.bptt` calls
:meth:`DelayNet.forward` with autograd on, :mod:`delayprop.rules.eprop` runs it (or
:meth:`DelayNet.step`) without autograd and forms the three-factor updates itself.
Tensors are time-major inside a step, ``(B, N)``, and batch-first over a sequence, ``(B, T, N)``.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Iterator, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from delayprop.delays import (
    DelayLine,
    check_delay_settings,
    delay_kernel,
    delay_kernel_derivative,
    delayed_sum,
)
from delayprop.errors import ConfigError
from delayprop.neurons import LIFParameters, Surrogate, lif_step
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


@dataclass
class NetConfig:
    """Everything that defines a :class:`DelayNet` (also what checkpoints store).

    Attributes:
        n_in: input channels
        n_hidden: hidden layer sizes, one number of neurons per layer
        n_out: readout units, one per class (more are allowed)
        recurrent: recurrent connections within each hidden layer
        synaptic_delays: learn one delay D_ji per synapse
        axonal_delays: learn one delay D_i per presynaptic neuron
        recurrent_delays: learn one delay per recurrent synapse (with recurrent)
        max_delay: largest delay of each kind, in time steps; delays stay in [0, max_delay]
        delay_mode: forward pass: hard (spikes shifted by the rounded delay) or smooth
            (Gaussian kernel of width sigma)
        sigma: width of the Gaussian delay kernel and of the delay surrogate, in steps
        delay_init: initial delays: uniform in [0, max_delay], or zero
        tau_m: membrane time constant, in ms (alpha = exp(-dt / tau_m))
        dt: neuron time step, in ms
        theta: firing threshold
        reset: after a spike: subtract theta, or reset to zero
        detach_reset: no gradient through the reset (what e-prop assumes)
        surrogate: pseudo-derivative of the spike function
        surrogate_scale: scale of the surrogate (triangle 0.3, atan 5, fast_sigmoid 25 if
            not given)
        kappa: readout leak per step, in [0, 1) (0: no memory)
        readout_delays: learn one delay per readout synapse too (in [0, max_delay], same
            delay_mode and sigma as the hidden synapses; e-prop then runs whole sequences)
        readout_max_delay: with readout_delays, the largest readout delay in steps instead
            of max_delay (None: max_delay); a shorter one bounds the inference latency
        readout_bias: learn a bias per readout unit
        weight_scale: initial input weights ~ N(0, weight_scale^2 / n_pre)
        rec_weight_scale: initial recurrent weights ~ N(0, rec_weight_scale^2 / n)
        seed: seed of the initial weights, delays and random feedback
        dropout: training only: each sample drops each hidden neuron's outgoing spikes (to
            the next layer and the readout, not its recurrent synapses) with this
            probability for the whole sequence; kept spikes are scaled by 1 / (1 - dropout)
    """

    n_in: int = 140
    n_hidden: tuple[int, ...] = (128,)
    n_out: int = 20
    recurrent: bool = False
    synaptic_delays: bool = True
    axonal_delays: bool = False
    recurrent_delays: bool = False
    max_delay: int = 25
    delay_mode: str = "hard"
    sigma: float = 1.0
    delay_init: str = "uniform"
    tau_m: float = 100.0
    dt: float = 10.0
    theta: float = 1.0
    reset: str = "subtract"
    detach_reset: bool = True
    surrogate: str = "triangle"
    surrogate_scale: float | None = None
    kappa: float = 0.0
    readout_delays: bool = False
    readout_max_delay: int | None = None
    readout_bias: bool = True
    weight_scale: float = 1.0
    rec_weight_scale: float = 0.5
    seed: int = 0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        self.n_hidden = tuple(int(n) for n in self.n_hidden)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.n_hidden or any(n <= 0 for n in self.n_hidden):
            raise ConfigError(f"n_hidden must list positive layer sizes, got {self.n_hidden}")
        if self.n_in <= 0 or self.n_out <= 0:
            raise ConfigError(f"n_in and n_out must be positive, got {self.n_in}, {self.n_out}")
        check_delay_settings(self.max_delay, self.delay_mode, self.sigma)
        if self.readout_max_delay is not None:
            r = self.readout_max_delay
            if isinstance(r, float) and r.is_integer():  # 10.0, as max_delay accepts it
                r = self.readout_max_delay = int(r)
            if isinstance(r, bool) or not isinstance(r, int) or r < 1:
                raise ConfigError(f"readout_max_delay must be a whole number of steps >= 1 "
                                  f"(or unset: max_delay), got {r!r}")
            if not self.readout_delays:
                raise ConfigError("readout_max_delay is set but readout_delays is off: set "
                                  "readout_delays = true or leave readout_max_delay unset")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["n_hidden"] = list(self.n_hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> NetConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown network option(s): {', '.join(unknown)}")
        return cls(**d)


class LayerRecord(NamedTuple):
    """What a layer did over a sequence: its presynaptic input x (B,T,pre), membrane v and
    spikes z (B,T,n)."""

    x: torch.Tensor
    v: torch.Tensor
    z: torch.Tensor


@dataclass
class NetState:
    """Online state of a :class:`DelayNet`: per layer v, z (B, n) and delay lines of the
    presynaptic signals; the readout y (B, C). Its size does not depend on sequence length."""

    v: list[torch.Tensor]
    z: list[torch.Tensor]
    ff_lines: list[DelayLine]
    rec_lines: list[DelayLine | None]
    y: torch.Tensor
    t: int = 0
    extra: dict = field(default_factory=dict)
    readout_line: DelayLine | None = None


class DelayNet(nn.Module):
    """Stack of LIF layers with delays and a leaky readout (see module docstring).

    ``feedback_{l}`` buffers (C, n_l) are the fixed random feedback matrices of random e-prop
    (and of the non-last layers under symmetric e-prop); BPTT ignores them.
    """

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = c = config
        gen = torch.Generator().manual_seed(c.seed)
        lif = LIFParameters(
            tau_m=c.tau_m, dt=c.dt, theta=c.theta, reset=c.reset, detach_reset=c.detach_reset,
            surrogate=Surrogate(c.surrogate, c.surrogate_scale),
        )
        syn = dict(
            max_delay=c.max_delay, mode=c.delay_mode, sigma=c.sigma, delay_init=c.delay_init,
            weight_scale=c.weight_scale,
        )
        layers, n_pre = [], c.n_in
        for n in c.n_hidden:
            layers.append(
                LIFLayer(
                    n_pre, n, lif, recurrent=c.recurrent, recurrent_delays=c.recurrent_delays,
                    rec_weight_scale=c.rec_weight_scale, generator=gen,
                    synaptic=c.synaptic_delays, axonal=c.axonal_delays, **syn,
                )
            )
            n_pre = n
        self.layers = nn.ModuleList(layers)
        self.readout = Readout(n_pre, c.n_out, c.kappa, c.readout_bias, generator=gen,
                               delay_settings=self._readout_settings(syn))
        for i, n in enumerate(c.n_hidden):
            self.register_buffer(
                f"feedback_{i}", torch.randn(c.n_out, n, generator=gen) / math.sqrt(c.n_out)
            )
        #: per hidden layer, the (B, n) dropout mask of the batch being learned (None: none)
        self.masks: list[torch.Tensor] | None = None

    def _readout_settings(self, syn: dict) -> dict | None:
        """The readout's delay settings: the hidden synapses', with its own max delay."""
        c = self.config
        if not c.readout_delays:
            return None
        return dict(syn, max_delay=c.max_delay if c.readout_max_delay is None
                    else c.readout_max_delay)

    # -- dropout -----------------------------------------------------------------------------
    @contextmanager
    def dropped_out(self, batch: int) -> Iterator[list[torch.Tensor] | None]:
        """Within the block, in training mode with ``config.dropout`` > 0, every pass over a
        batch of ``batch`` samples drops hidden spikes with one mask per sample and neuron,
        fixed over time (drawn here from torch's global generator); yields the masks."""
        p = self.config.dropout
        if not (self.training and p > 0):
            yield None
            return
        w = self.readout.weight
        self.masks = [torch.bernoulli(w.new_full((batch, layer.n), 1.0 - p)).div_(1.0 - p)
                      for layer in self.layers]
        try:
            yield self.masks
        finally:
            self.masks = None

    def outgoing(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        """The spikes z (..., B, n) of hidden layer ``layer`` as the next layer and the
        readout see them: z itself, or z times the layer's dropout mask."""
        if self.masks is None:
            return z
        m = self.masks[layer]
        if z.shape[-2] != m.shape[0]:
            raise ConfigError(f"dropout masks drawn for a batch of {m.shape[0]}, "
                              f"the input has {z.shape[-2]} samples")
        return z * m

    def outgoing_bt(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        """:meth:`outgoing` for batch-major spikes (B, T, n)."""
        if self.masks is None:
            return z
        return self.outgoing(layer, z.transpose(0, 1)).transpose(0, 1)

    # -- bookkeeping -------------------------------------------------------------------------
    def synapses(self) -> list[tuple[str, DelayedSynapses]]:
        """Every synapse group with its module name, e.g. ('layers.0.ff', ...)."""
        out = []
        for i, layer in enumerate(self.layers):
            out.append((f"layers.{i}.ff", layer.ff))
            if layer.rec is not None:
                out.append((f"layers.{i}.rec", layer.rec))
        if self.readout.has_delays:
            out.append(("readout", self.readout))
        return out

    def clamp_delays_(self) -> None:
        for _, s in self.synapses():
            s.clamp_()

    def set_sigma(self, sigma: float) -> None:
        for _, s in self.synapses():
            check_delay_settings(s.max_delay, s.mode, sigma)
            s.sigma = float(sigma)

    def set_delay_mode(self, mode: str) -> None:
        for _, s in self.synapses():
            check_delay_settings(s.max_delay, mode, s.sigma)
            s.mode = mode

    def count_parameters(self) -> dict[str, int]:
        """{'weights': ..., 'delays': ..., 'total': ...} (biases count as weights)."""
        delays = sum(p.numel() for n, p in self.named_parameters() if n.endswith("_delay"))
        total = sum(p.numel() for p in self.parameters())
        return {"weights": total - delays, "delays": delays, "total": total}

    def feedback(self, layer: int, mode: str) -> torch.Tensor:
        """Feedback matrix B (C, n_layer) through which the output error reaches a layer."""
        if mode not in ("symmetric", "random"):
            raise ConfigError(f"feedback must be 'symmetric' or 'random', got {mode!r}")
        if mode == "symmetric" and layer == len(self.layers) - 1:
            return self.readout.weight.detach()
        return getattr(self, f"feedback_{layer}")

    # -- inputs ------------------------------------------------------------------------------
    def check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[-1] != self.config.n_in:
            raise ConfigError(
                f"input must have shape (batch, time, {self.config.n_in}), got {tuple(x.shape)}"
            )
        if x.shape[1] < 1:
            raise ConfigError("the input has no time steps (T = 0)")
        if not torch.isfinite(x).all():
            raise ConfigError("input contains NaN or infinite values")

    # -- whole sequence ----------------------------------------------------------------------
    def forward(self, x: torch.Tensor, record: bool = False):
        """x (B, T, n_in) -> y (B, T, C) [, list of LayerRecord per hidden layer].

        Differentiable when autograd is on (BPTT). Without autograd and records it runs in
        chunks (:func:`delayprop.stream.forward_streaming`: memory bounded by the chunk, the
        fast kernels of streaming e-prop), the same numbers up to rounding.
        """
        self.check_input(x)
        if not record and not torch.is_grad_enabled():
            from delayprop.stream import forward_streaming

            return forward_streaming(self, x)
        x = x.to(self.readout.weight.dtype)
        records = []
        inp = x
        for layer in self.layers:
            current = layer.ff.current_sequence(inp)
            v, z = self._integrate(layer, current)
            records.append(LayerRecord(inp, v, z))
            inp = self.outgoing_bt(len(records) - 1, z)
        y = self.readout.sequence(inp)
        return (y, records) if record else y

    @staticmethod
    def _integrate(layer: LIFLayer, current: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the LIF dynamics over time given the feedforward current (B, T, n)."""
        if not torch.is_grad_enabled():
            vs, zs, _ = integrate_tm(layer, current.transpose(0, 1))
            return vs.transpose(0, 1), zs.transpose(0, 1)
        B, T, n = current.shape
        v = current.new_zeros(B, n)
        z = current.new_zeros(B, n)
        line, wk = None, None
        if layer.rec is not None:
            line = DelayLine(B, n, layer.rec.window, current.dtype, current.device)
            wk = layer.rec.weighted_kernel()
        vs, zs = [], []
        # unbind, not current[:, t]: the backward of T selects would build T full-size
        # (B, T, n) gradients (O(T^2)); unbind's backward stacks them once
        steps = current.unbind(1)
        with one_thread():
            for t in range(T):
                i_t = steps[t]
                if line is not None:
                    line.push(z)  # the recurrent input at step t is z[t-1]
                    i_t = i_t + layer.rec.current_step(line.history(), wk)
                z, v = lif_step(i_t, v, z, layer.lif)
                vs.append(v)
                zs.append(z)
        return torch.stack(vs, 1), torch.stack(zs, 1)

    # -- one step (online) -------------------------------------------------------------------
    def initial_state(self, batch: int) -> NetState:
        w = self.readout.weight
        dt, dev = w.dtype, w.device
        return NetState(
            v=[w.new_zeros(batch, layer.n) for layer in self.layers],
            z=[w.new_zeros(batch, layer.n) for layer in self.layers],
            ff_lines=[DelayLine(batch, layer.ff.n_pre, layer.ff.window, dt, dev)
                      for layer in self.layers],
            rec_lines=[DelayLine(batch, layer.n, layer.rec.window, dt, dev)
                       if layer.rec is not None else None for layer in self.layers],
            y=w.new_zeros(batch, self.config.n_out),
            readout_line=DelayLine(batch, self.readout.n_pre, self.readout.window, dt, dev)
            if self.readout.has_delays else None,
        )

    def step(self, x_t: torch.Tensor, state: NetState) -> torch.Tensor:
        """Advance one time step: x_t (B, n_in) -> y_t (B, C); ``state`` is updated in place."""
        if x_t.dim() != 2 or x_t.shape[-1] != self.config.n_in:
            raise ConfigError(
                f"input step must have shape (batch, {self.config.n_in}), got {tuple(x_t.shape)}"
            )
        if not torch.isfinite(x_t).all():
            raise ConfigError("input contains NaN or infinite values")
        if self.masks is not None:
            raise ConfigError("dropout runs on whole sequences (eprop_gradients, "
                              "bptt_gradients), not in the per-step path")
        inp = x_t.to(self.readout.weight.dtype)
        for i, layer in enumerate(self.layers):
            state.ff_lines[i].push(inp)
            current = layer.ff.current_step(state.ff_lines[i].history())
            if layer.rec is not None:
                state.rec_lines[i].push(state.z[i])
                current = current + layer.rec.current_step(state.rec_lines[i].history())
            state.z[i], state.v[i] = lif_step(current, state.v[i], state.z[i], layer.lif)
            inp = state.z[i]
        r = self.readout
        if state.readout_line is not None:
            state.readout_line.push(inp)
            drive = r.biased(r.current_step(state.readout_line.history()))
        else:
            drive = F.linear(inp, r.weight, r.bias)
        state.y = r.kappa * state.y + drive
        state.t += 1
        return state.y
