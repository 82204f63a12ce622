"""A small NIR interpreter for the tests, written from NIR's node definitions (the ``nir``
package's docstrings) and nothing of delayprop: it checks that an exported graph means what
delayprop computes.

Discrete time at step dt (the graph's metadata), forward Euler for the ODE nodes, in float64:

* ``Input``: the input of the step; ``Output``: records what reaches it;
* ``Linear``: W x; ``Affine``: W x + b; ``Scale``: s x;
* ``Delay``: y(t) = x(t - delay), the delay a whole number of steps (zeros before t = 0);
* ``LI``: v += dt / tau (v_leak - v + r I); the output is v;
* ``LIF``: the same, then z = [v > v_threshold], v = v_reset where z; the output is z;
* ``Threshold``: z = [x > threshold].

A node's input is the sum over its incoming edges. Nodes run in a depth-first order from the
inputs; an edge whose source comes later in that order (an edge that closes a cycle) carries
the source's output of the previous step, which is how discrete-time simulators run loops.
"""

from __future__ import annotations

import nir
import numpy as np


def _order(graph: nir.NIRGraph) -> tuple[list[str], set[tuple[str, str]]]:
    """Depth-first post-order reversed (a topological order of the graph without its back
    edges) and the back edges."""
    out: dict[str, list[str]] = {}
    for a, b in graph.edges:
        out.setdefault(a, []).append(b)
    state: dict[str, int] = {}
    post: list[str] = []
    back: set[tuple[str, str]] = set()

    def visit(n: str) -> None:
        state[n] = 1
        for m in out.get(n, []):
            if state.get(m) == 1:
                back.add((n, m))
            elif m not in state:
                visit(m)
        state[n] = 2
        post.append(n)

    for name, node in graph.nodes.items():
        if isinstance(node, nir.Input) and name not in state:
            visit(name)
    for name in graph.nodes:  # nodes not reachable from an input
        if name not in state:
            visit(name)
    return post[::-1], back


def run(graph: nir.NIRGraph, x: np.ndarray, dt: float | None = None,
        record: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Run ``graph`` on x (B, T, n_in) (one Input node). Returns {name: (B, T, n)} for the
    Output node(s) and every node named in ``record``."""
    if dt is None:
        dt = float(graph.metadata["dt"])
    x = np.asarray(x, dtype=np.float64)
    B, T, _ = x.shape
    order, back = _order(graph)
    incoming: dict[str, list[str]] = {}
    for a, b in graph.edges:
        incoming.setdefault(b, []).append(a)
    nodes = graph.nodes

    def size(name: str) -> int:
        node = nodes[name]
        if isinstance(node, nir.Input):
            return int(np.prod(node.input_type["input"]))
        if isinstance(node, nir.Output):
            return int(np.prod(node.output_type["output"]))
        if isinstance(node, (nir.Linear, nir.Affine)):
            return int(np.asarray(node.weight).shape[0])
        if isinstance(node, nir.Delay):
            return int(np.asarray(node.delay).size)
        if isinstance(node, nir.Threshold):
            return int(np.asarray(node.threshold).size)
        if isinstance(node, nir.Scale):
            return int(np.asarray(node.scale).size)
        if isinstance(node, (nir.LI, nir.LIF)):
            return int(np.asarray(node.tau).size)
        raise NotImplementedError(f"node {name}: {type(node).__name__}")

    prev = {n: np.zeros((B, size(n))) for n in order}  # outputs of the previous step
    v = {n: np.zeros((B, size(n))) for n in order if isinstance(nodes[n], (nir.LI, nir.LIF))}
    buffers = {}
    for n in order:
        if isinstance(nodes[n], nir.Delay):
            d = np.asarray(nodes[n].delay, dtype=np.float64).reshape(-1) / dt
            k = np.round(d).astype(np.int64)
            assert np.allclose(d, k) and (k >= 0).all(), f"{n}: delay not a whole number of steps"
            buffers[n] = (k, np.zeros((int(k.max()) + 1, B, k.size)))
    keep = set(record) | {n for n in order if isinstance(nodes[n], nir.Output)}
    traces = {n: np.zeros((B, T, size(n))) for n in keep}
    for t in range(T):
        now: dict[str, np.ndarray] = {}
        for n in order:
            node = nodes[n]
            if isinstance(node, nir.Input):
                out = x[:, t]
            else:
                total = 0.0
                for s in incoming.get(n, []):
                    total = total + (prev[s] if (s, n) in back or s not in now else now[s])
                if isinstance(node, nir.Output):
                    out = total
                elif isinstance(node, nir.Linear):
                    out = total @ np.asarray(node.weight, dtype=np.float64).T
                elif isinstance(node, nir.Affine):
                    out = (total @ np.asarray(node.weight, dtype=np.float64).T
                           + np.asarray(node.bias, dtype=np.float64))
                elif isinstance(node, nir.Scale):
                    out = total * np.asarray(node.scale, dtype=np.float64)
                elif isinstance(node, nir.Delay):
                    k, buf = buffers[n]
                    slots = buf.shape[0]
                    buf[t % slots] = total  # buf[s % slots] holds the input of step s
                    rows = (t - k) % slots
                    out = np.where(t - k >= 0, buf[rows, :, np.arange(k.size)].T, 0.0)
                elif isinstance(node, nir.Threshold):
                    out = (total > np.asarray(node.threshold, dtype=np.float64)).astype(float)
                elif isinstance(node, (nir.LI, nir.LIF)):
                    tau = np.asarray(node.tau, dtype=np.float64)
                    r = np.asarray(node.r, dtype=np.float64)
                    leak = np.asarray(node.v_leak, dtype=np.float64)
                    vn = v[n] + dt / tau * (leak - v[n] + r * total)
                    if isinstance(node, nir.LIF):
                        z = vn > np.asarray(node.v_threshold, dtype=np.float64)
                        vn = np.where(z, np.asarray(node.v_reset, dtype=np.float64), vn)
                        out = z.astype(float)
                    else:
                        out = vn
                    v[n] = vn
                else:
                    raise NotImplementedError(f"node {n}: {type(node).__name__}")
            now[n] = out
            if n in keep:
                traces[n][:, t] = out
        prev = now
    return traces
