r"""The learning methods a run can use, behind the one interface the training loop talks to.

A :class:`Method` is a network together with the rule that trains it. The training loop
(:func:`delayprop.training.loop.train`) only calls the interface:

* :meth:`Method.make_optimizers`: the optimisers and learning-rate schedules
  (:class:`Optimization`: when its schedulers step is the method's business);
* :meth:`Method.epoch_begin`: the per-epoch hook (the Gaussian delay-width schedule);
* :meth:`Method.update`: the training step on one batch (input dropout, then
  :meth:`Method.gradients` writes ``.grad``), and :meth:`Method.after_step` after the
  optimiser step (delays clamped to their range);
* :meth:`Method.output`, :meth:`Method.predict`, :meth:`Method.batch_loss`: evaluation;
* :meth:`Method.improves`: the rule that selects the best epoch (``best.pt``).

The implementations, by ``[method] name`` (:data:`METHOD_CLASSES`):

* ``eprop`` (:class:`Eprop`): :func:`~delayprop.rules.eprop_gradients` on a
  :class:`~delayprop.layers.DelayNet`;
* ``bptt`` (:class:`Bptt`): :func:`~delayprop.rules.bptt_gradients` on the same network;
  both share :class:`DelayNetMethod` (one Adam / AdamW / SGD optimiser with a separate
  learning rate for the delays, optional cosine decay per epoch, and the delay-width schedule
  of :func:`sigma_at`);
* ``dcls`` (:class:`Dcls`): the DCLS baseline (:mod:`delayprop.baselines.dcls`) with
  SNN-delays' optimisers, schedules stepped per batch, and its own selection rule.

``Method(cfg, n_in, n_out, device)`` builds the implementation ``cfg['method']['name']`` names.
Adding a method is adding a subclass here and an entry in :data:`METHOD_CLASSES`.

The Gaussian width of the DelayNet methods follows an exponential decay per epoch,

.. math::
    \sigma(e) = \sigma_0 (\sigma_1 / \sigma_0)^{\min(1,\, e / (f E))}

(``sigma_decay_fraction`` :math:`f` of the :math:`E` epochs), then stays at :math:`\sigma_1`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import torch

from delayprop.baselines.dcls import (
    DCLSConfig,
    DCLSNet,
    check_dcls_model,
    dcls_loss,
    dcls_predict,
)
from delayprop.baselines.dcls import epoch_begin as dcls_epoch_begin
from delayprop.baselines.dcls import make_optimizers as dcls_optimizers
from delayprop.data.registry import class_hint
from delayprop.errors import ConfigError
from delayprop.layers import DelayNet, NetConfig
from delayprop.losses import loss_value, predict
from delayprop.rules import EpropConfig, bptt_gradients, eprop_gradients


def fit_model_config(cfg: dict[str, Any], n_in: int, n_classes: int | None) -> dict[str, Any]:
    """``cfg['model']`` with ``n_in``, ``n_out`` (and ``dt``, ms, for methods whose neurons
    step at the data's bin width) taken from the data where not given; ConfigError if the
    given ones do not fit the data (``n_classes`` None: unknown)."""
    model_cfg = dict(cfg["model"])
    model_cfg.setdefault("n_in", n_in)
    if n_classes is not None:
        model_cfg.setdefault("n_out", n_classes)
    if METHOD_CLASSES[cfg["method"]["name"]].steps_at_data_dt:
        model_cfg.setdefault("dt", float(cfg["data"]["dt"]) * 1000.0)
    if model_cfg["n_in"] != n_in:
        raise ConfigError(f"model.n_in={model_cfg['n_in']} but the data has {n_in} channels")
    if n_classes is not None and model_cfg["n_out"] < n_classes:
        raise ConfigError(f"model.n_out={model_cfg['n_out']} but the data has {n_classes} "
                          f"classes ({class_hint(cfg['data']['dataset'])})")
    return model_cfg


def param_groups(net: torch.nn.Module, lr: float, delay_lr: float,
                 weight_decay: float = 0.0) -> list[dict[str, Any]]:
    """Optimiser parameter groups: the weights (``lr``, ``weight_decay``) and, if the net has
    any, the delays (``*_delay`` parameters: ``delay_lr``, no weight decay)."""
    named = list(net.named_parameters())
    groups = [{"params": [p for n, p in named if not n.endswith("_delay")], "lr": lr,
               "weight_decay": weight_decay}]
    delays = [p for n, p in named if n.endswith("_delay")]
    if delays:
        groups.append({"params": delays, "lr": delay_lr, "weight_decay": 0.0})
    return groups


def sigma_at(epoch: int, epochs: int, sigma0: float, sigma1: float, fraction: float) -> float:
    """Exponential decay sigma0 -> sigma1 over the first ``fraction`` of the epochs."""
    span = max(1.0, fraction * epochs)
    s = min(1.0, epoch / span)
    return float(sigma0 * (sigma1 / sigma0) ** s)


@dataclass
class Optimization:
    """A method's optimisers and learning-rate schedulers, and when the schedulers step:
    ``per`` = "batch" (after every optimiser step) or "epoch" (after every epoch)."""

    optimizers: list[torch.optim.Optimizer]
    schedulers: list[Any]  # torch.optim.lr_scheduler.LRScheduler
    per: str

    def __post_init__(self) -> None:
        if self.per not in ("batch", "epoch"):
            raise ValueError(f"schedulers step per 'batch' or per 'epoch', not {self.per!r}")

    def zero_grad(self) -> None:
        """Clear the gradients before a batch."""
        for o in self.optimizers:
            o.zero_grad(set_to_none=True)

    def step(self) -> None:
        """Apply the gradients of a batch (and step per-batch schedulers)."""
        for o in self.optimizers:
            o.step()
        if self.per == "batch":
            for s in self.schedulers:
                s.step()

    def end_epoch(self) -> None:
        """Step per-epoch schedulers."""
        if self.per == "epoch":
            for s in self.schedulers:
                s.step()

    @property
    def lr(self) -> float:
        """The learning rate of the first optimiser's first group (metrics.jsonl's ``lr``)."""
        return self.optimizers[0].param_groups[0]["lr"]

    def state_dict(self) -> dict[str, list]:
        """``{"optimizers": [...], "schedulers": [...]}``, as checkpoints store them."""
        return {"optimizers": [o.state_dict() for o in self.optimizers],
                "schedulers": [s.state_dict() for s in self.schedulers]}

    def load_state_dict(self, state: dict[str, list]) -> None:
        """Restore what :meth:`state_dict` returned (or a checkpoint holds)."""
        for o, st in zip(self.optimizers, state["optimizers"]):
            o.load_state_dict(st)
        for s, st in zip(self.schedulers, state["schedulers"]):
            s.load_state_dict(st)


class Method(ABC):
    """A network with its learning rule: what the training loop, evaluation and checkpoints
    use (see the module doc).

    ``Method(cfg, n_in, n_out, device)`` builds the subclass that ``cfg['method']['name']``
    names (:data:`METHOD_CLASSES`), with the network of ``cfg['model']`` fitted to ``n_in``
    input channels and ``n_out`` classes (:func:`fit_model_config`), on ``device``.
    Attributes: ``cfg`` (the resolved configuration), ``method`` (its name), ``loss``,
    ``model_cfg`` (what the network was built from, stored in checkpoints), ``net``.
    """

    #: Whether the neurons step at the data's bin width (model.dt defaults to data.dt in ms).
    steps_at_data_dt: ClassVar[bool] = True

    def __new__(cls, cfg: dict[str, Any], *args: Any, **kwargs: Any) -> Method:
        if cls is Method:
            name = cfg["method"]["name"]
            if name not in METHOD_CLASSES:
                raise ConfigError(f"method.name must be one of {tuple(METHOD_CLASSES)}, "
                                  f"got {name!r}")
            cls = METHOD_CLASSES[name]
        return super().__new__(cls)

    def __init__(self, cfg: dict[str, Any], n_in: int, n_out: int, device: torch.device):
        self.cfg = cfg
        self.method = cfg["method"]["name"]
        self.loss = cfg["method"]["loss"]
        self.model_cfg = fit_model_config(cfg, n_in, n_out)
        self.net: torch.nn.Module = self.build_net(self.model_cfg)
        self.net.to(device)

    # -- what a method defines ---------------------------------------------------------------
    @classmethod
    @abstractmethod
    def check_model(cls, model: dict[str, Any], loss: str) -> None:
        """Raise ConfigError if the ``[model]`` table (or the loss) does not suit the method."""

    @classmethod
    @abstractmethod
    def complete_model_config(cls, model_cfg: dict[str, Any]) -> dict[str, Any]:
        """Every field of the network's configuration: a fitted ``[model]`` table
        (:func:`fit_model_config`) with the defaults of the fields it does not give."""

    @abstractmethod
    def build_net(self, model_cfg: dict[str, Any]) -> torch.nn.Module:
        """The network of a fitted ``[model]`` table."""

    @abstractmethod
    def make_optimizers(self, steps_per_epoch: int) -> Optimization:
        """The optimisers and learning-rate schedules of a run with ``steps_per_epoch``
        batches per epoch."""

    @abstractmethod
    def epoch_begin(self, epoch: int, epochs: int) -> float | None:
        """Called before epoch ``epoch`` (0-based) of ``epochs``: set the Gaussian delay width
        of this epoch; returns it (None if the method does not schedule it)."""

    @abstractmethod
    def gradients(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
        """Write the updates of one batch x (B, T, C), labels y (B,) into ``.grad``; returns
        (loss, predicted class per sample (B,))."""

    @abstractmethod
    def predict(self, y: torch.Tensor) -> torch.Tensor:
        """Predicted classes (B,) of the network's outputs y (B, T, C)."""

    @abstractmethod
    def batch_loss(self, y: torch.Tensor, target: torch.Tensor) -> float:
        """The mean loss of outputs y (B, T, C) against labels ``target`` (B,)."""

    def improves(self, epoch: int, epochs: int, val_acc: float, val_loss: float,
                 best: dict[str, float]) -> bool:
        """Whether epoch ``epoch`` (0-based) of ``epochs`` becomes the selected model, given
        its validation accuracy and loss and the best so far (``best_val``,
        ``best_val_loss``): here, a higher validation accuracy."""
        return val_acc > best["best_val"]

    # -- shared by every method --------------------------------------------------------------
    def drop_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Training-time input dropout (``train.input_dropout`` p): x (B, T, C) times one mask
        per sample and channel, fixed over time, kept channels scaled by 1 / (1 - p) (drawn from
        torch's global generator, which checkpoints save). Every rule then learns from the
        masked input as it is, so e-prop stays exact where it was."""
        p = float(self.cfg["train"]["input_dropout"])
        if p == 0.0:
            return x
        keep = torch.bernoulli(x.new_full((x.shape[0], 1, x.shape[2]), 1.0 - p))
        return x * keep.div_(1.0 - p)

    def update(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
        """The training step on one batch: input dropout, then :meth:`gradients`. Returns
        (loss, predicted class per sample (B,))."""
        return self.gradients(self.drop_inputs(x), y)

    def after_step(self) -> None:
        """After each optimiser step: keep the delays inside their range."""
        self.net.clamp_delays_()

    def clamp(self) -> None:
        """Keep the delays inside their range (:meth:`after_step`)."""
        self.after_step()

    def train_mode(self) -> None:
        self.net.train()

    def eval_mode(self) -> None:
        self.net.eval()

    @torch.no_grad()
    def output(self, x: torch.Tensor) -> torch.Tensor:
        """The evaluation forward pass: outputs (B, T, C) of x (B, T, C_in), no autograd."""
        return self.net(x)

    def count_parameters(self) -> dict[str, int]:
        return dict(self.net.count_parameters())


class DelayNetMethod(Method):
    """What e-prop and BPTT share: a :class:`~delayprop.layers.DelayNet`, one optimiser (Adam,
    AdamW or SGD with momentum 0.9) whose delay parameters have their own learning rate
    (:func:`param_groups`), an optional cosine decay stepped per epoch, the Gaussian width
    schedule ``train.sigma0`` -> ``sigma1`` (:func:`sigma_at`), and the losses of
    :mod:`delayprop.losses`. ``eprop_cfg`` holds the [method] settings as an
    :class:`~delayprop.rules.EpropConfig`."""

    def __init__(self, cfg: dict[str, Any], n_in: int, n_out: int, device: torch.device):
        super().__init__(cfg, n_in, n_out, device)
        m = cfg["method"]
        self.eprop_cfg = EpropConfig(
            loss=m["loss"], feedback=m["feedback"], reg_rate=float(m["reg_rate"]),
            target_rate=float(m["target_rate"]),
        )

    @classmethod
    def check_model(cls, model: dict[str, Any], loss: str) -> None:
        known = {f.name for f in fields(NetConfig)}
        unknown = sorted(set(model) - known)
        if unknown:
            raise ConfigError(f"unknown model option(s): {', '.join(unknown)}")
        try:
            NetConfig.from_dict(model)  # validates
        except ConfigError as exc:
            msg = str(exc)
            first = msg.split(" ", 1)[0]
            raise ConfigError(f"model.{msg}" if first in known else f"[model] {msg}") from None

    @classmethod
    def complete_model_config(cls, model_cfg: dict[str, Any]) -> dict[str, Any]:
        return NetConfig.from_dict(model_cfg).to_dict()

    def build_net(self, model_cfg: dict[str, Any]) -> torch.nn.Module:
        return DelayNet(NetConfig.from_dict(model_cfg))

    def make_optimizers(self, steps_per_epoch: int) -> Optimization:
        t = self.cfg["train"]
        groups = param_groups(self.net, t["lr"], t["delay_lr"], t["weight_decay"])
        kind = t["optimizer"]
        if kind == "adam":
            opt: torch.optim.Optimizer = torch.optim.Adam(groups)
        elif kind == "adamw":
            opt = torch.optim.AdamW(groups)
        else:
            opt = torch.optim.SGD(groups, momentum=0.9)
        scheds = []
        if t["lr_schedule"] == "cosine":
            scheds.append(torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t["epochs"]))
        return Optimization([opt], scheds, "epoch")

    def epoch_begin(self, epoch: int, epochs: int) -> float | None:
        t = self.cfg["train"]
        if t["sigma0"] > 0:
            s = sigma_at(epoch, epochs, t["sigma0"], t["sigma1"], t["sigma_decay_fraction"])
            self.net.set_sigma(s)
            return s
        return None

    def predict(self, y: torch.Tensor) -> torch.Tensor:
        return predict(y, self.loss)

    def batch_loss(self, y: torch.Tensor, target: torch.Tensor) -> float:
        return float(loss_value(y, target, self.loss))


class Eprop(DelayNetMethod):
    """e-prop (:func:`~delayprop.rules.eprop_gradients`): online three-factor updates without
    autograd. It keeps no output sequence (its memory stays flat in T): the training
    prediction comes from its per-sample scores."""

    def gradients(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
        with self.net.dropped_out(x.shape[0]):
            r = eprop_gradients(self.net, x, y, self.eprop_cfg, set_grad=True,
                                keep_output=False)
        return r.loss, r.scores.argmax(-1)


class Bptt(DelayNetMethod):
    """BPTT (:func:`~delayprop.rules.bptt_gradients`): exact gradients by autograd with
    surrogate derivatives, the reference e-prop is compared against."""

    def gradients(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
        m = self.cfg["method"]
        with self.net.dropped_out(x.shape[0]):
            r = bptt_gradients(self.net, x, y, loss=self.loss, reg_rate=float(m["reg_rate"]),
                               target_rate=float(m["target_rate"]), set_grad=True)
        return r.loss, self.predict(r.y)


class Dcls(Method):
    """The DCLS baseline (:mod:`delayprop.baselines.dcls`): its network, SNN-delays'
    optimisers with schedules stepped per batch, its own Gaussian width schedule, the
    time-summed softmax loss, and SNN-delays' selection rule (:meth:`improves`). Its neurons
    step in their own time constant, not the data's bin width."""

    steps_at_data_dt = False

    @classmethod
    def check_model(cls, model: dict[str, Any], loss: str) -> None:
        check_dcls_model(model, loss)

    @classmethod
    def complete_model_config(cls, model_cfg: dict[str, Any]) -> dict[str, Any]:
        return asdict(DCLSConfig(**model_cfg))

    def build_net(self, model_cfg: dict[str, Any]) -> torch.nn.Module:
        return DCLSNet(DCLSConfig(**model_cfg))

    def make_optimizers(self, steps_per_epoch: int) -> Optimization:
        t = self.cfg["train"]
        opts, scheds = dcls_optimizers(self.net, dict(t), steps_per_epoch, t["epochs"])
        return Optimization(list(opts), list(scheds), "batch")

    def epoch_begin(self, epoch: int, epochs: int) -> float | None:
        return float(dcls_epoch_begin(self.net, epoch, epochs))

    def gradients(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
        out = self.net(x)
        value = dcls_loss(out, y)
        value.backward()
        return float(value.detach()), self.predict(out.detach())

    def predict(self, y: torch.Tensor) -> torch.Tensor:
        return dcls_predict(y)

    def batch_loss(self, y: torch.Tensor, target: torch.Tensor) -> float:
        return float(dcls_loss(y, target))

    def improves(self, epoch: int, epochs: int, val_acc: float, val_loss: float,
                 best: dict[str, float]) -> bool:
        """SNN-delays' rule: no selection before epoch epochs // 4 - 1 (the Gaussian widths
        are still shrinking); then a higher validation accuracy, ties to the lower loss."""
        if epoch < max(epochs // 4 - 1, 0):
            return False
        return (val_acc, -val_loss) > (best["best_val"], -best.get("best_val_loss", math.inf))


#: The methods by ``[method] name``, in the order ``--help`` lists them.
METHOD_CLASSES: dict[str, type[Method]] = {"eprop": Eprop, "bptt": Bptt, "dcls": Dcls}
