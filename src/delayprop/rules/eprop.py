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

* :class:`delayprop.rules.online.OnlineEprop` — one time step at a time (the on-device
  path): delay lines of :math:`\bar x`, traces and accumulated update; memory independent of
  the sequence length.
* :func:`eprop_gradients` — a whole batch of sequences at once (the fast path). Because the
  sum over time factorises, all updates come from one lagged correlation
  :math:`C_{ji}(\tau) = \sum_{b,t} h_j[t]\, \bar x_i[t-\tau]` with
  :math:`h = \bar L \psi` (:math:`\bar L` the learning signal filtered backwards by
  :math:`\kappa`, which equals forward filtering of the traces). No B x T x post x pre tensor
  is ever built. By default it streams: the sequence runs in chunks and C accumulates chunk by
  chunk, so the working memory does not grow with T; the correlations and currents run in
  the frequency domain in float32 (:mod:`delayprop.delays`, about 4x a dense layer's
  multiply-adds instead of window x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from delayprop.blocks import DelayedSynapses, leaky_filter, leaky_filter_tm
from delayprop.delays import delayed_sum, lagged_correlation_tm
from delayprop.errors import ConfigError
from delayprop.layers import DelayNet, LayerRecord
from delayprop.losses import LOSSES, check_target, loss_value, output_error
from delayprop.stream import ForwardStream, chunk_spans, default_chunk, tail_of


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
        if syn.has_delays and syn.mode == "hard":
            # K is one-hot at the rounded delay: dW is C at that lag (the sum adds exact zeros)
            idx = syn.delay_index().unsqueeze(-1)
            g_weight = corr.gather(-1, idx).squeeze(-1)
        else:
            g_weight = (corr * syn.kernel()).sum(-1)
        out = {f"{name}.weight": g_weight}
        if syn.has_delays:
            g_delay = syn.weight * (corr * syn.kernel_derivative()).sum(-1)
            if syn.syn_delay is not None:
                out[f"{name}.syn_delay"] = g_delay
            if syn.ax_delay is not None:
                out[f"{name}.ax_delay"] = g_delay.sum(0)
    return out


def lagged_correlation(h: torch.Tensor, xbar: torch.Tensor, window: int, *,
                       history: torch.Tensor | None = None,
                       method: str = "auto") -> torch.Tensor:
    """C[j, i, tau] = sum_{b,t} h[b,t,j] xbar[b,t-tau,i]; h (B,T,post), xbar (B,T,pre).

    ``history`` (B, window - 1, pre) is xbar before t = 0 (zeros if None); ``method``
    'direct', 'spectral' or 'auto' (:func:`delayprop.delays.use_spectral`). Returns
    (post, pre, window).
    """
    hist = None if history is None else history.transpose(0, 1)
    return lagged_correlation_tm(h.transpose(0, 1), xbar.transpose(0, 1), window, hist, method)


def lagged_correlation_reference(h: torch.Tensor, xbar: torch.Tensor,
                                 window: int) -> torch.Tensor:
    """The plain definition of :func:`lagged_correlation`: one (post x pre) product per lag."""
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
    """Updates by parameter name; the output y (B, T, C) (None when not kept); the loss; the
    per-layer records (x, v, z over the sequence; empty when not kept); and ``scores`` (B, C),
    whose argmax is :func:`delayprop.losses.predict` of y (time-summed softmax for the 'sum'
    loss, time-mean output for 'mean')."""

    grads: dict[str, torch.Tensor]
    y: torch.Tensor | None
    loss: float
    records: list
    scores: torch.Tensor | None = None


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
    *,
    streaming: bool = True,
    chunk: int | None = None,
    keep_output: bool = True,
    record: bool = False,
    method: str = "auto",
) -> EpropResult:
    """E-prop updates for a batch of whole sequences. x (B, T, n_in); target (B,) or (B, T).

    Returns the accumulated updates (same sign and scale as a loss gradient) by parameter name;
    with ``set_grad`` they are also written into ``.grad``.

    ``streaming`` (default) runs the sequence in chunks of ``chunk`` steps (default:
    :func:`delayprop.delays.even_chunk`, about twice the lag window, equal chunks), carrying
    the neuron state, the filtered inputs and the last window - 1 steps of each presynaptic
    signal; the lagged correlations accumulate chunk by chunk, so the working memory does not
    grow with T. On the spectral route each feedforward group runs as a
    :class:`delayprop.delays.SpectralStream`: one transform per chunk serves the currents and
    the correlation with the leaky-filtered input, and its buffers are kept between calls
    (one set per layer and chunk length; :func:`delayprop.delays.clear_workspaces` frees
    them). When the learning
    signal at t needs outputs after t (readout kappa > 0 with the 'sum' loss, or the 'mean'
    loss) it runs the forward pass twice: the first pass keeps only the outputs (B x T x C for
    kappa > 0 and 'sum'; B x C for 'mean'). What grows with T is only what is asked for:
    ``keep_output`` (y, B x T x C) and ``record`` (x, v, z per layer). ``streaming=False`` is
    the whole-sequence path, which always records. ``method`` picks the kernels
    (:func:`delayprop.delays.use_spectral`).

    Readout delays (``readout_delays``): a hidden spike at t reaches output k at t + D_kj, so
    the last layer's learning signal (symmetric feedback) is the readout error up to
    max_delay steps later, L_j[t] = sum_k W_kj err-bar_k(t + D_kj): these run on the
    whole-sequence path (``streaming`` is ignored); the readout's own weights and delays learn
    from the lagged correlation of the error with its input, like any synapse group. Random
    feedback and earlier layers take err-bar at t, as without readout delays.
    """
    cfg = config or EpropConfig()
    if net.readout.has_delays:
        streaming = False
    if streaming:
        res = _eprop_streaming(net, x, target, cfg, chunk, keep_output, record, method)
    else:
        res = _eprop_whole(net, x, target, cfg, method)
    if set_grad:
        _set_grads(net, res.grads)
    return res


