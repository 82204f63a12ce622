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
from delayprop.delays import DelayLine, delayed_sum, lagged_correlation_tm
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
            idx = syn.rounded_delay().clamp(0, syn.window - 1).long().unsqueeze(-1)
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
            # rate-regulariser accumulators (unfiltered traces), summed over the batch
            self.reg_w = torch.zeros(*shape, dtype=dtype, device=device)
            self.reg_d = torch.zeros(*shape, dtype=dtype, device=device)
        else:  # factorised: one lagged correlation (post, pre, window), and the regulariser's
            self.corr = torch.zeros(*shape, syn.window, dtype=dtype, device=device)
            self.reg_corr = torch.zeros_like(self.corr)

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

    Readout delays (``readout_delays``): a hidden spike at t reaches output k at t + D_kj, so
    its error arrives up to max_delay steps later. Instead of waiting for it, each step pays
    the error of this step to the traces of D_kj steps ago: the last hidden layer (symmetric
    feedback) keeps its kappa-filtered traces for the readout's window (window x B x post x
    pre; for the 'mean' loss their running sums), and the update at t adds
    sum_k err_k[t] W_kj sum_tau K_kj(tau) e-bar_ji[t - tau]. The readout's weights and delays
    correlate the error with its delayed, filtered input (window x B x H). The sum over the
    sequence is the whole-sequence path's, so the two agree to rounding; only the tail of the
    last traces (their error after the sequence) is never paid, as there is none.
    """

    def __init__(self, net: DelayNet, config: EpropConfig | None = None) -> None:
        self.net = net
        self.cfg = config or EpropConfig()
        self.state = None
        self._checked_target = None

    def begin(self, batch: int) -> None:
        """Start a sequence of ``batch`` samples (a positive whole number)."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ConfigError(f"begin(batch): the batch size must be a positive integer, "
                              f"got {batch!r}")
        net, cfg = self.net, self.cfg
        w = net.readout.weight
        dtype, dev = w.dtype, w.device
        self.kappa = net.readout.kappa
        ro = net.readout
        self.delayed = ro.has_delays  # readout delays: the last layer's error comes later
        self.per_synapse = self.kappa != 0.0 or cfg.loss == "mean" or self.delayed
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
        if self.delayed:
            wr = ro.window
            self.head = -1  # ring slot of the current step; slot (head - tau) % wr: t - tau
            self.z_ring = w.new_zeros(wr, batch, n_last)  # kappa-filtered readout input
            self.ro_wk = ro.weighted_kernel().detach()  # (C, H, window): W_kj K_kj(tau)
            self.ro_corr = w.new_zeros(*ro.weight.shape, wr)  # 'sum': C_kj(tau)
            self.ro_zsum = w.new_zeros(batch, n_last, wr)  # 'mean': sum_t zbar_j[t - tau]
            if cfg.feedback == "symmetric":  # e-bar (or its running sum) of the last window
                for g in self.groups[-1]:
                    g.ring_w = w.new_zeros(wr, *g.ebar_w.shape)
                    g.ring_d = w.new_zeros(wr, *g.ebar_d.shape) if g.syn.has_delays else None
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
        self._checked_target = None

    @torch.no_grad()
    def step(self, x_t: torch.Tensor, target_t: torch.Tensor | None = None) -> OnlineStep:
        """Feed one input step x_t (B, n_in). With the 'sum' loss, target_t (B,) is the label at
        this step and the update for it is accumulated now."""
        if self.state is None:
            raise RuntimeError("call begin(batch) before step()")
        net, cfg, st = self.net, self.cfg, self.state
        if cfg.loss == "sum" and target_t is None:
            raise ConfigError("the 'sum' loss needs the target at every step")
        self._check_step_input(x_t, target_t)
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
        lagged = None  # readout delays: the readout weights' error of this step, by lag
        if self.delayed:
            self.head = (self.head + 1) % self.z_ring.shape[0]
            self.z_ring[self.head] = self.zbar
            zhist = self.z_ring[self._lags()]  # (window, B, H): zbar[t - tau]
        if cfg.loss == "sum":
            err = output_error(y.unsqueeze(1), target_t, "sum")[:, 0]
            if self.delayed:
                self.ro_corr += torch.einsum("bk,lbj->kjl", err, zhist)
                lagged = self._slotted(torch.einsum("bk,kjl->bjl", err, self.ro_wk))
            else:
                self.g_out += err.t() @ self.zbar
            self.g_bias += err.sum(0) * self.bbar
        else:
            self.y_sum += y
            if self.delayed:
                self.ro_zsum += zhist.permute(1, 2, 0)
            else:
                self.zbar_sum += self.zbar
            self.bbar_sum += self.bbar
            err = None

        last = len(net.layers) - 1
        for i in range(len(net.layers)):
            ring = self.delayed and i == last and cfg.feedback == "symmetric"
            psi = psis[i]
            self.rate_sum[i] += st.z[i]
            reg = None
            if cfg.reg_rate:
                # T is only known at the end for the whole-sequence path; the online path uses
                # the running mean so both stay causal, and rescales by 1/T in end().
                reg = cfg.reg_rate * (self.rate_sum[i] / self.t - cfg.target_rate) / B
            signal = err @ self.feedback[i] if err is not None else None
            for g, pre in zip(self.groups[i], [pres[i], z_prev[i]]):
                hist = g.push(pre)
                if not self.per_synapse:
                    if reg is not None:
                        g.reg_corr += torch.einsum("bj,bil->jil", reg * psi, hist)
                    g.corr += torch.einsum("bj,bil->jil", signal * psi, hist)
                    continue
                eps_w, eps_d = g.eligibility_vectors()
                e_w = psi.unsqueeze(-1) * eps_w
                e_d = psi.unsqueeze(-1) * eps_d if eps_d is not None else None
                g.ebar_w = self.kappa * g.ebar_w + e_w
                if e_d is not None:
                    g.ebar_d = self.kappa * g.ebar_d + e_d
                if ring:  # this step's error pays the traces of D_kj steps ago
                    if cfg.loss == "sum":
                        g.ring_w[self.head] = g.ebar_w
                        g.acc_w += torch.einsum("bjs,sbji->bji", lagged, g.ring_w)
                        if e_d is not None:
                            g.ring_d[self.head] = g.ebar_d
                            g.acc_d += torch.einsum("bjs,sbji->bji", lagged, g.ring_d)
                    else:  # running sums of e-bar; the error comes at the end
                        g.acc_w += g.ebar_w
                        g.ring_w[self.head] = g.acc_w
                        if e_d is not None:
                            g.acc_d += g.ebar_d
                            g.ring_d[self.head] = g.acc_d
                elif cfg.loss == "sum":
                    g.acc_w += signal.unsqueeze(-1) * g.ebar_w
                    if e_d is not None:
                        g.acc_d += signal.unsqueeze(-1) * g.ebar_d
                else:
                    g.acc_w += g.ebar_w
                    if e_d is not None:
                        g.acc_d += g.ebar_d
                if reg is not None:  # the regulariser acts on z directly: unfiltered traces
                    g.reg_w += (reg.unsqueeze(-1) * e_w).sum(0)
                    if e_d is not None:
                        g.reg_d += (reg.unsqueeze(-1) * e_d).sum(0)
        return OnlineStep(y, list(st.z), psis)

    def state_numel(self) -> int:
        """Numbers the learner holds between steps: every tensor reachable from it (traces,
        delay lines, rings, accumulators, the network state), not the network's parameters."""
        seen, total = set(), 0

        def visit(obj, depth=0):
            nonlocal total
            if depth > 4 or id(obj) in seen:
                return
            seen.add(id(obj))
            if isinstance(obj, torch.Tensor):
                total += obj.numel()
            elif isinstance(obj, (list, tuple)):
                for o in obj:
                    visit(o, depth + 1)
            elif isinstance(obj, dict):
                for o in obj.values():
                    visit(o, depth + 1)
            elif hasattr(obj, "__dict__") and not isinstance(obj, torch.nn.Module):
                for o in vars(obj).values():
                    visit(o, depth + 1)
            elif hasattr(obj, "items") and hasattr(obj, "maxlen"):  # deque
                for o in obj:
                    visit(o, depth + 1)

        visit(self)
        return total

    def _lags(self) -> torch.Tensor:
        """Ring slots of lags 0..window-1 at the current step: slot of t - tau."""
        wr = self.z_ring.shape[0]
        return (self.head - torch.arange(wr, device=self.z_ring.device)) % wr

    def _slotted(self, by_lag: torch.Tensor) -> torch.Tensor:
        """(..., window) by lag tau -> (..., window) by ring slot, to contract with a ring."""
        out = torch.empty_like(by_lag)
        out[..., self._lags()] = by_lag
        return out

    def _check_step_input(self, x_t: torch.Tensor, target_t: torch.Tensor | None) -> None:
        """x_t (B, n_in) and target_t (B,) of the batch size ``begin`` was given."""
        n_in = self.net.layers[0].ff.weight.shape[1]
        if not isinstance(x_t, torch.Tensor) or x_t.dim() != 2:
            shape = tuple(x_t.shape) if isinstance(x_t, torch.Tensor) else type(x_t).__name__
            raise ConfigError(f"step(x_t): x_t must be a (batch, n_in) tensor, got {shape}")
        if x_t.shape[0] != self.batch:
            raise ConfigError(f"step(x_t): x_t has batch size {x_t.shape[0]}, but begin() was "
                              f"called with batch {self.batch}")
        if x_t.shape[1] != n_in:
            raise ConfigError(f"step(x_t): x_t has {x_t.shape[1]} channels, the network's "
                              f"n_in is {n_in}")
        if target_t is not None and target_t is not self._checked_target:
            t = torch.as_tensor(target_t)
            n_out = self.net.readout.weight.shape[0]
            if t.shape != (self.batch,):
                raise ConfigError(f"step(x_t, target_t): target_t must have shape "
                                  f"({self.batch},), got {tuple(t.shape)}")
            if t.is_floating_point() or (t.device.type == "cpu" and t.numel() and (
                    int(t.min()) < 0 or int(t.max()) >= n_out)):
                raise ConfigError(f"step(x_t, target_t): targets must be class indices in "
                                  f"[0, {n_out - 1}]")
            self._checked_target = target_t  # the same tensor every step: checked once

    def eligibility(self, layer: int, group: str = "ff") -> tuple[torch.Tensor, torch.Tensor]:
        """Current eligibility vectors eps^W, eps^D (B, post, pre) of one synapse group
        (``group`` 'ff' or 'rec'); eps^D is None without delays."""
        if self.state is None:
            raise ConfigError("eligibility(): call begin(batch) first")
        n = len(self.groups)
        if isinstance(layer, bool) or not isinstance(layer, int) or not -n <= layer < n:
            raise ConfigError(f"eligibility(layer={layer!r}): the network has {n} hidden "
                              f"layer(s), 0..{n - 1}")
        gs = self.groups[layer]
        if group not in ("ff", "rec"):
            raise ConfigError(f"eligibility(group={group!r}): 'ff' or 'rec'")
        if group == "rec" and len(gs) < 2:
            raise ConfigError(f"eligibility(layer={layer}, group='rec'): layer {layer} has no "
                              "recurrent synapses")
        return gs[0 if group == "ff" else 1].eligibility_vectors()

    @torch.no_grad()
    def end(self, target: torch.Tensor | None = None, set_grad: bool = True):
        """Finish the sequence: return the accumulated updates by parameter name (and write
        them into ``.grad`` if ``set_grad``). The 'mean' loss needs ``target`` (B,) here."""
        grads = self.accumulated(target)
        if set_grad:
            _set_grads(self.net, grads)
        self.state = None
        return grads

    @torch.no_grad()
    def accumulated(self, target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The updates accumulated so far (the sequence goes on): by parameter name. For the
        'mean' loss, ``target`` (B,) and the output mean so far define the error."""
        if self.state is None:
            raise RuntimeError("call begin(batch) before end() or accumulated()")
        net, cfg, T = self.net, self.cfg, self.t
        if T == 0:
            raise ConfigError("end() called before any step()")
        grads: dict[str, torch.Tensor] = {}
        if cfg.loss == "mean":
            if target is None:
                raise ConfigError("the 'mean' loss needs the target at end()")
            y_mean = (self.y_sum / T).unsqueeze(1)
            err = output_error(y_mean, target, "mean")[:, 0] / T  # dE/dy[t], the same for all t
            if self.delayed:
                corr = torch.einsum("bk,bjl->kjl", err, self.ro_zsum)
                grads.update(updates_from_correlation("readout", net.readout, corr))
            else:
                grads["readout.weight"] = err.t() @ self.zbar_sum
            if net.readout.bias is not None:
                grads["readout.bias"] = err.sum(0) * self.bbar_sum
        else:
            if self.delayed:
                grads.update(updates_from_correlation("readout", net.readout,
                                                      self.ro_corr.clone()))
            else:
                grads["readout.weight"] = self.g_out.clone()
            if net.readout.bias is not None:
                grads["readout.bias"] = self.g_bias.clone()
        last = len(self.groups) - 1
        for i, gs in enumerate(self.groups):
            ring = self.delayed and i == last and cfg.feedback == "symmetric"
            for g in gs:
                if not self.per_synapse:
                    corr = g.corr + g.reg_corr / T if cfg.reg_rate else g.corr
                    grads.update(updates_from_correlation(g.name, g.syn, corr))
                    continue
                if cfg.loss == "mean" and ring:
                    # sum_k err_k W_kj sum_tau K_kj(tau) sum_{t <= T - tau} e-bar_ji[t]
                    lagged = self._slotted(torch.einsum("bk,kjl->bjl", err, self.ro_wk))
                    gw = torch.einsum("bjs,sbji->ji", lagged, g.ring_w)
                    gd = (torch.einsum("bjs,sbji->ji", lagged, g.ring_d)
                          if g.ring_d is not None else g.acc_d.sum(0))
                elif cfg.loss == "mean":
                    signal = err @ self.feedback[i]  # (B, post)
                    gw = (signal.unsqueeze(-1) * g.acc_w).sum(0)
                    gd = (signal.unsqueeze(-1) * g.acc_d).sum(0)
                else:
                    gw, gd = g.acc_w.sum(0), g.acc_d.sum(0)
                if cfg.reg_rate:
                    gw = gw + g.reg_w / T
                    gd = gd + g.reg_d / T
                grads[f"{g.name}.weight"] = gw
                if g.syn.syn_delay is not None:
                    grads[f"{g.name}.syn_delay"] = gd
                if g.syn.ax_delay is not None:
                    grads[f"{g.name}.ax_delay"] = gd.sum(0)
        return grads
