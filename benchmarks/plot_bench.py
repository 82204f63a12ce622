"""Figure of a benchmark report: training throughput and peak memory against T, e-prop and
BPTT, per network.

    python benchmarks/plot_bench.py results/bench/cpu.json bench.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from delayprop.fileio import atomic_open  # noqa: E402


def main(src: str, dst: str) -> None:
    report = json.loads(Path(src).read_text())
    nets = sorted({c["net"] for c in report["configs"]}, key=["paper", "dcls"].index)
    fig, axes = plt.subplots(2, len(nets), figsize=(5 * len(nets), 7), squeeze=False)
    for j, net in enumerate(nets):
        rows = sorted((c for c in report["configs"] if c["net"] == net), key=lambda c: c["T"])
        T = [c["T"] for c in rows]
        ax = axes[0, j]
        for key, label in (("eprop_train_samples_per_s", "e-prop train"),
                           ("bptt_train_samples_per_s", "BPTT train"),
                           ("infer_samples_per_s", "inference")):
            ax.plot(T, [c[key] for c in rows], "o-", label=label)
        for c in rows:
            ax.annotate(f"{c['speedup_eprop_over_bptt']:.2f}x",
                        (c["T"], c["eprop_train_samples_per_s"]),
                        textcoords="offset points", xytext=(4, 6), fontsize=8)
        ax.set(xscale="log", yscale="log", xlabel="T (steps)", ylabel="samples / s",
               title=f"{net} net: throughput (batch {rows[0]['batch']})")
        ax.legend(fontsize=8)
        ax = axes[1, j]
        if all("eprop_peak_mem_bytes" in c for c in rows):
            ax.plot(T, [c["eprop_peak_mem_bytes"] / 2**20 for c in rows], "o-",
                    label="e-prop (as training calls it)")
            ax.plot(T, [c["bptt_peak_mem_bytes"] / 2**20 for c in rows], "o-", label="BPTT")
            if all("eprop_outputs_kept_peak_mem_bytes" in c for c in rows):
                ax.plot(T, [c["eprop_outputs_kept_peak_mem_bytes"] / 2**20 for c in rows],
                        "o--", label="e-prop, outputs kept")
        ax.set(xscale="log", yscale="log", xlabel="T (steps)", ylabel="peak memory (MB)",
               title=f"{net} net: peak memory of one training step")
        ax.legend(fontsize=8)
    fig.suptitle(f"{report.get('label', '')} [{report['device']}, {report['threads']} threads; "
                 "labels: e-prop / BPTT]", fontsize=10)
    fig.tight_layout()
    with atomic_open(dst) as f:
        fig.savefig(f, format="png", dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
