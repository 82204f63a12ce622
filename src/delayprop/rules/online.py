r"""Per-step (online) e-prop: :class:`OnlineEprop`, one time step at a time, the on-device path.

The updates are those of :func:`delayprop.rules.eprop.eprop_gradients` (the module's
equations), computed from what a device keeps between steps:

* per synapse group, a delay line of the filtered presynaptic signal :math:`\bar x` over the
  group's lag window (plus ``lag`` steps, below) and, when the readout leaks
  (:math:`\kappa > 0`), one filtered eligibility :math:`\bar e` per synapse and parameter kind;
* one accumulated update per parameter (per sample for the 'mean' loss, whose error is known
  only at the end);
* the network's own state (membranes, spikes, the raw-input delay lines the forward pass reads).

**Readout delays.** A hidden spike at t reaches output k at t + D_kj, so the last layer's
learning signal at s, :math:`L_j[s] = \sum_k \sum_\tau W_{kj} K_{kj}(\tau)\, err_k[s+\tau]`,
is complete only ``lag`` = readout window - 1 steps later. Instead of keeping every trace of
the last ``lag`` steps until its error arrives (``lag`` x B x post x pre numbers), the last
layer evaluates its eligibility ``lag`` steps late: it keeps :math:`\bar x` for ``lag`` more
steps, the pseudo-derivatives and the output errors of the last ``lag`` steps, and at step t
pays :math:`L[t - lag]\, \bar e[t - lag]`. The sum over the sequence is the same; ``end()`` (and
``accumulated()``) pays the last ``lag`` steps with the errors that exist (none after the
sequence). The state is then O(synapses) instead of O(lag x synapses).

Layout: per-neuron vectors are (n, B), per-synapse tensors (pre, post, B), so that the
delay-derivative contraction is one batched matrix product over presynaptic neurons.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from delayprop.blocks import DelayedSynapses
from delayprop.errors import ConfigError
from delayprop.layers import DelayNet
from delayprop.neurons import lif_step
from delayprop.rules.eprop import EpropConfig, _set_grads, output_error


class _Kernels:
    """What one synapse group's forward current and eligibility vectors need, derived from its
    parameters at ``begin()`` (shared by every sample of the batch; parameters do not change
    within a sequence): the rounded delays as gather indices (hard delays), the dense kernel
    (smooth delays) and W dK/dD (any learned delays), each laid out (P, W, N) so that a
    history (P, B, W) times it is one batched matrix product over presynaptic neurons."""

    def __init__(self, syn: DelayedSynapses, batch: int) -> None:
        w = syn.weight.detach()
        self.P, self.N, self.W = syn.n_pre, syn.n_post, syn.window
        self.w = w  # (N, P)
        self.wT = w.t().contiguous().unsqueeze(1)  # (P, 1, N)
        self.has_delays = syn.has_delays
        self.plain = not syn.has_delays  # window 1, K = 1
        self.base = self.k = self.wk = self.wdk = None
        dev = w.device
        if self.has_delays and syn.mode == "hard":
            idx = syn.delay_index().t()  # (P, N)
            p = torch.arange(self.P, device=dev).view(-1, 1, 1) * (batch * self.W)
            b = torch.arange(batch, device=dev).view(1, -1, 1) * self.W
            self.base = (p + b + idx.unsqueeze(1)).contiguous()  # into hist (P, B, W)
        elif self.has_delays:
            kern = syn.kernel().detach()  # (N, P, W)
            self.k = kern.permute(1, 2, 0).contiguous()  # (P, W, N)
            self.wk = (w.unsqueeze(-1) * kern).reshape(self.N, -1).t().contiguous()  # (PW, N)
        if self.has_delays:
            wdk = w.unsqueeze(-1) * syn.kernel_derivative().detach()
            self.wdk = wdk.permute(1, 2, 0).contiguous()  # (P, W, N)

    def rows(self, hist: torch.Tensor) -> torch.Tensor:
        """sum_tau K_ji(tau) x_i[t - tau]: hist (P, B, W) -> (P, B, N); (P, B, 1) if plain."""
        if self.plain:
            return hist
        if self.base is not None:
            return torch.take(hist, self.base)
        return torch.bmm(hist, self.k)

    def derivative(self, hist: torch.Tensor) -> torch.Tensor:
        """W_ji sum_tau dK_ji/dD(tau) x_i[t - tau]: (P, B, W) -> (P, B, N)."""
        return torch.bmm(hist, self.wdk)

    def current(self, hist: torch.Tensor) -> torch.Tensor:
        """sum_i W_ji sum_tau K_ji(tau) x_i[t - tau]: hist (P, B, W) -> (B, N), for a group
        with delays (one without reads its input directly: :meth:`_Group.forward`)."""
        if self.base is not None:
            return (self.rows(hist) * self.wT).sum(0)
        B = hist.shape[1]
        return hist.transpose(0, 1).reshape(B, -1) @ self.wk

    def tensors(self) -> list[torch.Tensor]:
        return [t for t in (self.base, self.k, self.wk, self.wdk) if t is not None]


class _Ring:
    """The last ``n`` values of a (B, P) signal, slot = time mod n; ``hist(t, W)`` returns
    (P, B, W) with [..., l] = value at t - l (zeros before time 0)."""

    def __init__(self, P: int, n: int, B: int, like: torch.Tensor) -> None:
        self.n = n
        self.buf = like.new_zeros(P, B, n)
        self._tables: dict[int, torch.Tensor] = {}

    def push(self, t: int, value: torch.Tensor) -> None:
        self.buf[..., t % self.n] = value.t()

    def hist(self, t: int, W: int) -> torch.Tensor:
        table = self._tables.get(W)
        if table is None:  # slots of t - l for every t mod n, l = 0..W-1
            q = torch.arange(self.n, device=self.buf.device).unsqueeze(1)
            table = self._tables[W] = (q - torch.arange(W, device=self.buf.device)) % self.n
        return self.buf.index_select(2, table[t % self.n])


class _Group:
    """Online state of one synapse group: the raw-input line the forward pass reads, the
    filtered-input line the eligibility reads (``lag`` steps longer), the filtered
    eligibilities (kappa > 0) and the accumulated updates."""

    def __init__(self, name: str, syn: DelayedSynapses, batch: int, alpha: float, kappa: float,
                 lag: int, per_sample: bool, reg: bool, like: torch.Tensor) -> None:
        self.name, self.syn, self.alpha, self.kappa, self.lag = name, syn, alpha, kappa, lag
        self.ker = _Kernels(syn, batch)
        P, N, W = self.ker.P, self.ker.N, self.ker.W
        # raw input (forward pass; a group without delays reads its input directly)
        self.x_line = None if self.ker.plain else _Ring(P, W, batch, like)
        self.xbar = like.new_zeros(batch, P)
        self.xbar_line = _Ring(P, W + lag, batch, like)
        kinds = 2 if syn.has_delays else 1
        acc_shape = (P, batch, N) if per_sample else (P, N)
        self.ebar = [like.new_zeros(P, batch, N) for _ in range(kinds)] if kappa else None
        self.acc = [like.new_zeros(acc_shape) for _ in range(kinds)]
        self.reg = [like.new_zeros(P, N) for _ in range(kinds)] if reg else None

    def forward(self, t: int, pre: torch.Tensor) -> torch.Tensor:
        """Push the presynaptic values pre (B, P) of step t; the current (B, N)."""
        if self.ker.plain:
            return pre @ self.ker.wT[:, 0]
        self.x_line.push(t, pre)
        return self.ker.current(self.x_line.hist(t, self.ker.W))

    def trace(self, t: int, pre: torch.Tensor) -> None:
        """x-bar of step t."""
        self.xbar = torch.add(pre, self.xbar, alpha=self.alpha)
        self.xbar_line.push(t, self.xbar)

    def eligibility_vectors(self, t: int) -> list[torch.Tensor]:
        """eps^W (and eps^D with delays) at step t, each (P, B, N) (eps^W (P, B, 1) when the
        group has no delays: the same for every postsynaptic neuron)."""
        hist = self.xbar_line.hist(t, self.ker.W)
        eps = [self.ker.rows(hist)]
        if self.ker.has_delays:
            eps.append(self.ker.derivative(hist))
        return eps

    def learn(self, s: int, psi: torch.Tensor | None, signal: torch.Tensor | None,
              reg: torch.Tensor | None, state: "_Group.Acc") -> None:
        """Pay step s: e = psi eps (eps for the readout, psi None), e-bar filtered by kappa;
        'sum' loss: acc += L[s] e-bar (signal (B, N)); otherwise (signal None) acc += e-bar per
        sample; the rate regulariser adds reg[s] e (unfiltered)."""
        B = self.xbar.shape[0]
        for kind, eps in enumerate(self.eligibility_vectors(s)):
            if reg is None and state.ebar is not None:  # e-bar = kappa e-bar + psi eps, fused
                eb = state.ebar[kind].mul_(self.kappa).addcmul_(eps, psi)
            else:
                e = eps if psi is None else eps * psi
                if reg is not None:
                    state.reg[kind] += _contract(e, reg, B)
                eb = state.ebar[kind].mul_(self.kappa).add_(e) if state.ebar is not None else e
            if signal is None:
                state.acc[kind] += eb
            elif B == 1 and eb.shape[-1] == signal.shape[-1]:
                state.acc[kind].addcmul_(eb[:, 0], signal[0])
            else:
                state.acc[kind] += _contract(eb, signal, B)

    @dataclass
    class Acc:
        """The parts of a group's state that paying a step changes."""

        ebar: list[torch.Tensor] | None
        acc: list[torch.Tensor]
        reg: list[torch.Tensor] | None

        def clone(self) -> "_Group.Acc":
            def c(ts):
                return None if ts is None else [t.clone() for t in ts]

            return _Group.Acc(c(self.ebar), c(self.acc), c(self.reg))

    @property
    def mutable(self) -> "_Group.Acc":
        return _Group.Acc(self.ebar, self.acc, self.reg)

    def tensors(self) -> dict[str, torch.Tensor]:
        """Per-sample state by part, for the memory account."""
        out = {"filtered input": self.xbar, "filtered-input line": self.xbar_line.buf}
        if self.x_line is not None:
            out["input line (forward)"] = self.x_line.buf
        for part, ts in (("filtered eligibility", self.ebar), ("accumulated update", self.acc),
                         ("regulariser accumulator", self.reg)):
            for k, t in enumerate(ts or []):
                out[f"{part} {'WD'[k]}"] = t
        return out


