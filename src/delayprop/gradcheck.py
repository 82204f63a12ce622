"""Compare e-prop updates with BPTT gradients on one model (the `delayprop gradcheck` command).

For one feedforward hidden layer with a detached reset the two agree to rounding; for deeper
or recurrent networks e-prop is an approximation and the cosine similarity says how close.
"""

from __future__ import annotations

import torch

from delayprop.errors import ConfigError
from delayprop.layers import DelayNet, NetConfig
from delayprop.rules import EpropConfig, bptt_gradients, eprop_gradients

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def compare_gradients(
    net: DelayNet, x: torch.Tensor, target: torch.Tensor, config: EpropConfig | None = None
) -> dict[str, dict[str, float]]:
    """{parameter name: {'rel_err': |g_e - g_b| / |g_b|, 'cosine': cos(g_e, g_b)}}."""
    cfg = config or EpropConfig()
    e = eprop_gradients(net, x, target, cfg, set_grad=False)
    b = bptt_gradients(net, x, target, loss=cfg.loss, reg_rate=cfg.reg_rate,
                       target_rate=cfg.target_rate, set_grad=False)
    out = {}
    for name, gb in b.grads.items():
        ge = e.grads[name]
        denom = gb.norm()
        rel = float((ge - gb).norm() / denom) if denom > 0 else float((ge - gb).norm())
        cos = torch.nn.functional.cosine_similarity(ge.flatten(), gb.flatten(), dim=0, eps=1e-300)
        out[name] = {"rel_err": rel, "cosine": float(cos)}
    return out


def random_problem(
    config: NetConfig, batch: int = 8, steps: int = 50, input_rate: float = 0.1,
    dtype: str = "float64", device: str = "cpu",
) -> tuple[DelayNet, torch.Tensor, torch.Tensor]:
    """A random network, Bernoulli input spikes (B, T, n_in) and random labels, all seeded."""
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if not 0 < input_rate <= 1:
        raise ConfigError(f"input rate must be in (0, 1], got {input_rate}")
    if batch <= 0 or steps <= 0:
        raise ConfigError(f"batch and steps must be positive, got {batch}, {steps}")
    net = DelayNet(config).to(device=device, dtype=DTYPES[dtype])
    g = torch.Generator().manual_seed(config.seed + 12345)
    x = (torch.rand(batch, steps, config.n_in, generator=g) < input_rate).to(DTYPES[dtype])
    target = torch.randint(0, config.n_out, (batch,), generator=g)
    return net, x.to(device), target.to(device)
