"""BPTT: exact gradients of the same :class:`~delayprop.layers.DelayNet` by autograd, through
surrogate spike derivatives (and, in hard delay mode, the Gaussian delay surrogate)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from delayprop.layers import DelayNet
from delayprop.losses import loss_value


@dataclass
class BPTTResult:
    grads: dict[str, torch.Tensor]
    y: torch.Tensor
    loss: float
    records: list


def rate_penalty(records, reg_rate: float, target_rate: float) -> torch.Tensor:
    """c/2 * mean over batch of sum_j (f_j - f*)^2, f_j = firing rate per step of neuron j."""
    total = 0.0
    for r in records:
        f = r.z.mean(1)
        total = total + 0.5 * reg_rate * ((f - target_rate) ** 2).sum(-1).mean()
    return total


def bptt_gradients(
    net: DelayNet,
    x: torch.Tensor,
    target: torch.Tensor,
    loss: str = "sum",
    reg_rate: float = 0.0,
    target_rate: float = 0.01,
    set_grad: bool = True,
) -> BPTTResult:
    """Forward with autograd, backward through time. Returns gradients by parameter name and,
    if ``set_grad``, writes them into each parameter's ``.grad`` (replacing it)."""
    params = dict(net.named_parameters())
    with torch.enable_grad():
        y, records = net(x, record=True)
        value = loss_value(y, target, loss)
        if reg_rate:
            value = value + rate_penalty(records, reg_rate, target_rate)
        names = [n for n, p in params.items() if p.requires_grad]
        gs = torch.autograd.grad(value, [params[n] for n in names], allow_unused=True)
    grads = {n: (torch.zeros_like(params[n]) if g is None else g) for n, g in zip(names, gs)}
    if set_grad:
        for n, g in grads.items():
            params[n].grad = g.clone()
    detached = [type(r)(*(t.detach() for t in r)) for r in records]
    return BPTTResult(grads, y.detach(), float(value.detach()), detached)
