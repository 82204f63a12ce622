r"""The DCLS delay baseline: offline BPTT learning of synaptic delays with dilated convolutions
with learnable spacings (Hammouamri, Hammouamri-Khalfaoui & Masquelier, ICLR 2024; repository
Thvnvtos/SNN-delays, SHD configuration ``best_config_SHD.py``).

Each synapse :math:`(j, i)` has a weight :math:`W_{ji}` and a position :math:`P_{ji}` in
:math:`[-\lfloor L/2 \rfloor, \lfloor L/2 \rfloor]` (``L = max_delay`` taps, odd). During
training the synapse is a Gaussian kernel over the taps :math:`k = 0..L-1` (``dcls`` package,
``Dcls1d`` version ``"gauss"``):

.. math::
    c_{ji} = P_{ji} + \lfloor L/2 \rfloor, \qquad s = |\Sigma| + 0.27

    g_{ji}[k] = \exp\!\big(-\tfrac12 ((k - c_{ji}) / s)^2\big), \qquad
    K_{ji}[k] = W_{ji}\, g_{ji}[k] / (\textstyle\sum_{k'} g_{ji}[k'] + 10^{-7})

and the layer is a causal cross-correlation of the zero-padded input (left ``L-1``, right
``r = (L-1)//2`` steps, so each layer's output is ``r`` steps longer than its input):

.. math::
    I_j[t] = \sum_i \sum_{k=0}^{L-1} K_{ji}[k]\; x_i[t + k - (L-1)]

i.e. tap ``k`` is a delay of ``L-1-k`` steps and the kernel centre is a delay of
:math:`D_{ji} = L - 1 - c_{ji} \in [0, L-1]`. :math:`\Sigma` (``SIG``) decays exponentially from
``sigma0`` (= ``L // 2`` = 12) to ``sigma_end`` (0.23) over the first quarter of training, then
stays. In evaluation (``net.eval()``) positions are rounded and each kernel is a single tap,
as SNN-delays evaluates (``Dcls1d`` version ``"max"`` with ``SIG = 0``:
:math:`K_{ji}[k] = W_{ji} [k = \mathrm{round}(P_{ji}) + \lfloor L/2 \rfloor] / (1 + 10^{-7})`).

Network (SHD): 140 inputs -> [DCLS -> BatchNorm -> LIF -> dropout] x 2 (256 each) -> DCLS ->
non-spiking leaky readout. LIF (SpikingJelly ``LIFNode``, ``decay_input=False``, hard reset to 0,
reset detached, ATan surrogate with alpha 5):

.. math::
    v_j[t] = (1 - 1/\tau)\, v_j[t-1] (1 - z_j[t-1]) + I_j[t], \qquad z_j[t] = H(v_j[t] - \theta)

with :math:`\tau` in time steps (SNN-delays: 10.05 ms / 10 ms = 1.005). The readout is the same
neuron with an unreachable threshold, so :math:`y[t] = (1 - 1/\tau) y[t-1] + I^{out}[t]`, and the
loss is the cross-entropy of :math:`\sum_t \mathrm{softmax}(y[t])` used as logits.

Run the baseline: ``python -m delayprop.baselines.dcls --config configs/dcls_shd.toml``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import torch
from torch import nn
from torch.nn import functional as F

from delayprop.errors import ConfigError, DelaypropError
from delayprop.fileio import atomic_torch_save
from delayprop.neurons import LIFParameters, Surrogate, lif_step

SIGMA_OFFSET = 0.27  # Dcls1d "gauss" uses |SIG| + 0.27 as the standard deviation
NORM_EPS = 1e-7  # Dcls1d adds this to the kernel normaliser


# --------------------------------------------------------------------------------------------
# Configuration


@dataclass
class DCLSConfig:
    """The SNN-delays SHD model. Times are in steps (10 ms each on SHD).

    ``max_delay``: taps ``L`` of each delay kernel (odd; 25 = 250 ms). ``sigma0``/``sigma_end``:
    the ``SIG`` parameter of Dcls1d at the start / end of its decay (std = ``SIG + 0.27``).
    ``tau_m``: SpikingJelly's tau in steps (> 1). ``right_padding``: extra steps each layer adds
    at the end (None: ``(L - 1) // 2`` as SNN-delays). ``seed`` seeds the initialisation.
    """

    n_in: int = 140
    n_hidden: tuple[int, ...] = (256, 256)
    n_out: int = 20
    max_delay: int = 25
    sigma0: float = 12.0
    sigma_end: float = 0.23
    dropout: float = 0.4
    tau_m: float = 1.005
    theta: float = 1.0
    surrogate_alpha: float = 5.0
    batchnorm: bool = True
    detach_reset: bool = True
    right_padding: Optional[int] = None
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.n_hidden, int):
            self.n_hidden = (self.n_hidden,)
        self.n_hidden = tuple(self.n_hidden)
        for name, value in [("n_in", self.n_in), ("n_out", self.n_out)] + [
            ("n_hidden", n) for n in self.n_hidden
        ]:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"DCLS {name} must be a positive integer, got {value!r}")
        if len(self.n_hidden) < 1:
            raise ConfigError("DCLS needs at least one hidden layer")
        L = self.max_delay
        if isinstance(L, bool) or not isinstance(L, int) or L < 1 or L % 2 == 0:
            raise ConfigError(
                f"max_delay must be an odd positive number of taps (SNN-delays rounds 250 ms / "
                f"10 ms up to 25), got {L!r}"
            )
        for name in ("sigma0", "sigma_end", "theta", "surrogate_alpha"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"DCLS {name} must be a positive number, got {value!r}")
        if self.sigma_end > self.sigma0:
            raise ConfigError(
                f"sigma_end ({self.sigma_end}) must not exceed sigma0 ({self.sigma0})"
            )
        if not (isinstance(self.tau_m, (int, float)) and self.tau_m > 1):
            raise ConfigError(
                f"tau_m is SpikingJelly's tau in time steps and must be > 1 (decay 1 - 1/tau), "
                f"got {self.tau_m!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.right_padding is None:
            self.right_padding = (L - 1) // 2
        if not isinstance(self.right_padding, int) or self.right_padding < 0:
            raise ConfigError(f"right_padding must be an integer >= 0, got {self.right_padding!r}")

    @property
    def decay(self) -> float:
        """Membrane decay per step, 1 - 1/tau (SpikingJelly, decay_input=False)."""
        return 1.0 - 1.0 / self.tau_m

    def lif(self) -> LIFParameters:
        """The hidden neurons as the repo's LIF (reset to zero, detached, ATan surrogate).

        LIFParameters decays by exp(-dt/tau_m); tau_m is chosen so that this equals 1 - 1/tau.
        """
        return LIFParameters(
            tau_m=-1.0 / math.log(self.decay), dt=1.0, theta=self.theta, reset="zero",
            detach_reset=self.detach_reset, surrogate=Surrogate("atan", self.surrogate_alpha),
        )


# --------------------------------------------------------------------------------------------
# Kernels


def gauss_kernel(weight: torch.Tensor, pos: torch.Tensor, sig: float | torch.Tensor,
                 taps: int) -> torch.Tensor:
    r"""Dcls1d "gauss" kernel: weight, pos (out, in) -> K (out, in, taps).

    :math:`K[k] = W g[k] / (\sum g + 10^{-7})`, :math:`g[k] = e^{-((k - P - \lfloor L/2
    \rfloor) / (|\Sigma| + 0.27))^2 / 2}`.
    """
    k = torch.arange(taps, dtype=pos.dtype, device=pos.device)
    s = (sig.abs() if isinstance(sig, torch.Tensor) else abs(float(sig))) + SIGMA_OFFSET
    g = torch.exp(-0.5 * ((k - (pos.unsqueeze(-1) + taps // 2)) / s) ** 2)
    g = g / (g.sum(-1, keepdim=True) + NORM_EPS)
    return weight.unsqueeze(-1) * g


def rounded_kernel(weight: torch.Tensor, pos: torch.Tensor, taps: int) -> torch.Tensor:
    r"""Evaluation kernel: one tap at round(P) + L//2, weight W / (1 + 1e-7): (out, in, taps).

    Equals Dcls1d version "max" with SIG = 0 on rounded, clamped positions (SNN-delays' eval).
    """
    lim = taps // 2
    idx = (torch.round(pos).clamp(-lim, lim) + lim).long()
    onehot = torch.zeros(*pos.shape, taps, dtype=weight.dtype, device=weight.device)
    onehot.scatter_(-1, idx.unsqueeze(-1), 1.0)
    return weight.unsqueeze(-1) * onehot / (1.0 + NORM_EPS)


class DCLSSynapses(nn.Module):
    r"""A fully connected DCLS layer (Dcls1d, kernel_count 1, no bias) with SNN-delays padding.

    Parameters ``weight`` (out, in) and ``P`` (out, in); buffer ``SIG`` (scalar, not learned).
    forward: x (B, T, in) -> I (B, T + right_padding, out).
    """

    def __init__(self, n_in: int, n_out: int, taps: int, sigma: float, right_padding: int,
                 generator: Optional[torch.Generator] = None) -> None:
        super().__init__()
        self.taps, self.right_padding = taps, right_padding
        self.weight = nn.Parameter(torch.empty(n_out, n_in))
        self.P = nn.Parameter(torch.empty(n_out, n_in))
        self.register_buffer("SIG", torch.tensor(float(sigma)))
        with torch.no_grad():
            # kaiming_uniform_(nonlinearity="relu") on Dcls1d's (out, in, 1) weight
            bound = math.sqrt(6.0 / n_in)
            self.weight.uniform_(-bound, bound, generator=generator)
            # SNN-delays: uniform(-L // 2, L // 2) in Python's floor division, then clamped
            self.P.uniform_(-taps // 2, taps // 2, generator=generator)
        self.clamp_()

    @property
    def lim(self) -> int:
        return self.taps // 2

    def clamp_(self) -> None:
        """Keep positions inside [-L//2, L//2] (Dcls1d.clamp_parameters)."""
        with torch.no_grad():
            self.P.clamp_(-self.lim, self.lim)

    def delays(self) -> torch.Tensor:
        """Kernel centres as delays in steps, L - 1 - (P + L//2), in [0, L-1]: (out, in)."""
        return (self.taps - 1 - (self.P.detach() + self.lim)).clamp(0, self.taps - 1)

    def kernel(self) -> torch.Tensor:
        """Gaussian kernel in training mode, rounded single-tap kernel in eval: (out, in, L)."""
        if self.training:
            return gauss_kernel(self.weight, self.P, self.SIG, self.taps)
        return rounded_kernel(self.weight, self.P, self.taps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.weight.shape[1]:
            raise ConfigError(
                f"DCLS layer expects (B, T, {self.weight.shape[1]}), got {tuple(x.shape)}"
            )
        xp = F.pad(x.transpose(1, 2), (self.taps - 1, self.right_padding))
        return F.conv1d(xp, self.kernel()).transpose(1, 2)


# --------------------------------------------------------------------------------------------
# Network


def _lif_sequence(current: torch.Tensor, p: LIFParameters) -> torch.Tensor:
    """Run LIF over time: current (B, T, N) -> spikes (B, T, N)."""
    v = torch.zeros_like(current[:, 0])
    z = torch.zeros_like(v)
    out = []
    for t in range(current.shape[1]):
        z, v = lif_step(current[:, t], v, z, p)
        out.append(z)
    return torch.stack(out, dim=1)


class DCLSNet(nn.Module):
    """SNN-delays feedforward network: x (B, T, n_in) -> readout membrane y (B, T', n_out),
    T' = T + (len(n_hidden) + 1) * right_padding.
    """

    def __init__(self, cfg: DCLSConfig) -> None:
        super().__init__()
        self.cfg = cfg
        gen = torch.Generator().manual_seed(int(cfg.seed))
        sizes = (cfg.n_in, *cfg.n_hidden, cfg.n_out)
        self.synapses = nn.ModuleList(
            DCLSSynapses(a, b, cfg.max_delay, cfg.sigma0, cfg.right_padding, gen)
            for a, b in zip(sizes[:-1], sizes[1:])
        )
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(n) if cfg.batchnorm else nn.Identity() for n in cfg.n_hidden
        )
        self.lif = cfg.lif()
        self.decay = cfg.decay

    @property
    def sigma(self) -> float:
        """Current SIG of the kernels (std = SIG + 0.27)."""
        return float(self.synapses[0].SIG)

    def set_sigma(self, sigma: float) -> None:
        if not (math.isfinite(sigma) and sigma >= 0):
            raise ConfigError(f"sigma must be a finite number >= 0, got {sigma}")
        for syn in self.synapses:
            syn.SIG.fill_(float(sigma))

    def clamp_delays_(self) -> None:
        """Keep every position in range; call after each optimiser step."""
        for syn in self.synapses:
            syn.clamp_()

    def _dropout(self, z: torch.Tensor) -> torch.Tensor:
        # SpikingJelly's multi-step Dropout: one mask per (sample, neuron), shared over time
        p = self.cfg.dropout
        if not self.training or p == 0.0:
            return z
        keep = torch.empty_like(z[:, :1]).bernoulli_(1.0 - p)
        return z * keep / (1.0 - p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.cfg.n_in:
            raise ConfigError(f"DCLSNet expects x (B, T, {self.cfg.n_in}), got {tuple(x.shape)}")
        h = x
        for syn, norm in zip(self.synapses[:-1], self.norms):
            current = norm(syn(h).transpose(1, 2)).transpose(1, 2)
            h = self._dropout(_lif_sequence(current, self.lif))
        current = self.synapses[-1](h)
        y, out = torch.zeros_like(current[:, 0]), []
        for t in range(current.shape[1]):
            y = self.decay * y + current[:, t]
            out.append(y)
        return torch.stack(out, dim=1)

    def count_parameters(self) -> dict[str, int]:
        """{'weights': synaptic weights + BatchNorm affine, 'delays': positions, 'total'}."""
        delays = sum(s.P.numel() for s in self.synapses)
        weights = sum(p.numel() for n, p in self.named_parameters() if not n.endswith(".P"))
        return {"weights": weights, "delays": delays, "total": weights + delays}


# --------------------------------------------------------------------------------------------
# Loss, prediction, optimisers, sigma schedule


def _time_summed_softmax(y: torch.Tensor) -> torch.Tensor:
    if y.dim() != 3:
        raise ConfigError(f"expected readout y (B, T, C), got shape {tuple(y.shape)}")
    return torch.softmax(y, dim=-1).sum(dim=1)


def dcls_loss(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""SNN-delays' loss: cross-entropy with :math:`m = \sum_t \mathrm{softmax}(y[t])` as logits.

    y (B, T, C), target (B,) int64 -> scalar (batch mean).
    """
    return F.cross_entropy(_time_summed_softmax(y), target)


def dcls_predict(y: torch.Tensor) -> torch.Tensor:
    """argmax_c sum_t softmax(y[t])_c: (B, T, C) -> (B,)."""
    return _time_summed_softmax(y).argmax(dim=-1)


def sigma_at(epoch: int, epochs: int, sigma0: float, sigma_end: float) -> float:
    r"""SIG during ``epoch`` (0-based): :math:`\Sigma_0 (\Sigma_{end}/\Sigma_0)^{\min(e, F)/F}`,
    F = epochs // 4 (SNN-delays multiplies by the per-epoch factor after each of the first F
    epochs). With F = 0 (fewer than 4 epochs) there is no decay phase: SIG = sigma_end.
    """
    if epochs < 1 or not 0 <= epoch:
        raise ConfigError(f"need 0 <= epoch and epochs >= 1, got epoch={epoch}, epochs={epochs}")
    final = epochs // 4
    if final == 0:
        return float(sigma_end)
    return float(sigma0 * (sigma_end / sigma0) ** (min(epoch, final) / final))


def epoch_begin(net: DCLSNet, epoch: int, epochs: int) -> float:
    """Set the kernels' SIG for this epoch (see :func:`sigma_at`); returns it."""
    sig = sigma_at(epoch, epochs, net.cfg.sigma0, net.cfg.sigma_end)
    net.set_sigma(sig)
    return sig


TRAIN_DEFAULTS: dict[str, Any] = {
    "lr_w": 1e-3, "max_lr_w": None, "lr_pos_factor": 100.0, "weight_decay": 1e-5,
}


def optimizer_settings(train_cfg: dict) -> dict[str, float]:
    """lr_w, max_lr_w, lr_pos, weight_decay from a ``[train]`` table.

    Reads this module's keys (``lr_w``, ``max_lr_w``, ``lr_pos_factor``) or the training loop's
    (``lr`` for the weights, ``delay_lr`` for the positions); missing ones take SNN-delays'
    values: lr_w 1e-3, max_lr_w = 5 lr_w, lr_pos = 100 lr_w, weight_decay 1e-5.
    """
    lr_w = train_cfg.get("lr_w", train_cfg.get("lr", TRAIN_DEFAULTS["lr_w"]))
    max_lr = train_cfg.get("max_lr_w")
    max_lr = 5.0 * lr_w if max_lr is None else max_lr
    if "lr_pos_factor" in train_cfg:
        lr_pos = train_cfg["lr_pos_factor"] * lr_w
    else:
        lr_pos = train_cfg.get("delay_lr", TRAIN_DEFAULTS["lr_pos_factor"] * lr_w)
    out = {"lr_w": lr_w, "max_lr_w": max_lr, "lr_pos": lr_pos,
           "weight_decay": train_cfg.get("weight_decay", TRAIN_DEFAULTS["weight_decay"])}
    for k, v in out.items():
        if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ConfigError(f"train {k} must be a number >= 0, got {v!r}")
    if out["max_lr_w"] < out["lr_w"]:
        raise ConfigError(f"max_lr_w ({max_lr}) must be >= the weight lr ({lr_w})")
    return {k: float(v) for k, v in out.items()}


def make_optimizers(
    net: DCLSNet, train_cfg: dict, steps_per_epoch: int, epochs: int
) -> tuple[list[torch.optim.Optimizer], list[torch.optim.lr_scheduler.LRScheduler]]:
    """SNN-delays' optimisers; step each optimiser and scheduler once per batch.

    * Adam on synaptic weights (weight decay) and BatchNorm (no decay), OneCycleLR peaking at
      ``max_lr_w`` over ``epochs * steps_per_epoch`` steps (it starts at max_lr_w / 25);
    * Adam on positions, lr ``lr_pos`` (100 x lr_w), no decay, cosine annealing to 0.

    Settings: :func:`optimizer_settings`. SNN-delays steps its schedulers once per epoch; here
    they step per batch over the same span (a smoother version of the same curves).
    """
    opts = optimizer_settings(train_cfg)
    total = int(steps_per_epoch) * int(epochs)
    if steps_per_epoch < 1 or epochs < 1:
        raise ConfigError(f"need steps_per_epoch, epochs >= 1, got {steps_per_epoch}, {epochs}")
    weights = [s.weight for s in net.synapses]
    bn = [p for n in net.norms for p in n.parameters()]
    lr_w = opts["lr_w"]
    opt_w = torch.optim.Adam([
        {"params": weights, "lr": lr_w, "weight_decay": float(opts["weight_decay"])},
        {"params": bn, "lr": lr_w, "weight_decay": 0.0},
    ])
    opt_p = torch.optim.Adam([s.P for s in net.synapses], lr=opts["lr_pos"], weight_decay=0.0)
    sched_w = torch.optim.lr_scheduler.OneCycleLR(opt_w, max_lr=opts["max_lr_w"],
                                                  total_steps=total)
    sched_p = torch.optim.lr_scheduler.CosineAnnealingLR(opt_p, T_max=total)
    return [opt_w, opt_p], [sched_w, sched_p]


# --------------------------------------------------------------------------------------------
# A self-contained runner (train on a validation split, select on validation, test once)


def _append_jsonl(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


@torch.no_grad()
def evaluate(net: DCLSNet, ds: Any, batch_size: int = 256) -> tuple[float, float]:
    """(mean loss, accuracy) of ``net`` in eval mode (rounded delays) on a dataset."""
    from delayprop.data import batches

    was_training = net.training
    net.eval()
    loss_sum, correct, n = 0.0, 0, 0
    for xb, yb in batches(ds, batch_size=batch_size, shuffle=False, dtype=torch.float32):
        y = net(xb)
        loss_sum += float(dcls_loss(y, yb)) * len(yb)
        correct += int((dcls_predict(y) == yb).sum())
        n += len(yb)
    net.train(was_training)
    if n == 0:
        raise ConfigError("cannot evaluate on an empty dataset")
    return loss_sum / n, correct / n


def load_config(path: str | Path) -> dict:
    """Read a TOML configuration file."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None


def _check_keys(section: str, given: Iterable[str], allowed: Iterable[str]) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(f"[{section}] has unknown keys {unknown}; allowed: {sorted(allowed)}")


DATA_DEFAULTS: dict[str, Any] = {
    "name": "shd", "data_dir": None, "dt": 0.01, "max_time": 1.4, "channels": 140,
    "val_fraction": 0.1, "split_seed": 0,
}
RUN_DEFAULTS: dict[str, Any] = {
    "epochs": 150, "batch_size": 256, "eval_batch_size": 256, "seed": 0, "threads": 1,
    "out_dir": "results/dcls", "max_train_batches": None,
}
OPTIMIZER_KEYS = ("lr_w", "max_lr_w", "lr_pos_factor", "weight_decay", "lr", "delay_lr")


def normalise_config(raw: dict) -> tuple[DCLSConfig, dict, dict]:
    """(model, data, train) from a configuration in this runner's layout or the training
    loop's (``[method] name = "dcls"``, ``[data] dataset``, ``[train] lr / delay_lr``).

    data and train come back with defaults filled in; train keeps only the optimiser keys that
    were given (see :func:`optimizer_settings`). Unknown or unusable options raise ConfigError.
    """
    method = raw.get("method", "dcls")
    if isinstance(method, dict):
        _check_keys("method", method, ("name", "loss"))
        if method.get("loss", "sum") != "sum":
            raise ConfigError("the DCLS baseline trains with the time-summed softmax: loss = 'sum'")
        method = method.get("name")
    if method != "dcls":
        raise ConfigError(f"method is {method!r}; this runner trains 'dcls'")
    _check_keys("configuration", raw, ("method", "name", "model", "data", "train"))
    model = dict(raw.get("model", {}))
    _check_keys("model", model, DCLSConfig.__dataclass_fields__)
    data = dict(raw.get("data", {}))
    if "dataset" in data:
        data.setdefault("name", data.pop("dataset"))
    _check_keys("data", data, DATA_DEFAULTS)
    train = dict(raw.get("train", {}))
    if train.get("device", "cpu") != "cpu":
        raise ConfigError("this runner trains on the CPU; use `delayprop train` for a GPU")
    train.pop("device", None)
    _check_keys("train", train, (*RUN_DEFAULTS, *OPTIMIZER_KEYS))
    optimizer_settings(train)  # validates
    return DCLSConfig(**model), {**DATA_DEFAULTS, **data}, {**RUN_DEFAULTS, **train}


@dataclass
class RunState:
    """What a checkpoint holds besides the tensors."""

    epoch: int = 0  # next epoch to run
    best_val_acc: float = -1.0
    best_val_loss: float = float("inf")
    best_epoch: int = -1
    elapsed_s: float = 0.0
    history: list = field(default_factory=list)


def train_dcls(cfg: dict, resume: bool = False, log: Any = print, test_only: bool = False) -> dict:
    """Train the DCLS baseline as configured; returns the final summary (also final.json).

    Per epoch: set sigma, train (optimisers and schedulers stepped per batch, positions
    clamped after each step), evaluate on the validation split with rounded delays, log a row
    to ``<out_dir>/metrics.jsonl``, save ``last.pt`` (atomic) and ``best.pt`` when validation
    accuracy improves (ties: lower loss) at an epoch >= F - 1, F = epochs // 4 (SNN-delays does
    not select during the sigma decay). After the last epoch the best checkpoint is tested once.
    ``test_only`` skips the remaining epochs of an interrupted run and tests its best checkpoint
    (final.json then says how many epochs were completed).
    """
    from delayprop.data import batches, load_dataset, train_val_split

    mcfg, dcfg, tcfg = normalise_config(cfg)
    epochs, bs = int(tcfg["epochs"]), int(tcfg["batch_size"])
    if epochs < 1 or bs < 1:
        raise ConfigError(f"epochs and batch_size must be >= 1, got {epochs}, {bs}")
    torch.set_num_threads(int(tcfg["threads"]))
    out = Path(tcfg["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    metrics, last_ckpt, best_ckpt = out / "metrics.jsonl", out / "last.pt", out / "best.pt"
    if test_only and not (last_ckpt.exists() and best_ckpt.exists()):
        raise ConfigError(f"--test-only needs {last_ckpt} and {best_ckpt} from a previous run")

    def load(split: str) -> Any:
        return load_dataset(dcfg["name"], split=split, data_dir=dcfg["data_dir"], dt=dcfg["dt"],
                            max_time=dcfg["max_time"], channels=dcfg["channels"], progress=False)

    full = load("train")
    tr_idx, va_idx = train_val_split(full.y, full.speaker, val_fraction=dcfg["val_fraction"],
                                     seed=int(dcfg["split_seed"]))
    train_ds, val_ds = full.subset(tr_idx), full.subset(va_idx)
    if train_ds.channels != mcfg.n_in:
        raise ConfigError(f"data has {train_ds.channels} channels but model n_in={mcfg.n_in}")
    n_batches = math.ceil(len(train_ds) / bs)
    if tcfg["max_train_batches"] is not None:
        n_batches = min(n_batches, int(tcfg["max_train_batches"]))
    log(f"train {len(train_ds)} val {len(val_ds)} samples, T={train_ds.num_steps}, "
        f"{n_batches} batches/epoch, {epochs} epochs, sigma decay over {epochs // 4}")

    torch.manual_seed(int(tcfg["seed"]))
    net = DCLSNet(mcfg)
    optimizers, schedulers = make_optimizers(net, tcfg, n_batches, epochs)
    state = RunState()
    if (resume or test_only) and last_ckpt.exists():
        ck = torch.load(last_ckpt, weights_only=False)
        net.load_state_dict(ck["model"])
        for o, s in zip(optimizers, ck["optimizers"]):
            o.load_state_dict(s)
        for s, s_state in zip(schedulers, ck["schedulers"]):
            s.load_state_dict(s_state)
        torch.set_rng_state(ck["rng"])
        state = RunState(**ck["state"])
        log(f"resumed from {last_ckpt} at epoch {state.epoch}")
    elif metrics.exists():
        metrics.unlink()  # a fresh run starts a fresh log

    final_sel = max(epochs // 4 - 1, 0)
    while state.epoch < epochs and not test_only:
        epoch, t0 = state.epoch, time.time()
        sig = epoch_begin(net, epoch, epochs)
        net.train()
        loss_sum, correct, n = 0.0, 0, 0
        for b, (xb, yb) in enumerate(batches(train_ds, batch_size=bs, shuffle=True, seed=epoch,
                                             dtype=torch.float32)):
            if b >= n_batches:
                break
            for o in optimizers:
                o.zero_grad(set_to_none=True)
            y = net(xb)
            loss = dcls_loss(y, yb)
            loss.backward()
            for o in optimizers:
                o.step()
            for s in schedulers:
                s.step()
            net.clamp_delays_()
            loss_sum += float(loss.detach()) * len(yb)
            correct += int((dcls_predict(y.detach()) == yb).sum())
            n += len(yb)
        train_s = time.time() - t0
        val_loss, val_acc = evaluate(net, val_ds, int(tcfg["eval_batch_size"]))
        state.elapsed_s += time.time() - t0
        row = {
            "epoch": epoch, "sigma": sig, "train_loss": loss_sum / n, "train_acc": correct / n,
            "val_loss": val_loss, "val_acc": val_acc, "lr_w": schedulers[0].get_last_lr()[0],
            "lr_pos": schedulers[1].get_last_lr()[0], "epoch_s": time.time() - t0,
            "train_s": train_s, "elapsed_s": state.elapsed_s,
        }
        better = (val_acc, -val_loss) > (state.best_val_acc, -state.best_val_loss)
        if epoch >= final_sel and better:
            state.best_val_acc, state.best_val_loss, state.best_epoch = val_acc, val_loss, epoch
            atomic_torch_save({"model": net.state_dict(), "epoch": epoch,
                               "config": asdict(mcfg)}, best_ckpt)
            row["best"] = True
        _append_jsonl(metrics, row)
        state.history.append(row)
        state.epoch = epoch + 1
        atomic_torch_save({"model": net.state_dict(),
                           "optimizers": [o.state_dict() for o in optimizers],
                           "schedulers": [s.state_dict() for s in schedulers],
                           "rng": torch.get_rng_state(), "state": asdict(state)}, last_ckpt)
        log(json.dumps(row))

    ck = torch.load(best_ckpt, weights_only=False)
    net.load_state_dict(ck["model"])
    test_ds = load("test")
    test_loss, test_acc = evaluate(net, test_ds, int(tcfg["eval_batch_size"]))
    summary = {
        "method": "dcls", "dataset": f"{dcfg['name']} ({dcfg['data_dir']})",
        "epochs": epochs, "epochs_completed": state.epoch, "best_epoch": state.best_epoch,
        "val_acc": state.best_val_acc,
        "val_loss": state.best_val_loss, "test_acc": test_acc, "test_loss": test_loss,
        "n_train": len(train_ds), "n_val": len(val_ds), "n_test": len(test_ds),
        "T": train_ds.num_steps, "params": net.count_parameters(), "train_wall_s": state.elapsed_s,
        "model": asdict(mcfg), "data": dcfg, "train": tcfg,
        "optimizer": optimizer_settings(tcfg),
    }
    with open(out / "final.json", "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    log(json.dumps({k: summary[k] for k in ("best_epoch", "val_acc", "test_acc", "params")}))
    return summary


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m delayprop.baselines.dcls --config FILE [--resume]``."""
    ap = argparse.ArgumentParser(prog="python -m delayprop.baselines.dcls",
                                 description="Train the DCLS (SNN-delays) baseline.")
    ap.add_argument("--config", required=True, help="TOML file with [model] [data] [train]")
    ap.add_argument("--resume", action="store_true", help="continue from <out_dir>/last.pt")
    ap.add_argument("--test-only", action="store_true",
                    help="stop an interrupted run here: test <out_dir>/best.pt, write final.json")
    ap.add_argument("--epochs", type=int, help="override [train] epochs")
    ap.add_argument("--out-dir", help="override [train] out_dir")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config)
        if args.epochs is not None:
            cfg.setdefault("train", {})["epochs"] = args.epochs
        if args.out_dir is not None:
            cfg.setdefault("train", {})["out_dir"] = args.out_dir
        train_dcls(cfg, resume=args.resume, log=lambda s: print(s, flush=True),
                   test_only=args.test_only)
    except DelaypropError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
