r"""What a trained network costs on neuromorphic hardware, counted from its parameters and
measured on a dataset: ``delayprop eval --cost`` and ``delayprop export --report``.

Per synapse group (a hidden layer's feedforward or recurrent synapses, the readout's; every
layer of the DCLS baseline), with its integer delays :math:`d_{ji}` as the hard forward pass
uses them (:mod:`delayprop.latency` rounds them the same way):

* **synapses**: weights in the group, and those that are not 0;
* **delays**: learned delay parameters (per synapse, per presynaptic neuron for axonal ones),
  each stored in ``ceil(log2(max + 1))`` bits (``max`` = the largest value the kind allows:
  ``max_delay`` 25 -> 5 bits);
* **weights quantised to N bits**: per group one scale :math:`s = \max|W| / (2^{N-1} - 1)`,
  :math:`W_q = s\,\mathrm{round}(W / s)` (symmetric; 2 bits = ternary :math:`\{-s, 0, s\}`);
  biases stay in float. The DCLS baseline's BatchNorm (an affine map per neuron in
  evaluation) is folded into its weights first, :math:`W' = \mathrm{diag}(\gamma/\sqrt{var +
  \epsilon}) W`, and :math:`W'` is quantised (its shift stays a float bias). The accuracy of
  the quantised network is measured on the same split as the float one;
* **delay-buffer memory**, over the synapses with a non-zero weight, in slots of the
  presynaptic signal (1 bit for spikes; for the input, the bits of its largest count in the
  data): per-synapse ring buffers as long as each synapse's delay,
  :math:`\sum_{ji} d_{ji}` slots (and at the architectural maximum, every buffer
  ``max`` long), against one shared queue per presynaptic neuron as long as its longest
  outgoing delay, :math:`\sum_i \max_j d_{ji}` slots, each synapse reading it at its own
  delay (the delay bits above). Recurrent synapses count their learned delay only (the one
  step every recurrent spike waits is the neuron's own output);
* **synaptic operations** per inference, measured: every presynaptic event (an input count
  of k is k events) times the number of non-zero synapses it drives, averaged over the
  samples; beside it the dense multiply-adds (steps x pre x post);
* **spikes** per inference in each hidden layer, measured, and the input's events;
* **latency**: :func:`delayprop.latency.network_latency`.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch

from delayprop.errors import ConfigError


def delay_bits(max_value: int) -> int:
    """Bits of an unsigned integer in [0, max_value]."""
    return int(math.ceil(math.log2(max_value + 1))) if max_value > 0 else 0


def grid_levels(bits: int) -> int:
    """Levels on each side of 0 of the symmetric N-bit weight grid, 2^(bits-1) - 1; its step
    is max|w| / levels."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 32:
        raise ConfigError(f"--weight-bits must be whole numbers from 2 to 32, got {bits!r}")
    return 2 ** (bits - 1) - 1


