r"""The DCLS delay baseline: offline BPTT learning of synaptic delays with dilated convolutions
with learnable spacings (Hammouamri, Hammouamri-Khalfaoui & Masquelier, ICLR 2024; repository
Thvnvtos/SNN-delays, SHD configuration ``best_config_SHD.py``).

Each synapse :math:`(j, i)` has a weight :math:`W_{ji}` and a position :math:`P_{ji}` in
:math:`[-\lfloor L/2 \rfloor, \lfloor L/2 \rfloor]` (``L = max_delay`` taps, odd). During
training the synapse is a Gaussian kernel over the taps :math:`k = 0..L-1` (``dcls`` package,
``Dcls1d`` version ``"gauss"``):

.. math::
    c_{ji} = P_{ji} + \lfloor L/2 \rfloor, \qquad s = |\Sigma| + 0.27

    g_{ji}[k] = \exp\!\big(-\tfrac12 ((k - c_{ji}) / s)^2\big), \qquad
    K_{ji}[k] = W_{ji}\, g_{ji}[k] / (\textstyle\sum_{k'} g_{ji}[k'] + 10^{-7})

and the layer is a causal cross-correlation of the zero-padded input (left ``L-1``, right
``r = (L-1)//2`` steps, so each layer's output is ``r`` steps longer than its input):

.. math::
    I_j[t] = \sum_i \sum_{k=0}^{L-1} K_{ji}[k]\; x_i[t + k - (L-1)]

i.e. tap ``k`` is a delay of ``L-1-k`` steps and the kernel centre is a delay of
:math:`D_{ji} = L - 1 - c_{ji} \in [0, L-1]`. :math:`\Sigma` (``SIG``) decays exponentially from
``sigma0`` (= ``L // 2`` = 12) to ``sigma_end`` (0.23) over the first quarter of training, then
stays. In evaluation (``net.eval()``) positions are rounded and each kernel is a single tap,
as SNN-delays evaluates (``Dcls1d`` version ``"max"`` with ``SIG = 0``:
:math:`K_{ji}[k] = W_{ji} [k = \mathrm{round}(P_{ji}) + \lfloor L/2 \rfloor] / (1 + 10^{-7})`).

Network (SHD): 140 inputs -> [DCLS -> BatchNorm -> LIF -> dropout] x 2 (256 each) -> DCLS ->
non-spiking leaky readout. LIF (SpikingJelly ``LIFNode``, ``decay_input=False``, hard reset to 0,
reset detached, ATan surrogate with alpha 5):

.. math::
    v_j[t] = (1 - 1/\tau)\, v_j[t-1] (1 - z_j[t-1]) + I_j[t], \qquad z_j[t] = H(v_j[t] - \theta)

with :math:`\tau` in time steps (SNN-delays: 10.05 ms / 10 ms = 1.005). The readout is the same
neuron with an unreachable threshold, so :math:`y[t] = (1 - 1/\tau) y[t-1] + I^{out}[t]`, and the
loss is the cross-entropy of :math:`\sum_t \mathrm{softmax}(y[t])` used as logits.

Train it like every other method: ``delayprop train -c configs/dcls_shd.toml`` (the training
loop's run directory, resume, metrics, plots; :meth:`delayprop.train.Model.improves` applies
SNN-delays' model selection).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn
from torch.nn import functional as F

from delayprop.delays import decay_matrix, delayed_sum_spectral
from delayprop.errors import ConfigError
from delayprop.neurons import LIFParameters, Surrogate, lif_step

SIGMA_OFFSET = 0.27  # Dcls1d "gauss" uses |SIG| + 0.27 as the standard deviation
NORM_EPS = 1e-7  # Dcls1d adds this to the kernel normaliser
ONE_BLOCK_STEPS = 256  # sequences up to this long go through the DFT as one block


# --------------------------------------------------------------------------------------------
# Configuration


@dataclass
class DCLSConfig:
    """The SNN-delays SHD model. Times are in steps (10 ms each on SHD).

    ``max_delay``: taps ``L`` of each delay kernel (odd; 25 = 250 ms). ``sigma0``/``sigma_end``:
    the ``SIG`` parameter of Dcls1d at the start / end of its decay (std = ``SIG + 0.27``).
    ``tau_m``: SpikingJelly's tau in steps (> 1). ``right_padding``: extra steps each layer adds
    at the end (None: ``(L - 1) // 2`` as SNN-delays). ``readout_delays``: False fixes the
    readout synapses at delay 0 (a plain weight matrix, no positions learned; an ablation, not
    SNN-delays). ``seed`` seeds the initialisation.
    """

    n_in: int = 140
    n_hidden: tuple[int, ...] = (256, 256)
    n_out: int = 20
    max_delay: int = 25
    sigma0: float = 12.0
    sigma_end: float = 0.23
    dropout: float = 0.4
    tau_m: float = 1.005
    theta: float = 1.0
    surrogate_alpha: float = 5.0
    batchnorm: bool = True
    detach_reset: bool = True
    right_padding: Optional[int] = None
    readout_delays: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.n_hidden, int):
            self.n_hidden = (self.n_hidden,)
        self.n_hidden = tuple(self.n_hidden)
        for name, value in [("n_in", self.n_in), ("n_out", self.n_out)] + [
            ("n_hidden", n) for n in self.n_hidden
        ]:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"DCLS {name} must be a positive integer, got {value!r}")
        if len(self.n_hidden) < 1:
            raise ConfigError("DCLS needs at least one hidden layer")
        L = self.max_delay
        if isinstance(L, bool) or not isinstance(L, int) or L < 1 or L % 2 == 0:
            raise ConfigError(
                f"max_delay must be an odd positive number of taps (SNN-delays rounds 250 ms / "
                f"10 ms up to 25), got {L!r}"
            )
        for name in ("sigma0", "sigma_end", "theta", "surrogate_alpha"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"DCLS {name} must be a positive number, got {value!r}")
        if self.sigma_end > self.sigma0:
            raise ConfigError(
                f"sigma_end ({self.sigma_end}) must not exceed sigma0 ({self.sigma0})"
            )
        if not (isinstance(self.tau_m, (int, float)) and self.tau_m > 1):
            raise ConfigError(
                f"tau_m is SpikingJelly's tau in time steps and must be > 1 (decay 1 - 1/tau), "
                f"got {self.tau_m!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if not isinstance(self.readout_delays, bool):
            raise ConfigError(f"readout_delays must be true or false, got {self.readout_delays!r}")
        if self.right_padding is None:
            self.right_padding = (L - 1) // 2
        if not isinstance(self.right_padding, int) or self.right_padding < 0:
            raise ConfigError(f"right_padding must be an integer >= 0, got {self.right_padding!r}")

    @property
    def decay(self) -> float:
        """Membrane decay per step, 1 - 1/tau (SpikingJelly, decay_input=False)."""
        return 1.0 - 1.0 / self.tau_m

    def lif(self) -> LIFParameters:
        """The hidden neurons as the repo's LIF (reset to zero, detached, ATan surrogate).

        LIFParameters decays by exp(-dt/tau_m); tau_m is chosen so that this equals 1 - 1/tau.
        """
        return LIFParameters(
            tau_m=-1.0 / math.log(self.decay), dt=1.0, theta=self.theta, reset="zero",
            detach_reset=self.detach_reset, surrogate=Surrogate("atan", self.surrogate_alpha),
        )


# --------------------------------------------------------------------------------------------
# Kernels


def gauss_kernel(weight: torch.Tensor, pos: torch.Tensor, sig: float | torch.Tensor,
                 taps: int) -> torch.Tensor:
    r"""Dcls1d "gauss" kernel: weight, pos (out, in) -> K (out, in, taps).

    :math:`K[k] = W g[k] / (\sum g + 10^{-7})`, :math:`g[k] = e^{-((k - P - \lfloor L/2
    \rfloor) / (|\Sigma| + 0.27))^2 / 2}`.
    """
    k = torch.arange(taps, dtype=pos.dtype, device=pos.device)
    s = (sig.abs() if isinstance(sig, torch.Tensor) else abs(float(sig))) + SIGMA_OFFSET
    g = torch.exp(-0.5 * ((k - (pos.unsqueeze(-1) + taps // 2)) / s) ** 2)
    g = g / (g.sum(-1, keepdim=True) + NORM_EPS)
    return weight.unsqueeze(-1) * g


class FlippedGaussKernel(torch.autograd.Function):
    r""":func:`gauss_kernel` flipped along the taps and laid out (taps, in, out), as one
    autograd node: the kernel the time-major layer convolves with
    (``gauss_kernel(...).flip(-1).permute(2, 1, 0)``, the layout
    :func:`delayprop.delays.kernel_spectrum` reads without a copy).

    With :math:`\hat g = g / Z` (:math:`Z = \sum_k g[k] + 10^{-7}`) and
    :math:`u = (k - c) / s`, the gradients of a loss with kernel gradient :math:`G` are
    :math:`\partial_W = \sum_k G \hat g` and
    :math:`\partial_P = (W / s) (\sum_k G \hat g u - \partial_W \sum_k \hat g u)` (five passes
    over the kernel instead of autograd's ~20 with the flip).
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor, pos: torch.Tensor, s: float | torch.Tensor,
                taps: int) -> torch.Tensor:  # type: ignore[override]
        # output tap k' is tap taps - 1 - k' of the kernel
        k = torch.arange(taps - 1, -1, -1, dtype=pos.dtype, device=pos.device)
        c = (pos.t() + taps // 2).contiguous()  # (in, out)
        u = (k.view(-1, 1, 1) - c).div_(s)  # (taps, in, out)
        g = torch.mul(u, u).mul_(-0.5).exp_()
        g.div_(g.sum(0).add_(NORM_EPS))
        ctx.save_for_backward(weight, g, u)
        ctx.s = s
        return g * weight.t()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        weight, g, u = ctx.saved_tensors
        gg = grad * g
        d_w = gg.sum(0)  # (in, out)
        d_p = gg.mul_(u).sum(0).sub_(d_w * (g * u).sum(0)).mul_(weight.t()).div_(ctx.s)
        return d_w.t(), d_p.t(), None, None


def flipped_gauss_kernel(weight: torch.Tensor, pos: torch.Tensor, sig: float | torch.Tensor,
                         taps: int) -> torch.Tensor:
    """``gauss_kernel(weight, pos, sig, taps).flip(-1)`` (out, in, taps), as a view of a
    (taps, in, out) tensor (:class:`FlippedGaussKernel`)."""
    # a tensor SIG stays a tensor (no device synchronisation)
    s = (sig.abs() if isinstance(sig, torch.Tensor) else abs(float(sig))) + SIGMA_OFFSET
    return FlippedGaussKernel.apply(weight, pos, s, taps).permute(2, 1, 0)


def rounded_tap(pos: torch.Tensor, taps: int) -> torch.Tensor:
    """The tap an evaluated kernel uses: round(P) + L//2, clamped to the taps (float)."""
    lim = taps // 2
    return torch.round(pos).clamp(-lim, lim) + lim


def rounded_kernel(weight: torch.Tensor, pos: torch.Tensor, taps: int) -> torch.Tensor:
    r"""Evaluation kernel: one tap at round(P) + L//2, weight W / (1 + 1e-7): (out, in, taps).

    Equals Dcls1d version "max" with SIG = 0 on rounded, clamped positions (SNN-delays' eval).
    """
    idx = rounded_tap(pos, taps).long()
    onehot = torch.zeros(*pos.shape, taps, dtype=weight.dtype, device=weight.device)
    onehot.scatter_(-1, idx.unsqueeze(-1), 1.0)
    return weight.unsqueeze(-1) * onehot / (1.0 + NORM_EPS)


class DCLSSynapses(nn.Module):
    r"""A fully connected DCLS layer (Dcls1d, kernel_count 1, no bias) with SNN-delays padding.

    Parameters ``weight`` (out, in) and ``P`` (out, in); buffer ``SIG`` (scalar, not learned).
    forward: x (B, T, in) -> I (B, T + right_padding, out). ``learn_delays=False``: every
    position fixed at delay 0 (``P = L//2``, not a learned parameter) and the one-tap kernel in
    training too, so the layer is a weight matrix.
    """

    def __init__(self, n_in: int, n_out: int, taps: int, sigma: float, right_padding: int,
                 generator: Optional[torch.Generator] = None, learn_delays: bool = True) -> None:
        super().__init__()
        self.taps, self.right_padding = taps, right_padding
        self.learn_delays = learn_delays
        self.weight = nn.Parameter(torch.empty(n_out, n_in))
        self.P = nn.Parameter(torch.empty(n_out, n_in))
        self.register_buffer("SIG", torch.tensor(float(sigma)))
        with torch.no_grad():
            # kaiming_uniform_(nonlinearity="relu") on Dcls1d's (out, in, 1) weight
            bound = math.sqrt(6.0 / n_in)
            self.weight.uniform_(-bound, bound, generator=generator)
            # SNN-delays: uniform(-L // 2, L // 2) in Python's floor division, then clamped
            self.P.uniform_(-taps // 2, taps // 2, generator=generator)
            if not learn_delays:  # tap L - 1 of the kernel: delay 0
                self.P.fill_(float(taps // 2))
        self.P.requires_grad_(learn_delays)
        self.clamp_()

    @property
    def lim(self) -> int:
        return self.taps // 2

    def clamp_(self) -> None:
        """Keep positions inside [-L//2, L//2] (Dcls1d.clamp_parameters)."""
        with torch.no_grad():
            self.P.clamp_(-self.lim, self.lim)

    def delays(self) -> torch.Tensor:
        """Kernel centres as delays in steps, L - 1 - (P + L//2), in [0, L-1]: (out, in)."""
        return (self.taps - 1 - (self.P.detach() + self.lim)).clamp(0, self.taps - 1)

    def rounded_delays(self) -> torch.Tensor:
        """Delays in steps as evaluated (rounded positions), L - 1 - rounded_tap: (out, in)."""
        return self.taps - 1 - rounded_tap(self.P.detach(), self.taps)

    def kernel(self) -> torch.Tensor:
        """Gaussian kernel in training mode, rounded single-tap kernel in eval: (out, in, L)."""
        if self.training and self.learn_delays:
            return gauss_kernel(self.weight, self.P, self.SIG, self.taps)
        return rounded_kernel(self.weight, self.P, self.taps)

    def currents_tm(self, x: torch.Tensor) -> torch.Tensor:
        """The layer on a time-major input: x (T, B, in) -> I (T + right_padding, B, out).

        A causal convolution with the flipped kernel (tap k is a delay of L - 1 - k steps), in
        the frequency domain (:func:`delayprop.delays.delayed_sum_spectral`, the route the
        package's BPTT uses): about 10x fewer multiply-adds than the direct convolution at
        L = 25. :meth:`forward_conv` is the plain reference."""
        # the right padding as the output length (the input is zero there): no padded copy
        steps = x.shape[0] + self.right_padding
        # one transform block for the whole sequence up to ONE_BLOCK_STEPS (fewer frequency
        # products than overlapping blocks: 0.9 s instead of 1.2-1.4 s per SHD training step)
        block = steps if steps <= ONE_BLOCK_STEPS else None
        if self.training and self.learn_delays:
            wk = flipped_gauss_kernel(self.weight, self.P, self.SIG, self.taps)
        else:
            wk = self.kernel().flip(-1)
        return delayed_sum_spectral(x, wk, block=block, steps=steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, in) -> I (B, T + right_padding, out)."""
        self._check(x)
        return self.currents_tm(x.transpose(0, 1)).transpose(0, 1)

    def forward_conv(self, x: torch.Tensor) -> torch.Tensor:
        """The same layer as SNN-delays computes it (F.conv1d on the padded (B, in, T) input):
        the plain reference for :meth:`forward`."""
        self._check(x)
        xp = F.pad(x.transpose(1, 2), (self.taps - 1, self.right_padding))
        return F.conv1d(xp, self.kernel()).transpose(1, 2)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[-1] != self.weight.shape[1]:
            raise ConfigError(
                f"DCLS layer expects (B, T, {self.weight.shape[1]}), got {tuple(x.shape)}"
            )


# --------------------------------------------------------------------------------------------
# Network


def _lif_tm(current: torch.Tensor, p: LIFParameters) -> torch.Tensor:
    """Run LIF over time on a time-major current (T, B, N) -> spikes (T, B, N) with autograd
    through :func:`~delayprop.neurons.lif_step` (the plain reference for :class:`FusedLIF`)."""
    v = torch.zeros_like(current[0])
    z = torch.zeros_like(v)
    out = []
    # unbind: one backward node for all steps (indexing current[t] would give each step's
    # gradient its own full-size zero tensor, O(T^2) work in the backward pass)
    for i_t in current.unbind(0):
        z, v = lif_step(i_t, v, z, p)
        out.append(z)
    return torch.stack(out)


class FusedLIF(torch.autograd.Function):
    r"""The LIF sequence with reset to zero, detached (SNN-delays' neuron), as one autograd node.

    Forward, per step: :math:`v_t = I_t + \alpha v_{t-1} (1 - z_{t-1})`,
    :math:`z_t = H(v_t - \theta)`, written into preallocated (T, B, N) tensors (three
    operations per step: a multiply-add, a comparison, the next step's factor), instead of the
    ~20 forward and backward operations that autograd records around :func:`lif_step`.
    Backward, with the reset detached as in the forward model:
    :math:`\bar v_t = \bar z_t \psi(v_t) + \bar v_{t+1} \alpha (1 - z_t)` (one operation per
    step, the pseudo-derivative :math:`\psi` of all steps at once), and :math:`\bar I_t = \bar v_t`.
    """

    @staticmethod
    def forward(ctx, current: torch.Tensor, alpha: float, theta: float, surrogate,
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:  # type: ignore[override]
        T = current.shape[0]
        v_all = torch.empty_like(current)
        fired = torch.empty(current.shape, dtype=torch.bool, device=current.device)
        a, zero = current.new_tensor(alpha), current.new_zeros(())
        # keep[t] = alpha (1 - z[t]): the factor of v[t] in v[t + 1], which is also dv'/dv
        # of the backward pass (kept for it instead of being recomputed there: 3 bytes more
        # per element than keeping the spikes as booleans)
        keep = torch.empty_like(current)
        v = torch.zeros_like(current[0])
        for t in range(T):
            if t == 0:
                v = v_all[0].copy_(current[0])
            else:
                v = torch.addcmul(current[t], v, keep[t - 1], out=v_all[t])
            torch.ge(v, theta, out=fired[t])
            torch.where(fired[t], zero, a, out=keep[t])
        ctx.save_for_backward(v_all, keep, mask)
        ctx.alpha, ctx.theta, ctx.surrogate = alpha, theta, surrogate
        # with a dropout mask (1, B, N) the spikes come out dropped, in the same pass
        return fired.to(current.dtype) if mask is None else torch.mul(fired, mask)

    @staticmethod
    def backward(ctx, grad_z: torch.Tensor):  # type: ignore[override]
        v_all, keep, mask = ctx.saved_tensors
        # psi(v) of all steps, computed in place in one fresh buffer, times the spike gradient
        grad_v = ctx.surrogate.derivative(v_all, ctx.theta, out=torch.empty_like(v_all))
        grad_v.mul_(grad_z)
        if mask is not None:
            grad_v.mul_(mask)
        # backwards in place: grad_v[t] = direct[t] + keep[t] grad_v[t + 1]
        for t in range(v_all.shape[0] - 2, -1, -1):
            grad_v[t].addcmul_(grad_v[t + 1], keep[t])
        return grad_v, None, None, None, None


_LEAK_CACHE: dict[tuple, torch.Tensor] = {}


def _leak_matrix(T: int, decay: float, like: torch.Tensor) -> torch.Tensor:
    """M (T, T), M[t, s] = decay^(t - s) for s <= t else 0 (float64 powers, cached; entries
    below the dtype's smallest normal number are 0)."""
    key = (T, float(decay), like.dtype, str(like.device))
    if key not in _LEAK_CACHE:
        m = decay_matrix(T, decay)
        m[m < torch.finfo(like.dtype).tiny] = 0.0  # no subnormals (slow on CPUs)
        if len(_LEAK_CACHE) > 32:
            _LEAK_CACHE.clear()
        _LEAK_CACHE[key] = m.to(dtype=like.dtype, device=like.device)
    return _LEAK_CACHE[key]


def lif_sequence_tm(current: torch.Tensor, p: LIFParameters,
                    keep: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Spikes (T, B, N) of a time-major current, times the dropout mask ``keep`` (1, B, N)
    if given: :class:`FusedLIF` for a detached reset to zero (the DCLS neuron), else the
    autograd loop :func:`_lif_tm`."""
    if p.reset == "zero" and p.detach_reset:
        return FusedLIF.apply(current.contiguous(), p.alpha, p.theta, p.surrogate, keep)
    z = _lif_tm(current, p)
    return z if keep is None else z * keep


def _lif_sequence(current: torch.Tensor, p: LIFParameters) -> torch.Tensor:
    """Run LIF over time: current (B, T, N) -> spikes (B, T, N)."""
    return _lif_tm(current.transpose(0, 1), p).transpose(0, 1)


class DCLSNet(nn.Module):
    """SNN-delays feedforward network: x (B, T, n_in) -> readout membrane y (B, T', n_out),
    T' = T + (len(n_hidden) + 1) * right_padding.
    """

    def __init__(self, cfg: DCLSConfig) -> None:
        super().__init__()
        self.cfg = cfg
        gen = torch.Generator().manual_seed(int(cfg.seed))
        sizes = (cfg.n_in, *cfg.n_hidden, cfg.n_out)
        last = len(sizes) - 2
        self.synapses = nn.ModuleList(
            DCLSSynapses(a, b, cfg.max_delay, cfg.sigma0, cfg.right_padding, gen,
                         learn_delays=cfg.readout_delays or i < last)
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))
        )
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(n) if cfg.batchnorm else nn.Identity() for n in cfg.n_hidden
        )
        self.lif = cfg.lif()
        self.decay = cfg.decay

    @property
    def sigma(self) -> float:
        """Current SIG of the kernels (std = SIG + 0.27)."""
        return float(self.synapses[0].SIG)

    def set_sigma(self, sigma: float) -> None:
        if not (math.isfinite(sigma) and sigma >= 0):
            raise ConfigError(f"sigma must be a finite number >= 0, got {sigma}")
        for syn in self.synapses:
            syn.SIG.fill_(float(sigma))

    def clamp_delays_(self) -> None:
        """Keep every position in range; call after each optimiser step."""
        for syn in self.synapses:
            syn.clamp_()

    def _dropout_mask(self, like: torch.Tensor) -> Optional[torch.Tensor]:
        # SpikingJelly's multi-step Dropout: one mask per (sample, neuron), shared over time,
        # (1, B, N) for the time-major (T, B, N) spikes; None when off
        p = self.cfg.dropout
        if not self.training or p == 0.0:
            return None
        return torch.empty_like(like[:1]).bernoulli_(1.0 - p).div_(1.0 - p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, n_in) -> readout membrane y (B, T', n_out) (a view of a time-major
        tensor: the layers run time-major, so every time step is one contiguous slice)."""
        if x.dim() != 3 or x.shape[-1] != self.cfg.n_in:
            raise ConfigError(f"DCLSNet expects x (B, T, {self.cfg.n_in}), got {tuple(x.shape)}")
        h = x.transpose(0, 1)
        for syn, norm in zip(self.synapses[:-1], self.norms):
            current = syn.currents_tm(h)
            T, B, N = current.shape
            # BatchNorm over (batch, time) per neuron, as BatchNorm1d on (B, N, T)
            current = norm(current.reshape(T * B, N)).view(T, B, N)
            h = lif_sequence_tm(current, self.lif, self._dropout_mask(current))
        current = self.synapses[-1].currents_tm(h)
        T, B, C = current.shape
        # the leaky readout y[t] = decay y[t-1] + I[t] is linear: one product with the
        # (T, T) lower-triangular matrix decay^(t - s) instead of a loop over time
        y = torch.mm(_leak_matrix(T, self.decay, current), current.reshape(T, B * C))
        return y.view(T, B, C).transpose(0, 1)

    def count_parameters(self) -> dict[str, int]:
        """{'weights': synaptic weights + BatchNorm affine, 'delays': learned positions,
        'total'}."""
        delays = sum(s.P.numel() for s in self.synapses if s.learn_delays)
        weights = sum(p.numel() for n, p in self.named_parameters() if not n.endswith(".P"))
        return {"weights": weights, "delays": delays, "total": weights + delays}


# --------------------------------------------------------------------------------------------
# Loss, prediction, optimisers, sigma schedule


def _time_summed_softmax(y: torch.Tensor) -> torch.Tensor:
    if y.dim() != 3:
        raise ConfigError(f"expected readout y (B, T, C), got shape {tuple(y.shape)}")
    return torch.softmax(y, dim=-1).sum(dim=1)


def dcls_loss(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""SNN-delays' loss: cross-entropy with :math:`m = \sum_t \mathrm{softmax}(y[t])` as logits.

    y (B, T, C), target (B,) int64 -> scalar (batch mean).
    """
    return F.cross_entropy(_time_summed_softmax(y), target)


def dcls_predict(y: torch.Tensor) -> torch.Tensor:
    """argmax_c sum_t softmax(y[t])_c: (B, T, C) -> (B,)."""
    return _time_summed_softmax(y).argmax(dim=-1)


def sigma_at(epoch: int, epochs: int, sigma0: float, sigma_end: float) -> float:
    r"""SIG during ``epoch`` (0-based): :math:`\Sigma_0 (\Sigma_{end}/\Sigma_0)^{\min(e, F)/F}`,
    F = epochs // 4 (SNN-delays multiplies by the per-epoch factor after each of the first F
    epochs). With F = 0 (fewer than 4 epochs) there is no decay phase: SIG = sigma_end.
    """
    if epochs < 1 or not 0 <= epoch:
        raise ConfigError(f"need 0 <= epoch and epochs >= 1, got epoch={epoch}, epochs={epochs}")
    final = epochs // 4
    if final == 0:
        return float(sigma_end)
    return float(sigma0 * (sigma_end / sigma0) ** (min(epoch, final) / final))


def epoch_begin(net: DCLSNet, epoch: int, epochs: int) -> float:
    """Set the kernels' SIG for this epoch (see :func:`sigma_at`); returns it."""
    sig = sigma_at(epoch, epochs, net.cfg.sigma0, net.cfg.sigma_end)
    net.set_sigma(sig)
    return sig


TRAIN_DEFAULTS: dict[str, Any] = {
    "lr_w": 1e-3, "max_lr_w": None, "lr_pos_factor": 100.0, "weight_decay": 1e-5,
}


def optimizer_settings(train_cfg: dict) -> dict[str, float]:
    """lr_w, max_lr_w, lr_pos, weight_decay from a ``[train]`` table.

    Reads this module's keys (``lr_w``, ``max_lr_w``, ``lr_pos_factor``) or the training loop's
    (``lr`` for the weights, ``delay_lr`` for the positions); missing ones take SNN-delays'
    values: lr_w 1e-3, max_lr_w = 5 lr_w, lr_pos = 100 lr_w, weight_decay 1e-5.
    """
    lr_w = train_cfg.get("lr_w", train_cfg.get("lr", TRAIN_DEFAULTS["lr_w"]))
    max_lr = train_cfg.get("max_lr_w")
    max_lr = 5.0 * lr_w if max_lr is None else max_lr
    if "lr_pos_factor" in train_cfg:
        lr_pos = train_cfg["lr_pos_factor"] * lr_w
    else:
        lr_pos = train_cfg.get("delay_lr", TRAIN_DEFAULTS["lr_pos_factor"] * lr_w)
    out = {"lr_w": lr_w, "max_lr_w": max_lr, "lr_pos": lr_pos,
           "weight_decay": train_cfg.get("weight_decay", TRAIN_DEFAULTS["weight_decay"])}
    for k, v in out.items():
        if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ConfigError(f"train {k} must be a number >= 0, got {v!r}")
    if out["max_lr_w"] < out["lr_w"]:
        raise ConfigError(f"max_lr_w ({max_lr}) must be >= the weight lr ({lr_w})")
    return {k: float(v) for k, v in out.items()}


def make_optimizers(
    net: DCLSNet, train_cfg: dict, steps_per_epoch: int, epochs: int
) -> tuple[list[torch.optim.Optimizer], list[torch.optim.lr_scheduler.LRScheduler]]:
    """SNN-delays' optimisers; step each optimiser and scheduler once per batch.

    * Adam on synaptic weights (weight decay) and BatchNorm (no decay), OneCycleLR peaking at
      ``max_lr_w`` over ``epochs * steps_per_epoch`` steps (it starts at max_lr_w / 25);
    * Adam on positions, lr ``lr_pos`` (100 x lr_w), no decay, cosine annealing to 0.

    Settings: :func:`optimizer_settings`. SNN-delays steps its schedulers once per epoch; here
    they step per batch over the same span (a smoother version of the same curves).
    """
    opts = optimizer_settings(train_cfg)
    total = int(steps_per_epoch) * int(epochs)
    if steps_per_epoch < 1 or epochs < 1:
        raise ConfigError(f"need steps_per_epoch, epochs >= 1, got {steps_per_epoch}, {epochs}")
    weights = [s.weight for s in net.synapses]
    bn = [p for n in net.norms for p in n.parameters()]
    lr_w = opts["lr_w"]
    opt_w = torch.optim.Adam([
        {"params": weights, "lr": lr_w, "weight_decay": float(opts["weight_decay"])},
        {"params": bn, "lr": lr_w, "weight_decay": 0.0},
    ])
    opt_p = torch.optim.Adam([s.P for s in net.synapses if s.learn_delays], lr=opts["lr_pos"],
                             weight_decay=0.0)
    sched_w = torch.optim.lr_scheduler.OneCycleLR(opt_w, max_lr=opts["max_lr_w"],
                                                  total_steps=total)
    sched_p = torch.optim.lr_scheduler.CosineAnnealingLR(opt_p, T_max=total)
    return [opt_w, opt_p], [sched_w, sched_p]


# --------------------------------------------------------------------------------------------
# Configuration checks for the training loop (``delayprop train``, method "dcls")


def check_dcls_model(model: dict, loss: str) -> DCLSConfig:
    """Validate a ``[model]`` table for method "dcls" (unknown keys, bad values, the loss);
    returns the :class:`DCLSConfig` (n_in / n_out default to the class's if not given)."""
    if loss != "sum":
        raise ConfigError("the DCLS baseline trains with the time-summed softmax: "
                          f"method.loss must be 'sum', got {loss!r}")
    unknown = sorted(set(model) - set(DCLSConfig.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"unknown DCLS model option(s): {', '.join(unknown)}; allowed: "
                          f"{', '.join(DCLSConfig.__dataclass_fields__)}")
    return DCLSConfig(**model)
