r"""E-prop for weights, synaptic delays and axonal delays: three-factor updates, no autograd.

For a synapse group with presynaptic signal :math:`x` (input, previous layer, or the layer's
own spikes one step late), postsynaptic LIF neurons with decay :math:`\alpha` and pseudo-
derivative :math:`\psi_j[t]`, and delay kernel :math:`K(\tau; D)` (:mod:`delayprop.delays`):

.. math::
    \epsilon^W_{ji}[t] = \alpha \epsilon^W_{ji}[t-1] + \tilde x_i(t - D_{ji} - D_i)
                       = \sum_\tau \bar x_i[t-\tau] K(\tau; D_{ji} + D_i)

    \epsilon^D_{ji}[t] = \alpha \epsilon^D_{ji}[t-1] + W_{ji}\, \partial_D \tilde x_i
                       = W_{ji} \sum_\tau \bar x_i[t-\tau] \partial_D K(\tau; D_{ji} + D_i)

    e_{ji}[t] = \psi_j[t] \epsilon_{ji}[t], \quad
    \bar e_{ji}[t] = \kappa \bar e_{ji}[t-1] + e_{ji}[t]

    \Delta P_{ji} \propto \sum_t L_j[t] \bar e_{ji}[t], \qquad
    L_j[t] = \sum_k B_{jk} \partial E / \partial y_k[t]

with :math:`\bar x[t] = \alpha \bar x[t-1] + x[t]` (filtering commutes with the delay, so one
filtered copy of each presynaptic signal serves every synapse), and the axonal update summed
over targets, :math:`\Delta D_i = \sum_j \Delta D_{ji}`. An optional firing-rate regulariser
adds :math:`c(\hat f_j[t] - f^*)/(TB)` to the learning signal (:math:`\hat f` the running rate).

Two entry points compute the same numbers:

* :class:`OnlineEprop` — one time step at a time (the on-device path): delay lines of
  :math:`\bar x`, traces and accumulated update; memory independent of the sequence length.
* :func:`eprop_gradients` — a whole batch of sequences at once (the fast path). Because the
  sum over time factorises, all updates come from one lagged correlation
  :math:`C_{ji}(\tau) = \sum_{b,t} h_j[t]\, \bar x_i[t-\tau]` with
  :math:`h = \bar L \psi` (:math:`\bar L` the learning signal filtered backwards by
  :math:`\kappa`, which equals forward filtering of the traces). No B x T x post x pre tensor
  is ever built.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from delayprop.errors import ConfigError
from delayprop.layers import DelayedSynapses, DelayLine, DelayNet, leaky_filter
from delayprop.losses import LOSSES, check_target, loss_value, output_error


@dataclass
class EpropConfig:
    """loss: 'sum' (per-step CE) or 'mean' (CE of the time-mean output); feedback:
    'symmetric' (B = W_out^T for the last hidden layer, fixed random B for earlier ones) or
    'random' (fixed random B everywhere); reg_rate/target_rate: firing-rate regulariser
    (coefficient c and target rate per step)."""

    loss: str = "sum"
    feedback: str = "symmetric"
    reg_rate: float = 0.0
    target_rate: float = 0.01

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.feedback not in ("symmetric", "random"):
            raise ConfigError(f"feedback must be 'symmetric' or 'random', got {self.feedback!r}")
        if self.reg_rate < 0:
            raise ConfigError(f"reg_rate must be >= 0, got {self.reg_rate}")


# --------------------------------------------------------------------------------------------
# From lagged correlations to parameter updates (shared by both entry points)


def updates_from_correlation(
    name: str, syn: DelayedSynapses, corr: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Turn C_ji(tau) (post, pre, window) into the updates of one synapse group:
    dW = sum_tau C K, dD_ji = W sum_tau C dK/dD, dD_i = sum_j dD_ji."""
    with torch.no_grad():
        out = {f"{name}.weight": (corr * syn.kernel()).sum(-1)}
        if syn.has_delays:
            g_delay = syn.weight * (corr * syn.kernel_derivative()).sum(-1)
            if syn.syn_delay is not None:
                out[f"{name}.syn_delay"] = g_delay
            if syn.ax_delay is not None:
                out[f"{name}.ax_delay"] = g_delay.sum(0)
    return out


def lagged_correlation(h: torch.Tensor, xbar: torch.Tensor, window: int) -> torch.Tensor:
    """C[j, i, tau] = sum_{b,t} h[b,t,j] xbar[b,t-tau,i]; h (B,T,post), xbar (B,T,pre)."""
    B, T, post = h.shape
    pre = xbar.shape[-1]
    hf = h.reshape(B * T, post).t()
    if window == 1:
        return (hf @ xbar.reshape(B * T, pre)).unsqueeze(-1)
    xp = F.pad(xbar, (0, 0, window - 1, 0))
    corr = h.new_empty(post, pre, window)
    for tau in range(window):
        shifted = xp[:, window - 1 - tau : window - 1 - tau + T]
        corr[..., tau] = hf @ shifted.reshape(B * T, pre)
    return corr