def quantise_tensor(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Symmetric uniform quantisation with one scale: max|w| / (2^(bits-1) - 1)."""
    levels = grid_levels(bits)
    peak = w.abs().max()
    if float(peak) == 0.0:
        return w.clone()
    scale = peak / levels
    return torch.round(w / scale).clamp_(-levels, levels) * scale


def _is_dcls(net: Any) -> bool:
    from delayprop.baselines.dcls import DCLSNet

    return isinstance(net, DCLSNet)


def _bn_gain(norm: torch.nn.Module, n: int, like: torch.Tensor) -> torch.Tensor:
    """The per-neuron factor of an evaluated BatchNorm1d (ones for Identity)."""
    if isinstance(norm, torch.nn.BatchNorm1d):
        g = torch.ones(n, dtype=like.dtype) if norm.weight is None else norm.weight.detach()
        return g / torch.sqrt(norm.running_var + norm.eps)
    return torch.ones(n, dtype=like.dtype, device=like.device)


@torch.no_grad()
def quantise_network_(net: Any, bits: int) -> Any:
    """Quantise every synapse group's weights of ``net`` (DelayNet or DCLSNet) in place to
    ``bits`` bits, one scale per group (DCLS: of the BatchNorm-folded weights); returns net."""
    if _is_dcls(net):
        for i, syn in enumerate(net.synapses):
            if i < len(net.norms):
                gain = _bn_gain(net.norms[i], syn.weight.shape[0], syn.weight).unsqueeze(1)
                folded = quantise_tensor(syn.weight * gain, bits)
                safe = torch.where(gain != 0, gain, torch.ones_like(gain))
                syn.weight.copy_(torch.where(gain != 0, folded / safe,
                                             torch.zeros_like(folded)))
            else:
                syn.weight.copy_(quantise_tensor(syn.weight, bits))
        return net
    for _, group in _delaynet_groups(net):
        group.weight.copy_(quantise_tensor(group.weight, bits))
    return net


def _delaynet_groups(net: Any) -> list[tuple[str, Any]]:
    out = []
    for k, layer in enumerate(net.layers):
        out.append((f"layers.{k}.ff", layer.ff))
        if layer.rec is not None:
            out.append((f"layers.{k}.rec", layer.rec))
    out.append(("readout", net.readout))
    return out


def synapse_groups(net: Any) -> list[dict[str, Any]]:
    """Static description of each synapse group: name, weight (post, pre), integer delays
    (post, pre), delay parameters and their bits, largest allowed delay, what feeds it
    ('input', 'layer k'), the steps it runs beyond the input's (DCLS padding)."""
    groups = []
    with torch.no_grad():
        if _is_dcls(net):
            n = len(net.synapses)
            for i, syn in enumerate(net.synapses):
                d = syn.rounded_delays().long().cpu()
                learned = syn.P.numel() if syn.learn_delays else 0
                groups.append({
                    "name": f"synapses.{i}" if i < n - 1 else f"synapses.{i} (readout)",
                    "weight": syn.weight.detach().cpu(), "delays": d,
                    "delay_params": learned, "bits_per_delay": delay_bits(syn.taps - 1)
                    if learned else 0, "max_delay": syn.taps - 1 if syn.learn_delays else 0,
                    "source": "input" if i == 0 else f"layer {i - 1}",
                    "extra_steps": (i + 1) * int(net.cfg.right_padding),
                })
            return groups
        for name, syn in _delaynet_groups(net):
            kinds = []
            if syn.syn_delay is not None:
                kinds.append(syn.syn_delay.numel())
            if syn.ax_delay is not None:
                kinds.append(syn.ax_delay.numel())
            k = int(name.split(".")[1]) if name.startswith("layers") else len(net.layers) - 1
            if name.endswith(".ff"):
                source = "input" if k == 0 else f"layer {k - 1}"
            else:
                source = f"layer {k}"
            d = syn.delay_index().cpu()
            groups.append({
                "name": name, "weight": syn.weight.detach().cpu(), "delays": d,
                "delay_params": int(sum(kinds)),
                "bits_per_delay": delay_bits(syn.max_delay) if kinds else 0,
                "max_delay": syn.window - 1, "source": source, "extra_steps": 0,
            })
    return groups


@torch.no_grad()
def _dcls_forward(net: Any, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The evaluated DCLS network's forward pass, keeping what each synapse group receives:
    ([input (T, B, n_in), spikes of layer 0 (T', B, n), ...], y (B, T'', C)). The same
    operations as DCLSNet.forward in evaluation mode (no dropout)."""
    from delayprop.baselines.dcls import lif_sequence_tm
    from delayprop.blocks import leaky_filter_tm

    h = x.transpose(0, 1)
    seen = [h]
    for syn, norm in zip(net.synapses[:-1], net.norms):
        current = syn.currents_tm(h)
        T, B, N = current.shape
        current = norm(current.reshape(T * B, N)).view(T, B, N)
        h = lif_sequence_tm(current, net.lif, None)
        seen.append(h)
    current = net.synapses[-1].currents_tm(h)
    y, _ = leaky_filter_tm(current, net.decay)
    return seen, y.transpose(0, 1)


@torch.no_grad()
def group_inputs(net: Any, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """What feeds each synapse group for a batch x (B, T, n_in): {'input': (T, B, n_in),
    'layer k': (T_k, B, n_k)} (hidden spikes as the evaluated network computes them)."""
    if _is_dcls(net):
        seen, _ = _dcls_forward(net, x)
        return {("input" if i == 0 else f"layer {i - 1}"): s for i, s in enumerate(seen)}
    _, recs = net(x.to(net.readout.weight.dtype), record=True)
    out = {"input": x.transpose(0, 1)}
    for k, r in enumerate(recs):
        out[f"layer {k}"] = r.z.transpose(0, 1)
    return out


def hardware_cost(model: Any, ds: Any, *, weight_bits: tuple[int, ...] = (),
                  batch_size: int = 256, device: str = "cpu", progress: bool = True,
                  dt_ms: float | None = None, accuracy: float | None = None) -> dict[str, Any]:
    """The hardware-cost report of a trained :class:`~delayprop.training.methods.Method`
    ``model`` measured on dataset ``ds`` (see the module doc). ``weight_bits``: also the
    accuracy with weights quantised to each of these widths; ``accuracy``: the float
    network's, if already known (else evaluated here)."""
    from delayprop.data.batching import batches
    from delayprop.latency import network_latency
    from delayprop.progress import progress_bar
    from delayprop.training.evaluation import evaluate

    net = model.net
    if ds is None or len(ds) == 0:
        raise ConfigError("the hardware-cost report needs data to measure spikes on")
    if dt_ms is None:
        dt_ms = float(ds.dt) * 1000.0
    for b in weight_bits:
        quantise_tensor(torch.zeros(1), b)  # validates before the long part
    groups = synapse_groups(net)
    model.eval_mode()
    events = {g["name"]: torch.zeros(g["weight"].shape[1], dtype=torch.float64) for g in groups}
    spikes: dict[str, float] = {}
    input_max = 0.0
    steps = int(ds.num_steps)
    n = 0
    bar = progress_bar(total=len(ds), desc="measuring spikes", unit="sample",
                       enabled=progress)
    try:
        for xb, _ in batches(ds, batch_size=batch_size, shuffle=False, seed=0, device=device):
            seen = group_inputs(net, xb)
            input_max = max(input_max, float(xb.max()))
            for g in groups:
                events[g["name"]] += seen[g["source"]].double().sum((0, 1)).cpu()
            for key, s in seen.items():
                if key != "input":
                    spikes[key] = spikes.get(key, 0.0) + float(s.double().sum())
            n += xb.shape[0]
            bar.update(xb.shape[0])
    finally:
        bar.close()
        model.train_mode()
    input_bits = max(1, delay_bits(int(math.ceil(input_max))))
    rows, totals = [], dict.fromkeys(
        ("synapses", "nonzero_synapses", "delay_params", "delay_memory_bits",
         "buffer_bits_per_synapse", "buffer_bits_per_synapse_at_max", "buffer_bits_shared_queue",
         "synops_per_inference", "dense_macs_per_inference"), 0)
    for g in groups:
        w, d = g["weight"], g["delays"]
        nz = w != 0
        fanout = nz.sum(0).double()
        slot = input_bits if g["source"] == "input" else 1
        dn = torch.where(nz, d, torch.zeros_like(d))
        queue = dn.max(0).values if dn.numel() else dn.new_zeros(0)
        used = d[nz]
        synops = float((events[g["name"]] * fanout).sum()) / n
        row = {
            "name": g["name"], "pre": int(w.shape[1]), "post": int(w.shape[0]),
            "source": g["source"], "synapses": int(w.numel()), "nonzero_synapses": int(nz.sum()),
            "delay_params": int(g["delay_params"]), "bits_per_delay": int(g["bits_per_delay"]),
            "delay_memory_bits": int(g["delay_params"] * g["bits_per_delay"]),
            "max_delay_steps": int(g["max_delay"]),
            "largest_delay_steps": int(used.max()) if used.numel() else 0,
            "mean_delay_steps": float(used.double().mean()) if used.numel() else 0.0,
            "distinct_delays": int(used.unique().numel()),
            "slot_bits": int(slot),
            "buffer_bits_per_synapse": int(dn.sum()) * slot,
            "buffer_bits_per_synapse_at_max": int(nz.sum()) * int(g["max_delay"]) * slot,
            "buffer_bits_shared_queue": int(queue.sum()) * slot,
            "events_per_inference": float(events[g["name"]].sum()) / n,
            "synops_per_inference": synops,
            "dense_macs_per_inference": (steps + int(g["extra_steps"])) * int(w.numel()),
        }
        rows.append(row)
        for key in totals:
            totals[key] += row[key]
    hidden = {k: v / n for k, v in sorted(spikes.items())}
    totals["hidden_spikes_per_inference"] = float(sum(hidden.values()))
    totals["input_events_per_inference"] = next(r["events_per_inference"] for r in rows
                                                if r["source"] == "input")
    params = model.count_parameters()
    n_weights = int(params["weights"])
    report: dict[str, Any] = {
        "network": type(net).__name__, "method": getattr(model, "method", None),
        "samples": n, "steps": steps, "dt_ms": dt_ms, "input_slot_bits": input_bits,
        "parameters": params, "groups": rows, "totals": totals,
        "spikes_per_inference": hidden,
        "latency": network_latency(net, dt_ms),
        "weight_memory_bits": {"32": 32 * n_weights,
                               **{str(b): b * n_weights for b in weight_bits}},
    }
    if accuracy is None:
        accuracy = evaluate(model, ds, batch_size=batch_size, device=device).accuracy
    report["accuracy"] = {"float32": float(accuracy), **quantised_accuracies(
        model, ds, weight_bits, batch_size=batch_size, device=device)}
    return report


def quantised_accuracies(model: Any, ds: Any, weight_bits: tuple[int, ...], *,
                         batch_size: int = 256, device: str = "cpu") -> dict[str, float]:
    """{str(bits): accuracy on ``ds``} of ``model`` with its weights quantised to each width
    (:func:`quantise_network_`, in place and restored afterwards)."""
    from delayprop.training.evaluation import evaluate

    net = model.net
    for b in weight_bits:
        quantise_tensor(torch.zeros(1), b)  # validates before the long part
    acc: dict[str, float] = {}
    saved = copy.deepcopy(net.state_dict())
    try:
        for b in weight_bits:
            quantise_network_(net, b)
            acc[str(b)] = float(evaluate(model, ds, batch_size=batch_size,
                                         device=device).accuracy)
            net.load_state_dict(saved)
    finally:
        net.load_state_dict(saved)
    return acc


def format_report(rep: dict[str, Any]) -> str:
    """The report as text lines (what the command line prints)."""
    t = rep["totals"]
    lines = [f"hardware cost of the {rep['network']} ({rep['method']}), measured on "
             f"{rep['samples']} samples of {rep['steps']} steps of {rep['dt_ms']:g} ms"]
    hdr = (f"{'group':>22s} {'pre':>5s} {'post':>5s} {'synapses':>9s} {'non-zero':>9s} "
           f"{'delays':>7s} {'bits':>4s} {'max d':>5s} {'distinct':>8s} {'ring buf':>9s} "
           f"{'queue':>7s} {'SynOps':>10s}")
    lines.append(hdr)
    for r in rep["groups"]:
        lines.append(
            f"{r['name']:>22s} {r['pre']:5d} {r['post']:5d} {r['synapses']:9d} "
            f"{r['nonzero_synapses']:9d} {r['delay_params']:7d} {r['bits_per_delay']:4d} "
            f"{r['largest_delay_steps']:5d} {r['distinct_delays']:8d} "
            f"{r['buffer_bits_per_synapse']:9d} {r['buffer_bits_shared_queue']:7d} "
            f"{r['synops_per_inference']:10.0f}")
    lines.append(f"synapses {t['synapses']:,} ({t['nonzero_synapses']:,} non-zero); delays "
                 f"{t['delay_params']:,}, {t['delay_memory_bits']:,} bits")
    lines.append(f"delay buffers (bits): per-synapse ring buffers {t['buffer_bits_per_synapse']:,}"
                 f" ({t['buffer_bits_per_synapse_at_max']:,} at the maximum delay), one shared "
                 f"queue per presynaptic neuron {t['buffer_bits_shared_queue']:,}")
    lines.append(f"per inference: {t['synops_per_inference']:,.0f} synaptic operations "
                 f"({t['dense_macs_per_inference']:,} dense multiply-adds), "
                 f"{t['hidden_spikes_per_inference']:,.1f} hidden spikes ("
                 + ", ".join(f"{k} {v:,.1f}" for k, v in rep["spikes_per_inference"].items())
                 + f"), {t['input_events_per_inference']:,.1f} input events")
    mem = ", ".join(f"{b} bits {v / 8192:,.1f} KiB" for b, v in rep["weight_memory_bits"].items())
    lines.append(f"weights {rep['parameters']['weights']:,}: {mem}")
    lat = rep["latency"]
    lines.append(f"latency {lat['latency_ms']:g} ms ({lat['delay_path_steps']} + "
                 f"{lat['processing_steps']} steps)")
    lines.append("accuracy: " + ", ".join(
        f"{'float32' if k == 'float32' else k + '-bit weights'} {v:.4f}"
        for k, v in rep["accuracy"].items()))
    return "\n".join(lines)


def jsonable(rep: dict[str, Any]) -> dict[str, Any]:
    """The report with numpy scalars turned into Python numbers."""
    def conv(o: Any) -> Any:
        if isinstance(o, dict):
            return {k: conv(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [conv(v) for v in o]
        if isinstance(o, np.generic):
            return o.item()
        return o
    return conv(rep)
