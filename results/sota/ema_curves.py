"""Round 15's figure: validation accuracy (held-out speakers 6 + 8) of the raw parameters and of
their moving averages (train.ema) over the same training runs, seeds 0-1.

    python results/sota/ema_curves.py      # writes results/sota/ema_curves.png

The raw curves are the recipe after round 13's own runs: with averaging the training is the
same (tests/test_averaging.py), so each run's val_acc_raw repeats r13_rd_sum80_drop10's val_acc.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from delayprop.fileio import atomic_open  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / "results/sota/runs"


def rows(name: str) -> list[dict]:
    path = RUNS / name / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def main() -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, seed in zip(axes, (0, 1)):
        raw = rows(f"r13_rd_sum80_drop10_aug_seed{seed}")
        ax.plot([r["epoch"] for r in raw], [100 * r["val_acc"] for r in raw], color="0.5",
                lw=1, label="raw parameters (round 13's run)")
        for decay, color in (("995", "tab:blue"), ("999", "tab:red")):
            ema = rows(f"r15_rd_drop10_ema{decay}_aug_seed{seed}")
            if not ema:
                continue
            ax.plot([r["epoch"] for r in ema], [100 * r["val_acc"] for r in ema], color=color,
                    lw=1.5, label=f"moving average, ema 0.{decay}")
            best = max(ema, key=lambda r: r["val_acc"])
            ax.plot(best["epoch"], 100 * best["val_acc"], "o", color=color, ms=5)
        best = max(raw, key=lambda r: r["val_acc"])
        ax.plot(best["epoch"], 100 * best["val_acc"], "o", color="0.5", ms=5)
        ax.set_title(f"seed {seed}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation accuracy (%), speakers 6 + 8")
    axes[0].set_ylim(70, 84)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Round 15: the same training, validated on the raw and on the averaged "
                 "parameters (dots: the selected epoch)")
    fig.tight_layout()
    out = ROOT / "results/sota/ema_curves.png"
    with atomic_open(out) as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    print(out)


if __name__ == "__main__":
    main()
