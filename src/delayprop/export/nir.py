r"""A :class:`~delayprop.layers.DelayNet` with hard delays as a NIR graph (Neuromorphic
Intermediate Representation, the ``nir`` package, an optional extra: ``pip install
'delayprop[nir]'``), and back.

Discretisation
--------------
NIR's neurons are continuous-time ODEs. The graph is meant to be run with **forward Euler at
step dt** (the convention of NIR's reference frameworks, e.g. snnTorch's and Spyx's exporters),
with ``dt`` (in ms, as NIR's tables give time constants) in the graph's metadata, one spike = a
value of 1 in one step, and the node equations stepped as

.. math::
    v[t] = v[t-1] + \frac{dt}{\tau} \big(v_{leak} - v[t-1] + R\, I[t]\big)

where :math:`I[t]` is the sum of everything the node's incoming edges deliver at step t. A
delayprop neuron with decay :math:`\alpha = e^{-dt/\tau_m}` per step,
:math:`v[t] = \alpha v[t-1] + I[t]`, is that update with

.. math::
    \tau = \frac{dt}{1 - \alpha}, \qquad R = \frac{\tau}{dt} = \frac{1}{1 - \alpha},
    \qquad v_{leak} = 0

(so :math:`\tau` is *not* delayprop's ``tau_m``: 30 ms gives :math:`\tau` = 35.27 ms at
dt = 10 ms; a simulator integrating the ODE exactly with the input held over each step would
need :math:`\tau = \tau_m`, :math:`R = 1/(1 - \alpha)` instead). The leaky readout
:math:`y[t] = \kappa y[t-1] + I[t]` is an ``LI`` node with :math:`\tau = dt/(1-\kappa)`,
:math:`R = 1/(1-\kappa)` (:math:`\kappa = 0`: :math:`\tau = dt`, :math:`R = 1`).

Reset and threshold
-------------------
* ``reset = "zero"``: an ``LIF`` node, :math:`v_{threshold} = \theta`, :math:`v_{reset} = 0`:
  delayprop's :math:`v[t] = \alpha v[t-1](1 - z[t-1]) + I[t]` is NIR's "reset to
  :math:`v_{reset}` after a spike, then integrate".
* ``reset = "subtract"`` (delayprop's default): NIR's ``LIF`` can only reset to a value, so the
  neuron is written out as an ``LI`` node (the membrane) -> ``Threshold`` (:math:`\theta`, the
  spikes) -> ``Linear`` (:math:`-\theta I`, the reset) -> back into the ``LI`` node. The loop
  delivers the spike of step t-1 at step t, which is
  :math:`v[t] = \alpha v[t-1] + I[t] - \theta z[t-1]` exactly.
* Loops (the reset above, recurrent synapses) follow the rule of NIR's discrete-time
  simulators: an edge that closes a cycle carries its source's value of the previous step.
* NIR fires on :math:`v > v_{threshold}`, delayprop on :math:`v \ge \theta`: the two differ
  only when the membrane lands exactly on the threshold.
* The surrogate gradient, dropout and the Gaussian delay surrogate only matter for training;
  they are not exported.

Delays
------
* Axonal delays (one per presynaptic neuron): one ``Delay`` node on the presynaptic vector,
  ``delay[i] = round(D_i) dt``.
* Per-synapse delays (hidden, recurrent and readout synapses): NIR's ``Delay`` delays a whole
  vector before a ``Linear`` mixes it, so a synapse group with integer delays
  :math:`d_{ji}` is expanded exactly into one branch per distinct delay value d:
  ``Delay(d dt)`` -> ``Linear(W^{(d)})``, :math:`W^{(d)}_{ji} = W_{ji} [d_{ji} = d]`, all
  branches summed at the postsynaptic node (delay 0: the ``Linear`` alone). Every synapse sits
  in exactly one branch, so :math:`\sum_d W^{(d)} = W`.
* The hard forward pass shifts by ``round(D_ji) + round(D_i)`` (``round(D_kj)`` in the
  readout), so those rounded values are exported. A network with ``delay_mode = "smooth"``
  exports its rounded delays too (its hard-mode twin, not the Gaussian kernels it runs), and
  the graph's metadata says so.
* The readout's bias is the bias of an ``Affine`` on one readout branch.

Node names: ``input``, ``output``; per hidden layer ``l{k}.lif`` (reset to zero) or
``l{k}.membrane`` / ``l{k}.spikes`` / ``l{k}.reset`` (subtractive reset), ``l{k}.axonal``,
``l{k}.ff.delay{d}`` / ``l{k}.ff.w{d}``, ``l{k}.rec.delay{d}`` / ``l{k}.rec.w{d}``; the readout
``readout``, ``readout.delay{d}`` / ``readout.w{d}``.

:func:`from_nir` reads such a graph back (any graph of this shape: populations fed by
``[Delay ->] ... Linear/Affine`` chains), giving the hard-mode network with the same outputs;
synapses whose weight is 0 come back with delay 0 (their delay has no effect).

The DCLS baseline
-----------------
:func:`dcls_to_nir` writes a :class:`~delayprop.baselines.dcls.DCLSNet` as it evaluates
(rounded single-tap kernels, BatchNorm with its running statistics, no dropout), whichever
mode the module is in. The DCLS model counts time in steps (``tau_m`` in steps); the graph's
``dt`` is the data's bin width in ms (10 ms on SHD), so its hidden ``LIF`` nodes get
:math:`\tau = dt / (1 - \alpha)` = ``tau_m`` dt (SNN-delays' 10.05 ms) and :math:`R` = ``tau_m``.

* Synapse :math:`(j, i)`: weight :math:`W_{ji} / (1 + 10^{-7})` (the evaluated kernel's
  normaliser) at a delay of ``rounded_delays()[j, i]`` steps, expanded into Delay + Linear
  branches as above.
* BatchNorm1d in evaluation, :math:`\gamma_j (I_j - \mu_j) / \sqrt{\sigma^2_j + \epsilon}
  + \beta_j = s_j I_j + c_j`, is folded exactly: the rows of the layer's branch weights are
  scaled by :math:`s_j = \gamma_j / \sqrt{\sigma^2_j + \epsilon}`, and
  :math:`c_j = \beta_j - s_j \mu_j` is the bias of an ``Affine`` on the layer's first branch
  (added at every step, as BatchNorm adds it at every step of the padded sequence).
* Hidden neurons: ``LIF`` (reset to zero, :math:`v_{threshold} = \theta`); readout: ``LI``
  with the same decay, no bias.
* Padding: each DCLS layer's output is ``right_padding`` (r) steps longer than its input, so
  ``DCLSNet`` maps T input steps to T + (n + 1) r output steps (n hidden layers); the graph is
  run on the input followed by (n + 1) r zero steps. The graph is causal: it computes
  ``DCLSNet`` on the input followed by n r zero steps (the first T + (n + 1) r of that
  output) exactly. ``DCLSNet`` on the input itself ends hidden layer l after its
  T + (l + 1) r steps (the next layer reads zeros after them), which a causal graph cannot do
  without knowing T: the two agree on the first T + r output steps, and can differ after
  that where a hidden layer still fires past the end of its window.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from delayprop.errors import ConfigError

DISCRETISATION = ("forward Euler at step dt: v[t] = v[t-1] + dt/tau (v_leak - v[t-1] + r I[t]); "
                  "a spike is a value of 1 in one step; an edge closing a cycle carries its "
                  "source's value of the previous step; several edges into a node are summed")


def require_nir() -> Any:
    """The ``nir`` package, or a ConfigError saying how to install it."""
    try:
        import nir
    except ImportError:
        raise ConfigError("NIR export needs the nir package: pip install 'delayprop[nir]' "
                          "(or pip install nir)") from None
    return nir


def euler_parameters(decay: float, dt: float) -> tuple[float, float]:
    """(tau, r) of a NIR LI/LIF node that forward Euler at step dt turns into
    v[t] = decay v[t-1] + I[t]."""
    if not 0.0 <= decay < 1.0:
        raise ConfigError(f"a decay per step must be in [0, 1) to be written as a NIR time "
                          f"constant, got {decay}")
    return dt / (1.0 - decay), 1.0 / (1.0 - decay)


def euler_decay(tau: np.ndarray, r: np.ndarray, dt: float, what: str) -> float:
    """The decay per step of NIR nodes with time constants ``tau`` and resistances ``r``
    under forward Euler (one value for the whole population; the input gain dt r / tau must
    be 1, as :func:`euler_parameters` writes it)."""
    tau = np.asarray(tau, dtype=np.float64).reshape(-1)
    r = np.asarray(r, dtype=np.float64).reshape(-1)
    if tau.size == 0 or not np.all(tau == tau[0]):
        raise ConfigError(f"{what}: delayprop needs one time constant per population, "
                          f"the graph has {np.unique(tau)[:5]}")
    decay = 1.0 - dt / float(tau[0])
    if not 0.0 <= decay < 1.0:
        raise ConfigError(f"{what}: tau = {tau[0]} ms is below the step dt = {dt} ms")
    gain = dt * r / tau
    if not np.allclose(gain, 1.0, rtol=1e-9, atol=0.0):
        raise ConfigError(f"{what}: input gain dt r / tau = {gain[0]:.6g}, delayprop neurons "
                          f"take their input with gain 1")
    return decay


# --------------------------------------------------------------------------------------------
# DelayNet -> NIR


def _rounded(syn: Any) -> tuple[np.ndarray | None, np.ndarray]:
    """(axonal delays (pre,) or None, residual per-synapse delays (post, pre)) in steps, as
    the hard forward pass shifts: total = round(D_ji) + round(D_i), clipped to the window as
    :func:`delayprop.delays.delay_kernel` clips it; residual = total - axonal."""
    with torch.no_grad():
        total = syn.delay_index().cpu().numpy()
        ax = None
        if syn.ax_delay is not None:
            ax = torch.round(syn.ax_delay).clamp(0, syn.max_delay).cpu().numpy().astype(np.int64)
            total = total - ax[None, :]
    if (total < 0).any():
        raise ConfigError("a synapse's rounded delay is below its axonal delay; clamp the "
                          "delays (net.clamp_delays_()) before exporting")
    return ax, total


class _Builder:
    def __init__(self, dt: float, dtype: np.dtype) -> None:
        self.nir = require_nir()
        self.dt = float(dt)
        self.dtype = dtype
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []

    def add(self, name: str, node: Any) -> str:
        if name in self.nodes:
            raise ConfigError(f"internal: NIR node {name} twice")
        self.nodes[name] = node
        return name

    def edge(self, a: str, b: str) -> None:
        self.edges.append((a, b))

    def delay(self, name: str, source: str, steps: np.ndarray) -> str:
        self.add(name, self.nir.Delay(delay=np.asarray(steps, dtype=np.float64) * self.dt))
        self.edge(source, name)
        return name

    def branches(self, prefix: str, source: str, target: str, weight: np.ndarray,
                 delays: np.ndarray, bias: np.ndarray | None = None) -> None:
        """One [Delay(d dt) ->] Linear(W masked to d) branch per distinct delay d, into
        ``target``; ``bias`` (post,) makes the first branch an Affine."""
        for d in sorted({int(v) for v in np.unique(delays)}):
            w = np.where(delays == d, weight, 0.0).astype(self.dtype)
            src = source
            if d:
                src = self.delay(f"{prefix}.delay{d}", source,
                                 np.full(weight.shape[1], d, dtype=np.float64))
            if bias is not None:
                node = self.nir.Affine(weight=w, bias=np.asarray(bias, dtype=self.dtype))
                bias = None
            else:
                node = self.nir.Linear(weight=w)
            self.add(f"{prefix}.w{d}", node)
            self.edge(src, f"{prefix}.w{d}")
            self.edge(f"{prefix}.w{d}", target)


def _classification(loss: str | None) -> str:
    if loss == "mean":
        return "argmax over classes of the time mean of the output"
    return "argmax over classes of sum over t of softmax(output[t])"


def to_nir(net: Any, *, loss: str | None = None, name: str = "") -> Any:
    """``net`` (a :class:`~delayprop.layers.DelayNet`) as a ``nir.NIRGraph`` run at its step
    ``config.dt`` (see the module doc for the mapping). ``loss`` ('sum' or 'mean', the
    training loss) only names the classification rule in the metadata."""
    c = net.config
    if getattr(net, "masks", None) is not None:
        raise ConfigError("export outside dropout (the network is inside dropped_out())")
    dt = float(c.dt)
    w0 = net.readout.weight
    dtype = np.float64 if w0.dtype == torch.float64 else np.float32
    b = _Builder(dt, dtype)
    nir = b.nir
    smooth = [n for n, s in net.synapses() if s.mode != "hard"]
    alpha = math.exp(-dt / float(c.tau_m))
    tau, r = euler_parameters(alpha, dt)
    theta = float(c.theta)

    def arr(n: int, value: float) -> np.ndarray:
        return np.full(n, value, dtype=np.float64)

    b.add("input", nir.Input(input_type={"input": np.array([c.n_in])}))
    source = "input"
    for k, layer in enumerate(net.layers):
        n = layer.n
        if c.reset == "zero":
            target = spikes = b.add(f"l{k}.lif", nir.LIF(
                tau=arr(n, tau), r=arr(n, r), v_leak=arr(n, 0.0), v_threshold=arr(n, theta),
                v_reset=arr(n, 0.0)))
        else:
            target = b.add(f"l{k}.membrane", nir.LI(tau=arr(n, tau), r=arr(n, r),
                                                     v_leak=arr(n, 0.0)))
            spikes = b.add(f"l{k}.spikes", nir.Threshold(threshold=arr(n, theta)))
            b.edge(target, spikes)
            b.add(f"l{k}.reset", nir.Linear(weight=(-theta * np.eye(n)).astype(dtype)))
            b.edge(spikes, f"l{k}.reset")
            b.edge(f"l{k}.reset", target)
        ax, res = _rounded(layer.ff)
        pre = source
        if ax is not None:
            pre = b.delay(f"l{k}.axonal", source, ax)
        b.branches(f"l{k}.ff", pre, target, layer.ff.weight.detach().cpu().numpy(), res)
        if layer.rec is not None:
            _, rres = _rounded(layer.rec)
            b.branches(f"l{k}.rec", spikes, target, layer.rec.weight.detach().cpu().numpy(),
                       rres)
        source = spikes
    ro = net.readout
    C = c.n_out
    rtau, rr = euler_parameters(float(ro.kappa), dt)
    b.add("readout", nir.LI(tau=arr(C, rtau), r=arr(C, rr), v_leak=arr(C, 0.0)))
    _, rd = _rounded(ro)
    bias = None if ro.bias is None else ro.bias.detach().cpu().numpy()
    b.branches("readout", source, "readout", ro.weight.detach().cpu().numpy(), rd, bias)
    b.add("output", nir.Output(output_type={"output": np.array([C])}))
    b.edge("readout", "output")
    cfg = c.to_dict()
    meta = {
        "source": "delayprop",
        "name": name,
        "dt": dt,
        "time_unit": "ms",
        "discretisation": DISCRETISATION,
        "reset": c.reset,
        "threshold": "spike when v >= theta in delayprop; NIR's v > v_threshold differs only "
                     "when v lands exactly on theta",
        "delays": "rounded delays of the hard forward pass; per-synapse delays expanded into "
                  "one Delay + Linear branch per distinct delay",
        "smooth_delays_rounded": bool(smooth),
        "classification": _classification(loss),
        "delayprop_config": json.dumps(cfg, sort_keys=True),
    }
    if smooth:
        from delayprop.safety import warn

        warn(f"{', '.join(smooth)} run smooth (Gaussian) delays; the NIR graph has their "
             "rounded values, i.e. the hard-delay network (delay_mode = 'hard')")
    return nir.NIRGraph(nodes=b.nodes, edges=b.edges, metadata=meta)


def write_nir(graph: Any, path: str | Path) -> None:
    """Write ``graph`` to ``path`` (HDF5, as ``nir.write``), atomically."""
    from delayprop.fileio import atomic_write_bytes

    nir = require_nir()
    bio = io.BytesIO()
    nir.write(bio, graph)
    atomic_write_bytes(path, bio.getvalue())


def read_nir(path: str | Path) -> Any:
    """``nir.read(path)``, with a one-line error naming the file."""
    nir = require_nir()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such NIR file")
    try:
        return nir.read(str(p))
    except Exception as exc:  # h5py / nir errors of every kind
        raise ConfigError(f"{p}: not a readable NIR graph ({type(exc).__name__}: {exc})") from None


# --------------------------------------------------------------------------------------------
# DCLSNet -> NIR


def _finite(name: str, t: Any) -> np.ndarray:
    """``t`` as a float64 array; a ConfigError if any value is not finite."""
    a = (t.detach().cpu().to(torch.float64).numpy() if isinstance(t, torch.Tensor)
         else np.asarray(t, dtype=np.float64))
    if not np.all(np.isfinite(a)):
        raise ConfigError(f"the DCLS network's {name} has non-finite values; nothing exported")
    return a


def _dcls_norm(norm: Any, n: int, k: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(s (n,), c (n,) or None): hidden layer k's normalisation in evaluation is
    I -> s I + c (BatchNorm1d with running statistics); Identity: s = 1, no bias."""
    if isinstance(norm, torch.nn.Identity):
        return np.ones(n), None
    if not isinstance(norm, torch.nn.BatchNorm1d):
        raise ConfigError(f"DCLS layer {k}: normalisation {type(norm).__name__} is neither "
                          f"BatchNorm1d nor Identity")
    if norm.running_mean is None or norm.running_var is None:
        raise ConfigError(f"DCLS layer {k}: a BatchNorm1d without running statistics "
                          f"normalises by each batch's, which a NIR graph cannot hold")
    mean = _finite(f"norms.{k}.running_mean", norm.running_mean)
    var = _finite(f"norms.{k}.running_var", norm.running_var)
    gamma = np.ones(n) if norm.weight is None else _finite(f"norms.{k}.weight", norm.weight)
    beta = np.zeros(n) if norm.bias is None else _finite(f"norms.{k}.bias", norm.bias)
    if mean.shape != (n,) or var.shape != (n,) or gamma.shape != (n,) or beta.shape != (n,):
        raise ConfigError(f"DCLS layer {k}: a BatchNorm1d of {mean.size} features on {n} "
                          f"neurons")
    eps = float(norm.eps)
    if not (math.isfinite(eps) and (var + eps > 0).all()):
        raise ConfigError(f"DCLS layer {k}: BatchNorm1d running_var + eps must be > 0")
    s = gamma / np.sqrt(var + eps)
    return s, beta - s * mean