def _eprop_whole(net: DelayNet, x: torch.Tensor, target: torch.Tensor, cfg: EpropConfig,
                 method: str) -> EpropResult:
    """Whole-sequence e-prop: forward with records (B x T x n per layer), then the updates."""
    y, records = net(x, record=True)
    target = check_target(y, target, cfg.loss)
    B, T, _ = y.shape
    kappa = net.readout.kappa
    err = output_error(y, target, cfg.loss)  # dE/dy[t]
    err_bar = leaky_filter(err, kappa, reverse=True) if kappa else err

    last = len(records) - 1
    z_last = net.outgoing_bt(last, records[-1].z)
    readout = net.readout
    if readout.has_delays:
        # C_kj(tau) = sum err-bar_k[t] z_j[t - tau], as for any synapse group
        corr = lagged_correlation(err_bar, z_last, readout.window, method=method)
        grads = updates_from_correlation("readout", readout, corr)
    else:
        grads = {"readout.weight": torch.einsum("btc,bth->ch", err_bar, z_last)}
    if readout.bias is not None:
        grads["readout.bias"] = err_bar.sum((0, 1))

    for i, (layer, rec) in enumerate(zip(net.layers, records)):
        # L-bar, (B, T, n); a dropped neuron's spikes reach no output: no learning signal
        if i == last and readout.has_delays and cfg.feedback == "symmetric":
            # sum_k W_kj err-bar_k(t + D_kj): the delayed sum over the reversed sequence
            wk = readout.weighted_kernel().detach().transpose(0, 1)  # (H, C, window)
            rev = err_bar.flip(1).transpose(0, 1)
            error = delayed_sum(rev, wk, None, method).flip(0).transpose(0, 1)
        else:
            error = err_bar @ net.feedback(i, cfg.feedback)
        signal = net.outgoing_bt(i, error)
        if cfg.reg_rate:
            signal = signal + cfg.reg_rate * (running_rate(rec.z) - cfg.target_rate) / (T * B)
        h = signal * layer.lif.surrogate.derivative(rec.v, layer.lif.theta)
        alpha = layer.lif.alpha
        groups = [(f"layers.{i}.ff", layer.ff, rec.x)]
        if layer.rec is not None:
            z_prev = F.pad(rec.z, (0, 0, 1, 0))[:, :T]
            groups.append((f"layers.{i}.rec", layer.rec, z_prev))
        for name, syn, pre in groups:
            corr = lagged_correlation(h, leaky_filter(pre, alpha), syn.window, method=method)
            grads.update(updates_from_correlation(name, syn, corr))

    value = float(loss_value(y, target, cfg.loss))
    return EpropResult(grads, y, value, records, _scores(y, cfg.loss))


