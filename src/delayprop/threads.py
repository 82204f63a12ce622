"""How many torch CPU threads a training run uses when its configuration leaves it open.

``train.threads = 0`` (the default) means: one thread for a small network, torch's default
otherwise. A small network's time loop is a long row of operations on (batch x neurons)
tensors that gain nothing from a second thread, and on a loaded machine every parallel
region can wait a whole scheduler slice for a descheduled worker (benchmarks/thread_stall.py;
:func:`delayprop.blocks.one_thread`). Any ``train.threads`` > 0 is used as given; the
command line's ``--threads`` sets it.
"""

from __future__ import annotations

from typing import Any

import torch

#: Feedforward plus recurrent hidden synapses up to which a network counts as small. The timing
#: task (10-64, 640) is: through train(), 5 epochs took 2.1 s with 1 thread and 2.0 s with 2
#: on an idle 2-core machine, 10.4 s and 60.2 s with background training on it. The e-prop
#: SHD recipe (140-100, 14,000) is not: one 640-sample epoch took 3.2 s with 1 thread and
#: 2.4 s with 2 idle, 12.7 s and 29.4 s loaded, so it keeps torch's default; on a loaded
#: machine pass --threads 1 (as docs/experiments.md's commands do; ``delayprop experiment``
#: with --jobs > 1 sets it).
SMALL_SYNAPSES = 5_000


def hidden_synapses(cfg: dict[str, Any]) -> int | None:
    """Input-to-hidden, hidden-to-hidden and recurrent synapses of the configured network;
    None when the configuration does not say (no layer sizes, or not a number)."""
    model, data = cfg.get("model", {}), cfg.get("data", {})
    sizes = model.get("n_hidden")
    n_in = model.get("n_in", data.get("channels"))
    if isinstance(sizes, int):
        sizes = [sizes]
    try:
        sizes = [int(n) for n in sizes]
        n_in = int(n_in)
    except (TypeError, ValueError):
        return None
    if not sizes:
        return None
    total, prev = 0, n_in
    for n in sizes:
        total += prev * n + (n * n if model.get("recurrent") else 0)
        prev = n
    return total


def pick_threads(cfg: dict[str, Any]) -> int:
    """``train.threads`` if > 0; else 1 for a small DelayNet (:data:`SMALL_SYNAPSES`), and
    0 (leave torch's default) for anything else."""
    asked = int(cfg.get("train", {}).get("threads") or 0)
    if asked > 0:
        return asked
    if cfg.get("method", {}).get("name") == "dcls":
        return 0
    n = hidden_synapses(cfg)
    return 1 if n is not None and n <= SMALL_SYNAPSES else 0


def apply_threads(cfg: dict[str, Any]) -> int:
    """Set torch's intra-op threads as :func:`pick_threads` says; returns the number in use."""
    n = pick_threads(cfg)
    if n:
        torch.set_num_threads(n)
    return torch.get_num_threads()
