"""Accuracy per speaker, pooled into speakers seen in training and the others (SHD's test file
is mostly two speakers the training file lacks)."""

from __future__ import annotations

import numpy as np
import pytest

from delayprop.errors import DataError
from delayprop.train import EvalResult, seen_unseen


def test_per_speaker_and_pooling():
    targets = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    preds = np.array([0, 1, 0, 0, 2, 2, 1, 1])  # right: 1 1 0 1 0 1 0 1
    speakers = np.array([3, 3, 3, 5, 5, 7, -1, 7])
    res = EvalResult(accuracy=5 / 8, loss=0.0, preds=preds, targets=targets)
    rows = res.per_speaker(speakers, seen=[3, 9])
    assert rows == [
        {"speaker": 3, "n": 3, "accuracy": pytest.approx(2 / 3), "seen": True},
        {"speaker": 5, "n": 2, "accuracy": pytest.approx(1 / 2), "seen": False},
        {"speaker": 7, "n": 2, "accuracy": pytest.approx(1.0), "seen": False},
    ]  # the sample without a speaker (-1) is left out
    pooled = seen_unseen(rows)
    assert pooled["seen"] == {"n": 3, "accuracy": pytest.approx(2 / 3), "speakers": [3]}
    assert pooled["unseen"] == {"n": 4, "accuracy": pytest.approx(3 / 4), "speakers": [5, 7]}
    assert set(seen_unseen(res.per_speaker(speakers, seen=[3, 5, 7]))) == {"seen"}
    assert res.per_speaker(np.full(8, -1)) == [] and seen_unseen([]) == {}
    with pytest.raises(DataError, match="3 speaker ids for 8"):
        res.per_speaker(speakers[:3])
