"""Round 18's figure: each candidate's validation accuracy over training, averaged over its
six cells (held-out speakers 6 + 8, 0 + 1, 2 + 3 x seeds 0-1; table.py's ROUND18), and each
cell's late-epoch mean (the round's statistic: the last eighth of the epochs) minus round 13's
recipe's in the same cell (the pairs differ by up to 10 points, the candidates by 1-3).

    python results/sota/round18_curves.py    # writes results/sota/round18_curves.png

The x axis is the fraction of training done, so the 40-epoch candidate lines up with the
80-epoch ones (all follow a cosine schedule to its end). Cells not finished are left out and
counted in the legend.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from table import ROUND18, late_mean  # noqa: E402

from delayprop.fileio import atomic_open  # noqa: E402

COLORS = ["0.3", "tab:purple", "tab:red", "tab:blue", "tab:green"]


def curve(d: str, key: str) -> np.ndarray | None:
    """The finished run's validation accuracy (%) per epoch, read through ``key``."""
    p = ROOT / d
    if not (p / "final.json").exists():
        return None
    return np.array([100 * json.loads(x)[key]
                     for x in (p / "metrics.jsonl").read_text().splitlines()])


def main() -> None:
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    grid = np.linspace(0, 1, 81)[1:]
    for c, ((_, label, cells, _), color) in enumerate(zip(ROUND18, COLORS)):
        curves = [x for x in (curve(d, key) for d, key in cells) if x is not None]
        lates = [late_mean(d, key) for d, key in cells]
        ref = [late_mean(d, key) for d, key in ROUND18[0][2]]  # round 13's recipe, same cell
        diffs = [100 * (a - b) for a, b in zip(lates, ref) if a is not None and b is not None]
        if not curves:
            continue
        resampled = np.array([np.interp(grid, np.arange(1, len(x) + 1) / len(x), x)
                              for x in curves])
        ax.plot(grid, resampled.mean(0), color=color, lw=1.5,
                label=f"{label} ({len(curves)}/6 cells)")
        if c and diffs:
            bx.plot(np.full(len(diffs), c) + np.linspace(-0.15, 0.15, len(diffs)), diffs, "o",
                    color=color, ms=4, alpha=0.7)
            bx.plot([c - 0.3, c + 0.3], [np.mean(diffs)] * 2, color=color, lw=2.5)
    ax.axvspan(7 / 8, 1, color="0.9", zorder=0)
    ax.set_xlabel("fraction of training (epochs / total)")
    ax.set_ylabel("validation accuracy (%), mean over cells")
    ax.set_ylim(66, 82)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("mean validation curve (grey band: the last eighth, the round's window)",
                 fontsize=9)
    bx.axhline(0, color=COLORS[0], lw=1)
    bx.set_xticks(range(1, len(ROUND18)), [a for a, *_ in ROUND18[1:]])
    bx.set_xlim(0.4, len(ROUND18) - 0.4)
    bx.set_ylabel("late-epoch mean validation accuracy,\nminus round 13's recipe's (points)")
    bx.grid(alpha=0.3, axis="y")
    bx.set_title("against round 13's recipe, same cell: cells (dots), score (bar)",
                 fontsize=9)
    fig.suptitle("Round 18: five recipes on three held-out speaker pairs x two seeds "
                 "(augmentation protocol)")
    fig.tight_layout()
    out = ROOT / "results/sota/round18_curves.png"
    with atomic_open(out) as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
