"""Before a run allocates anything: the memory its settings need (refused with the figure when
it exceeds the machine's, :mod:`delayprop.memory`), and a warning for delays longer than the
sequence.

:func:`train_memory` is an upper estimate of the large tensors of a DelayNet run (e-prop or
BPTT), in bytes:

* parameters with their gradients and the optimiser's two moments: 16 bytes per parameter
  (weights; per-synapse, axonal, recurrent and readout delays);
* per layer with ``pre`` inputs and ``post`` neurons, batch ``B``, ``T`` steps and a delay
  window ``W = max_delay + 1``, float32: the delayed input sequence ``2 B (T + W) pre``, the
  recorded states ``8 B T post``, e-prop's per-synapse traces ``6 B post pre`` and its lagged
  correlations and input history ``2 post pre W + B pre W``;
* the data: the timing task's 3000 samples of ``T x channels`` bytes, one float batch;
* the spectral matrices of the streaming e-prop path, about ``48 (T + W)^2`` bytes (float64).

The DCLS baseline's network is not estimated.
"""

from __future__ import annotations

from typing import Any

from delayprop import safety
from delayprop.memory import check_memory


def train_memory(model: dict[str, Any], batch: int, steps: int, timing_samples: int = 0
                 ) -> float:
    """Bytes the large tensors of a DelayNet run need (see the module doc). ``model`` is a
    complete [model] table (NetConfig fields)."""
    n_in, hidden, n_out = int(model["n_in"]), [int(n) for n in model["n_hidden"]], \
        int(model["n_out"])
    w = int(model["max_delay"]) + 1
    params, floats = 0.0, 0.0
    pre = n_in
    for post in hidden:
        params += pre * post * (2 if model["synaptic_delays"] else 1)
        params += pre if model["axonal_delays"] else 0
        if model["recurrent"]:
            params += post * post * (2 if model["recurrent_delays"] else 1)
        floats += 2.0 * batch * (steps + w) * pre + 8.0 * batch * steps * post
        floats += 6.0 * batch * post * pre + 2.0 * post * pre * w + 1.0 * batch * pre * w
        pre = post
    wr = (int(model.get("readout_max_delay") or model["max_delay"]) + 1
          if model["readout_delays"] else 1)
    params += n_out * pre * (2 if model["readout_delays"] else 1) + n_out
    floats += 2.0 * batch * (steps + wr) * pre + 4.0 * batch * steps * n_out
    floats += 2.0 * n_out * pre * wr + 1.0 * batch * pre * wr + 6.0 * batch * n_out * pre
    data = timing_samples * steps * n_in + 4.0 * batch * steps * n_in
    # the streaming e-prop path's spectral transforms of a window of n = steps + W - 1: DFT,
    # decay and transform matrices of about 44 n^2 float64 bytes (delays.stream_matrices)
    spectral = sum(48.0 * (steps + win) ** 2 for win in {w, wr} if win > 1)
    return 16.0 * params + 4.0 * floats + data + spectral


def check_resources(cfg: dict[str, Any]) -> None:
    """Refuse (ConfigError with the figure) a DelayNet configuration whose tensors cannot fit
    in memory, and warn when max_delay exceeds the sequence length; before any data is loaded
    or any tensor allocated."""
    from delayprop.data.registry import TIMING_SAMPLES, data_shape, kind_of
    from delayprop.training.methods import METHOD_CLASSES, fit_model_config

    method = METHOD_CLASSES[cfg["method"]["name"]]
    if not method.steps_at_data_dt:  # DCLS: its own network, not estimated
        return
    d = cfg["data"]
    shape = data_shape(d, inspect_files=False)
    model = method.complete_model_config(fit_model_config(cfg, shape.channels,
                                                          shape.num_classes))
    steps = shape.steps
    if model["max_delay"] >= steps:
        safety.warn(f"model.max_delay {model['max_delay']} exceeds the sequence length "
                    f"({steps} steps of data.dt): a delay of {steps} steps or more delivers "
                    "nothing within a sample, while the delay buffers and their compute grow "
                    "with max_delay")
    timing = sum(TIMING_SAMPLES.values()) if kind_of(d["dataset"]) == "timing" else 0
    need = train_memory(model, int(cfg["train"]["batch_size"]), steps, timing)
    hidden = model["n_hidden"]
    check_memory(need, f"training with model.n_hidden {list(hidden)}, model.max_delay "
                       f"{model['max_delay']}, train.batch_size {cfg['train']['batch_size']} "
                       f"and {steps} steps", device=str(cfg["train"]["device"]))