def _contract(e: torch.Tensor, signal: torch.Tensor, B: int) -> torch.Tensor:
    """sum_b e[p, b, n] signal[b, n] -> (P, N); e may be (P, B, 1)."""
    if e.shape[-1] != signal.shape[-1]:
        e = e.expand(-1, -1, signal.shape[-1])
    if B == 1:
        return e[:, 0] * signal[0]
    return torch.einsum("pbn,bn->pn", e, signal)


@dataclass
class OnlineStep:
    """What one online step returns: readout y (B, C), spikes z and pseudo-derivatives psi
    per hidden layer (B, n_l)."""

    y: torch.Tensor
    z: list[torch.Tensor]
    psi: list[torch.Tensor]


class _Stream:
    """The network's state for one batch of streams, (B, n) per layer."""

    def __init__(self, net: DelayNet, batch: int, like: torch.Tensor) -> None:
        self.v = [like.new_zeros(batch, layer.n) for layer in net.layers]
        self.z = [like.new_zeros(batch, layer.n) for layer in net.layers]
        self.y = like.new_zeros(batch, net.readout.weight.shape[0])


class OnlineEprop:
    """E-prop one time step at a time (real-time / on-device use).

    Usage::

        learner = OnlineEprop(net, EpropConfig(loss="sum"))
        learner.begin(batch_size)
        for t in range(T):
            out = learner.step(x[:, t], target)   # target (B,) at this step ('sum' loss)
        grads = learner.end(target)               # target needed here for the 'mean' loss

    Parameters stay fixed between ``begin`` and ``end``; apply the returned updates (or the
    ``.grad`` written by ``end``) with any optimiser afterwards. The learner runs the network
    itself (the same numbers as ``DelayNet.step``) and holds, besides the network's state, a
    delay line of each group's filtered input, one filtered eligibility per synapse and
    parameter kind (when the readout leaks) and the accumulated update: nothing grows with
    time. With learned readout delays the last layer's eligibility is evaluated ``lag`` =
    readout window - 1 steps late (module docstring), so the updates of the last ``lag`` steps
    are paid by ``end()``. :meth:`state_parts` lists what is kept, :func:`minimum_state` what
    the rule needs.
    """

    def __init__(self, net: DelayNet, config: EpropConfig | None = None) -> None:
        self.net = net
        self.cfg = config or EpropConfig()
        self.state = None
        self._checked_target = None

    # -- set-up ------------------------------------------------------------------------------
    @torch.no_grad()
    def begin(self, batch: int) -> None:
        """Start a sequence of ``batch`` samples (a positive whole number)."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ConfigError(f"begin(batch): the batch size must be a positive integer, "
                              f"got {batch!r}")
        net, cfg = self.net, self.cfg
        ro = net.readout
        like = ro.weight.detach()
        self.kappa = ro.kappa
        self.mean = cfg.loss == "mean"
        last = len(net.layers) - 1
        # readout delays with symmetric feedback: the last layer's signal comes lag steps late
        delayed = ro.has_delays and cfg.feedback == "symmetric"
        self.lag = ro.window - 1 if delayed else 0
        self.groups: list[list[_Group]] = []
        for i, layer in enumerate(net.layers):
            lag = self.lag if i == last else 0
            syns = [("ff", layer.ff)] + ([("rec", layer.rec)] if layer.rec is not None else [])
            self.groups.append([
                _Group(f"layers.{i}.{kind}", syn, batch, layer.lif.alpha, self.kappa, lag,
                       self.mean, bool(cfg.reg_rate), like) for kind, syn in syns])
        # the readout: input z filtered by kappa, no pseudo-derivative, no further filter
        self.readout = _Group("readout", ro, batch, self.kappa, 0.0, 0, self.mean, False, like)
        self.bias = ro.bias.detach() if ro.bias is not None else None
        self.feedback = [net.feedback(i, cfg.feedback).detach() for i in range(last + 1)]
        C = ro.weight.shape[0]
        if self.lag:  # the last layer's learning signal, lag steps late
            wr = ro.window
            wk = ro.weighted_kernel().detach()  # (C, H, wr): W_kj K_kj(tau)
            self.wk_flat = wk.permute(2, 0, 1).reshape(wr * C, wk.shape[1])  # [tau C + k, j]
            # err[t] at slot t mod wr ('sum' loss; the 'mean' loss's is known at the end)
            self.err_ring = None if self.mean else like.new_zeros(wr, batch, C)
            self.err_order = (torch.arange(wr, device=like.device).unsqueeze(1)
                              + torch.arange(wr, device=like.device)) % wr
            n_last = net.layers[-1].n
            self.psi_ring = like.new_zeros(wr, batch, n_last)
            self.reg_ring = like.new_zeros(wr, batch, n_last) if cfg.reg_rate else None
        self.bbar = 0.0
        self.g_bias = like.new_zeros(C)
        self.y_sum = like.new_zeros(batch, C) if self.mean else None
        self.bbar_sum = 0.0
        # spike counts for the rate regulariser's running rate
        self.rate_sum = ([like.new_zeros(batch, layer.n) for layer in net.layers]
                         if cfg.reg_rate else None)
        self.state = _Stream(net, batch, like)
        self.batch = batch
        self.t = 0
        self._checked_target = None
        self._minus_one = like.new_full((1, 1), -1.0).expand(batch, 1)

    # -- one step ----------------------------------------------------------------------------
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
        net.check_step_values(x_t)
        t = self.t
        ro = self.readout
        # forward: every layer, then the readout (as DelayNet.step)
        pres = []
        inp = x_t.to(ro.ker.w.dtype)
        for i, layer in enumerate(net.layers):
            gs = self.groups[i]
            current = gs[0].forward(t, inp)
            layer_pres = [inp]
            if len(gs) > 1:  # recurrent synapses see the spikes of the previous step
                current = current + gs[1].forward(t, st.z[i])
                layer_pres.append(st.z[i])
            st.z[i], st.v[i] = lif_step(current, st.v[i], st.z[i], layer.lif)
            pres.append(layer_pres)
            inp = st.z[i]
        drive = ro.forward(t, inp)
        if self.bias is not None:
            drive = drive + self.bias
        st.y = torch.add(drive, st.y, alpha=self.kappa)
        self.t = t + 1
        psis = [layer.lif.surrogate.derivative(st.v[i], layer.lif.theta)
                for i, layer in enumerate(net.layers)]

        # output error of this step ('sum'; for 'mean' it is known at the end)
        self.bbar = self.kappa * self.bbar + 1.0
        ro.trace(t, inp)
        err = None
        if cfg.loss == "sum":
            err = torch.softmax(st.y, -1)
            tgt = torch.as_tensor(target_t, device=err.device).view(-1, 1)
            err.scatter_add_(1, tgt, self._minus_one).div_(self.batch)
            self.g_bias.add_(err.sum(0), alpha=self.bbar)
            ro.learn(t, None, err, None, ro.mutable)
        else:
            self.y_sum += st.y
            self.bbar_sum += self.bbar
            ro.learn(t, None, None, None, ro.mutable)

        last = len(net.layers) - 1
        for i in range(last + 1):
            psi = psis[i]
            reg = None
            if cfg.reg_rate:
                self.rate_sum[i] += st.z[i]
                # T is only known at the end for the whole-sequence path; the online path uses
                # the running mean so both stay causal, and rescales by 1/T in end().
                reg = cfg.reg_rate * (self.rate_sum[i] / self.t - cfg.target_rate) / self.batch
            for g, pre in zip(self.groups[i], pres[i]):
                g.trace(t, pre)
            if i == last and self.lag:
                wr = self.lag + 1
                self.psi_ring[t % wr] = psi
                if reg is not None:
                    self.reg_ring[t % wr] = reg
                if err is not None:
                    self.err_ring[t % wr] = err
                s = t - self.lag
                if s >= 0:
                    self._pay_lagged(s, self.err_ring, [g.mutable for g in self.groups[i]])
                continue
            signal = err @ self.feedback[i] if err is not None else None
            for g in self.groups[i]:
                g.learn(t, psi, signal, reg, g.mutable)
        return OnlineStep(st.y, list(st.z), psis)

    def _pay_lagged(self, s: int, err_ring: torch.Tensor | None,
                    accs: list[_Group.Acc]) -> None:
        """The last layer pays step s = t - lag with L[s] = sum_tau sum_k W K(tau) err[s + tau]
        (err_ring holds err[s .. s + lag]; None for the 'mean' loss, whose step s only adds
        e-bar[s] to the per-sample sums)."""
        wr = self.lag + 1
        signal = None
        if err_ring is not None:
            order = err_ring.index_select(0, self.err_order[s % wr])  # err[s + tau], tau-major
            signal = order.transpose(0, 1).reshape(self.batch, -1) @ self.wk_flat
        psi = self.psi_ring[s % wr]
        reg = self.reg_ring[s % wr] if self.reg_ring is not None else None
        for g, acc in zip(self.groups[-1], accs):
            g.learn(s, psi, signal, reg, acc)

    # -- the updates -------------------------------------------------------------------------
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
        T = self.t
        if T == 0:
            raise ConfigError("end() called before any step()")
        err = None
        grads: dict[str, torch.Tensor] = {}
        if self.mean:
            if target is None:
                raise ConfigError("the 'mean' loss needs the target at end()")
            y_mean = (self.y_sum / T).unsqueeze(1)
            err = output_error(y_mean, target, "mean")[:, 0] / T  # (B, C), every step
            if self.bias is not None:
                grads["readout.bias"] = err.sum(0) * self.bbar_sum
        elif self.bias is not None:
            grads["readout.bias"] = self.g_bias.clone()
        grads.update(self._group_grads(self.readout, self.readout.mutable, err, T))

        last = len(self.groups) - 1
        for i, gs in enumerate(self.groups):
            accs = [g.mutable for g in gs]
            signal = None
            if i == last and self.lag:
                accs = [a.clone() for a in accs]
                self._flush(accs, err)
            elif err is not None:
                signal = err @ self.feedback[i]
            for g, acc in zip(gs, accs):
                grads.update(self._group_grads(g, acc, signal, T))
        return grads

    def _flush(self, accs: list[_Group.Acc], err: torch.Tensor | None) -> None:
        """Pay the last layer's steps T - lag .. T - 1 into ``accs`` (copies) with the errors
        that exist: err[t] for t < T, none after. For the 'mean' loss (err (B, C), the same
        every step) the steps already paid hold per-sample sums of e-bar: they are multiplied
        by their full learning signal, sum_k err_k sum_tau W_kj K_kj(tau)."""
        T, wr = self.t, self.lag + 1
        if err is not None:
            ring = err.expand(wr, *err.shape).clone()
            full = ring.transpose(0, 1).reshape(self.batch, -1) @ self.wk_flat
            tail = [_Group.Acc(a.ebar, [x.new_zeros(x.shape[0], x.shape[2]) for x in a.acc],
                               a.reg) for a in accs]
        else:
            ring, tail = self.err_ring.clone(), accs
        for r in range(1, self.lag + 1):
            s = T - 1 + r - self.lag
            ring[(T - 1 + r) % wr] = 0.0
            if s >= 0:
                self._pay_lagged(s, ring, tail)
        if err is not None:  # the per-sample sums times the full signal, plus the tail
            for a, tl in zip(accs, tail):
                a.acc = [_contract(x, full, self.batch) + y for x, y in zip(a.acc, tl.acc)]
                a.reg = tl.reg

    def _group_grads(self, g: _Group, acc: _Group.Acc, signal: torch.Tensor | None,
                     T: int) -> dict[str, torch.Tensor]:
        """Updates of one group, (post, pre) like the parameters: acc (P, N) for the 'sum'
        loss; per-sample sums (P, B, N) times the signal (B, N) for the 'mean' loss."""
        parts = []
        for k, a in enumerate(acc.acc):
            if a.dim() == 3:
                a = _contract(a, signal, self.batch)
            if acc.reg is not None:
                a = a + acc.reg[k] / T
            parts.append(a.t().contiguous())
        syn = g.syn
        out = {f"{g.name}.weight": parts[0]}
        if syn.syn_delay is not None:
            out[f"{g.name}.syn_delay"] = parts[1]
        if syn.ax_delay is not None:
            out[f"{g.name}.ax_delay"] = parts[1].sum(0)
        return out

    # -- inspection --------------------------------------------------------------------------
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
        g = gs[0 if group == "ff" else 1]
        eps = g.eligibility_vectors(max(self.t - 1, 0))
        eps = [e.expand(-1, -1, g.ker.N).permute(1, 2, 0) for e in eps]
        return eps[0], (eps[1] if len(eps) > 1 else None)

    def state_parts(self) -> dict[str, int]:
        """Numbers kept between steps for the current batch, by part (no parameters, and not
        the kernels derived from them: :meth:`kernel_numel`)."""
        if self.state is None:
            raise ConfigError("state_parts(): call begin(batch) first")
        parts: dict[str, int] = {}

        def add(name: str, t) -> None:
            if t is not None:
                parts[name] = parts.get(name, 0) + t.numel()

        st = self.state
        for v, z in zip(st.v, st.z):
            add("network: membranes and spikes", v)
            add("network: membranes and spikes", z)
        add("network: readout output", st.y)
        for g in [g for gs in self.groups for g in gs] + [self.readout]:
            for part, t in g.tensors().items():
                prefix = "readout" if g is self.readout else "hidden"
                name = (f"network: {prefix} input lines" if part == "input line (forward)"
                        else f"{prefix}: {part.rstrip(' WD')}")
                add(name, t)
        for r in self.rate_sum or []:
            add("rate regulariser: spike counts", r)
        add("readout: accumulated update", self.g_bias)
        if self.mean:
            add("readout: output sum ('mean' loss)", self.y_sum)
        if self.lag:
            add("last layer, lag: output errors", self.err_ring)
            add("last layer, lag: pseudo-derivatives", self.psi_ring)
            add("last layer, lag: regulariser signals", self.reg_ring)
        return parts

    def state_numel(self) -> int:
        """Numbers the learner holds between steps (:meth:`state_parts`), not the network's
        parameters nor the kernels derived from them."""
        return sum(self.state_parts().values())

    def kernels(self) -> list[torch.Tensor]:
        """Tensors derived from the parameters at ``begin()`` and shared by the batch: gather
        indices of the rounded delays (int64), dense kernels (smooth delays), W dK/dD, and the
        readout's W K (readout delays)."""
        if self.state is None:
            raise ConfigError("kernels(): call begin(batch) first")
        out = [t for g in [g for gs in self.groups for g in gs] + [self.readout]
               for t in g.ker.tensors()]
        return out + ([self.wk_flat] if self.lag else [])

    def kernel_numel(self) -> int:
        """Numbers in :meth:`kernels`."""
        return sum(t.numel() for t in self.kernels())

    def kernel_nbytes(self) -> int:
        """Bytes of :meth:`kernels`."""
        return sum(t.numel() * t.element_size() for t in self.kernels())

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


