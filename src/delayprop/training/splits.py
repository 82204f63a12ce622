"""The data of a run: the dataset of its [data] section, with the validation split held out
of the training file (and an optional training subset), labels checked before training."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from delayprop import safety
from delayprop.data.registry import load_data
from delayprop.data.split import train_val_split
from delayprop.errors import ConfigError, DataError


@dataclass
class Splits:
    """The data of a run: training, validation and (if the dataset has one) test split, the
    number of classes and their names, and what the log should say about them."""

    train: Any  # SpikeTensorDataset
    val: Any
    test: Any | None
    num_classes: int
    class_names: list[str]
    notes: list[str] = field(default_factory=list)  # for the log: files, dropped spikes, split


def load_splits(cfg: dict[str, Any], progress: bool = True, need_test: bool = True) -> Splits:
    """Load the dataset of ``cfg['data']`` (:mod:`delayprop.data.registry`) and hold out the
    validation split from train."""
    data = load_data(cfg["data"], need_test=need_test, progress=progress)
    splits = split_datasets(cfg, data.train, data.test)
    splits.notes[:0] = data.notes
    return splits


def split_datasets(cfg: dict[str, Any], train: Any, test: Any | None) -> Splits:
    """Validation hold-out (and optional training subset) of already loaded datasets."""
    d = cfg["data"]
    safety.check_labels(train, int(train.num_classes), "training", file_level=True)
    safety.warn_label_holes(train)
    if test is not None:  # before training, not after it
        safety.check_labels(test, int(train.num_classes), "test", file_level=True)
        safety.warn_unseen_test_labels(train, test)
    try:
        tr_idx, va_idx = train_val_split(train.y, train.speaker, d["val_fraction"],
                                         seed=d["split_seed"], by_speaker=d["by_speaker"],
                                         val_speakers=d.get("val_speakers") or None)
    except ConfigError as exc:  # name the options and the file
        opts = ("data.val_speakers" if d.get("val_speakers") else
                "data.by_speaker" if d["by_speaker"] else "data.val_fraction")
        where = getattr(train, "source", "") or "the training data"
        raise ConfigError(f"{where}: {opts}: {exc}") from None
    if len(va_idx) == 0 or len(tr_idx) == 0:
        raise DataError(f"{getattr(train, 'source', '') or 'the training data'}: the "
                        f"validation split left {len(tr_idx)} training and {len(va_idx)} "
                        f"validation samples of {len(train)}; both need some (data."
                        f"val_fraction {d['val_fraction']}, or fewer val_speakers)")
    if d["train_subset"] and d["train_subset"] < len(tr_idx):
        g = torch.Generator().manual_seed(int(d["split_seed"]))
        tr_idx = tr_idx[torch.randperm(len(tr_idx), generator=g)[: d["train_subset"]]].sort()[0]
    n_cls = int(train.num_classes)
    names = list(getattr(train, "class_names", [str(i) for i in range(n_cls)]))
    return Splits(train.subset(tr_idx), train.subset(va_idx), test, n_cls, names,
                  [_split_note(d, train, tr_idx, va_idx)])


def _split_note(d: dict[str, Any], train: Any, tr_idx: Any, va_idx: Any) -> str:
    """Which samples the validation split holds, in words (for the log)."""
    if d["by_speaker"] or d.get("val_speakers"):
        held = sorted(int(s) for s in train.speaker[va_idx].unique())
        kept = sorted(int(s) for s in train.speaker[tr_idx].unique())
        return (f"validation: speaker{'s' if len(held) > 1 else ''} "
                f"{', '.join(map(str, held))} held out ({len(va_idx)} samples); training "
                f"speakers {', '.join(map(str, kept))} ({len(tr_idx)} samples)")
    return (f"validation: {len(va_idx)} samples ({100 * d['val_fraction']:g}% of the training "
            f"file, stratified by class, split_seed {d['split_seed']}); training: {len(tr_idx)}")
