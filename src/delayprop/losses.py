r"""Classification losses over a spiking network's output sequence, and their exact error
signals :math:`\partial E / \partial y[t]` (the e-prop learning signal starts from these).

* ``"sum"``: :math:`E = \frac1B \sum_b \sum_t \mathrm{CE}(\mathrm{softmax}(y_b[t]), y^*_b[t])`,
  the per-step loss (targets may be per sample, (B,), or per step, (B, T));
* ``"mean"``: :math:`E = \frac1B \sum_b \mathrm{CE}(\mathrm{softmax}(\frac1T\sum_t y_b[t]), y^*_b)`.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from delayprop.errors import ConfigError

LOSSES = ("sum", "mean")


def check_target(y: torch.Tensor, target: torch.Tensor, loss: str) -> torch.Tensor:
    """Validate a target against an output y (B, T, C); return it as int64 on y's device."""
    if loss not in LOSSES:
        raise ConfigError(f"loss must be one of {LOSSES}, got {loss!r}")
    B, T, C = y.shape
    if T < 1:
        raise ConfigError("the input has no time steps (T = 0)")
    ok_shapes = [(B,)] + ([(B, T)] if loss == "sum" else [])
    if tuple(target.shape) not in ok_shapes:
        raise ConfigError(
            f"target shape {tuple(target.shape)} does not match output {tuple(y.shape)}; "
            f"expected one of {ok_shapes}"
        )
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        if not (target.is_floating_point() and torch.equal(target, target.round())):
            raise ConfigError(f"target labels must be integers, got {target.dtype} values "
                              "that are not whole numbers")
    target = target.to(device=y.device, dtype=torch.long)
    if target.numel() and (target.min() < 0 or target.max() >= C):
        raise ConfigError(f"target labels must lie in [0, {C - 1}]")
    return target


def _per_step(target: torch.Tensor, T: int) -> torch.Tensor:
    return target.unsqueeze(1).expand(-1, T) if target.dim() == 1 else target


def loss_value(y: torch.Tensor, target: torch.Tensor, loss: str = "sum") -> torch.Tensor:
    """Scalar loss E (differentiable) of outputs y (B, T, C)."""
    target = check_target(y, target, loss)
    B, T, C = y.shape
    if loss == "mean":
        return F.cross_entropy(y.mean(1), target)
    tgt = _per_step(target, T)
    return F.cross_entropy(y.reshape(B * T, C), tgt.reshape(B * T), reduction="sum") / B


def output_error(y: torch.Tensor, target: torch.Tensor, loss: str = "sum") -> torch.Tensor:
    """dE/dy[t], (B, T, C), computed in closed form (no autograd)."""
    target = check_target(y, target, loss)
    B, T, C = y.shape
    if loss == "mean":
        err = F.softmax(y.mean(1), -1) - F.one_hot(target, C).to(y.dtype)
        return (err / (B * T)).unsqueeze(1).expand(B, T, C)
    tgt = _per_step(target, T)
    return (F.softmax(y, -1) - F.one_hot(tgt, C).to(y.dtype)) / B


def predict(y: torch.Tensor, loss: str = "sum") -> torch.Tensor:
    """Predicted class per sample, (B,): argmax of the time-summed softmax ('sum') or of the
    time-mean output ('mean')."""
    if loss == "mean":
        return y.mean(1).argmax(-1)
    return F.softmax(y, -1).sum(1).argmax(-1)