def minimum_state(net: DelayNet, config: EpropConfig | None = None, batch: int = 1,
                  scheme: str = "late") -> dict[str, int]:
    """The numbers the rule needs between steps, derived from its equations, by part, for
    ``batch`` streams (docs/benchmarks.md, "Online learner"):

    * per hidden synapse group with P inputs, N neurons, window W: the filtered input over the
      window, P x W (the eligibility of a synapse with delay D reads x-bar D steps back); with
      kappa > 0 one filtered eligibility per synapse and parameter kind (N x P x kinds), since
      e-bar[t] depends on every earlier psi; the accumulated update, one per parameter (per
      sample for the 'mean' loss, whose error is known only at the end);
    * the readout: its filtered input over its window, H x W_r, and its accumulated update;
    * learned readout delays (symmetric feedback): the last layer's error arrives up to
      lag = W_r - 1 steps late. ``scheme="late"`` (what :class:`OnlineEprop` does) evaluates
      the last layer's eligibility lag steps late: x-bar over W + lag steps, and the last lag
      steps' pseudo-derivatives (N x lag) and output errors (C x lag).
      ``scheme="on_arrival"`` pays each error when it arrives: every trace of the last lag
      steps is kept instead (lag x N x P x kinds per sample).

    The network's own state (membranes, spikes, raw-input lines) is inference, not learning,
    and is left out."""
    if scheme not in ("late", "on_arrival"):
        raise ConfigError(f"scheme must be 'late' or 'on_arrival', got {scheme!r}")
    cfg = config or EpropConfig()
    ro = net.readout
    per = batch if cfg.loss == "mean" else 1
    lag = ro.window - 1 if ro.has_delays and cfg.feedback == "symmetric" else 0
    parts = {"filtered-input lines": 0, "filtered eligibilities": 0,
             "eligibility history (readout delays)": 0, "accumulated updates": 0,
             "errors and pseudo-derivatives (readout delays)": 0}
    last = len(net.layers) - 1
    for i, layer in enumerate(net.layers):
        lag_i = lag if i == last else 0
        for syn in [layer.ff] + ([layer.rec] if layer.rec is not None else []):
            n_syn = syn.n_pre * syn.n_post * (2 if syn.has_delays else 1)
            late = lag_i if scheme == "late" else 0
            parts["filtered-input lines"] += syn.n_pre * (syn.window + late) * batch
            if ro.kappa:
                parts["filtered eligibilities"] += n_syn * batch
            if scheme == "on_arrival":
                parts["eligibility history (readout delays)"] += lag_i * n_syn * batch
            parts["accumulated updates"] += n_syn * per
    if scheme == "late":
        parts["errors and pseudo-derivatives (readout delays)"] = lag * (
            ro.weight.shape[0] + net.layers[-1].n) * batch
    ro_kinds = 2 if ro.has_delays else 1
    parts["filtered-input lines"] += ro.n_pre * ro.window * batch
    parts["accumulated updates"] += ro.weight.numel() * ro_kinds * per
    if ro.bias is not None:
        parts["accumulated updates"] += ro.bias.numel()
    return parts
