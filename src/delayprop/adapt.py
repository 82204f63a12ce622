"""On-device adaptation to a new speaker: per-step e-prop over a stream of its samples.

A network trained by e-prop (a run directory or a released model folder with ``best.pt``)
learns from a new speaker's samples as they arrive: batch 1, one pass, one time step at a
time (:class:`delayprop.rules.OnlineEprop`, whose state does not grow with the sequence
length), one optimiser step after each sample, weights and delays updated while the stream
runs. Each new speaker starts from the trained network.

The new speaker's samples are split three ways, stratified by class
(:func:`split_new_speaker`): a **held-out** part fixed by ``split_seed`` (the same for every
``seed``, never learned from and never used to choose settings), a **validation** part and
an **adaptation** part (the stream, ``n_adapt`` samples in a seeded order), both drawn with
``seed``. Reported before and after, and every ``eval_every`` samples of the stream:

* the new speaker's held-out accuracy (what adaptation buys) and validation accuracy (what
  settings are chosen on);
* the known speakers' test accuracy (the speakers of the run's training split; what
  adaptation costs them: forgetting) and their validation accuracy (the run's validation
  samples of those speakers, never trained on; None for a speaker hold-out run).

Forgetting mitigation (:class:`AdaptSettings`):

* **rehearsal**: a buffer of ``rehearsal`` known samples (from the run's training split,
  stratified by class) kept on the device (:class:`RehearsalBuffer`: spike counts as uint8,
  or one bit per step and channel for binary data, plus one label byte); after each new
  sample, ``replay`` buffer samples run through the same per-step learner and their updates
  join the new sample's in the one optimiser step;
* **per-kind learning rates and parameter subsets**: ``lr`` (hidden weights), ``delay_lr``
  (hidden delays), ``readout_lr`` (readout weights and bias; its delays at ``readout_lr``
  times the delay ratio), and ``params``, the kinds that learn (``weights``, ``delays``,
  ``readout``).

``data`` is an SHD-format file (``extra/speaker`` needed), a folder (its test file), or
``"timing"``: the built-in timing task with every class offset moved by ``shift`` steps (the
"new speaker" talks at another pace), for tests and CI.

Python::

    from delayprop.adapt import AdaptSettings, load_adapt_data, adapt_speakers
    data = load_adapt_data("results/models/eprop_pub_seed0", "DIR/shd_test.h5.gz",
                           n_adapt=200, val_fraction=0.2, held_fraction=0.5)
    report = adapt_speakers(data, AdaptSettings(lr=3e-4, rehearsal=20))
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from delayprop.data.tensors import SpikeTensorDataset
from delayprop.errors import ConfigError, DataError, DivergenceError

#: The parameter kinds ``params`` names: hidden synaptic weights (and biases), hidden delays
#: (synaptic and axonal), and the readout (weights, bias, delays).
PARAM_KINDS = ("weights", "delays", "readout")

#: Steps per sample of the timing task's new distribution, and its sample counts.
TIMING_NEW_SAMPLES = 1000
TIMING_NEW_SEED = 7


def param_kind(name: str) -> str:
    """``weights``, ``delays`` or ``readout`` for a DelayNet parameter name."""
    if name.startswith("readout."):
        return "readout"
    if name.endswith("_delay"):
        return "delays"
    return "weights"


def _finite(name: str, v: float, *, positive: bool = False, low: float | None = None,
            high: float | None = None) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{name} must be a finite number, got {v!r}")
    if positive and v <= 0:
        raise ConfigError(f"{name} must be > 0, got {v!r}")
    if low is not None and v < low:
        raise ConfigError(f"{name} must be >= {low:g}, got {v!r}")
    if high is not None and v > high:
        raise ConfigError(f"{name} must be <= {high:g}, got {v!r}")


def _count(name: str, v: Any, low: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {v!r}")


ROUNDINGS = ("stochastic", "nearest")


class ChipFormat:
    """The number formats a chip stores the learned parameters in, applied after every update
    of ``delayprop adapt``: hidden and readout weights on an N-bit symmetric grid whose step
    is fixed per synapse group from the trained network (max|W| / (2^(N-1) - 1), the
    hardware report's quantisation), delays on a grid of 2^-F steps within [0, max_delay];
    biases and the optimiser's state stay float. ``rounding``: 'nearest', or 'stochastic'
    (up with probability equal to the fraction, seeded; an update smaller than one step
    then survives in expectation)."""

    def __init__(self, net: Any, weight_bits: int | None, delay_frac_bits: int | None,
                 rounding: str, seed: int) -> None:
        self.rounding = rounding
        self.gen = torch.Generator(device=net.readout.weight.device).manual_seed(seed)
        self.weights: list[tuple[torch.nn.Parameter, float, int]] = []
        self.delays: list[tuple[torch.nn.Parameter, float, float]] = []
        syns = [s for _, s in net.synapses()]
        if not net.readout.has_delays:
            syns.append(net.readout)
        if weight_bits is not None:
            from delayprop.export.cost import grid_levels

            levels = grid_levels(weight_bits)  # the grid of export --report's quantisation
            for syn in syns:
                peak = float(syn.weight.detach().abs().max())
                if peak > 0:
                    self.weights.append((syn.weight, peak / levels, levels))
        if delay_frac_bits is not None:
            for syn in syns:
                for d in (syn.syn_delay, syn.ax_delay):
                    if d is not None:
                        self.delays.append((d, 2.0 ** -delay_frac_bits, float(syn.max_delay)))

    def _round(self, v: torch.Tensor) -> torch.Tensor:
        if self.rounding == "nearest":
            return torch.round(v)
        u = torch.rand(v.shape, generator=self.gen, device=v.device, dtype=v.dtype)
        return torch.floor(v + u)

    @torch.no_grad()
    def apply_(self) -> None:
        """Put every stored parameter back on its grid."""
        for w, step, levels in self.weights:
            w.copy_(self._round(w / step).clamp_(-levels, levels) * step)
        for d, step, top in self.delays:
            d.copy_((self._round(d / step) * step).clamp_(0.0, top))

    def describe(self) -> dict[str, Any]:
        return {"weight_steps": [step for _, step, _ in self.weights],
                "delay_step": self.delays[0][1] if self.delays else None,
                "rounding": self.rounding}


@dataclass
class AdaptSettings:
    """How the stream is learned. ``delay_lr`` None: ``lr`` times the run's delay_lr / lr;
    ``readout_lr`` None: ``lr``. ``rehearsal``: known samples kept (0: none); ``replay``:
    buffer samples learned after each new sample. ``eval_every``: samples between two points
    of the curve (0: before and after only). ``seed``: the order of the stream, the
    validation / adaptation draw and the buffer."""

    lr: float = 3e-4
    delay_lr: float | None = None
    readout_lr: float | None = None
    params: tuple[str, ...] = PARAM_KINDS
    rehearsal: int = 0
    replay: int = 1
    eval_every: int = 25
    seed: int = 0
    weight_bits: int | None = None
    delay_frac_bits: int | None = None
    rounding: str = "stochastic"

    def check(self) -> None:
        _finite("lr", self.lr, positive=True)
        if self.delay_lr is not None:
            _finite("delay_lr", self.delay_lr, low=0.0)
        if self.readout_lr is not None:
            _finite("readout_lr", self.readout_lr, low=0.0)
        params = tuple(self.params)
        bad = [p for p in params if p not in PARAM_KINDS]
        if bad or not params:
            raise ConfigError(f"params must be a non-empty subset of {', '.join(PARAM_KINDS)}, "
                              f"got {','.join(params) or '(none)'}")
        _count("rehearsal", self.rehearsal, 0)
        _count("replay", self.replay, 1)
        _count("eval_every", self.eval_every, 0)
        _count("seed", self.seed, 0)
        if self.weight_bits is not None:
            _count("weight_bits", self.weight_bits, 2)
            if self.weight_bits > 16:
                raise ConfigError(f"weight_bits must be from 2 to 16, got {self.weight_bits}")
        if self.delay_frac_bits is not None:
            _count("delay_frac_bits", self.delay_frac_bits, 0)
            if self.delay_frac_bits > 16:
                raise ConfigError(f"delay_frac_bits must be from 0 to 16, got "
                                  f"{self.delay_frac_bits}")
        if self.rounding not in ROUNDINGS:
            raise ConfigError(f"rounding must be one of {', '.join(ROUNDINGS)}, got "
                              f"{self.rounding!r}")


# --------------------------------------------------------------------------------------------
# Splits and the rehearsal buffer


def _by_class(y: np.ndarray, rng: np.random.Generator) -> dict[int, list[int]]:
    return {int(c): list(rng.permutation(np.flatnonzero(y == c))) for c in np.unique(y)}


def _round_robin(groups: dict[int, list[int]], n: int) -> list[int]:
    """Up to n indices taken one per class in turn: as balanced as the classes allow."""
    out: list[int] = []
    pools = [list(v) for _, v in sorted(groups.items())]
    while len(out) < n and any(pools):
        for p in pools:
            if p and len(out) < n:
                out.append(p.pop(0))
    return out


def split_new_speaker(y: Any, n_adapt: int, val_fraction: float, held_fraction: float,
                      seed: int, split_seed: int = 0) -> tuple[np.ndarray, np.ndarray,
                                                                np.ndarray]:
    """Indices (adapt, val, held) into labels ``y`` of one speaker's samples.

    held: ``round(held_fraction * n_c)`` of each class, drawn with ``split_seed`` alone (the
    same for every ``seed``); val: ``round(val_fraction * n_c)`` of each class, from the
    rest, drawn with ``seed``; adapt: ``n_adapt`` of what is left, one class after the other
    in turn, in an order shuffled with ``seed`` (the stream). ConfigError if fewer than ``n_adapt``
    are left, or a part would be empty."""
    y = np.asarray(y).reshape(-1)
    _count("n_adapt", n_adapt, 1)
    _finite("held_fraction", held_fraction, low=0.0, high=1.0)
    _finite("val_fraction", val_fraction, low=0.0, high=1.0)
    if held_fraction <= 0 or val_fraction <= 0 or held_fraction + val_fraction >= 1:
        raise ConfigError(f"held_fraction ({held_fraction:g}) and val_fraction "
                          f"({val_fraction:g}) must be > 0 and sum to less than 1")
    held: list[int] = []
    rest: list[int] = []
    for _, idx in sorted(_by_class(y, np.random.default_rng(split_seed)).items()):
        k = int(round(held_fraction * len(idx)))
        held += idx[:k]
        rest += idx[k:]
    rng = np.random.default_rng([seed, 1])
    rest_a = np.asarray(rest, dtype=np.int64)
    val: list[int] = []
    left: dict[int, list[int]] = {}
    for c, idx in sorted(_by_class(y[rest_a], rng).items()):
        k = int(round(val_fraction * int((y == c).sum())))
        val += [int(rest_a[i]) for i in idx[:k]]
        left[c] = [int(rest_a[i]) for i in idx[k:]]
    n_left = sum(len(v) for v in left.values())
    if n_left < n_adapt:
        raise ConfigError(
            f"{len(y)} samples leave {n_left} for adaptation after the held-out "
            f"({held_fraction:g}) and validation ({val_fraction:g}) parts; n_adapt is "
            f"{n_adapt}: lower it or the fractions")
    if not held or not val:
        raise ConfigError(f"{len(y)} samples are too few for a held-out and a validation part")
    adapt = np.asarray(_round_robin(left, n_adapt), dtype=np.int64)
    adapt = adapt[rng.permutation(len(adapt))]
    return adapt, np.sort(np.asarray(val, dtype=np.int64)), np.sort(np.asarray(held,
                                                                                 dtype=np.int64))


class RehearsalBuffer:
    """``k`` known samples kept on the device for rehearsal, stratified by class (seeded).

    Stored as they would be on the device: the spike counts of each sample as uint8
    (T x C bytes), or, when every count is 0 or 1, one bit per step and channel
    (ceil(T x C / 8) bytes); and one label byte per sample (uint8 while there are at most 256
    classes, else int16). :attr:`nbytes` is the sum of the stored arrays' sizes."""

    def __init__(self, ds: SpikeTensorDataset, k: int, seed: int) -> None:
        _count("rehearsal", k, 1)
        if len(ds) < k:
            raise ConfigError(f"a rehearsal buffer of {k} samples needs {k} known training "
                              f"samples; the run's training split has {len(ds)}")
        idx = np.asarray(_round_robin(_by_class(ds.y.numpy(), np.random.default_rng([seed, 2])),
                                      k), dtype=np.int64)
        x = ds.x[torch.from_numpy(idx)].numpy()
        self.k, self.steps, self.channels = k, int(x.shape[1]), int(x.shape[2])
        self.binary = bool(x.max() <= 1)
        if self.binary:
            self.spikes = np.packbits(x.reshape(k, -1).astype(bool), axis=1)
        else:
            self.spikes = np.ascontiguousarray(x.astype(np.uint8))
        label_dtype = np.uint8 if int(ds.num_classes) <= 256 else np.int16
        self.labels = ds.y.numpy()[idx].astype(label_dtype)
        self.indices = idx
        self.next = 0

    @property
    def nbytes(self) -> int:
        return int(self.spikes.nbytes + self.labels.nbytes)

    def __len__(self) -> int:
        return self.k

    def sample(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample i as the learner takes it: x float32 (1, T, C), y int64 (1,)."""
        if self.binary:
            bits = np.unpackbits(self.spikes[i], count=self.steps * self.channels)
            x = torch.from_numpy(bits.reshape(self.steps, self.channels).astype(np.float32))
        else:
            x = torch.from_numpy(self.spikes[i].astype(np.float32))
        return x.unsqueeze(0), torch.tensor([int(self.labels[i])], dtype=torch.long)

    def take(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next sample, cycling through the buffer in its (class-interleaved) order."""
        i = self.next
        self.next = (self.next + 1) % self.k
        return self.sample(i)

    def describe(self) -> dict[str, Any]:
        per = ("1 bit per step and channel" if self.binary
               else "uint8 spike counts, 1 byte per step and channel")
        return {"samples": self.k, "steps": self.steps, "channels": self.channels,
                "bytes": self.nbytes, "spike_bytes": int(self.spikes.nbytes),
                "label_bytes": int(self.labels.nbytes), "stored_as": per}


# --------------------------------------------------------------------------------------------
# Data


@dataclass
class NewSpeaker:
    """One new speaker's samples, split (adapt, val, held)."""

    speaker: int
    name: str
    adapt: SpikeTensorDataset
    val: SpikeTensorDataset
    held: SpikeTensorDataset


@dataclass
class AdaptData:
    """Everything one adaptation needs: the trained model (checkpoint and configuration),
    the new speakers, the known speakers' test and validation samples, the known training
    samples the rehearsal buffer draws from, and notes for the log."""

    run: str
    ckpt: dict
    source: str
    speakers: list[NewSpeaker]
    known_test: SpikeTensorDataset
    known_val: SpikeTensorDataset | None
    known_train: SpikeTensorDataset
    known_speakers: list[int]
    split: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _checkpoint_of(run: str | Path) -> tuple[Path, dict]:
    from delayprop.training.checkpoint import load_checkpoint
    from delayprop.training.rundir import BEST

    p = Path(run)
    if p.is_dir():
        if not (p / BEST).is_file():
            raise ConfigError(f"{p}: no {BEST} here (a run directory or released model folder "
                              "holds one)")
        p = p / BEST
    elif not p.exists():
        raise ConfigError(f"{p}: no such run directory or checkpoint")
    ckpt = load_checkpoint(p)
    if "config" not in ckpt or "model" not in ckpt:
        raise ConfigError(f"{p}: not a delayprop training checkpoint")
    name = ckpt["config"]["method"]["name"]
    if name != "eprop":
        raise ConfigError(f"{p}: trained by {name}; per-step adaptation needs an e-prop network")
    return p, ckpt


def _run_splits(cfg: dict, data_dir: str | None, fallback_dirs: list[str], need_test: bool):
    """The run's own splits: its [data] with ``data_dir`` (or each fallback in turn)."""
    from delayprop.training.splits import load_splits

    tried = []
    dirs = [data_dir] if data_dir else fallback_dirs + [cfg["data"].get("data_dir") or ""]
    last: Exception | None = None
    for d in dirs:
        c = copy.deepcopy(cfg)
        if d:
            c["data"]["data_dir"] = d
        c["data"]["download"] = False
        try:
            return load_splits(c, progress=False, need_test=need_test)
        except (DataError, ConfigError) as exc:
            tried.append(d or "(default data directory)")
            last = exc
    raise ConfigError(f"the run's training data (for the known speakers and the rehearsal "
                      f"buffer) is not in {', '.join(tried)}; point --data-dir at it ({last})")


def _load_new_file(path: Path, d: dict) -> SpikeTensorDataset:
    from delayprop.data.cache import load_file
    from delayprop.data.files import split_files

    if path.is_dir():
        try:
            _, test = split_files(path)
        except DataError:
            test = None
        if test is None:
            raise ConfigError(f"{path}: no SHD-format test file (*test.h5[.gz|.zip]) here; "
                              "give the file itself")
        path = test
    if not path.is_file():
        raise ConfigError(f"{path}: no such file or folder")
    return load_file(path, dt=d["dt"], max_time=d["max_time"], channels=d["channels"],
                     binary=bool(d["binary"]), progress=False)


def load_adapt_data(run: str | Path, data: str | Path, *, speakers: list[int] | None = None,
                    n_adapt: int = 200, val_fraction: float = 0.2, held_fraction: float = 0.5,
                    split_seed: int = 0, seed: int = 0, shift: int = 1,
                    data_dir: str | None = None) -> AdaptData:
    """Load the run, the new speakers' samples (split) and the known speakers' samples.

    ``data``: an SHD-format file with speaker ids, a folder (its test file), or ``"timing"``
    (the run must be a timing-task run; the new samples are the task with every offset moved
    by ``shift`` steps). ``speakers``: the new speakers (default: every speaker of ``data``
    absent from the run's training split with enough samples). ``data_dir``: where the
    run's training data is (default: ``data``'s folder, else the run's own data_dir)."""
    from delayprop.data.registry import TIMING_OFFSETS, kind_of
    from delayprop.data.synthetic import timing_task

    path, ckpt = _checkpoint_of(run)
    cfg = ckpt["config"]
    d = cfg["data"]
    notes: list[str] = []
    timing = str(data) == "timing"
    if timing:
        if kind_of(d["dataset"]) != "timing":
            raise ConfigError(f"{run}: trained on {d['dataset']!r}; --data timing needs a "
                              "timing-task run")
        _count("shift", shift, 1)
        splits = _run_splits(cfg, None, [], need_test=True)
        steps = splits.train.num_steps
        offsets = tuple(o + (shift if o > 0 else -shift) for o in TIMING_OFFSETS)
        try:
            new = timing_task(TIMING_NEW_SAMPLES, offsets, steps=steps,
                              noise_channels=splits.train.channels - 2, seed=TIMING_NEW_SEED)
        except ConfigError as exc:
            raise ConfigError(f"--shift {shift}: {exc}") from None
        new.speaker = torch.zeros(len(new), dtype=torch.long)
        source = f"timing task, offsets B-A {', '.join(f'{o:+d}' for o in offsets)} steps"
        known_spk: list[int] = []
        known_test = splits.test
        known_val = splits.val
        names = {0: f"offsets {offsets}"}
        wanted = [0] if not speakers else list(speakers)
        if wanted != [0]:
            raise ConfigError("--data timing has one new speaker, 0")
    else:
        p = Path(data).expanduser()
        if not p.exists():
            raise ConfigError(f"{p}: no such file or folder")
        folder = p if p.is_dir() else p.parent
        new = _load_new_file(p, d)
        source = new.source
        if bool((new.speaker < 0).all()):
            raise ConfigError(f"{source}: no speaker ids (extra/speaker); nothing says which "
                              "samples are the new speaker's")
        splits = _run_splits(cfg, data_dir, [str(folder)], need_test=False)
        if bool((splits.train.speaker < 0).all()):
            raise ConfigError(f"{run}: its training data has no speaker ids; the known speakers "
                              "are unknown")
        if new.channels != splits.train.channels:
            raise ConfigError(f"{source}: {new.channels} channels, the run's data "
                              f"{splits.train.channels}")
        known_spk = sorted(int(s) for s in splits.train.speaker.unique())
        spk = new.speaker.numpy()
        in_file = sorted(int(s) for s in np.unique(spk[spk >= 0]))
        unheard = [s for s in in_file if s not in known_spk]
        kmask = np.isin(spk, known_spk)
        if not kmask.any():
            raise ConfigError(f"{source}: no sample of the run's training speakers "
                              f"({', '.join(map(str, known_spk))}); the forgetting test needs "
                              "some")
        known_test = new.subset(torch.from_numpy(np.flatnonzero(kmask)))
        vspk = splits.val.speaker.numpy()
        vmask = np.isin(vspk, known_spk)
        known_val = (splits.val.subset(torch.from_numpy(np.flatnonzero(vmask)))
                     if vmask.any() else None)
        if known_val is None:
            notes.append("the run's validation split holds no training speaker (a speaker "
                         "hold-out run): no known-speaker validation accuracy")
        names = {s: f"speaker {s}" for s in in_file}
        if speakers:
            for s in speakers:
                if s not in in_file:
                    raise ConfigError(f"speaker {s} is not in {source} (speakers: "
                                      f"{', '.join(map(str, in_file))})")
                if s in known_spk:
                    raise ConfigError(f"speaker {s} is in the run's training split; choose one "
                                      f"of {', '.join(map(str, unheard)) or '(none)'}")
            wanted = list(speakers)
        else:
            wanted = unheard
            if not wanted:
                raise ConfigError(f"every speaker of {source} is in the run's training split: "
                                  "nothing new to adapt to")
    out: list[NewSpeaker] = []
    spk = new.speaker.numpy()
    for s in wanted:
        idx = np.flatnonzero(spk == s)
        try:
            a, v, h = split_new_speaker(new.y.numpy()[idx], n_adapt, val_fraction,
                                        held_fraction, seed, split_seed)
        except ConfigError as exc:
            if speakers or timing:
                raise ConfigError(f"{names[s]}: {exc}") from None
            notes.append(f"{names[s]} left out: {exc}")
            continue
        a, v, h = (new.subset(torch.from_numpy(idx[ii])) for ii in (a, v, h))
        out.append(NewSpeaker(int(s), names[s], a, v, h))
    if not out:
        raise ConfigError(f"no new speaker of {source} has enough samples: "
                          + "; ".join(notes))
    split = {"n_adapt": n_adapt, "val_fraction": val_fraction, "held_fraction": held_fraction,
             "split_seed": split_seed, "seed": seed}
    if timing:
        split["shift"] = shift
    return AdaptData(str(run), ckpt, source, out, known_test, known_val, splits.train,
                     known_spk, split, notes)


# --------------------------------------------------------------------------------------------
# Learning


def optimizer_for(net: torch.nn.Module, s: AdaptSettings, delay_ratio: float
                  ) -> tuple[torch.optim.Optimizer, dict[str, float]]:
    """Adam over the kinds in ``s.params``, one group per kind with its learning rate (the
    readout's delays at readout_lr x delay_ratio). Returns it and the rates by kind."""
    rates = {"weights": s.lr,
             "delays": s.delay_lr if s.delay_lr is not None else s.lr * delay_ratio}
    ro = s.readout_lr if s.readout_lr is not None else s.lr
    rates["readout"] = ro
    rates["readout_delays"] = ro * delay_ratio
    groups: dict[str, list[torch.nn.Parameter]] = {}
    for n, p in net.named_parameters():
        kind = param_kind(n)
        if kind not in s.params:
            continue
        key = "readout_delays" if kind == "readout" and n.endswith("_delay") else kind
        groups.setdefault(key, []).append(p)
    param_groups = [{"params": ps, "lr": rates[k]} for k, ps in groups.items() if rates[k] > 0]
    if not param_groups:
        raise ConfigError("no parameter learns: every chosen kind has learning rate 0")
    return torch.optim.Adam(param_groups), {k: rates[k] for k in groups}


def learn_sequence(learner: Any, x: torch.Tensor, y: torch.Tensor, sum_loss: bool,
                   timer: list[float]) -> dict[str, torch.Tensor]:
    """One sample (1, T, C), one step at a time; the updates by name. ``timer`` collects
    [seconds in step(), steps, seconds in end()]."""
    learner.begin(x.shape[0])
    t0 = time.perf_counter()
    for t in range(x.shape[1]):
        learner.step(x[:, t], y if sum_loss else None)
    t1 = time.perf_counter()
    grads = learner.end(y, set_grad=False)
    timer[0] += t1 - t0
    timer[1] += x.shape[1]
    timer[2] += time.perf_counter() - t1
    return grads


def _accuracy(model: Any, ds: SpikeTensorDataset | None) -> float | None:
    from delayprop.training.evaluation import evaluate

    return None if ds is None else float(evaluate(model, ds).accuracy)


def adapt_one(model: Any, sp: NewSpeaker, data: AdaptData, s: AdaptSettings,
              progress: bool = False, log: Callable[[str], None] | None = None
              ) -> dict[str, Any]:
    """Learn ``sp.adapt`` in one pass with ``model`` (changed in place). Returns the record of
    one speaker: accuracies before / after, the curve, timings and memory."""
    from delayprop.progress import progress_bar
    from delayprop.rules import OnlineEprop, minimum_state

    s.check()
    net = model.net
    t_cfg = data.ckpt["config"]["train"]
    delay_ratio = float(t_cfg["delay_lr"]) / float(t_cfg["lr"])
    opt, rates = optimizer_for(net, s, delay_ratio)
    chip = None
    if s.weight_bits is not None or s.delay_frac_bits is not None:
        # the network as the chip stores it, before anything is measured
        chip = ChipFormat(net, s.weight_bits, s.delay_frac_bits, "nearest", s.seed)
        chip.apply_()
        chip.rounding = s.rounding
    learner = OnlineEprop(net, model.eprop_cfg)
    sum_loss = model.eprop_cfg.loss == "sum"
    buffer = (RehearsalBuffer(data.known_train, s.rehearsal, s.seed)
              if s.rehearsal else None)

    def point(k: int) -> dict[str, Any]:
        return {"samples": k, "new_held": _accuracy(model, sp.held),
                "known_test": _accuracy(model, data.known_test)}

    before = {"new_val": _accuracy(model, sp.val), "known_val": _accuracy(model, data.known_val)}
    curve = [point(0)]
    before.update(new_held=curve[0]["new_held"], known_test=curve[0]["known_test"])
    timer = [0.0, 0, 0.0]
    opt_s = 0.0
    state_numbers = kernel_bytes = 0
    t_start = time.perf_counter()
    bar = progress_bar(total=len(sp.adapt), desc=f"adapting ({sp.name})", enabled=progress,
                       unit="sample")
    n = len(sp.adapt)
    for k in range(n):
        x = sp.adapt.x[k:k + 1].to(torch.float32)
        y = sp.adapt.y[k:k + 1]
        grads = learn_sequence(learner, x, y, sum_loss, timer)
        if k == 0:
            learner.begin(1)  # the state the learner holds between steps (not the updates)
            state_numbers = learner.state_numel()
            kernel_bytes = learner.kernel_nbytes()
            learner.state = None
        if buffer is not None:
            for _ in range(s.replay):
                xb, yb = buffer.take()
                for name, g in learn_sequence(learner, xb, yb, sum_loss, timer).items():
                    grads[name] = grads[name] + g
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        for name, p in net.named_parameters():
            if name in grads:
                p.grad = grads[name]
        opt.step()
        net.clamp_delays_()
        if chip is not None:
            chip.apply_()
        opt_s += time.perf_counter() - t0
        if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
            raise DivergenceError(f"{sp.name}: a parameter became NaN or infinite after sample "
                                  f"{k + 1} (lower the learning rates)")
        bar.update(1)
        if s.eval_every and (k + 1) % s.eval_every == 0 and k + 1 < n:
            curve.append(point(k + 1))
            bar.set_postfix(new=f"{100 * curve[-1]['new_held']:.1f}%",
                            known=f"{100 * curve[-1]['known_test']:.1f}%")
    bar.close()
    learn_s = time.perf_counter() - t_start
    curve.append(point(n))
    after = {"new_val": _accuracy(model, sp.val), "known_val": _accuracy(model, data.known_val),
             "new_held": curve[-1]["new_held"], "known_test": curve[-1]["known_test"]}
    dtype_bytes = next(net.parameters()).element_size()
    rec = {
        "speaker": sp.speaker, "name": sp.name,
        "sizes": {"adapt": len(sp.adapt), "val": len(sp.val), "held": len(sp.held),
                  "known_test": len(data.known_test),
                  "known_val": len(data.known_val) if data.known_val is not None else 0},
        "before": before, "after": after,
        "gain": {k: after[k] - before[k] for k in after if before[k] is not None},
        "curve": curve, "learning_rates": rates,
        "rehearsal": buffer.describe() if buffer is not None else None,
        "chip_format": chip.describe() if chip is not None else None,
        "learner_state_bytes": state_numbers * dtype_bytes,
        # derived from the parameters at each sample's start, shared by a batch of streams
        "learner_kernel_bytes": kernel_bytes,
        "minimum_state_bytes": sum(minimum_state(net, model.eprop_cfg).values()) * dtype_bytes,
        "steps_learned": timer[1],
        "ms_per_step": 1e3 * timer[0] / max(timer[1], 1),
        "ms_per_update": 1e3 * (timer[2] + opt_s) / n,
        "stream_s": learn_s,
    }
    if log:
        log(f"{sp.name}: held out {_pct(before['new_held'])} -> {_pct(after['new_held'])}, "
            f"known speakers {_pct(before['known_test'])} -> {_pct(after['known_test'])}; "
            f"{rec['ms_per_step']:.2f} ms per step")
    return rec


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def adapt_speakers(data: AdaptData, s: AdaptSettings, progress: bool = False,
                   log: Callable[[str], None] | None = None, device: str = "cpu",
                   save_dir: str | Path | None = None) -> dict[str, Any]:
    """Adapt a fresh copy of the run's network to each new speaker in turn. Returns the report:
    the settings, one record per speaker and the pooled numbers (new speakers weighted by
    held-out samples; known speakers' accuracy averaged over the adaptations). With
    ``save_dir``, each adapted network is kept as ``save_dir/speaker<N>/best.pt``
    (``save_dir/shifted/best.pt`` for the timing task; :func:`save_adapted`)."""
    from delayprop.training.checkpoint import model_from_checkpoint

    s.check()
    t0 = time.perf_counter()
    rows = []
    for sp in data.speakers:
        torch.manual_seed(s.seed)
        model = model_from_checkpoint(data.ckpt, device)
        rows.append(adapt_one(model, sp, data, s, progress, log))
        if save_dir is not None:
            folder = f"speaker{sp.speaker}" if sp.name.startswith("speaker") else "shifted"
            path = save_adapted(model, data, rows[-1], s, Path(save_dir) / folder)
            rows[-1]["saved"] = str(path)
    report = {
        "run": data.run, "data": data.source, "split": data.split,
        "settings": {**asdict(s), "params": list(s.params)},
        "known_speakers": data.known_speakers, "speakers": rows,
        "pooled": pooled(rows), "notes": data.notes,
        "wall_s": time.perf_counter() - t0,
    }
    return report


def save_adapted(model: Any, data: AdaptData, row: dict[str, Any], s: AdaptSettings,
                 folder: Path) -> Path:
    """Keep an adapted network as ``folder/best.pt``: the run's checkpoint with the adapted
    parameters and an ``adapted`` entry (run, data, speaker, settings, accuracies before and
    after), so that ``delayprop eval``, ``export`` and ``adapt`` take the folder as a run.
    Written atomically, with a checksum."""
    from delayprop.fileio import atomic_torch_save

    ckpt = dict(data.ckpt)
    ckpt["model"] = {k: v.detach().cpu().clone() for k, v in model.net.state_dict().items()}
    ckpt["adapted"] = {"from": data.run, "data": data.source, "speaker": row["speaker"],
                       "name": row["name"], "settings": {**asdict(s), "params": list(s.params)},
                       "samples": row["sizes"]["adapt"], "before": row["before"],
                       "after": row["after"]}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "best.pt"
    atomic_torch_save(ckpt, path)
    return path


def pooled(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """New-speaker accuracies weighted by samples; known-speaker ones averaged over rows."""
    out: dict[str, Any] = {}
    for when in ("before", "after"):
        o = {}
        for key, size in (("new_held", "held"), ("new_val", "val")):
            n = sum(r["sizes"][size] for r in rows)
            o[key] = sum(r[when][key] * r["sizes"][size] for r in rows) / n
        for key in ("known_test", "known_val"):
            vals = [r[when][key] for r in rows if r[when][key] is not None]
            o[key] = sum(vals) / len(vals) if vals else None
        out[when] = o
    out["gain"] = {k: out["after"][k] - out["before"][k] for k in out["after"]
                   if out["after"][k] is not None}
    return out


def plot_curves(report: dict[str, Any], path: str | Path) -> Path:
    """Accuracy on the new speaker's held-out part and on the known speakers' test samples as
    the stream goes on, one colour per new speaker."""
    from delayprop.plots import _plt, _save

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, r in enumerate(report["speakers"]):
        c = colours[i % len(colours)]
        k = [p["samples"] for p in r["curve"]]
        ax.plot(k, [100 * p["new_held"] for p in r["curve"]], "-o", ms=3, color=c,
                label=f"{r['name']}: new speaker (held out)")
        ax.plot(k, [100 * p["known_test"] for p in r["curve"]], "--s", ms=3, color=c,
                label=f"{r['name']}: known speakers (test)")
    s = report["settings"]
    extra = f", rehearsal {s['rehearsal']} x{s['replay']}" if s["rehearsal"] else ""
    ax.set_title(f"per-step e-prop, lr {s['lr']:g}, params {','.join(s['params'])}{extra}",
                 fontsize=9)
    ax.set_xlabel("new speaker's samples learned (one pass, batch 1)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    path = Path(path)
    _save(fig, path)
    return path