def dcls_to_nir(net: Any, *, name: str = "", dt: float = 10.0) -> Any:
    """``net`` (a :class:`~delayprop.baselines.dcls.DCLSNet`) as a ``nir.NIRGraph`` with the
    semantics of evaluation (rounded single-tap delays, BatchNorm with its running statistics
    folded into the synapses, no dropout), in either module mode (the module is not changed);
    weights and biases in float64 (the folded values of the parameters, not rounded again).
    ``dt``: the length of one step in ms (the DCLS model counts in steps; the data's bin width
    gives them a length, 10 ms on SHD). The module doc ("The DCLS baseline") has the mapping,
    the padding, and how the graph's output relates to ``DCLSNet``'s."""
    from dataclasses import asdict

    from delayprop.baselines.dcls import NORM_EPS, DCLSNet

    if not isinstance(net, DCLSNet):
        raise ConfigError(f"dcls_to_nir exports a DCLSNet, got {type(net).__name__}")
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not (
            math.isfinite(dt) and dt > 0):
        raise ConfigError(f"dt (ms per step) must be a positive number, got {dt!r}")
    c = net.cfg
    n_hidden = list(c.n_hidden)
    nl = len(n_hidden)
    if len(net.synapses) != nl + 1 or len(net.norms) != nl:
        raise ConfigError(f"the DCLS network has {len(net.synapses)} synapse layers and "
                          f"{len(net.norms)} normalisations for {nl} hidden layers")
    sizes = [c.n_in, *n_hidden, c.n_out]
    for k, syn in enumerate(net.synapses):
        if tuple(syn.weight.shape) != (sizes[k + 1], sizes[k]):
            raise ConfigError(f"DCLS synapses.{k}: weight {tuple(syn.weight.shape)}, the "
                              f"configuration says {(sizes[k + 1], sizes[k])}")
    dt = float(dt)
    # float64: the folded weights s W / (1 + 1e-7) of the (float32) parameters, unrounded
    b = _Builder(dt, np.float64)
    nir = b.nir
    tau, r = euler_parameters(float(c.decay), dt)
    theta = float(c.theta)

    def arr(n: int, value: float) -> np.ndarray:
        return np.full(n, value, dtype=np.float64)

    def synapses(k: int) -> tuple[np.ndarray, np.ndarray]:
        """(weights of the evaluated kernel (post, pre) in float64, delays in steps)."""
        syn = net.synapses[k]
        w = _finite(f"synapses.{k}.weight", syn.weight)
        _finite(f"synapses.{k}.P", syn.P)
        with torch.no_grad():
            d = syn.rounded_delays().cpu().numpy()
        return w / (1.0 + NORM_EPS), np.round(d).astype(np.int64)

    b.add("input", nir.Input(input_type={"input": np.array([c.n_in])}))
    source = "input"
    for k, norm in enumerate(net.norms):
        n = n_hidden[k]
        w, d = synapses(k)
        s, bias = _dcls_norm(norm, n, k)
        target = b.add(f"l{k}.lif", nir.LIF(
            tau=arr(n, tau), r=arr(n, r), v_leak=arr(n, 0.0), v_threshold=arr(n, theta),
            v_reset=arr(n, 0.0)))
        b.branches(f"l{k}.ff", source, target, s[:, None] * w, d, bias)
        source = target
    w, d = synapses(nl)
    C = c.n_out
    b.add("readout", nir.LI(tau=arr(C, tau), r=arr(C, r), v_leak=arr(C, 0.0)))
    b.branches("readout", source, "readout", w, d)
    b.add("output", nir.Output(output_type={"output": np.array([C])}))
    b.edge("readout", "output")

    pad = int(c.right_padding)
    extra = (nl + 1) * pad
    meta = {
        "source": "delayprop",
        "model": "DCLSNet",
        "name": name,
        "dt": dt,
        "time_unit": "ms",
        "time_step": f"the DCLS model counts time in steps (tau_m = {c.tau_m:g} steps, decay "
                     f"1 - 1/tau_m per step); one step is dt = {dt:g} ms, the data's bin width",
        "discretisation": DISCRETISATION,
        "reset": "zero",
        "threshold": "spike when v >= theta in delayprop; NIR's v > v_threshold differs only "
                     "when v lands exactly on theta",
        "semantics": "evaluation, whichever mode the module was in: rounded single-tap "
                     "kernels, BatchNorm with its running statistics, no dropout",
        "delays": "per-synapse delays = rounded_delays() steps (the rounded kernel "
                  "positions), one Delay + Linear branch per distinct delay; weights "
                  "W / (1 + 1e-7) as in the evaluated kernel, in float64",
        "batchnorm": ("folded exactly: gamma (I - mean) / sqrt(var + eps) + beta = s I + c; "
                      "s = gamma / sqrt(var + eps) scales the rows of the layer's branch "
                      "weights, c = beta - s mean is the bias of the Affine on its first branch"
                      if c.batchnorm else "none"),
        "extra_steps": extra,
        "padding": f"DCLSNet's output has (n_hidden + 1) * right_padding = {extra} steps "
                   f"more than its input: run the graph on the input followed by {extra} "
                   f"zero steps. The graph is causal and then gives exactly DCLSNet on the "
                   f"input followed by n_hidden * right_padding = {nl * pad} zero steps (the "
                   f"first T + {extra} output steps); DCLSNet on the input itself ends hidden "
                   f"layer l after T + (l + 1) * {pad} steps, so the two agree on the first "
                   f"T + {pad} output steps and can differ after them",
        "classification": "argmax over classes of sum over all output steps t of "
                          "softmax(output[t])",
        "dcls_config": json.dumps(asdict(c), sort_keys=True),
    }
    return nir.NIRGraph(nodes=b.nodes, edges=b.edges, metadata=meta)


