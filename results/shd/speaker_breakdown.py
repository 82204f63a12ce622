"""Test accuracy of the finished must-show runs split by speaker group: speakers 4 and 5 appear
only in the test file (81% of it); the others also appear in training (and in the validation
hold-out). Uses each run's saved test predictions (test_predictions.npy) or, for runs finished
before that file existed, recomputes them from best.pt (the model final.json's test_acc was
measured on; the script checks it gets the same accuracy). Selects nothing.

    python results/shd/speaker_breakdown.py > results/shd/speaker_breakdown.md
"""

import json
from pathlib import Path

import numpy as np
import torch

from delayprop.data import load_dataset
from delayprop.train import evaluate, load_checkpoint, model_from_checkpoint

torch.set_num_threads(1)
root = Path(__file__).resolve().parent
data = "/work/shared/data/shd-repro"
test = load_dataset("shd", "test", data_dir=data, dt=0.01, max_time=1.0, progress=False)
speaker = test.speaker.numpy()
unseen = np.isin(speaker, [4, 5])
print("| run | test acc | seen speakers (n=%d) | unseen speakers 4, 5 (n=%d) | source |"
      % ((~unseen).sum(), unseen.sum()))
print("|---|---|---|---|---|")
for final in sorted(root.glob("shd_*/seed*/final.json")):
    run = final.parent
    f = json.loads(final.read_text())
    if (run / "test_predictions.npy").exists():
        targets, preds = np.load(run / "test_predictions.npy")
        src = "test_predictions.npy"
    else:
        res = evaluate(model_from_checkpoint(load_checkpoint(run / "best.pt")), test)
        targets, preds = res.targets, res.preds
        src = "best.pt re-evaluated"
    ok = preds == targets
    assert abs(ok.mean() - f["test_acc"]) < 1e-9, (run, ok.mean(), f["test_acc"])
    print(f"| {run.parent.name}/{run.name} | {ok.mean():.4f} | {ok[~unseen].mean():.4f} | "
          f"{ok[unseen].mean():.4f} | {src} |")