def running_rate(z: torch.Tensor) -> torch.Tensor:
    """Causal firing-rate estimate f[t] = mean(z[0..t]) along dim 1 of (B, T, n)."""
    steps = torch.arange(1, z.shape[1] + 1, dtype=z.dtype, device=z.device)
    return z.cumsum(1) / steps.view(1, -1, 1)


@dataclass
class EpropResult:
    grads: dict[str, torch.Tensor]
    y: torch.Tensor
    loss: float
    records: list


def _set_grads(net: DelayNet, grads: dict[str, torch.Tensor]) -> None:
    for n, p in net.named_parameters():
        if n in grads and p.requires_grad:
            p.grad = grads[n].clone()


# --------------------------------------------------------------------------------------------
# Whole-sequence entry point


@torch.no_grad()
def eprop_gradients(
    net: DelayNet,
    x: torch.Tensor,
    target: torch.Tensor,
    config: EpropConfig | None = None,
    set_grad: bool = True,
) -> EpropResult:
    """E-prop updates for a batch of whole sequences. x (B, T, n_in); target (B,) or (B, T).

    Returns the accumulated updates (same sign and scale as a loss gradient) by parameter name;
    with ``set_grad`` they are also written into ``.grad``.
    """
    cfg = config or EpropConfig()
    y, records = net(x, record=True)
    target = check_target(y, target, cfg.loss)
    B, T, _ = y.shape
    kappa = net.readout.kappa
    err = output_error(y, target, cfg.loss)  # dE/dy[t]
    err_bar = leaky_filter(err, kappa, reverse=True) if kappa else err

    z_last = records[-1].z
    grads = {"readout.weight": torch.einsum("btc,bth->ch", err_bar, z_last)}
    if net.readout.bias is not None:
        grads["readout.bias"] = err_bar.sum((0, 1))

    for i, (layer, rec) in enumerate(zip(net.layers, records)):
        signal = err_bar @ net.feedback(i, cfg.feedback)  # L-bar, (B, T, n)
        if cfg.reg_rate:
            signal = signal + cfg.reg_rate * (running_rate(rec.z) - cfg.target_rate) / (T * B)
        h = signal * layer.lif.surrogate.derivative(rec.v, layer.lif.theta)
        alpha = layer.lif.alpha
        groups = [(f"layers.{i}.ff", layer.ff, rec.x)]
        if layer.rec is not None:
            z_prev = F.pad(rec.z, (0, 0, 1, 0))[:, :T]
            groups.append((f"layers.{i}.rec", layer.rec, z_prev))
        for name, syn, pre in groups:
            corr = lagged_correlation(h, leaky_filter(pre, alpha), syn.window)
            grads.update(updates_from_correlation(name, syn, corr))

    if set_grad:
        _set_grads(net, grads)
    value = float(loss_value(y, target, cfg.loss))
    return EpropResult(grads, y, value, records)


# --------------------------------------------------------------------------------------------
# Per-step (online) entry point


