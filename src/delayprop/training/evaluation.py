"""Evaluation: accuracy, loss, per class and per speaker, of a method's network on a dataset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from delayprop.data.batching import batches
from delayprop.errors import DataError
from delayprop.training.methods import Method


@dataclass
class EvalResult:
    """A model's predictions on a dataset: accuracy, mean loss, predicted and true labels."""

    accuracy: float
    loss: float
    preds: np.ndarray
    targets: np.ndarray

    def per_class(self, num_classes: int) -> np.ndarray:
        """Accuracy per class (NaN for classes without samples), (num_classes,)."""
        out = np.full(num_classes, np.nan)
        for c in range(num_classes):
            m = self.targets == c
            if m.any():
                out[c] = float((self.preds[m] == c).mean())
        return out

    def confusion(self, num_classes: int) -> np.ndarray:
        """Counts [true, predicted], (num_classes, num_classes)."""
        cm = np.zeros((num_classes, num_classes), dtype=np.int64)
        np.add.at(cm, (self.targets, self.preds), 1)
        return cm

    def per_speaker(self, speakers: Any, seen: Any = ()) -> list[dict[str, Any]]:
        """Accuracy per speaker: ``speakers`` (N,) the id of each evaluated sample (-1: none,
        left out), ``seen`` the ids the model was trained on. One dict per speaker, in id
        order: speaker, n, accuracy, seen."""
        spk = np.asarray(speakers, dtype=np.int64).reshape(-1)
        if spk.shape != self.targets.shape:
            raise DataError(f"{spk.size} speaker ids for {self.targets.size} evaluated samples")
        seen = {int(s) for s in np.asarray(seen).reshape(-1)}
        right = self.preds == self.targets
        return [{"speaker": int(s), "n": int((spk == s).sum()),
                 "accuracy": float(right[spk == s].mean()), "seen": int(s) in seen}
                for s in np.unique(spk[spk >= 0])]


def seen_unseen(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Pool :meth:`EvalResult.per_speaker` rows into the speakers seen in training and the
    others: {"seen"|"unseen": {"n", "accuracy", "speakers"}}, a group only if it has samples."""
    out = {}
    for key, want in (("seen", True), ("unseen", False)):
        group = [r for r in rows if r["seen"] == want]
        n = sum(r["n"] for r in group)
        if n:
            out[key] = {"n": n, "accuracy": sum(r["accuracy"] * r["n"] for r in group) / n,
                        "speakers": [r["speaker"] for r in group]}
    return out


def evaluate(model: Method, ds: Any, batch_size: int = 512, device: str = "cpu") -> EvalResult:
    """Accuracy and mean loss of ``model`` on dataset ``ds`` (evaluation mode, no autograd)."""
    if ds is None:
        raise DataError("no data to evaluate on (this dataset has no test file)")
    model.eval_mode()
    preds, targets, total, n = [], [], 0.0, 0
    with torch.no_grad():
        for xb, yb in batches(ds, batch_size=batch_size, shuffle=False, device=device):
            y = model.output(xb)
            preds.append(model.predict(y).cpu())
            targets.append(yb.cpu())
            total += model.batch_loss(y, yb) * len(yb)
            n += len(yb)
    model.train_mode()
    if n == 0:
        raise DataError("cannot evaluate on an empty dataset")
    p, t = torch.cat(preds).numpy(), torch.cat(targets).numpy()
    return EvalResult(float((p == t).mean()), total / n, p, t)
