r"""Discrete-time leaky integrate-and-fire (LIF) neurons and their surrogate derivatives.

The neuron step (method.md), for one layer at time step :math:`t`:

.. math::
    v_j[t] = \alpha v_j[t-1] + I_j[t] - \theta z_j[t-1]   \quad\text{(reset by subtraction)}

    v_j[t] = \alpha v_j[t-1] (1 - z_j[t-1]) + I_j[t]      \quad\text{(reset to zero)}

    z_j[t] = H(v_j[t] - \theta), \qquad \alpha = e^{-\Delta t / \tau_m}

The Heaviside step has no useful derivative; learning uses a *pseudo-derivative*
:math:`\psi_j[t] = \partial z_j[t] / \partial v_j[t]` from a surrogate. The same surrogate object
supplies the backward pass of :func:`spike` (BPTT) and the factor :math:`\psi` of the e-prop
eligibility, so the two rules see one function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from delayprop.errors import ConfigError

# --------------------------------------------------------------------------------------------
# Surrogates


@dataclass(frozen=True)
class Surrogate:
    r"""Pseudo-derivative :math:`\psi(v) = \partial z / \partial v` of the spike function.

    kinds:
      * ``"triangle"``: :math:`\gamma \max(0, 1 - |v-\theta|/\theta)` (e-prop, Bellec et al. 2020,
        ``scale`` = :math:`\gamma`, default 0.3);
      * ``"atan"``: :math:`\frac{a}{2} / (1 + (\frac{\pi}{2} a (v-\theta))^2)` (SpikingJelly's ATan,
        ``scale`` = :math:`a`, DCLS uses 5);
      * ``"fast_sigmoid"``: :math:`1 / (1 + s|v-\theta|)^2` (SuperSpike / snnTorch, ``scale`` = s).
    """

    kind: str = "triangle"
    scale: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in _DEFAULT_SCALE:
            raise ConfigError(
                f"unknown surrogate {self.kind!r}; choose one of {sorted(_DEFAULT_SCALE)}"
            )
        if self.scale is not None and not (self.scale > 0 and math.isfinite(self.scale)):
            raise ConfigError(f"surrogate scale must be a positive number, got {self.scale}")

    @property
    def s(self) -> float:
        return _DEFAULT_SCALE[self.kind] if self.scale is None else float(self.scale)

    def derivative(self, v: torch.Tensor, theta: float,
                   out: torch.Tensor | None = None) -> torch.Tensor:
        """psi(v), same shape as v. With ``out`` (no autograd; may be v itself, which is then
        overwritten) it is computed in place there, with the same arithmetic."""
        x = v - theta if out is None else torch.sub(v, theta, out=out)
        if out is not None:
            if self.kind == "triangle":
                return x.abs_().div_(-theta).add_(1.0).clamp_(min=0.0).mul_(self.s)
            if self.kind == "atan":
                return x.mul_(math.pi / 2 * self.s).square_().add_(1.0).reciprocal_().mul_(
                    self.s / 2)
            return x.abs_().mul_(self.s).add_(1.0).square_().reciprocal_()
        if self.kind == "triangle":
            return self.s * torch.clamp(1.0 - x.abs() / theta, min=0.0)
        if self.kind == "atan":
            return (self.s / 2) / (1 + (math.pi / 2 * self.s * x) ** 2)
        return 1.0 / (1.0 + self.s * x.abs()) ** 2


_DEFAULT_SCALE = {"triangle": 0.3, "atan": 5.0, "fast_sigmoid": 25.0}


class _SpikeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, theta, surrogate):  # type: ignore[override]
        ctx.save_for_backward(v)
        ctx.theta = theta
        ctx.surrogate = surrogate
        return (v >= theta).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (v,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(v, ctx.theta), None, None


def spike(v: torch.Tensor, theta: float, surrogate: Surrogate) -> torch.Tensor:
    """z = H(v - theta), with d z / d v = surrogate.derivative(v, theta) under autograd."""
    return _SpikeFunction.apply(v, theta, surrogate)


# --------------------------------------------------------------------------------------------
# LIF parameters and step


@dataclass(frozen=True)
class LIFParameters:
    """Parameters of a LIF population.

    tau_m and dt share one unit (ms by convention); ``reset`` is ``"subtract"`` or ``"zero"``;
    ``detach_reset`` stops gradients through the reset term (e-prop ignores it by design, so
    BPTT with a detached reset is the model e-prop is exact for).
    """

    tau_m: float = 100.0
    dt: float = 10.0
    theta: float = 1.0
    reset: str = "subtract"
    detach_reset: bool = True
    surrogate: Surrogate = Surrogate()

    def __post_init__(self) -> None:
        for name in ("tau_m", "dt", "theta"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"LIF {name} must be a positive finite number, got {value!r}")
        if self.reset not in ("subtract", "zero"):
            raise ConfigError(f"reset must be 'subtract' or 'zero', got {self.reset!r}")

    @property
    def alpha(self) -> float:
        """Membrane decay per step, exp(-dt / tau_m)."""
        return math.exp(-self.dt / self.tau_m)


def lif_step(
    current: torch.Tensor, v: torch.Tensor, z: torch.Tensor, p: LIFParameters
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LIF step. current, v, z: (B, N) -> (z_new, v_new), each (B, N).

    ``v`` and ``z`` are the previous step's membrane and spikes.
    """
    z_reset = z.detach() if p.detach_reset else z
    if p.reset == "subtract":
        # current + alpha v as one fused operation (bitwise what blocks.integrate_tm does)
        v_new = torch.add(current, v, alpha=p.alpha) - p.theta * z_reset
    else:
        v_new = p.alpha * v * (1.0 - z_reset) + current
    return spike(v_new, p.theta, p.surrogate), v_new