class _GroupTraces:
    """Online state of one synapse group: the delay line of x-bar and the accumulators."""

    def __init__(self, name: str, syn: DelayedSynapses, batch: int, alpha: float,
                 per_synapse: bool, dtype, device) -> None:
        self.name, self.syn, self.alpha = name, syn, alpha
        self.xbar = torch.zeros(batch, syn.n_pre, dtype=dtype, device=device)
        self.line = DelayLine(batch, syn.n_pre, syn.window, dtype, device)
        self.kernel = syn.kernel().detach()
        self.dkernel = syn.kernel_derivative().detach() if syn.has_delays else None
        self.weight = syn.weight.detach()
        shape = (syn.n_post, syn.n_pre)
        if per_synapse:  # kappa-filtered traces (B, post, pre), and their accumulators
            zeros = torch.zeros(batch, *shape, dtype=dtype, device=device)
            self.ebar_w, self.ebar_d = zeros.clone(), zeros.clone()
            self.acc_w, self.acc_d = zeros.clone(), zeros.clone()
        else:  # factorised: one lagged correlation (post, pre, window)
            self.corr = torch.zeros(*shape, syn.window, dtype=dtype, device=device)

    def push(self, pre: torch.Tensor) -> torch.Tensor:
        self.xbar = self.alpha * self.xbar + pre
        self.line.push(self.xbar)
        return self.line.history()

    def eligibility_vectors(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """eps^W, eps^D (B, post, pre) at the current step."""
        hist = self.line.history()
        eps_w = torch.einsum("bil,jil->bji", hist, self.kernel)
        eps_d = None
        if self.dkernel is not None:
            eps_d = self.weight * torch.einsum("bil,jil->bji", hist, self.dkernel)
        return eps_w, eps_d


@dataclass
class OnlineStep:
    """What one online step returns: readout y (B, C), spikes z and pseudo-derivatives psi
    per hidden layer (B, n_l)."""

    y: torch.Tensor
    z: list[torch.Tensor]
    psi: list[torch.Tensor]


class OnlineEprop:
    """E-prop one time step at a time (real-time / on-device use).

    Usage::

        learner = OnlineEprop(net, EpropConfig(loss="sum"))
        learner.begin(batch_size)
        for t in range(T):
            out = learner.step(x[:, t], target)   # target (B,) at this step ('sum' loss)
        grads = learner.end(target)               # target needed here for the 'mean' loss

    Parameters stay fixed between ``begin`` and ``end``; apply the returned updates (or the
    ``.grad`` written by ``end``) with any optimiser afterwards. With kappa = 0 and the 'sum'
    loss the state is a lagged correlation per synapse group (post x pre x window); otherwise
    it holds kappa-filtered per-synapse traces (B x post x pre). Neither grows with time.
    """

    def __init__(self, net: DelayNet, config: EpropConfig | None = None) -> None:
        self.net = net
        self.cfg = config or EpropConfig()
        self.state = None

    def begin(self, batch: int) -> None:
        net, cfg = self.net, self.cfg
        w = net.readout.weight
        dtype, dev = w.dtype, w.device
        self.kappa = net.readout.kappa
        self.per_synapse = self.kappa != 0.0 or cfg.loss == "mean"
        self.state = net.initial_state(batch)
        self.groups: list[list[_GroupTraces]] = []
        for i, layer in enumerate(net.layers):
            g = [_GroupTraces(f"layers.{i}.ff", layer.ff, batch, layer.lif.alpha,
                              self.per_synapse, dtype, dev)]
            if layer.rec is not None:
                g.append(_GroupTraces(f"layers.{i}.rec", layer.rec, batch, layer.lif.alpha,
                                      self.per_synapse, dtype, dev))
            self.groups.append(g)
        self.feedback = [net.feedback(i, cfg.feedback) for i in range(len(net.layers))]
        n_last = net.layers[-1].n
        self.zbar = w.new_zeros(batch, n_last)  # kappa-filtered readout input
        self.bbar = 0.0
        self.g_out = torch.zeros_like(w)
        self.g_bias = w.new_zeros(w.shape[0])
        self.y_sum = w.new_zeros(batch, w.shape[0])
        self.zbar_sum = w.new_zeros(batch, n_last)
        self.bbar_sum = 0.0
        self.rate_sum = [w.new_zeros(batch, layer.n) for layer in net.layers]
        self.batch = batch
        self.t = 0

    @torch.no_grad()
    def step(self, x_t: torch.Tensor, target_t: torch.Tensor | None = None) -> OnlineStep:
        """Feed one input step x_t (B, n_in). With the 'sum' loss, target_t (B,) is the label at
        this step and the update for it is accumulated now."""
        if self.state is None:
            raise RuntimeError("call begin(batch) before step()")
        net, cfg, st = self.net, self.cfg, self.state
        if cfg.loss == "sum" and target_t is None:
            raise ConfigError("the 'sum' loss needs the target at every step")
        z_prev = list(st.z)  # the recurrent synapses see the spikes of the previous step
        y = net.step(x_t, st)
        # the feedforward synapses see the input and the lower layers' spikes of this step
        pres = [x_t.to(net.readout.weight.dtype)] + list(st.z[:-1])
        self.t += 1
        B = self.batch
        psis = [layer.lif.surrogate.derivative(st.v[i], layer.lif.theta)
                for i, layer in enumerate(net.layers)]

        # output error of this step (zero until the end for the 'mean' loss)
        self.zbar = self.kappa * self.zbar + st.z[-1]
        self.bbar = self.kappa * self.bbar + 1.0
        if cfg.loss == "sum":
            err = output_error(y.unsqueeze(1), target_t, "sum")[:, 0]
            self.g_out += err.t() @ self.zbar
            self.g_bias += err.sum(0) * self.bbar
        else:
            self.y_sum += y
            self.zbar_sum += self.zbar
            self.bbar_sum += self.bbar
            err = None

        for i in range(len(net.layers)):
            psi = psis[i]
            self.rate_sum[i] += st.z[i]
            reg = None
            if cfg.reg_rate:
                # T is only known at the end for the whole-sequence path; the online path uses
                # the running mean so both stay causal, and rescales by 1/T in end().
                reg = cfg.reg_rate * (self.rate_sum[i] / self.t - cfg.target_rate) / B
            signal = err @ self.feedback[i] if err is not None else None
            for g, pre in zip(self.groups[i], [pres[i], z_prev[i]]):
                g.push(pre)
                if not self.per_synapse:
                    h = signal * psi
                    if reg is not None:
                        g.reg_corr = getattr(g, "reg_corr", 0) + torch.einsum(
                            "bj,bil->jil", reg * psi, g.line.history())
                    g.corr += torch.einsum("bj,bil->jil", h, g.line.history())
                    continue
                eps_w, eps_d = g.eligibility_vectors()
                e_w = psi.unsqueeze(-1) * eps_w
                e_d = psi.unsqueeze(-1) * eps_d if eps_d is not None else None
                g.ebar_w = self.kappa * g.ebar_w + e_w
                if e_d is not None:
                    g.ebar_d = self.kappa * g.ebar_d + e_d
                if cfg.loss == "sum":
                    g.acc_w += signal.unsqueeze(-1) * g.ebar_w
                    if e_d is not None:
                        g.acc_d += signal.unsqueeze(-1) * g.ebar_d
                else:
                    g.acc_w += g.ebar_w
                    if e_d is not None:
                        g.acc_d += g.ebar_d
                if reg is not None:  # the regulariser acts on z directly: unfiltered traces
                    g.reg_w = getattr(g, "reg_w", 0) + (reg.unsqueeze(-1) * e_w).sum(0)
                    if e_d is not None:
                        g.reg_d = getattr(g, "reg_d", 0) + (reg.unsqueeze(-1) * e_d).sum(0)
        return OnlineStep(y, list(st.z), psis)

    def eligibility(self, layer: int, group: str = "ff") -> tuple[torch.Tensor, torch.Tensor]:
        """Current eligibility vectors eps^W, eps^D (B, post, pre) of one synapse group
        (``group`` 'ff' or 'rec'); eps^D is None without delays."""
        gs = self.groups[layer]
        return gs[0 if group == "ff" else 1].eligibility_vectors()

    @torch.no_grad()
    def end(self, target: torch.Tensor | None = None, set_grad: bool = True):
        """Finish the sequence: return the accumulated updates by parameter name (and write
        them into ``.grad`` if ``set_grad``). The 'mean' loss needs ``target`` (B,) here."""
        if self.state is None:
            raise RuntimeError("call begin(batch) before end()")
        net, cfg, T = self.net, self.cfg, self.t
        if T == 0:
            raise ConfigError("end() called before any step()")
        grads: dict[str, torch.Tensor] = {}
        if cfg.loss == "mean":
            if target is None:
                raise ConfigError("the 'mean' loss needs the target at end()")
            y_mean = (self.y_sum / T).unsqueeze(1)
            err = output_error(y_mean, target, "mean")[:, 0] / T  # dE/dy[t], the same for all t
            grads["readout.weight"] = err.t() @ self.zbar_sum
            if net.readout.bias is not None:
                grads["readout.bias"] = err.sum(0) * self.bbar_sum
        else:
            grads["readout.weight"] = self.g_out.clone()
            if net.readout.bias is not None:
                grads["readout.bias"] = self.g_bias.clone()
        for i, gs in enumerate(self.groups):
            for g in gs:
                if not self.per_synapse:
                    corr = g.corr + (g.reg_corr / T if hasattr(g, "reg_corr") else 0)
                    grads.update(updates_from_correlation(g.name, g.syn, corr))
                    continue
                if cfg.loss == "mean":
                    signal = err @ self.feedback[i]  # (B, post)
                    gw = (signal.unsqueeze(-1) * g.acc_w).sum(0)
                    gd = (signal.unsqueeze(-1) * g.acc_d).sum(0)
                else:
                    gw, gd = g.acc_w.sum(0), g.acc_d.sum(0)
                if hasattr(g, "reg_w"):
                    gw = gw + g.reg_w / T
                    gd = gd + (g.reg_d / T if hasattr(g, "reg_d") else 0)
                grads[f"{g.name}.weight"] = gw
                if g.syn.syn_delay is not None:
                    grads[f"{g.name}.syn_delay"] = gd
                if g.syn.ax_delay is not None:
                    grads[f"{g.name}.ax_delay"] = gd.sum(0)
        if set_grad:
            _set_grads(net, grads)
        self.state = None
        return grads