def _scores(y: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-sample class scores whose argmax is losses.predict(y, loss)."""
    return y.mean(1) if loss == "mean" else F.softmax(y, -1).sum(1)


class _TraceState:
    """What the learning side of streaming e-prop carries between chunks, per hidden layer,
    for synapse groups on the direct route (the spectral ones keep theirs in their
    SpectralStream): the filtered-input states and tails (last window - 1 steps) of the
    feedforward and recurrent inputs, and the spike counts of the rate regulariser."""

    def __init__(self, n: int) -> None:
        self.xbar: list[torch.Tensor | None] = [None] * n
        self.xbar_tail: list[torch.Tensor | None] = [None] * n
        self.zbar: list[torch.Tensor | None] = [None] * n
        self.zbar_tail: list[torch.Tensor | None] = [None] * n
        self.count: list[torch.Tensor | float] = [0.0] * n


def _check_finite(x: torch.Tensor, value: float, grads: dict[str, torch.Tensor]) -> None:
    """Raise ConfigError if the input holds NaN or inf. A non-finite input value reaches every
    update of the first layer (through its spectrum or its filtered trace) and the loss, so
    the input is only searched when the results are not finite (no pass over it otherwise)."""
    total = sum(float(g.sum()) for g in grads.values()) + value
    if not math.isfinite(total) and not torch.isfinite(x).all():
        raise ConfigError("input contains NaN or infinite values")


def _sum_loss_chunk(y_c: torch.Tensor, target: torch.Tensor, scores: torch.Tensor,
                    summed: torch.Tensor) -> torch.Tensor:
    """'sum' loss over one time-major chunk y_c (c, B, C) from one log-softmax: adds the
    softmax summed over time to ``scores`` (B, C) and the loss to ``summed`` (a scalar), and
    returns dE/dy (c, B, C), as :func:`output_error` (target (B,) or (B, c))."""
    c, B, C = y_c.shape
    logp = F.log_softmax(y_c, -1)
    tgt = target.view(1, B, 1).expand(c, B, 1) if target.dim() == 1 else target.t()[..., None]
    summed.sub_(logp.gather(-1, tgt).sum() / B)
    prob = logp.exp_()
    scores += prob.sum(0)
    return prob.scatter_add_(-1, tgt, prob.new_full((1, 1, 1), -1.0).expand(c, B, 1)).div_(B)


def _eprop_streaming(net: DelayNet, x: torch.Tensor, target: torch.Tensor, cfg: EpropConfig,
                     chunk: int | None, keep_output: bool, record: bool,
                     method: str) -> EpropResult:
    """Chunked e-prop (see :func:`eprop_gradients`). All internal tensors are time-major."""
    if x.dim() != 3 or x.shape[-1] != net.config.n_in:
        raise ConfigError(
            f"input must have shape (batch, time, {net.config.n_in}), got {tuple(x.shape)}"
        )
    B, T, _ = x.shape
    w = net.readout.weight
    C, dtype = w.shape[0], w.dtype
    target = check_target(w.new_zeros(1, 1, 1).expand(B, T, C), target, cfg.loss)
    kappa = net.readout.kappa
    spans = chunk_spans(T, default_chunk(net, T) if chunk is None else chunk)

    def chunk_target(t0: int, t1: int) -> torch.Tensor:
        return target if target.dim() == 1 else target[:, t0:t1]

    # the learning signal filtered backwards by kappa (err_bar) needs the future: pass 1
    err_all = err_mean = gain = None
    value = 0.0
    if cfg.loss == "mean":
        fwd = ForwardStream(net, method, slot="eprop.pass1", kept_lif=True)
        y_sum = w.new_zeros(B, C)
        for t0, t1 in spans:
            y_c, _ = fwd.step(fwd.chunk_input(x, t0, t1))
            y_sum += y_c.sum(0)
        y_mean = (y_sum / T).unsqueeze(1)
        err_mean = output_error(y_mean, target, "mean")[:, 0] / T  # (B, C): dE/dy[t], all t
        value = float(loss_value(y_mean, target, "mean"))
        ones = w.new_ones(1, T, 1)
        gain = (leaky_filter(ones, kappa, reverse=True) if kappa else ones)[0, :, 0]  # (T,)
    elif kappa:
        fwd = ForwardStream(net, method, slot="eprop.pass1", kept_lif=True)
        y_full = w.new_empty(T, B, C)
        for t0, t1 in spans:
            y_full[t0:t1] = fwd.step(fwd.chunk_input(x, t0, t1))[0]
        err = output_error(y_full.transpose(0, 1), target, "sum").transpose(0, 1)
        err_all = leaky_filter_tm(err, kappa, reverse=True)[0]
        value = float(loss_value(y_full.transpose(0, 1), target, "sum"))
        del y_full, err

    n_layers = len(net.layers)
    # feedforward groups on the spectral route share one input spectrum between the currents
    # and the correlation (SpectralStream); the others (direct route) filter and correlate here
    fwd = ForwardStream(net, method, traces=True, slot="eprop", kept_lif=not record)
    streams = fwd.streams
    st = _TraceState(n_layers)
    feedback = [net.feedback(i, cfg.feedback) for i in range(n_layers)]
    corr_ff: list[torch.Tensor | float] = [0.0] * n_layers
    corr_rec: list[torch.Tensor | float] = [0.0] * n_layers
    g_out = torch.zeros_like(w)
    g_bias = w.new_zeros(C)
    ys, recs = [], [[] for _ in range(n_layers)]
    scores = w.new_zeros(B, C)
    summed = w.new_zeros(())
    for t0, t1 in spans:
        y_c, layers_c = fwd.step(fwd.chunk_input(x, t0, t1))
        if cfg.loss == "mean":
            err_c = err_mean * gain[t0:t1].view(-1, 1, 1)
            scores += y_c.sum(0) / T
        elif kappa:
            err_c = err_all[t0:t1]
            scores += F.softmax(y_c, -1).sum(0)
        else:
            err_c = _sum_loss_chunk(y_c, chunk_target(t0, t1), scores, summed)
        if keep_output:
            ys.append(y_c)
        z_last = net.outgoing(n_layers - 1, layers_c[-1][2])
        g_out += err_c.reshape(-1, C).t() @ z_last.reshape(-1, z_last.shape[-1])
        g_bias += err_c.sum((0, 1))
        steps = torch.arange(t0 + 1, t1 + 1, dtype=dtype, device=w.device).view(-1, 1, 1)
        for i, (layer, (inp, v_c, z_c, z_prev)) in enumerate(zip(net.layers, layers_c)):
            signal = net.outgoing(i, err_c @ feedback[i])  # L-bar (c, B, n), dropout mask
            if cfg.reg_rate:
                counts = st.count[i] + z_c.cumsum(0)
                st.count[i] = counts[-1]
                signal = signal + cfg.reg_rate * (counts / steps - cfg.target_rate) / (T * B)
            # psi overwrites v unless v is recorded: h = L psi
            buf = v_c.clone() if record else v_c
            h = layer.lif.surrogate.derivative(v_c, layer.lif.theta, out=buf).mul_(signal)
            alpha, lag = layer.lif.alpha, layer.ff.window - 1
            if streams[i] is not None:
                streams[i].correlate(h)
            else:
                xbar, st.xbar[i] = leaky_filter_tm(inp, alpha, st.xbar[i])
                corr_ff[i] = corr_ff[i] + lagged_correlation_tm(
                    h, xbar, layer.ff.window, st.xbar_tail[i], method)
                st.xbar_tail[i] = tail_of(st.xbar_tail[i], xbar, lag)
                del xbar
            if layer.rec is not None:
                zbar, st.zbar[i] = leaky_filter_tm(z_prev, alpha, st.zbar[i])
                corr_rec[i] = corr_rec[i] + lagged_correlation_tm(
                    h, zbar, layer.rec.window, st.zbar_tail[i], method)
                st.zbar_tail[i] = tail_of(st.zbar_tail[i], zbar, layer.rec.window - 1)
            if record:  # a stream's window is reused by the next chunk: copy the input
                recs[i].append((inp if streams[i] is None else inp.clone(), v_c, z_c))
            del signal, h
        del layers_c
    if not (cfg.loss == "mean" or kappa):
        value = float(summed)

    grads = {"readout.weight": g_out}
    if net.readout.bias is not None:
        grads["readout.bias"] = g_bias
    for i, layer in enumerate(net.layers):
        if streams[i] is not None:
            corr_ff[i] = streams[i].correlation()
        grads.update(updates_from_correlation(f"layers.{i}.ff", layer.ff, corr_ff[i]))
        if layer.rec is not None:
            grads.update(updates_from_correlation(f"layers.{i}.rec", layer.rec, corr_rec[i]))
    _check_finite(x, value, grads)
    y = torch.cat(ys, 0).transpose(0, 1).contiguous() if keep_output else None
    records = []
    if record:
        for parts in recs:
            records.append(LayerRecord(*(torch.cat(p, 0).transpose(0, 1).contiguous()
                                         for p in zip(*parts))))
    return EpropResult(grads, y, value, records, scores)
