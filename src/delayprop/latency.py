r"""Inference latency and size of a trained network, as the paper compares them.

The latency of a delay network is how long an input spike may take to reach the output: the
longest input-to-output path of (rounded) delays, plus one processing step per layer of
synapses on the way (a neuromorphic pipeline passes a spike through one layer per step):

.. math::
    \text{latency} = \Big(\max_{\text{paths } i \to \dots \to k}
        \sum_{\text{layers}} D_{\text{connection}} + n_{\text{layers}}\Big)\, dt

computed by dynamic programming over the feedforward chain; only connections with a non-zero
weight count. The architectural bound (every delay at its maximum) is reported beside the
learned value. Recurrent connections are left out of the path (a loop has no longest path);
the DCLS baseline additionally reads its output ``right_padding`` steps per layer after the
input ends, reported as ``readout_padding_steps``.

* :class:`~delayprop.layers.DelayNet`: each hidden layer's feedforward synapses have the delay
  ``round(D_ji) + round(D_i)`` (what ``delay_mode = "hard"`` runs; the centre of the Gaussian in
  ``"smooth"``); the readout's are ``round(D_kj)`` with ``readout_delays``, else zero.
* :class:`~delayprop.baselines.dcls.DCLSNet`: each connection's delay is the rounded kernel
  centre ``L - 1 - (round(P) + L // 2)`` (SNN-delays' evaluation), in every layer including
  the readout.
"""

from __future__ import annotations

from typing import Any

import torch

from delayprop.errors import ConfigError


def _longest_path(layers: list[tuple[torch.Tensor, torch.Tensor]]) -> int:
    """layers: [(delay (post, pre), connected (post, pre) bool)] in order; returns the longest
    sum of delays over connected paths from any input to any output (0 if none)."""
    reach = None  # (n,) longest delay path ending at each neuron; -inf if unreachable
    for delay, connected in layers:
        d = torch.where(connected, delay.double(), torch.tensor(float("-inf"), dtype=torch.float64))
        prev = torch.zeros(d.shape[1], dtype=torch.float64) if reach is None else reach
        reach = (d + prev.unsqueeze(0)).max(dim=1).values
    if reach is None:
        return 0
    best = float(reach.max())
    return int(best) if best != float("-inf") else 0


def network_latency(net: Any, dt_ms: float) -> dict[str, Any]:
    """Latency of ``net`` (DelayNet or DCLSNet) in steps and ms, learned and bound."""
    from delayprop.baselines.dcls import DCLSNet
    from delayprop.layers import DelayNet

    if not (dt_ms > 0):
        raise ConfigError(f"dt must be > 0 ms, got {dt_ms}")
    layers, bound, padding = [], [], 0
    with torch.no_grad():
        if isinstance(net, DCLSNet):
            for syn in net.synapses:
                layers.append((syn.rounded_delays(), syn.weight != 0))
                bound.append(syn.taps - 1)
            padding = int(net.cfg.right_padding) * len(net.synapses)
        elif isinstance(net, DelayNet):
            for layer in net.layers:
                ff = layer.ff
                layers.append((ff.rounded_delay().cpu(), (ff.weight != 0).cpu()))
                kinds = (ff.syn_delay is not None) + (ff.ax_delay is not None)
                bound.append(int(ff.max_delay) * kinds)
            r = net.readout
            layers.append((r.rounded_delay().cpu(), (r.weight != 0).cpu()))
            bound.append(int(r.max_delay) if r.has_delays else 0)
        else:
            raise ConfigError(f"no latency model for {type(net).__name__}")
    layers = [(d.cpu(), c.cpu()) for d, c in layers]
    path = _longest_path(layers)
    n = len(layers)
    return {
        "delay_path_steps": path,
        "delay_path_bound_steps": int(sum(bound)),
        "processing_steps": n,
        "readout_padding_steps": padding,
        "latency_steps": path + n,
        "latency_ms": (path + n) * dt_ms,
        "latency_bound_ms": (sum(bound) + n) * dt_ms,
        "dt_ms": dt_ms,
    }
