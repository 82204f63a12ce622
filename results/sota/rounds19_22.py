"""Rounds 19-22 at a glance: each challenger's late-epoch validation mean minus that of the
recipe it challenged, cell by cell (held-out speakers 6 + 8, 0 + 1, 2 + 3 x seeds 0-1; round
18's statistic, table.py's late_mean). A challenger wins when the mean of its six differences
is above zero.

    python results/sota/rounds19_22.py    # writes results/sota/rounds19_22.png

Unfinished rounds are drawn with the cells they have; a round whose incumbent is not settled
yet (the round before it unfinished) is left out.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from table import (  # noqa: E402
    CV_PAIRS,
    ROUND18,
    ROUND20,
    SINGLE_ROUNDS,
    _grid,
    incumbent_after,
    late_mean,
)

from delayprop.fileio import atomic_open  # noqa: E402

PAIR_COLORS = ["tab:blue", "tab:orange", "tab:green"]  # 6 + 8, 0 + 1, 2 + 3


def challenges() -> list[tuple[str, list, list]]:
    """(label, challenger's cells, incumbent's cells) of rounds 19-22, in order."""
    idrop10 = next(c[2] for c in ROUND18 if c[0] == "idrop10")
    out = [("19: + ema 0.999", _grid("r19_stack_aug_seed", "cv_r19_stack_val"), idrop10)]
    out += [(f"20: {label}", grid, idrop10) for answer, label, grid, _ in ROUND20
            if answer != "idrop10"]
    for n, (*_, add, _, prefix) in SINGLE_ROUNDS.items():
        inc = incumbent_after(n - 1)
        if inc is not None:
            out.append((f"{n}: + {add}", _grid(f"{prefix}_aug_seed", f"cv_{prefix}_val"), inc[1]))
    return out


def main() -> None:
    rows = challenges()
    fig, ax = plt.subplots(figsize=(3 + 1.7 * len(rows), 5))
    for i, (_, cells, ref) in enumerate(rows):
        diffs = []
        for j, ((d, key), (dr, keyr)) in enumerate(zip(cells, ref)):
            a, b = late_mean(d, key), late_mean(dr, keyr)
            if a is None or b is None:
                continue
            diffs.append(100 * (a - b))
            pair = 0 if j < 2 else 1 + (j - 2) % 2  # _grid: 6+8 s0, s1, then 01/23 per seed
            seed = j if j < 2 else (j - 2) // 2
            ax.plot(i + (-0.12 if seed == 0 else 0.12), diffs[-1], "o" if seed == 0 else "s",
                    color=PAIR_COLORS[pair], ms=6, alpha=0.8)
        if diffs:
            m = float(np.mean(diffs))
            ax.hlines(m, i - 0.3, i + 0.3, color="k", lw=2)
            ax.text(i + 0.32, m, f"{m:+.2f}" + ("" if len(diffs) == 6 else f"\n({len(diffs)}/6)"),
                    va="center", fontsize=8)
    ax.axhline(0, color="0.5", lw=0.8, ls="--")
    ax.set_xticks(range(len(rows)), [r[0] for r in rows], fontsize=8, rotation=15, ha="right")
    ax.set_xlim(-0.6, len(rows) - 0.3)
    ax.set_ylabel("challenger - incumbent (points)")
    ax.set_title("Rounds 19-22: late-epoch validation, challenger minus the recipe it "
                 "challenged,\nsame cell (black: mean of the cells, the round's score "
                 "difference)", fontsize=9)
    for c, (pair, _) in zip(PAIR_COLORS, CV_PAIRS):
        ax.plot([], [], "o", color=c, label=f"held out {pair}")
    ax.plot([], [], "ko", mfc="none", label="seed 0")
    ax.plot([], [], "ks", mfc="none", label="seed 1")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    with atomic_open(ROOT / "results/sota/rounds19_22.png") as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
