r"""The network: :class:`DelayNet` chains LIF layers with delayed synapses (feedforward or
recurrent) and a leaky readout, built from :mod:`delayprop.blocks` (which rests on
:mod:`delayprop.neurons` and :mod:`delayprop.delays`); :class:`NetConfig` defines it.

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
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Iterator, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from delayprop.blocks import (
    SPARSE_MIN_WINDOW,
    DelayedSynapses,
    FutureCurrents,
    LIFCarry,
    LIFLayer,
    Readout,
    integrate_tm,
    leaky_filter,
    leaky_filter_tm,
    one_thread,
)
from delayprop.delays import MODES, DelayLine, check_delay_settings
from delayprop.errors import ConfigError
from delayprop.neurons import LIFParameters, Surrogate, lif_step
from delayprop.stream import forward_streaming

# The building blocks live in delayprop.blocks; they are importable from here too, as before.
__all__ = [
    "SPARSE_MIN_WINDOW", "DelayLine", "DelayNet", "DelayedSynapses", "FutureCurrents",
    "LIFCarry", "LIFLayer", "LayerRecord", "NetConfig", "NetState", "Readout", "integrate_tm",
    "leaky_filter", "leaky_filter_tm", "one_thread",
]


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
        self._check_types()
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.n_hidden or any(n <= 0 for n in self.n_hidden):
            raise ConfigError(f"n_hidden must list positive layer sizes, got {self.n_hidden}")
        if self.n_in <= 0 or self.n_out <= 0:
            raise ConfigError(f"n_in and n_out must be positive, got {self.n_in}, {self.n_out}")
        for name, lo, lo_open, hi in (("tau_m", 0.0, True, None), ("dt", 0.0, True, None),
                                      ("theta", 0.0, True, None), ("kappa", 0.0, False, 1.0),
                                      ("weight_scale", 0.0, False, None),
                                      ("rec_weight_scale", 0.0, False, None)):
            v = getattr(self, name)
            if v < lo or (lo_open and v == lo) or (hi is not None and v >= hi):
                rng = f"{'(' if lo_open else '['}{lo:g}, {hi if hi is not None else 'inf'})"
                raise ConfigError(f"{name} must be in {rng}, got {v!r}")
        if self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed}")
        if self.delay_init not in ("uniform", "zero"):
            raise ConfigError(f"delay_init must be 'uniform' or 'zero', got {self.delay_init!r}")
        if self.reset not in ("subtract", "zero"):
            raise ConfigError(f"reset must be 'subtract' or 'zero', got {self.reset!r}")
        if self.recurrent_delays and not self.recurrent:
            raise ConfigError("recurrent_delays = true needs recurrent = true (there are no "
                              "recurrent synapses to delay)")
        if self.delay_mode not in MODES:
            raise ConfigError(f"delay_mode: the delay mode must be one of {MODES}, got "
                              f"{self.delay_mode!r}")
        if self.surrogate_scale is not None and not self.surrogate_scale > 0:
            raise ConfigError(f"surrogate_scale must be > 0 (or unset), got "
                              f"{self.surrogate_scale!r}")
        check_delay_settings(self.max_delay, self.delay_mode, self.sigma)
        Surrogate(self.surrogate, self.surrogate_scale)  # validates the kind
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

    def _check_types(self) -> None:
        """Each field of the type its annotation says (ConfigError naming the field): whole
        numbers for counts (``n_hidden`` may be one number: one layer), true/false for the
        switches, finite numbers for the rest, text for the choices."""
        def whole(name: str, v: object) -> int:
            if isinstance(v, float) and v.is_integer() and abs(v) < 2**63:
                return int(v)  # 10.0, as TOML or a division gives it
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"{name} must be a whole number, got {v!r}")
            return v

        n_hidden = self.n_hidden
        if isinstance(n_hidden, (int, float)) and not isinstance(n_hidden, bool):
            n_hidden = [n_hidden]  # one hidden layer
        if not isinstance(n_hidden, (list, tuple)):
            raise ConfigError(f"n_hidden must list the hidden layer sizes (e.g. [128] or "
                              f"[128, 128]), got {n_hidden!r}")
        self.n_hidden = tuple(whole("n_hidden", n) for n in n_hidden)
        for f in fields(self):
            if f.name == "n_hidden":
                continue
            v, kind = getattr(self, f.name), str(f.type)
            if v is None and "None" in kind:
                continue
            if kind.startswith("int"):
                setattr(self, f.name, whole(f.name, v))
            elif kind == "bool":
                if not isinstance(v, bool):
                    raise ConfigError(f"{f.name} must be true or false, got {v!r}")
            elif kind.startswith("float"):
                if isinstance(v, bool) or not isinstance(v, (int, float)) \
                        or not math.isfinite(v):
                    raise ConfigError(f"{f.name} must be a finite number, got {v!r}")
            elif kind == "str" and not isinstance(v, str):
                raise ConfigError(f"{f.name} must be a string, got {v!r}")

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
        """Project every delay back into [0, max_delay]; a NaN or infinite delay (which no
        clamp can repair) is a ConfigError naming the parameter."""
        delays = [(n, p) for n, p in self.named_parameters() if n.endswith("_delay")]
        if delays and not bool(torch.isfinite(torch.stack(
                [p.detach().sum() for _, p in delays])).all()):
            for n, p in delays:
                if not bool(torch.isfinite(p).all()):
                    kind = "NaN" if bool(torch.isnan(p).any()) else "infinite"
                    raise ConfigError(f"delay parameter {n} is {kind}; delays must be finite "
                                      f"numbers of steps in [0, max_delay]")
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

    # -- NIR -------------------------------------------------------------------------------
    def to_nir(self, **kwargs):
        """This network with hard delays as a ``nir.NIRGraph``
        (:func:`delayprop.export.nir.to_nir`; needs the ``nir`` extra)."""
        from delayprop.export.nir import to_nir

        return to_nir(self, **kwargs)

    @classmethod
    def from_nir(cls, graph, **kwargs) -> DelayNet:
        """The hard-delay network of a NIR graph or ``.nir`` file that :meth:`to_nir` wrote
        (:func:`delayprop.export.nir.from_nir`)."""
        from delayprop.export.nir import from_nir

        return from_nir(graph, net_class=cls, config_class=NetConfig, **kwargs)

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

    def check_step_values(self, x_t: torch.Tensor) -> None:
        """What a per-step pass (this :meth:`step`, ``OnlineEprop.step``) refuses beyond the
        shape: non-finite input, and running inside dropout."""
        if not torch.isfinite(x_t).all():
            raise ConfigError("input contains NaN or infinite values")
        if self.masks is not None:
            raise ConfigError("dropout runs on whole sequences (eprop_gradients, "
                              "bptt_gradients), not in the per-step path")

    def step(self, x_t: torch.Tensor, state: NetState) -> torch.Tensor:
        """Advance one time step: x_t (B, n_in) -> y_t (B, C); ``state`` is updated in place."""
        if x_t.dim() != 2 or x_t.shape[-1] != self.config.n_in:
            raise ConfigError(
                f"input step must have shape (batch, {self.config.n_in}), got {tuple(x_t.shape)}"
            )
        self.check_step_values(x_t)
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