# --------------------------------------------------------------------------------------------
# NIR -> DelayNet


def _incoming(edges: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for a, bb in edges:
        out.setdefault(bb, []).append(a)
    return out


def _outgoing(edges: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for a, bb in edges:
        out.setdefault(a, []).append(bb)
    return out


def _steps(node: Any, dt: float, name: str) -> np.ndarray:
    d = np.asarray(node.delay, dtype=np.float64).reshape(-1) / dt
    k = np.round(d)
    if not np.allclose(d, k, rtol=0, atol=1e-9) or (k < 0).any():
        raise ConfigError(f"NIR node {name}: delays must be whole multiples of dt = {dt} ms")
    return k.astype(np.int64)


def from_nir(graph: Any, *, net_class: Any, config_class: Any, dt: float | None = None) -> Any:
    """The hard-delay network of a NIR graph (a ``nir.NIRGraph`` or a ``.nir`` path) in the
    shape :func:`to_nir` writes. ``dt`` (ms) defaults to the graph's metadata. Settings the
    graph does not carry (surrogate, sigma, seed, ...) come from its ``delayprop_config``
    metadata if present, else NetConfig's defaults."""
    nir = require_nir()
    if isinstance(graph, (str, Path)):
        graph = read_nir(graph)
    meta = dict(getattr(graph, "metadata", None) or {})
    if dt is None:
        if "dt" not in meta:
            raise ConfigError("the NIR graph's metadata has no dt: pass dt (ms)")
        dt = float(meta["dt"])
    if meta.get("model") == "DCLSNet":
        raise ConfigError("this NIR graph is a DCLS network (see its metadata); from_nir reads "
                          "DelayNet graphs")
    nodes, edges = graph.nodes, [(str(a), str(bb)) for a, bb in graph.edges]
    inc, outg = _incoming(edges), _outgoing(edges)
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    outputs = [k for k, v in nodes.items() if isinstance(v, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise ConfigError(f"a DelayNet graph has one Input and one Output node, this one "
                          f"{len(inputs)} and {len(outputs)}")

    # populations: name of the node the synapses feed -> (kind, spike node or None)
    pops: dict[str, dict[str, Any]] = {}
    spike_of: dict[str, str] = {}  # spike node -> population
    for k, v in nodes.items():
        if isinstance(v, nir.LIF):
            if not np.all(np.asarray(v.v_reset) == 0) or not np.all(np.asarray(v.v_leak) == 0):
                raise ConfigError(f"NIR node {k}: delayprop's LIF resets to 0 with v_leak 0")
            pops[k] = {"reset": "zero", "spikes": k, "node": v}
            spike_of[k] = k
        elif isinstance(v, nir.LI):
            if not np.all(np.asarray(v.v_leak) == 0):
                raise ConfigError(f"NIR node {k}: v_leak must be 0")
            thr = [t for t in outg.get(k, []) if isinstance(nodes[t], nir.Threshold)]
            if len(thr) > 1:
                raise ConfigError(f"NIR node {k} feeds {len(thr)} Threshold nodes")
            if thr:
                pops[k] = {"reset": "subtract", "spikes": thr[0], "node": v,
                           "theta": np.asarray(nodes[thr[0]].threshold, dtype=np.float64)}
                spike_of[thr[0]] = k
            else:
                pops[k] = {"reset": None, "spikes": None, "node": v}
    readouts = [k for k, p in pops.items() if p["reset"] is None]
    if len(readouts) != 1 or inc.get(outputs[0]) != readouts:
        raise ConfigError("the NIR graph's Output must be fed by one LI node (the readout)")

    def trace(first: str, target: str) -> tuple[str, list[str]]:
        """Walk back from a Linear/Affine through Delay nodes to a population's spikes or the
        input: (source population or 'input', Delay nodes nearest the source first)."""
        chain, cur = [], first
        while True:
            srcs = inc.get(cur, [])
            if len(srcs) != 1:
                raise ConfigError(f"NIR node {cur} (on the way into {target}) has "
                                  f"{len(srcs)} inputs, expected 1")
            s = srcs[0]
            if s == inputs[0]:
                return "input", chain[::-1]
            if s in spike_of:
                return spike_of[s], chain[::-1]
            if isinstance(nodes[s], nir.Delay):
                chain.append(s)
                cur = s
                continue
            raise ConfigError(f"NIR node {s} ({type(nodes[s]).__name__}) on the way into "
                              f"{target} is not a Delay, a population or the input")

    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for target, p in pops.items():
        for s in inc.get(target, []):
            node = nodes[s]
            if not isinstance(node, (nir.Linear, nir.Affine)):
                raise ConfigError(f"NIR node {s} ({type(node).__name__}) feeds {target}; "
                                  f"only Linear / Affine nodes can")
            w = np.asarray(node.weight, dtype=np.float64)
            src, chain = trace(s, target)
            if (p["reset"] == "subtract" and src == target and not chain
                    and "reset_node" not in p and np.array_equal(
                        np.asarray(node.weight), (-np.diag(p["theta"])).astype(
                            np.asarray(node.weight).dtype))):
                p["reset_node"] = s  # the reset loop (a recurrent branch besides it is not)
                continue
            n_pre = w.shape[1]
            steps = np.zeros(n_pre, dtype=np.int64)
            for dnode in chain:
                steps = steps + _steps(nodes[dnode], dt, dnode)
            g = groups.setdefault((src, target), {"w": np.zeros_like(w), "d": np.zeros(
                w.shape, dtype=np.int64), "bias": None, "first": set(), "set": np.zeros(
                w.shape, dtype=bool)})
            if g["w"].shape != w.shape:
                raise ConfigError(f"NIR node {s}: weight {w.shape}, other branches into "
                                  f"{target} from the same source have {g['w'].shape}")
            nz = w != 0
            if (nz & g["set"]).any():
                raise ConfigError(f"NIR node {s}: a synapse of {src} -> {target} has weights in "
                                  f"two branches (two delays), which a DelayNet cannot hold")
            g["w"] = g["w"] + w
            g["set"] |= nz
            g["d"] = np.where(nz, np.broadcast_to(steps[None, :], w.shape), g["d"])
            g["first"].add(chain[0] if chain else None)
            if isinstance(node, nir.Affine):
                bias = np.asarray(node.bias, dtype=np.float64)
                g["bias"] = bias if g["bias"] is None else g["bias"] + bias
    for (_, tgt), g in groups.items():
        if tgt != readouts[0] and g["bias"] is not None:
            raise ConfigError(f"an Affine with a bias feeds the hidden population {tgt}; a "
                              f"DelayNet has a bias in its readout only")
    for k, p in pops.items():
        if p["reset"] == "subtract" and "reset_node" not in p:
            raise ConfigError(f"NIR node {k}: an LI + Threshold population needs its reset "
                              f"loop (Threshold -> Linear(-theta I) -> LI)")

    # the chain of layers: input -> pop0 -> pop1 -> ... -> readout
    order, src = [], "input"
    while True:
        nxt = [t for (s, t) in groups if s == src and t != src]
        if len(nxt) != 1:
            raise ConfigError(f"{src} feeds {len(nxt)} populations; a DelayNet is a chain of "
                              f"layers")
        if nxt[0] == readouts[0]:
            break
        if nxt[0] in order:
            raise ConfigError("the NIR graph's layers form a loop")
        order.append(nxt[0])
        src = nxt[0]
    if not order:
        raise ConfigError("the NIR graph has no hidden layer")
    extra = set(groups) - ({("input", order[0])} | {(a, bb) for a, bb in zip(order, order[1:])}
                           | {(o, o) for o in order} | {(order[-1], readouts[0])})
    if extra:
        raise ConfigError(f"synapses {sorted(extra)} do not fit a DelayNet")

    # neuron parameters
    resets = {pops[o]["reset"] for o in order}
    if len(resets) != 1:
        raise ConfigError(f"the layers mix resets {sorted(resets)}")
    reset = resets.pop()
    alphas, thetas = [], []
    for o in order:
        node = pops[o]["node"]
        alphas.append(euler_decay(node.tau, node.r, dt, o))
        th = np.asarray(node.v_threshold if reset == "zero" else pops[o]["theta"])
        thetas.append(th.reshape(-1))
    if not np.allclose(alphas, alphas[0], rtol=0, atol=1e-12):
        raise ConfigError(f"the layers have different time constants ({alphas}); a DelayNet "
                          f"has one tau_m")
    th_all = np.concatenate(thetas)
    if not np.all(th_all == th_all[0]):
        raise ConfigError("the neurons have different thresholds; a DelayNet has one theta")
    rnode = pops[readouts[0]]["node"]
    kappa = euler_decay(rnode.tau, rnode.r, dt, readouts[0])

    ff = [groups[("input", order[0])]] + [groups[(a, bb)] for a, bb in zip(order, order[1:])]
    rec = [groups.get((o, o)) for o in order]
    ro = groups[(order[-1], readouts[0])]
    n_in = ff[0]["w"].shape[1]
    n_hidden = [g["w"].shape[0] for g in ff]
    n_out = ro["w"].shape[0]

    base = json.loads(meta["delayprop_config"]) if "delayprop_config" in meta else {}
    cfg = dict(base)
    cfg.update(n_in=n_in, n_hidden=n_hidden, n_out=n_out, dt=dt, reset=reset,
               theta=float(th_all[0]), delay_mode="hard", recurrent=any(g is not None for g in rec),
               readout_bias=ro["bias"] is not None)
    alpha_cfg = math.exp(-dt / float(base["tau_m"])) if "tau_m" in base else None
    if alpha_cfg is None or abs(alpha_cfg - alphas[0]) > 1e-12:
        cfg["tau_m"] = -dt / math.log(alphas[0])
    if "kappa" not in base or abs(float(base["kappa"]) - kappa) > 1e-12:
        cfg["kappa"] = kappa
    ff_max = max(int(g["d"].max()) for g in ff)
    rec_max = max([int(g["d"].max()) for g in rec if g is not None] or [0])
    ro_max = int(ro["d"].max())
    if not base:
        cfg.update(synaptic_delays=ff_max > 0, axonal_delays=False,
                   max_delay=max(ff_max, rec_max, 1), recurrent_delays=rec_max > 0,
                   readout_delays=ro_max > 0, readout_max_delay=max(ro_max, 1) if ro_max else None)
    net = net_class(config_class.from_dict(cfg))
    c = net.config
    dtype = net.readout.weight.dtype

    def fill(syn: Any, g: dict[str, Any], what: str) -> None:
        with torch.no_grad():
            if tuple(syn.weight.shape) != g["w"].shape:
                raise ConfigError(f"{what}: the graph has {g['w'].shape} synapses, the "
                                  f"configuration {tuple(syn.weight.shape)}")
            syn.weight.copy_(torch.as_tensor(g["w"], dtype=dtype))
            d = g["d"]
            if syn.syn_delay is None and syn.ax_delay is None:
                if d.any():
                    raise ConfigError(f"{what}: the graph has delays, the configuration none")
                return
            if syn.ax_delay is not None:
                firsts = g["first"]
                shared = next(iter(firsts)) if len(firsts) == 1 else None
                if shared is not None:
                    ax = _steps(nodes[shared], dt, shared)
                else:  # the smallest delay of each presynaptic neuron's synapses
                    ax = np.where(g["set"], d, np.iinfo(np.int64).max).min(0)
                    ax = np.where(g["set"].any(0), ax, 0)
                ax = np.minimum(ax, syn.max_delay)
                syn.ax_delay.copy_(torch.as_tensor(ax, dtype=dtype))
                d = np.where(g["set"], d - ax[None, :], 0)
            elif d.max() > syn.max_delay:
                raise ConfigError(f"{what}: delays up to {d.max()} steps, the configuration's "
                                  f"max_delay is {syn.max_delay}")
            if syn.syn_delay is None:
                if d.any():
                    raise ConfigError(f"{what}: per-synapse delays in the graph, only axonal "
                                      f"ones in the configuration")
                return
            if d.min() < 0 or d.max() > syn.max_delay:
                raise ConfigError(f"{what}: per-synapse delays outside [0, {syn.max_delay}]")
            syn.syn_delay.copy_(torch.as_tensor(d, dtype=dtype))

    for k, layer in enumerate(net.layers):
        fill(layer.ff, ff[k], f"layer {k}")
        if (layer.rec is None) != (rec[k] is None):
            raise ConfigError(f"layer {k}: recurrent synapses in the graph and the "
                              f"configuration disagree")
        if layer.rec is not None:
            fill(layer.rec, rec[k], f"layer {k} recurrent")
    fill(net.readout, ro, "readout")
    if net.readout.bias is not None:
        with torch.no_grad():
            net.readout.bias.copy_(torch.as_tensor(ro["bias"], dtype=dtype))
    if c.n_in != n_in:  # pragma: no cover - from_dict keeps what cfg says
        raise ConfigError("internal: n_in")
    return net
