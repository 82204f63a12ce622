"""The paper's comparison on SHD-repro: e-prop with delays (~32k parameters) against the DCLS
BPTT baseline (0.21M), accuracy (mean +- std over seeds, test file, model chosen on
validation), size ratio and inference latency, plus the e-prop recipe search (validation only).

    python results/sota/table.py            # writes results/sota/TABLE.md and prints it

Parameters and latency come from each run's best.pt through the package (the numbers
`delayprop eval` prints: Model.count_parameters, delayprop.latency.network_latency); accuracies
from final.json. Runs that have not finished are listed with their progress, never averaged.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from delayprop.latency import network_latency  # noqa: E402
from delayprop.train import (  # noqa: E402
    EvalResult,
    load_checkpoint,
    model_from_checkpoint,
    seen_unseen,
)

G, S, R = "results/gpu/runs", "results/sota/runs", "results/shd"
G2, G3 = "results/gpu/round2/runs", "results/gpu/round3/runs"  # second and third GPU calls
GROUPS = {
    "dcls_pub": ("DCLS (BPTT), published protocol", [f"{G}/dcls_shd_seed{k}" for k in range(3)]),
    "dcls_aug": ("DCLS (BPTT), augmentation protocol",
                 [f"{S}/dcls_shd_aug_seed0"] + [f"{G2}/dcls_shd_aug_seed{k}" for k in (1, 2)]),
    "eprop_pub": ("e-prop ~32k, base recipe, published protocol",
                  [f"{R}/shd_a_ff_syn_eprop/seed0", f"{R}/shd_a_ff_syn_eprop/seed1",
                   f"{G}/shd_a_ff_syn_eprop_seed2"]),
    "eprop_aug": ("e-prop ~32k, base recipe, augmentation protocol",
                  [f"{R}/shd_a_ff_syn_eprop_aug/seed0", f"{R}/shd_a_ff_syn_eprop_aug/seed1",
                   f"{G}/shd_a_ff_syn_eprop_aug_seed2"]),
}
PROBES = {  # recipe search on the augmentation protocol's held-out speakers, seed 0, 40 epochs
    "base recipe (configs/shd_a_ff_syn_eprop_aug.toml)": f"{R}/shd_a_ff_syn_eprop_aug/seed0",
    "max_delay 40": f"{G}/recipe_maxdelay40",
    "tau_m 30": f"{G}/recipe_taum30",
    "80 epochs": f"{G}/recipe_epochs80",
    "synaptic + axonal delays": f"{G}/recipe_syn_ax",
    "smooth delays, sigma 3 -> 0.5": f"{G}/recipe_smooth_sigma",
    "lr 0.01": f"{G}/recipe_lr1e-2",
    "tau_m 20 (round 2)": f"{S}/recipe2_taum20",
    "tau_m 30 + max_delay 40 (round 2)": f"{S}/recipe2_taum30_maxdelay40",
}
# round 3 (results/gpu/round2.py, finished by results/sota/commands4.sh): the chosen recipe
# (tau_m 30) with one change each, seed 0
ROUND3 = {
    "kappa 0.95": "kappa0.95", "kappa 0.8": "kappa0.8", "tau_m 50 (not 30)": "taum50",
    "axonal delays only, 199 hidden": "axonal_h199",
    "70 input channels, 199 hidden": "ch70_h199", "recurrent, 83 hidden": "rec_h83",
    "rate regulariser 0.5, target 0.02/step": "reg0.5_rate0.02",
    "weight decay 1e-4": "wd1e-4", "weight decay 1e-3": "wd1e-3", "80 epochs": "epochs80",
    "lr 0.002": "lr2e-3", "delay lr 0.3": "delaylr0.3", "delay lr 3": "delaylr3",
    "max_delay 15": "maxdelay15", "'sum' loss": "loss_sum", "batch 32": "batch32",
    "weight scale 2": "wscale2",
}
# round 4 (results/gpu/round3.py, finished by results/sota/commands5.sh): dropout of the
# hidden spikes, 3 seeds under both protocols; chosen if its mean augmentation-protocol
# validation accuracy beats the chosen recipe's
DROPOUT = (0.1, 0.25, 0.4)


def chosen_recipe() -> tuple[str, list[str]] | None:
    """The recipe chosen on validation (results/sota/chosen_recipe.txt) and its run dirs."""
    f = ROOT / "results/sota/chosen_recipe.txt"
    if not f.exists():
        return None
    text = f.read_text().strip()
    probe = text.split()[1]
    first = f"{G}/{probe}" if (ROOT / G / probe).exists() else f"{S}/{probe}"
    return text, [first] + [f"{S}/eprop_recipe_aug_seed{k}" for k in (1, 2)]


PROTOCOLS = {"pub": "published", "aug": "augmentation"}  # run-name part: the protocol's name

# groups chosen by nothing, for the record: (key, label, run-name prefix of
# <prefix>_<protocol>_seed{0,1,2}, both protocols)
RECORD_GROUPS = [
    # round 11's best probe (commands22.sh, commands23.sh)
    ("eprop_rdsum", "e-prop ~32k, readout delays + per-step loss (round 11's best probe, for "
     "the record, not chosen)", "r11_rd_sum"),
    # round 15's averaging probe (commands29.sh, commands31.sh): round 13's own training,
    # validated, selected and tested on the moving average
    ("eprop_ema", "e-prop ~32k, round 13's recipe + weight average ema 0.999 (round 15's probe, "
     "for the record, not chosen)", "r15_rd_drop10_ema999"),
    # round 16's input-dropout probe (commands30.sh, commands34.sh)
    ("eprop_idrop", "e-prop ~32k, round 13's recipe + input dropout 0.1 (round 16's probe, for "
     "the record, not chosen)", "r16_rd_idrop10"),
    # round 18's recipe with readout delays bounded to 10 steps (commands39.sh)
    ("eprop_rmax10", "e-prop ~32k, round 18's recipe with readout delays of at most 10 steps "
     "(latency bound 370 ms; for the record, not chosen)", "rmax10"),
    # and without readout delays, 107 hidden (commands40.sh)
    ("eprop_nord", "e-prop ~32k, round 18's recipe without readout delays, 107 hidden (latency "
     "bound 270 ms; for the record, not chosen)", "nord_h107"),
    # the same two bounds on round 22's recipe (published: commands46.sh; augmentation:
    # commands48.sh)
    ("eprop_r22rmax10", "e-prop ~32k, round 22's recipe with readout delays of at most 10 steps "
     "(latency bound 370 ms; for the record, not chosen)", "r22_rmax10"),
    ("eprop_r22nord", "e-prop ~32k, round 22's recipe without readout delays, 107 hidden "
     "(latency bound 270 ms; for the record, not chosen)", "r22_nord_h107"),
]


def run_info(d: str) -> dict:
    p = ROOT / d
    final = p / "final.json"
    metrics = p / "metrics.jsonl"
    rows = [json.loads(x) for x in metrics.read_text().splitlines()] if metrics.exists() else []
    info = {"dir": d, "epochs_done": len(rows), "finished": final.exists()}
    if final.exists():
        j = json.loads(final.read_text())
        info.update(val=j["val_acc"], test=j.get("test_acc"), epochs=j["epochs"],
                    best_epoch=j["best_epoch"])
        ck = load_checkpoint(p / "best.pt")
        model = model_from_checkpoint(ck)
        info["params"] = model.count_parameters()["total"]
        info["latency"] = network_latency(model.net, float(ck["config"]["data"]["dt"]) * 1000)
    return info


def mean_std(xs: list[float]) -> str:
    if not xs:
        return "-"
    m = statistics.mean(xs) * 100
    s = statistics.stdev(xs) * 100 if len(xs) > 1 else float("nan")
    return f"{m:.2f} +- {s:.2f}" if len(xs) > 1 else f"{m:.2f}"


def figure(groups: dict, summary: dict) -> None:
    """results/sota/comparison.png: test accuracy (mean +- std, seeds as dots), parameters and
    latency of every finished group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in groups if summary[k]["test"]]
    # published protocol first, then the augmentation protocol; top to bottom
    keys.sort(key=lambda k: ("published protocol" not in groups[k][0], not k.startswith("dcls")))
    labels = [textwrap.fill(groups[k][0] + f" ({len(summary[k]['test'])} seeds)", 70)
              for k in keys]
    colors = ["tab:red" if k.startswith("dcls") else "tab:blue" for k in keys]
    fig, axes = plt.subplots(1, 3, figsize=(20, 0.55 * len(keys) + 2),
                             gridspec_kw={"width_ratios": [4, 1, 1]})
    ax = axes[0]
    for i, k in enumerate(keys):
        t = [100 * x for x in summary[k]["test"]]
        m, sd = statistics.mean(t), statistics.stdev(t) if len(t) > 1 else 0.0
        ax.barh(i, m, color=colors[i], alpha=0.6, xerr=sd, capsize=3)
        ax.plot(t, [i] * len(t), "k.", ms=5)
        ax.text(max(max(t), m + sd) + 0.5, i, f"{m:.1f}", va="center", fontsize=8)
    ax.set_yticks(range(len(keys)), labels, fontsize=7)
    ax.set_ylim(len(keys) - 0.5, -0.5)  # first row on top
    ax.set_xlabel("test accuracy (%), mean +- std, seeds as dots")
    lo = min(100 * min(summary[k]["test"]) for k in keys)
    ax.set_xlim(max(0, lo - 5), 95)
    ax.set_title("SHD-repro test accuracy, best-validation checkpoints", fontsize=10, loc="right")
    kinds = {"DCLS": next(k for k in keys if k.startswith("dcls")),
             "e-prop": next(k for k in keys if k.startswith("eprop"))}
    if "eprop_rmax10_pub" in keys:  # readout delays (RD) bounded to 10 steps
        kinds["e-prop, RD <= 10"] = "eprop_rmax10_pub"
    if "eprop_rdsum_pub" in keys:  # learned readout delays lengthen the path
        kinds["e-prop, RD <= 25"] = "eprop_rdsum_pub"
    for ax, field, title in ((axes[1], "params", "parameters"),
                             (axes[2], "latency", "latency (ms)")):
        vals = [summary[k][field] for k in kinds.values()]
        ax.bar(list(kinds), vals, color=["tab:red"] + ["tab:blue"] * (len(vals) - 1),
               alpha=0.6)
        for i, v in enumerate(vals):
            ax.text(i, v, f" {v:,.0f}", ha="center", va="bottom", fontsize=7, rotation=90)
        ax.tick_params(axis="x", labelsize=7, labelrotation=90)
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(ROOT / "results/sota/comparison.png", dpi=120)
    plt.close(fig)


def headline_figure(groups: dict, summary: dict) -> None:
    """results/sota/headline.png: the paper's comparison with the final recipe, one panel per
    protocol: test accuracy against inference latency for DCLS and e-prop ~32k with readout
    delays up to 25 steps, up to 10, and none (mean +- standard error of the mean, seeds as
    dots), beside the paper's claim (67% lower latency, 2.4 points below DCLS) and the
    stretch target (1 point below); n = seeds finished."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("DCLS, 214k", "dcls_{}5", "tab:red", "s"),
            ("e-prop ~32k, readout delays <= 25", "eprop_r22x5_{}", "tab:blue", "o"),
            ("e-prop ~32k, readout delays <= 10", "eprop_r22rmax10_{}", "tab:cyan", "^"),
            ("e-prop ~32k, no readout delays", "eprop_r22nord_{}", "tab:green", "D")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    for ax, proto in zip(axes, PROTOCOLS):
        dcls = summary.get(f"dcls_{proto}5")
        for label, key, color, marker in rows:
            s = summary.get(key.format(proto))
            if not s or not s["test"]:
                continue
            t = [100 * x for x in s["test"]]
            m = statistics.mean(t)
            se = statistics.stdev(t) / math.sqrt(len(t)) if len(t) > 1 else 0.0
            ax.errorbar(s["latency"], m, yerr=se, fmt=marker, color=color, ms=8, capsize=4,
                        label=label)
            ax.plot([s["latency"] + 12] * len(t), t, ".", color=color, ms=4, alpha=0.7)
            ax.annotate(f"{m:.1f}\nn={len(t)}", (s["latency"] - 14, m), ha="right",
                        va="center", fontsize=7, color=color)
        if dcls and dcls["test"]:
            ref, lat = 100 * statistics.mean(dcls["test"]), dcls["latency"]
            ax.axhline(ref - 1, color="gray", ls=":", lw=1, label="DCLS - 1 (stretch target)")
            ax.axhline(ref - 2.4, color="gray", ls="--", lw=1, label="DCLS - 2.4 (paper's gap)")
            ax.plot(0.33 * lat, ref - 2.4, "k*", ms=12,
                    label="paper's claim: 67% lower latency, 2.4 points below")
        ax.set_title(f"{PROTOCOLS[proto]} protocol")
        ax.set_xlabel("inference latency (ms)")
        ax.set_xlim(200, 800)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("SHD-repro test accuracy (%), mean \u00b1 s.e.m.")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("e-prop with delays (final recipe, round 22) against DCLS", fontsize=11)
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    fig.savefig(ROOT / "results/sota/headline.png", dpi=120)
    plt.close(fig)


# rounds 5 and 6: one change each to the chosen recipe, seeds 0-1, augmentation protocol; the
# best probe wins if its mean validation beats the recipe after the rounds before (seeds 0-1).
# Probes: (label, run-name prefix: <prefix>_aug_seed<k> and <prefix>_pub_seed<k>)
# round 5 (results/sota/commands8.sh): input dropout
INPUT_DROPOUT = [(f"input dropout {p}", f"r5_indrop{p}") for p in (0.1, 0.2, 0.3)]
# round 6 (results/sota/commands10.sh): two hidden layers at the same budget
DEPTH = [("2 hidden layers, 72 + 72", "r6_h72x2")]
# round 7 (results/sota/commands11.sh): the neuron model
NEURON = [("surrogate atan, scale 2", "r7_atan2"), ("surrogate fast_sigmoid, scale 5", "r7_fsig5"),
          ("reset to zero", "r7_reset0")]
# round 8 (results/sota/commands15.sh): the time window the readout sees
WINDOW = [("window 1.25 s", "r8_win125"), ("window 1.5 s", "r8_win150"),
          ("window 1.4 s + max delay 40", "r8_win140d40")]
# round 9 (results/sota/commands18.sh): DCLS's dropout with DCLS's training length
LONG_DROPOUT = [("dropout 0.4, 150 epochs", "r9_drop40e150"),
                ("dropout 0.25, 150 epochs", "r9_drop25e150")]
# round 10 (results/sota/commands21.sh): learned readout delays, 100 hidden (32,020 parameters)
READOUT_DELAYS = [("readout delays, 100 hidden, 30 epochs", "r10_rd"),
                  ("readout delays, 100 hidden, 80 epochs", "r10_rd80"),
                  ("readout delays, 100 hidden, dropout 0.4, 150 epochs", "r10_rd_drop40")]
# round 11 (results/sota/commands22.sh): readout delays with the per-step loss, 40 epochs
PER_STEP = [("readout delays, 100 hidden, 'sum' loss", "r11_rd_sum"),
            ("readout delays, 100 hidden, 'sum' loss, kappa 0", "r11_rd_sum_k0")]
# round 12 (results/sota/commands24.sh): round 11's best probe with 80 epochs
PER_STEP_80 = [("readout delays, 100 hidden, 'sum' loss, 80 epochs", "r12_rd_sum80")]
# round 13 (results/sota/commands25.sh): the recipe after round 12 with dropout of hidden spikes
RD_DROPOUT = [("readout delays, 100 hidden, 'sum' loss, dropout 0.4, 150 epochs",
               "r13_rd_sum150_drop40"),
              ("readout delays, 100 hidden, 'sum' loss, 80 epochs, dropout 0.1",
               "r13_rd_sum80_drop10"),
              ("readout delays, 100 hidden, 'sum' loss, 80 epochs, dropout 0.25",
               "r13_rd_sum80_drop25")]
# round 14 (results/sota/commands26.sh): the recipe after round 13 with other membrane time
# constants (its labels name tau_m: the winner's label does not start with "tau_m 30 + ")
TAU_RD = [(f"tau_m {tau} ms + readout delays, 100 hidden, 'sum' loss, 80 epochs, dropout 0.1",
           f"r14_rd_drop10_taum{tau}") for tau in (2, 10)]
# round 15 (results/sota/commands29.sh): the recipe after round 13 with weight averaging
EMA_RD = [(f"tau_m 30 + readout delays, 100 hidden, 'sum' loss, 80 epochs, dropout 0.1 + "
           f"weight average (ema {d})", f"r15_rd_drop10_ema{str(d)[2:]}") for d in (0.995, 0.999)]
# round 16 (results/sota/commands30.sh): the recipe after round 15 with input dropout
INDROP_RD = [(f"input dropout {p}", f"r16_rd_idrop{int(100 * p)}") for p in (0.1, 0.2)]
# round 17 (results/sota/commands33.sh): the recipe after round 16, shorter or slower
PACE_RD = [("40 epochs (not 80)", "r17_rd_ep40"), ("lr 0.0025 (not 0.005)", "r17_rd_lr25")]


def seed_pair_round(title: str, intro: str, probes: list[tuple[str, str]], final: tuple | None,
                    record: list[str], base: str = "tau_m 30 + ") -> tuple[list[str], tuple | None]:
    """A round of ``probes`` (seeds 0-1, augmentation protocol) against the recipe before it
    (``final``: label, aug dirs, pub dirs; None: tau_m 30). ``record``: lines for runs chosen
    by nothing; ``base``: what the winner's label starts with (the probe's label follows).
    Returns the lines and the winner (label, aug dirs, pub dirs, run-name prefix) or None."""
    out = ["", title, "", intro, "",
           "| probe | val seed 0 | val seed 1 | val mean | test seed 0 | test seed 1 |",
           "|---|---|---|---|---|---|"]
    best, complete = None, True
    for label, prefix in probes:
        infos = [run_info(f"{S}/{prefix}_aug_seed{k}") for k in (0, 1)]
        if not all(i["finished"] for i in infos):
            complete = False
            out.append(f"| {label} | " + " | ".join(
                f"{i['val']:.4f}" if i["finished"] else f"unfinished ({i['epochs_done']} "
                "epochs)" for i in infos) + " | - | - | - |")
            continue
        mean = statistics.mean(i["val"] for i in infos)
        if best is None or mean > best[2]:
            best = (label, prefix, mean)
        out.append(f"| {label} | {infos[0]['val']:.4f} | {infos[1]['val']:.4f} | {mean:.4f} | "
                   f"{infos[0]['test']:.4f} | {infos[1]['test']:.4f} |")
    if best is None or not complete:
        return out + record, None
    if final is not None:
        ref_label, ref_dirs = final[0], final[1][:2]
    else:
        ref_label, ref_dirs = "tau_m 30", chosen_recipe()[1][:2]
    ref = statistics.mean(run_info(d)["val"] for d in ref_dirs)
    winner = None
    label, prefix, mean = best
    if mean > ref:
        winner = (f"{base}{label}", [f"{S}/{prefix}_aug_seed{k}" for k in range(3)],
                  [f"{S}/{prefix}_pub_seed{k}" for k in range(3)], prefix)
    verdict = (f"{label} wins and becomes the final recipe" if winner
               else f"nothing wins: the final recipe stays {ref_label}")
    if mean == ref:  # the same number of held-out samples right: a tie does not beat it
        verdict = f"a tie, which does not beat it: the final recipe stays {ref_label}"
    out += ["", f"Best: {label}, mean validation {100 * mean:.2f}% against "
                f"{ref_label}'s {100 * ref:.2f}%: {verdict}."]
    return out + record, winner


def record_line(text: str, dirs: list[str]) -> list[str]:
    """A line for runs chosen by nothing (empty until one of them has started)."""
    infos = [run_info(d) for d in dirs]
    if not any(i["epochs_done"] for i in infos):
        return []
    done = [i for i in infos if i["finished"]]
    return ["", f"For the record ({text}, chosen by nothing): {len(done)}/{len(dirs)} seeds "
                f"finished: validation {mean_std([i['val'] for i in done])}%, test "
                f"{mean_std([i['test'] for i in done])}%."]


def probe_pub_records(script: str, probes: list[tuple[str, str]]) -> list[str]:
    """For the record: each probe's published-protocol runs, seeds 0-1 (what a round's
    script runs without a winner), a line each once started."""
    return [line for _, prefix in probes for line in record_line(
        f"results/sota/{script}: {prefix}, published protocol",
        [f"{S}/{prefix}_pub_seed{k}" for k in range(2)])]


def round5_section(final: tuple | None) -> tuple[list[str], tuple | None]:
    """Round 5: input dropout p against the recipe after rounds 3-4."""
    return seed_pair_round(
        "## Round 5: input dropout (results/sota/commands8.sh)",
        "The chosen recipe (tau_m 30, 40 epochs) with `--input-dropout p` (one mask per "
        "sample and input channel, fixed over time), augmentation protocol, seeds 0-1. Wins "
        "if its mean validation accuracy beats the recipe after rounds 3-4 (seeds 0-1).",
        INPUT_DROPOUT, final,
        record_line("results/sota/commands9.sh: input dropout 0.1 under the published protocol",
                    [f"{S}/r5_indrop0.1_pub_seed{k}" for k in range(3)]))


def round7_section(final: tuple | None) -> tuple[list[str], tuple | None]:
    """Round 7: the neuron model (surrogate shape, reset) against the recipe after round 6."""
    return seed_pair_round(
        "## Round 7: the neuron model (results/sota/commands11.sh)",
        "The chosen recipe (tau_m 30, 40 epochs) with one change to the neuron each (the "
        "pseudo-derivative's shape, the reset), augmentation protocol, seeds 0-1. Wins if its "
        "mean validation accuracy beats the recipe after round 6 (seeds 0-1).",
        NEURON, final, [])


def round8_section(final: tuple | None) -> tuple[list[str], tuple | None]:
    """Round 8: the time window (trailing steps after the input) against the recipe after
    round 7."""
    return seed_pair_round(
        "## Round 8: the time window (results/sota/commands15.sh)",
        "The chosen recipe (tau_m 30, 40 epochs) with a longer input window (`--max-time`: "
        "the steps after 1.0 s are silent but for the few spikes the 1.0 s window drops), so "
        "that late spikes on long delays still reach the readout, augmentation protocol, "
        "seeds 0-1. Wins if its mean validation accuracy beats the recipe after round 7 "
        "(seeds 0-1).",
        WINDOW, final,
        record_line("results/sota/commands16.sh: window 1.25 s, augmentation protocol, seeds "
                    "0-2", [f"{S}/r8_win125_aug_seed{k}" for k in range(3)])
        + record_line("results/sota/commands16.sh: window 1.25 s, published protocol",
                      [f"{S}/r8_win125_pub_seed{k}" for k in range(3)]))


def round9_section(final: tuple | None) -> tuple[list[str], tuple | None]:
    """Round 9: dropout with 150 epochs (DCLS's values) against the recipe after round 8."""
    return seed_pair_round(
        "## Round 9: dropout with DCLS's training length (results/sota/commands18.sh)",
        "DCLS at e-prop's budget owes its lead to its dropout of 0.4 (results/sota/"
        "commands17.sh: 79.30% test without it), and it trains 150 epochs; round 4's dropout "
        "probes ran 40. The chosen recipe (tau_m 30) with `--dropout p --epochs 150`, "
        "augmentation protocol, seeds 0-1. Wins if its mean validation accuracy beats the "
        "recipe after round 8 (seeds 0-1).",
        LONG_DROPOUT, final,
        record_line("results/sota/commands18.sh, seed 2 commands19.sh: dropout 0.4, 150 "
                    "epochs, published protocol",
                    [f"{S}/r9_drop40e150_pub_seed{k}" for k in range(3)]))


def round10_section(final: tuple | None) -> tuple[list[str], tuple | None]:
    """Round 10: learned readout delays against the recipe after round 9."""
    return seed_pair_round(
        "## Round 10: learned readout delays (results/sota/commands21.sh)",
        "DCLS at e-prop's shape (one hidden layer of 100) without its readout delays falls "
        "below e-prop (results/sota/commands20.sh), and e-prop's readout had none. "
        "`--readout-delays` (new: one learned delay per readout synapse; the last layer's "
        "learning signal is the readout error D_kj steps later, exact for one layer) with 100 "
        "hidden neurons (32,020 parameters) on the chosen recipe (tau_m 30), augmentation "
        "protocol, seeds 0-1. Wins if its mean validation accuracy beats the recipe after "
        "round 9 (seeds 0-1).",
        READOUT_DELAYS, final, probe_pub_records("commands21.sh", READOUT_DELAYS))


def round11_section(final: tuple | None) -> tuple[list[str], tuple | None]:
    """Round 11: readout delays with the per-step loss against the recipe after round 10."""
    return seed_pair_round(
        "## Round 11: readout delays with a per-step loss (results/sota/commands22.sh)",
        "Round 10 kept the 'mean' loss (cross-entropy of the time-mean readout), which hardly "
        "depends on when a spike arrives; DCLS's loss is per step. Readout delays with 100 "
        "hidden neurons (32,020 parameters) and `--loss sum` (per-step cross-entropy), with "
        "the readout leak kappa 0.9 or 0, on the chosen recipe (tau_m 30, 40 epochs), "
        "augmentation protocol, seeds 0-1. Wins if its mean validation accuracy beats the "
        "recipe after round 10 (seeds 0-1).",
        PER_STEP, final,
        record_line("results/sota/commands22.sh, seed 2 commands23.sh: r11_rd_sum, published "
                    "protocol", [f"{S}/r11_rd_sum_pub_seed{k}" for k in range(3)])
        + record_line("results/sota/commands22.sh, seed 2 commands23.sh: r11_rd_sum, "
                      "augmentation protocol", [f"{S}/r11_rd_sum_aug_seed{k}" for k in range(3)]))


def round12_section(final: tuple | None) -> tuple[list[str], tuple | None]:
    """Round 12: round 11's best probe with 80 epochs against the recipe after round 11."""
    lines, won = seed_pair_round(
        "## Round 12: readout delays and the per-step loss over 80 epochs "
        "(results/sota/commands24.sh)",
        "Round 11's best probe (readout delays, 100 hidden, 'sum' loss) missed by 0.3 points "
        "at 40 epochs; the final recipe's gain came from 80 epochs. The same with `--epochs "
        "80`, augmentation protocol, seeds 0-1. Wins if its mean validation accuracy beats the "
        "recipe after round 11 (seeds 0-1).",
        PER_STEP_80, final, [])
    if won is None:  # the published-protocol runs are the winner's, or for the record
        lines += record_line("results/sota/commands24.sh: r12_rd_sum80, published protocol",
                             [f"{S}/r12_rd_sum80_pub_seed{k}" for k in range(2)])
    return lines, won


def round13_section(final: tuple | None) -> tuple[list[str], tuple | None]:
    """Round 13: the recipe after round 12 with dropout against it."""
    lines, won = seed_pair_round(
        "## Round 13: readout delays with dropout (results/sota/commands25.sh)",
        "DCLS at e-prop's shape owes its lead to two parts: its readout delays (round 12 "
        "gave them to e-prop) and its dropout of 0.4 over 150 epochs (results/sota/"
        "commands17.sh: 79.30% test without it). Round 9 tried dropout without readout "
        "delays. The recipe after round 12 (tau_m 30, readout delays, 100 hidden, 'sum' loss) "
        "with `--dropout 0.4 --epochs 150` (DCLS's values), `--dropout 0.1` or `--dropout "
        "0.25` (80 epochs), augmentation protocol, seeds 0-1. Wins if its mean validation "
        "accuracy beats the recipe after round 12 (seeds 0-1).",
        RD_DROPOUT, final, [])
    if won is None:  # the best probe's published-protocol runs, for the record
        lines += probe_pub_records("commands25.sh", RD_DROPOUT)
    lines += record_line(  # DCLS's dropout and length with readout delays (commands27.sh)
        "results/sota/commands27.sh: r13_rd_sum150_drop40 (DCLS's dropout 0.4 and 150 "
        "epochs), published protocol", [f"{S}/r13_rd_sum150_drop40_pub_seed{k}" for k in range(2)])
    return lines, won


def round14_section(final: tuple | None) -> tuple[list[str], tuple | None]:
    """Round 14: the membrane time constant on the recipe after round 13 against it."""
    lines, won = seed_pair_round(
        "## Round 14: the neuron's memory with readout delays (results/sota/commands26.sh)",
        "tau_m = 30 ms was chosen in round 2, before readout delays: then the membrane was the "
        "network's only memory besides the hidden delays. DCLS's neurons keep 0.5% of their "
        "potential per step and leave the memory to the delays. The recipe after round 13 "
        "(readout delays, 100 hidden, 'sum' loss, 80 epochs, dropout 0.1) with `--tau-m 2` "
        "(keeps 0.7% per 10 ms step, as DCLS's) or `--tau-m 10` (37%; tau_m 30: 72%), "
        "augmentation protocol, seeds 0-1. Wins if its mean validation accuracy beats the "
        "recipe after round 13 (seeds 0-1).",
        TAU_RD, final, [], base="")
    if won is None:  # the best probe's published-protocol runs, for the record
        lines += probe_pub_records("commands26.sh", TAU_RD)
    return lines, won


def round15_section(final: tuple | None) -> tuple[list[str], tuple | None]:
    """Round 15: weight averaging on the recipe after round 13 against it."""
    lines, won = seed_pair_round(
        "## Round 15: weight averaging (results/sota/commands29.sh)",
        "Round 13's winner peaked on the held-out speakers at epochs 20-39 of 80 and the "
        "checkpoint chosen there tested 3.5 points below the probes it beat: one epoch's "
        "parameters are a noisy pick. `--ema d` validates, selects and tests an "
        "exponential moving average of the parameters (delayprop.averaging; training goes on "
        "with the raw ones, so e-prop's updates are unchanged): d = 0.995 (a horizon of about "
        "2 epochs) or 0.999 (about 10), on the recipe after round 13 (tau_m 30, readout "
        "delays, 100 hidden, 'sum' loss, 80 epochs, dropout 0.1), augmentation protocol, "
        "seeds 0-1. Wins if its mean validation accuracy beats the recipe after round 13 "
        "(seeds 0-1).",
        EMA_RD, final, [], base="")
    means = [statistics.mean(run_info(f"{S}/{prefix}_aug_seed{k}")["val"] for k in (0, 1))
             for _, prefix in EMA_RD
             if all(run_info(f"{S}/{prefix}_aug_seed{k}")["finished"] for k in (0, 1))]
    if len(means) == 2 and means[0] == means[1]:
        lines += ["", "The two probes tie (the same number of held-out samples right); the "
                      "line above names the first, and commands29.sh's `--round15-best` "
                      "(best_probe: the later name on a tie) ran ema 0.999 for the record."]
    if won is None:  # the best probe's published-protocol runs, for the record
        lines += probe_pub_records("commands29.sh", EMA_RD)
    return lines, won


def round16_section(final: tuple | None) -> tuple[list[str], tuple | None]:
    """Round 16: input dropout on the recipe after round 15 against it."""
    base = final[0] if final is not None else "tau_m 30"
    lines, won = seed_pair_round(
        "## Round 16: input dropout with readout delays (results/sota/commands30.sh)",
        "The gap to DCLS is on the test speakers the training file lacks. Input dropout (one "
        "mask per sample and input channel, fixed over time: a sample loses whole frequency "
        "bands, as a new voice shifts its spectrum) missed round 5 by 0.1 points, before "
        "readout delays, and tested 1.0 point above the recipe of rounds 3-4 under the "
        "published protocol (commands9.sh, for the record). The recipe after round 15 "
        f"({base}) with `--input-dropout 0.1` or `0.2`, augmentation protocol, seeds 0-1. Wins "
        "if its mean validation accuracy beats the recipe after round 15 (seeds 0-1).",
        INDROP_RD, final, [], base=f"{base} + ")
    if won is None:  # the best probe's published-protocol runs, for the record
        lines += probe_pub_records("commands30.sh", INDROP_RD)
    return lines, won


def round17_section(final: tuple | None) -> tuple[list[str], tuple | None]:
    """Round 17: the training length and step size on the recipe after round 16."""
    base = final[0] if final is not None else "tau_m 30"
    lines, won = seed_pair_round(
        "## Round 17: training length and step size with readout delays "
        "(results/sota/commands33.sh)",
        "The learning rate (0.005) and the length (80 epochs) were chosen in rounds 1-3, "
        "before readout delays and dropout; with both, the held-out speakers' accuracy of the "
        "raw parameters peaks at epochs 20-27 and then stays 1-3 points lower "
        "(results/sota/ema_curves.png). The recipe after round 16 "
        f"({base}) with `--epochs 40` or `--lr 0.0025`, augmentation protocol, seeds 0-1. "
        "Wins if its mean validation accuracy beats the recipe after round 16 (seeds 0-1).",
        PACE_RD, final, [], base=f"{base} + ")
    if won is None:  # the best probe's published-protocol runs (commands33.sh), for the record
        lines += probe_pub_records("commands33.sh", PACE_RD[:1])
    lines += probe_pub_records("commands36.sh", PACE_RD[1:])  # lr 0.0025, for the record
    return lines, won


# round 18 (results/sota/commands37.sh): one rule over held-out pairs {6+8, 0+1, 2+3} x seeds
# {0, 1}. Each candidate: (answer, label, its grid of (run dir, metrics key), aug dirs and pub
# dirs of seeds 0-2 on speakers 6 + 8, what the winner's label adds to the final recipe's)
CV_PAIRS = [("6 + 8", None), ("0 + 1", "01"), ("2 + 3", "23")]
CELLS = [f"{pair} s{k}" for k in (0, 1) for pair, _ in CV_PAIRS]  # the tables' columns
CELL_ORDER = [0, 2, 3, 1, 4, 5]  # _grid's cells in the order of CELLS


def _grid(on68: str, cv: str, seed1_cv: str | None = None, key1: str = "val_acc") -> list:
    """The six cells (run dir, key): on 6 + 8 seeds 0-1 (``on68`` + k), on 0 + 1 and 2 + 3
    seed 0 (``cv`` + pair, or ``cv`` + pair + '_seed0' when ``seed1_cv`` is None) and seed 1
    (``seed1_cv`` + pair + '_seed1' read through ``key1``, or ``cv`` + pair + '_seed1')."""
    cells = [(f"{S}/{on68}{k}", "val_acc") for k in (0, 1)]
    for k in (0, 1):
        for _, tag in CV_PAIRS[1:]:
            if k == 0:
                d = f"{S}/{cv}{tag}" if seed1_cv is not None else f"{S}/{cv}{tag}_seed0"
                cells.append((d, "val_acc"))
            else:
                cells.append((f"{S}/{seed1_cv or cv}{tag}_seed1", key1))
    return cells


ROUND18 = [
    ("r13", "round 13's recipe (final before round 18)",
     _grid("r13_rd_sum80_drop10_aug_seed", "cv_r13_val", "cv_r15_ema999_val", "val_acc_raw"),
     None),
    ("r13ema", "round 13's recipe validated on its moving average (ema 0.999)",
     _grid("r15_rd_drop10_ema999_aug_seed", "cv_r15_ema999_val", "cv_r15_ema999_val"),
     ("weight average (ema 0.999)", "r15_rd_drop10_ema999")),
    ("idrop10", "+ input dropout 0.1",
     _grid("r16_rd_idrop10_aug_seed", "cv_r16_idrop10_val", "cv_r16_idrop10_val"),
     ("input dropout 0.1", "r16_rd_idrop10")),
    ("lr25", "+ lr 0.0025", _grid("r17_rd_lr25_aug_seed", "cv_r17_lr25_val"),
     ("lr 0.0025", "r17_rd_lr25")),
    ("ep40", "+ 40 epochs", _grid("r17_rd_ep40_aug_seed", "cv_r17_ep40_val"),
     ("40 epochs", "r17_rd_ep40")),
]


def late_mean(d: str, key: str) -> float | None:
    """Round 18's statistic: the mean of ``key`` over the last eighth of a finished run's
    epochs (10 of 80, 5 of 40); None while the run is unfinished."""
    p = ROOT / d
    if not (p / "final.json").exists():
        return None
    rows = [json.loads(x) for x in (p / "metrics.jsonl").read_text().splitlines()]
    n = -(-len(rows) // 8)
    return statistics.mean(r[key] for r in rows[-n:])


def round18_section(final: tuple | None) -> tuple[list[str], tuple | None]:
    """Round 18: the final recipe against four challengers, one rule over three held-out
    speaker pairs and two seeds (late-epoch mean validation accuracy)."""
    out = ["", "## Round 18: one rule over three held-out speaker pairs and two seeds "
           "(results/sota/commands37.sh)", "",
           "**Caveat: this round was designed after its candidates' test results were seen.** "
           "The four challengers are the probes of rounds 15-17 that tested above the final "
           "recipe under some protocol; the rule and its statistic were fixed in "
           "commands37.sh before any of its runs, and 14 of the 30 cells (seed 1 on speakers "
           "0 + 1 and 2 + 3; lr 0.0025 and 40 epochs on those pairs with both seeds) were run "
           "after it. Of the other 16, six (speakers 6 + 8 of round 13's recipe, of its "
           "average and of input dropout) had had their late-epoch means computed for round "
           "15's note in RESULTS.md, which ranked input dropout 0.5 points below round 13's "
           "recipe there; the other ten only their maxima. Statistic: "
           "each run's mean validation accuracy over the last eighth of its epochs (not the "
           "maximum that rounds 1-17 compared); a candidate's score: the mean over its six "
           "runs, augmentation protocol, validation speakers 6 + 8, 0 + 1 or 2 + 3, seeds 0-1. "
           "The highest score wins if it beats the final recipe's. The best-epoch maximum "
           "(the old statistic) is beside it, for the record.", "",
           "| candidate | " + " | ".join(CELLS) + " | late mean | "
           "max mean (old) |", "|---" * 9 + "|"]
    scores = round18_scores()  # the rule's numbers; None while any run is unfinished
    for _, label, grid, _ in ROUND18:
        lates = [late_mean(d, key) for d, key in grid]
        if any(x is None for x in lates):
            done = sum(x is not None for x in lates)
            out.append(f"| {label} | " + " | ".join(
                "-" if lates[i] is None else f"{100 * lates[i]:.2f}" for i in CELL_ORDER)
                + f" | unfinished ({done}/6) | - |")
            continue
        maxes = []
        for d, key in grid:
            rows = [json.loads(x) for x in (ROOT / d / "metrics.jsonl").read_text().splitlines()]
            maxes.append(max(r[key] for r in rows))
        out.append(f"| {label} | " + " | ".join(f"{100 * lates[i]:.2f}" for i in CELL_ORDER)
                   + f" | {100 * statistics.mean(lates):.2f} | "
                   f"{100 * statistics.mean(maxes):.2f} |")
    if scores is None:
        return out, None
    best = max(scores, key=lambda a: scores[a])  # first of equal scores: r13 is listed first
    winner = None
    if best != "r13" and scores[best] > scores["r13"]:
        add, prefix = next(c[3] for c in ROUND18 if c[0] == best)
        base = final[0] if final is not None else "tau_m 30"
        winner = (f"{base} + {add}", [f"{S}/{prefix}_aug_seed{k}" for k in range(3)],
                  [f"{S}/{prefix}_pub_seed{k}" for k in range(3)], f"r18_{best}")
    label = next(c[1] for c in ROUND18 if c[0] == best)
    verdict = (f"{label} wins and becomes the final recipe" if winner
               else "nothing beats the final recipe: it stays round 13's")
    out += ["", f"Best: {label}, {100 * scores[best]:.2f}% against round 13's recipe's "
                f"{100 * scores['r13']:.2f}%: {verdict}."]
    return out, winner


def round18_scores() -> dict[str, float] | None:
    """Round 18's score of each candidate (answer -> late mean over its six runs), or None
    while any run is unfinished."""
    scores = {}
    for answer, _, grid, _ in ROUND18:
        lates = [late_mean(d, key) for d, key in grid]
        if any(x is None for x in lates):
            return None
        scores[answer] = statistics.mean(lates)
    return scores


def round19_plan() -> tuple[str, str] | None:
    """Round 19 (fixed in commands38.sh before round 18's result): round 18's winner W with the
    best other challenger R that also scored above round 13's recipe, stacked. (W, R), or None
    when round 18 is unfinished, has no winner or no such R."""
    s = round18_scores()
    if s is None:
        return None
    ranked = sorted((a for a in s if a != "r13" and s[a] > s["r13"]), key=lambda a: -s[a])
    return (ranked[0], ranked[1]) if len(ranked) >= 2 else None


def round19_section(final: tuple | None) -> tuple[list[str], tuple | None]:
    """Round 19: round 18's winner with the runner-up's change stacked on it, against it."""
    s = round18_scores()
    if s is None:
        return [], None
    plan = round19_plan()
    title = "## Round 19: the two best changes of round 18 together (results/sota/commands38.sh)"
    if plan is None:
        return ["", title, "", "Not run: commands38.sh runs round 19 only when two of round "
                "18's challengers score above round 13's recipe, and fewer did."], None
    w, r = plan
    wlabel, wgrid = next((c[1], c[2]) for c in ROUND18 if c[0] == w)
    if wlabel.startswith("+"):
        wlabel = f"round 13's recipe {wlabel}"
    radd = next(c[3][0] for c in ROUND18 if c[0] == r)
    stack = _grid("r19_stack_aug_seed", "cv_r19_stack_val")
    out = ["", title, "",
           "Rule (commands38.sh, fixed before round 18's result): round 18's winner with the "
           "change of the best other challenger that also scored above round 13's recipe, "
           "on the same six cells and statistic; it wins if its score beats the winner's "
           f"(round 18's caveat holds here too). Here: {wlabel} with {radd}.", "",
           "| candidate | " + " | ".join(CELLS) + " | late mean |", "|---" * 8 + "|"]
    lates = [late_mean(d, key) for d, key in stack]
    out.append(f"| {wlabel} (round 18's winner) | "
               + " | ".join(f"{100 * late_mean(*wgrid[i]):.2f}" for i in CELL_ORDER)
               + f" | {100 * s[w]:.2f} |")
    if any(x is None for x in lates):
        done = sum(x is not None for x in lates)
        out.append(f"| {wlabel} + {radd} | " + " | ".join(
            "-" if lates[i] is None else f"{100 * lates[i]:.2f}" for i in CELL_ORDER)
            + f" | unfinished ({done}/6) |")
        return out, None
    score = statistics.mean(lates)
    out.append(f"| {wlabel} + {radd} | " + " | ".join(f"{100 * lates[i]:.2f}" for i in CELL_ORDER)
               + f" | {100 * score:.2f} |")
    winner = None
    if score > s[w]:
        base = final[0] if final is not None else "tau_m 30"
        winner = (f"{base} + {radd}", [f"{S}/r19_stack_aug_seed{k}" for k in range(3)],
                  [f"{S}/r19_stack_pub_seed{k}" for k in range(3)], "r19_stack")
    out += ["", f"{wlabel} + {radd}: {100 * score:.2f}% against {100 * s[w]:.2f}%: "
                + ("it wins and becomes the final recipe." if winner
                   else "it does not beat round 18's winner, which stays the final recipe.")]
    return out, winner


# round 20 (results/sota/commands41.sh): two changes to round 18's recipe nobody had seen run,
# on round 18's cells and statistic; (answer, label, grid, what the winner adds)
ROUND20 = [
    ("idrop10", "round 18's recipe (final before round 20)",
     next(c[2] for c in ROUND18 if c[0] == "idrop10"), None),
    ("drop20", "+ hidden dropout 0.2 (was 0.1)", _grid("r20_drop20_aug_seed", "cv_r20_drop20_val"),
     "hidden dropout 0.2"),
    ("sigma2", "+ delay surrogate width 2 steps (was 1)",
     _grid("r20_sigma2_aug_seed", "cv_r20_sigma2_val"), "delay surrogate width 2"),
]


def round20_scores() -> dict[str, float] | None:
    """Round 20's score of each candidate (late mean over its six runs), or None while any
    run is unfinished."""
    scores = {}
    for answer, _, grid, _ in ROUND20:
        lates = [late_mean(d, key) for d, key in grid]
        if any(x is None for x in lates):
            return None
        scores[answer] = statistics.mean(lates)
    return scores


def round20_section(final: tuple | None) -> tuple[list[str], tuple | None]:
    """Round 20: round 18's recipe against two unseen changes, round 18's rule."""
    out = ["", "## Round 20: two changes nobody had seen run (results/sota/commands41.sh)", "",
           "Rule and candidates fixed in commands41.sh before any of its runs; none of the "
           "challengers had been run on round 18's recipe before, so unlike round 18 nothing "
           "about them was known from the test file when they were chosen. Hidden dropout 0.2 "
           "(round 18's recipe has 0.1): regularisation is what won rounds 13 and 18. Delay "
           "surrogate width 2 steps (1 since the first probes of issue 4). Round 18's six cells "
           "(augmentation protocol, validation speakers 6 + 8, 0 + 1, 2 + 3, seeds 0-1) and "
           "statistic (each run's mean validation accuracy over its last eighth of epochs, "
           "averaged over the six); the highest score wins if it beats round 18's recipe's.",
           "", "| candidate | " + " | ".join(CELLS) + " | late mean |", "|---" * 8 + "|"]
    for _, label, grid, _ in ROUND20:
        lates = [late_mean(d, key) for d, key in grid]
        if any(x is None for x in lates):
            done = sum(x is not None for x in lates)
            out.append(f"| {label} | " + " | ".join(
                "-" if lates[i] is None else f"{100 * lates[i]:.2f}" for i in CELL_ORDER)
                + f" | unfinished ({done}/6) |")
            continue
        out.append(f"| {label} | " + " | ".join(f"{100 * lates[i]:.2f}" for i in CELL_ORDER)
                   + f" | {100 * statistics.mean(lates):.2f} |")
    scores = round20_scores()
    if scores is None:
        return out, None
    best = max(scores, key=lambda a: scores[a])  # first of equal scores: the incumbent
    winner = None
    if best != "idrop10" and scores[best] > scores["idrop10"]:
        add = next(c[3] for c in ROUND20 if c[0] == best)
        base = final[0] if final is not None else "tau_m 30"
        winner = (f"{base} + {add}", [f"{S}/r20_{best}_aug_seed{k}" for k in range(3)],
                  [f"{S}/r20_{best}_pub_seed{k}" for k in range(3)], f"r20_{best}")
    label = next(c[1] for c in ROUND20 if c[0] == best)
    verdict = (f"{label} wins and becomes the final recipe" if winner
               else "nothing beats round 18's recipe, which stays final")
    out += ["", f"Best: {label}, {100 * scores[best]:.2f}% against round 18's recipe's "
                f"{100 * scores['idrop10']:.2f}%: {verdict}."]
    return out, winner


# rounds 21-22: one change each, never run before, on the recipe after the round before; round
# 18's cells, statistic and rule. n -> (script, title, why, the change, answer, run prefix)
SINGLE_ROUNDS = {
    21: ("commands42.sh", "a longer readout leak",
         "the readout's leak per step kappa 0.95 (was 0.9, chosen in issue 4's first probes with "
         "the time-mean loss)", "readout leak kappa 0.95", "kappa95", "r21_kappa95"),
    22: ("commands43.sh", "the delays' step size",
         "Adam's step for the delays 0.5 time steps (was 1.0, chosen in issue 4's first probes "
         "and kept in round 3, both before readout delays and the per-step loss)",
         "delay lr 0.5", "dlr05", "r22_dlr05"),
}


def incumbent_after(n: int) -> tuple[str, list, float] | None:
    """The final recipe after round n (20-22) as (label, its six cells, its score), or None
    while round n or a round before it is unfinished."""
    if n == 20:
        s20 = round20_scores()
        if s20 is None:
            return None
        best = max(s20, key=lambda a: s20[a])
        w = best if best != "idrop10" and s20[best] > s20["idrop10"] else "idrop10"
        label, grid = next((c[1], c[2]) for c in ROUND20 if c[0] == w)
        if label.startswith("+"):
            label = f"round 18's recipe {label}"
        return label, grid, s20[w]
    before = incumbent_after(n - 1)
    score = single_round_score(n)
    if before is None or score is None:
        return None
    if score > before[2]:
        *_, add, _, prefix = SINGLE_ROUNDS[n]
        return f"{before[0]} + {add}", _grid(f"{prefix}_aug_seed", f"cv_{prefix}_val"), score
    return before


def single_round_score(n: int) -> float | None:
    """Round n's candidate's score (late mean over its six runs), None while unfinished."""
    prefix = SINGLE_ROUNDS[n][-1]
    lates = [late_mean(d, key) for d, key in _grid(f"{prefix}_aug_seed", f"cv_{prefix}_val")]
    return None if any(x is None for x in lates) else statistics.mean(lates)


def single_round_section(n: int, final: tuple | None) -> tuple[list[str], tuple | None]:
    """Round n (21, 22): the recipe after round n - 1 against the same with one change."""
    inc = incumbent_after(n - 1)
    if inc is None:
        return [], None
    script, title, why, add, _, prefix = SINGLE_ROUNDS[n]
    out = ["", f"## Round {n}: {title} (results/sota/{script})", "",
           f"Rule and candidate fixed in {script} before any result of round {n} or of the "
           f"round before it: the recipe after round {n - 1} with {why}, never run before; "
           "round 18's cells and statistic; it wins if its score beats the recipe's.", "",
           "| candidate | " + " | ".join(CELLS) + " | late mean |", "|---" * 8 + "|",
           f"| {inc[0]} (final after round {n - 1}) | "
           + " | ".join(f"{100 * late_mean(*inc[1][i]):.2f}" for i in CELL_ORDER)
           + f" | {100 * inc[2]:.2f} |"]
    grid = _grid(f"{prefix}_aug_seed", f"cv_{prefix}_val")
    lates = [late_mean(d, key) for d, key in grid]
    if any(x is None for x in lates):
        done = sum(x is not None for x in lates)
        out.append(f"| + {add} | " + " | ".join(
            "-" if lates[i] is None else f"{100 * lates[i]:.2f}" for i in CELL_ORDER)
            + f" | unfinished ({done}/6) |")
        return out, None
    score = statistics.mean(lates)
    out.append(f"| + {add} | " + " | ".join(f"{100 * lates[i]:.2f}" for i in CELL_ORDER)
               + f" | {100 * score:.2f} |")
    winner = None
    if score > inc[2]:
        base = final[0] if final is not None else "tau_m 30"
        winner = (f"{base} + {add}", [f"{S}/{prefix}_aug_seed{k}" for k in range(3)],
                  [f"{S}/{prefix}_pub_seed{k}" for k in range(3)], prefix)
    diffs = [lates[i] - late_mean(*inc[1][i]) for i in range(6)]
    out += ["", f"{add}: {100 * score:.2f}% against {100 * inc[2]:.2f}%: "
                + ("it wins and becomes the final recipe" if winner
                   else f"it does not beat the recipe after round {n - 1}, which stays final")
                + f" (margin {100 * (score - inc[2]):+.2f} points; above in "
                f"{sum(d > 0 for d in diffs)} of 6 cells, per-cell differences "
                f"{100 * min(diffs):+.2f} to {100 * max(diffs):+.2f})."]
    return out, winner


OTHER_PAIRS = [  # (recipe, run on speakers 6 + 8, run-name prefix on the other pairs)
    ("round 12 (readout delays, per-step loss, 80 epochs)", "r12_rd_sum80_aug_seed0",
     "cv_r12_val"),
    ("round 13 (+ dropout 0.1; the final recipe)", "r13_rd_sum80_drop10_aug_seed0",
     "cv_r13_val"),
    ("round 13 validated on its moving average (ema 0.999; the same training)",
     "r15_rd_drop10_ema999_aug_seed0", "cv_r15_ema999_val"),
    ("round 13 + input dropout 0.1 (round 16's probe)", "r16_rd_idrop10_aug_seed0",
     "cv_r16_idrop10_val"),
]


def other_pairs_section() -> list[str]:
    """For the record: recipes validated on other held-out speaker pairs, seed 0, next to the
    pair 6 + 8 that every round used (commands28.sh, commands32.sh, commands35.sh)."""
    pairs = [("6 + 8 (every round's)", None), ("0 + 1", "01"), ("2 + 3", "23")]
    table = [(label, [(recipe, run_info(f"{S}/{on68}" if tag is None else f"{S}/{cv}{tag}"))
                      for recipe, on68, cv in OTHER_PAIRS]) for label, tag in pairs]
    if not any(i["epochs_done"] for _, infos in table[1:] for _, i in infos):
        return []
    out = ["", "## Recipes on other held-out speaker pairs (results/sota/commands28.sh, "
           "commands32.sh, commands35.sh)", "",
           "For the record (no rule reads it): augmentation protocol, seed 0, each recipe "
           "validated on another pair of training speakers (`--set data.val_speakers=[...]`); "
           "on 6 + 8 the rounds' own runs. The mean over the three pairs is what a "
           "cross-validated rule would compare.", "",
           "| recipe | " + " | ".join(f"val {label}" for label, _ in table) + " | val mean | "
           + " | ".join(f"test (chosen on {label.split(' (')[0]})" for label, _ in table)
           + " | best epochs |", "|---" * (2 * len(table) + 3) + "|"]
    for r, (recipe, _, _) in enumerate(OTHER_PAIRS):
        infos = [infos[r][1] for _, infos in table]
        if not any(i["epochs_done"] for i in infos):
            continue
        vals = [f"{100 * i['val']:.2f}" if i["finished"] else
                f"unfinished ({i['epochs_done']} epochs)" for i in infos]
        tests = [f"{100 * i['test']:.2f}" if i["finished"] else "-" for i in infos]
        mean = (f"{100 * statistics.mean(i['val'] for i in infos):.2f}"
                if all(i["finished"] for i in infos) else "-")
        epochs = " / ".join(str(i["best_epoch"]) if i["finished"] else "-" for i in infos)
        out.append(f"| {recipe} | {' | '.join(vals)} | {mean} | {' | '.join(tests)} | "
                   f"{epochs} |")
    return out


def best_probe(probes: list[tuple[str, str]]) -> str:
    """The run-name suffix (after 'rN_') of the probe with the best mean validation accuracy
    over seeds 0-1, or 'none' while any probe is unfinished."""
    means = []
    for _, prefix in probes:
        infos = [run_info(f"{S}/{prefix}_aug_seed{k}") for k in (0, 1)]
        if not all(i["finished"] for i in infos):
            return "none"
        means.append((statistics.mean(i["val"] for i in infos), prefix))
    return max(means)[1].split("_", 1)[1]


SIZE_RUNS = [  # for the record: each model at the other's budget (label, command, dirs)
    ("e-prop at DCLS's size (700 hidden, 210,020), published protocol", "commands12.sh",
     [f"{S}/size_h700_pub_seed{k}" for k in range(3)]),
    ("e-prop at DCLS's size (700 hidden, 210,020), augmentation protocol", "commands12.sh",
     [f"{S}/size_h700_aug_seed{k}" for k in range(3)]),
    ("DCLS at e-prop's size (2 x 70 hidden, 32,480), published protocol", "commands13.sh",
     [f"{S}/dcls_h70_pub_seed{k}" for k in range(3)]),
    ("DCLS at e-prop's size (2 x 70 hidden, 32,480), augmentation protocol", "commands14.sh",
     [f"{S}/dcls_h70_aug_seed{k}" for k in range(3)]),
]


DCLS_ABLATIONS = [  # for the record (results/sota/commands17.sh): DCLS at 32k less one part
    (f"DCLS at e-prop's size, {what}, published protocol", "commands17.sh",
     [f"{S}/dcls32k_{name}_pub_seed{k}" for k in range(2)])
    for what, name in (("one hidden layer of 100 (32,200)", "h100"),
                       ("no BatchNorm (2 x 70, 32,200)", "nobn"),
                       ("no dropout (2 x 70, 32,480)", "nodrop"))] + [
    # (results/sota/commands20.sh): DCLS with e-prop's shape (one layer of 100) less one part
    (f"DCLS at e-prop's shape (one hidden layer of 100), {what}, published protocol",
     "commands20.sh", [f"{S}/dcls32k_h100_{name}_pub_seed{k}" for k in range(2)])
    for what, name in (("readout without delays (30,200)", "noreaddelay"),
                       ("sharp delays in training, sigma 0.23 from the start (32,200)",
                        "sharp"))]


def size_section() -> list[str]:
    """For the record (results/sota/commands12.sh to commands14.sh, commands17.sh,
    commands20.sh): each model at the other's parameter budget, DCLS at it less one part."""
    out = []
    for label, cmd, dirs in SIZE_RUNS + DCLS_ABLATIONS:
        out += record_line(f"results/sota/{cmd}: {label}", dirs)
    if out:
        out = ["", "## Each model at the other's size", ""] + [f"- {x}" for x in out[1::2]]
    return out


def round6_section(final: tuple | None) -> tuple[list[str], tuple | None]:
    """Round 6: two hidden layers at the same budget against the recipe after round 5."""
    return seed_pair_round(
        "## Round 6: depth (results/sota/commands10.sh)",
        "The chosen recipe (tau_m 30, 40 epochs) with two hidden layers of 72 (`--n-hidden 72 "
        "72`, synaptic delays in both, 31,988 parameters against 32,120), augmentation "
        "protocol, seeds 0-1. e-prop reaches the first layer through a fixed random "
        "broadcast matrix. Wins if its mean validation accuracy beats the recipe after round "
        "5 (seeds 0-1).",
        DEPTH, final,
        record_line("results/sota/commands10.sh: the same two-layer net trained by BPTT, "
                    "augmentation protocol", [f"{S}/r6_h72x2_bptt_aug_seed0"]))


def round3_section(chosen: list[str]) -> tuple[list[str], tuple | None]:
    """Round 3: one change each to the chosen recipe (its aug-protocol runs ``chosen``); seed 1
    for the probes within 0.7 points of the chosen recipe's seed 0 on validation
    (results/sota/commands6.sh); the winner is the best mean of seeds 0-1 above the chosen
    recipe's. Returns the lines and the winner (label, run name, mean) or None."""
    base = [run_info(d).get("val") for d in chosen[:2]]
    out = ["", "## Round 3: one change to the chosen recipe (tau_m 30)", "",
           "Augmentation protocol, validation = held-out training speakers; seed 1 only for the "
           "probes whose seed-0 validation is within 0.7 points of the chosen recipe's "
           f"({100 * base[0]:.2f}%, seed 1 {100 * base[1]:.2f}%).", "",
           "| probe | params | val seed 0 | val seed 1 | val mean | test seed 0 | test seed 1 |",
           "|---|---|---|---|---|---|---|"]
    best = None
    for label, name in ROUND3.items():
        i0, i1 = (run_info(f"{G2}/r3_{name}_aug_seed{k}") for k in (0, 1))
        if not i0["finished"]:
            out.append(f"| {label} | - | unfinished ({i0['epochs_done']} epochs) | | | | |")
            continue
        vals = [i0["val"]] + ([i1["val"]] if i1["finished"] else [])
        v1 = f"{i1['val']:.4f}" if i1["finished"] else (
            f"running ({i1['epochs_done']} epochs)" if i1["epochs_done"] else "-")
        mean = statistics.mean(vals) if i1["finished"] else None
        if mean is not None and (best is None or mean > best[2]):
            best = (label, name, mean)
        m = f"{mean:.4f}" if mean is not None else "-"
        t1 = f"{i1['test']:.4f}" if i1["finished"] else "-"
        out.append(f"| {label} | {i0['params']:,} | {i0['val']:.4f} | {v1} | {m} | "
                   f"{i0['test']:.4f} | {t1} |")
    pending = any(run_info(f"{G2}/r3_{n}_aug_seed1")["epochs_done"]
                  and not run_info(f"{G2}/r3_{n}_aug_seed1")["finished"] for n in ROUND3.values())
    winner = None
    if best is not None and None not in base and not pending:
        ref = statistics.mean(base)
        winner = best if best[2] > ref else None
        verdict = (f"{best[0]} wins round 3" if winner else
                   "nothing wins round 3: the recipe stays tau_m 30")
        out += ["", f"Best mean of seeds 0-1: {best[0]}, {100 * best[2]:.2f}% against the "
                    f"chosen recipe's {100 * ref:.2f}%: {verdict}."]
    return out, winner


def dropout_section(chosen: list[str]) -> tuple[list[str], tuple | None]:
    """Round 4: dropout p, 3 seeds under both protocols, and the selection (mean
    augmentation-protocol validation accuracy against the chosen recipe's, runs ``chosen``).
    Returns the lines and the winner (p, mean) or None."""
    out = ["", "## Round 4: dropout of the hidden spikes (3 seeds, both protocols)", "",
           "The chosen recipe (tau_m 30) with `--dropout p` (results/gpu/round3.py). Chosen "
           "if its mean validation accuracy under the augmentation protocol beats the chosen "
           "recipe's; test accuracy listed for the record.", "",
           "| dropout | aug: val acc (%) | aug: test acc (%) | published: val acc (%) | "
           "published: test acc (%) |", "|---|---|---|---|---|"]
    base = [i["val"] for i in map(run_info, chosen) if i["finished"]]
    best, complete = None, True
    for p in DROPOUT:
        cells = []
        for proto in ("aug", "pub"):
            infos = [run_info(f"{G3}/r4_drop{p}_{proto}_seed{k}") for k in range(3)]
            done = [i for i in infos if i["finished"]]
            if len(done) < len(infos):
                cells += [f"{len(done)}/3 seeds finished", "-"]
                complete = False
                continue
            vals = [i["val"] for i in done]
            cells += [mean_std(vals), mean_std([i["test"] for i in done])]
            if proto == "aug" and (best is None or statistics.mean(vals) > best[1]):
                best = (p, statistics.mean(vals))
        out.append(f"| {p} | {' | '.join(cells)} |")
    winner = None
    if best is not None and base and complete:
        winner = best if best[1] > statistics.mean(base) else None
        verdict = (f"dropout {best[0]} wins round 4" if winner
                   else "no dropout rate wins: the recipe stays tau_m 30 without dropout")
        out += ["", f"Best: dropout {best[0]}, mean validation {100 * best[1]:.2f}% against "
                    f"{100 * statistics.mean(base):.2f}% without dropout: {verdict}."]
    return out, winner


def final_recipe(r3: tuple | None, r4: tuple | None) -> tuple[list[str], tuple | None]:
    """The recipe after rounds 3 and 4: if both have a winner, the one with the higher mean
    augmentation-protocol validation over seeds 0-1 (the seeds both have). Returns the lines
    and (label, aug run dirs, pub run dirs) or None (the recipe stays tau_m 30)."""
    cands = []
    if r3 is not None:
        label, name, _ = r3
        cands.append((f"tau_m 30 + {label}",
                      [f"{G2}/r3_{name}_aug_seed{k}" for k in (0, 1)]
                      + [f"{S}/r3final_{name}_aug_seed2"],
                      [f"{S}/r3final_{name}_pub_seed{k}" for k in range(3)]))
    if r4 is not None:
        p = r4[0]
        cands.append((f"tau_m 30 + dropout {p}",
                      [f"{G3}/r4_drop{p}_aug_seed{k}" for k in range(3)],
                      [f"{G3}/r4_drop{p}_pub_seed{k}" for k in range(3)]))
    if not cands:
        return ["", "After rounds 3 and 4 the chosen recipe stays tau_m 30."], None
    score = {c[0]: statistics.mean(run_info(d)["val"] for d in c[1][:2]) for c in cands}
    best = max(cands, key=lambda c: score[c[0]])
    text = ", ".join(f"{k} {100 * v:.2f}%" for k, v in score.items())
    return ["", f"## The recipe after rounds 3 and 4: {best[0]}", "",
            f"Mean validation over seeds 0-1 (augmentation protocol): {text}. Its three seeds "
            "under both protocols are the tables' 'recipe of rounds 3-4' rows (the 'final "
            "recipe' rows until round 12 won)."], best


def test_speakers() -> tuple[str, np.ndarray, np.ndarray] | None:
    """The test file's speaker id per sample and the training file's speakers, from the first
    copy of SHD-repro found (None if there is none here)."""
    from delayprop.data.registry import load_data

    for d in (ROOT / ".devdata/shd", Path("/work/shared/data/shd-repro")):
        if d.exists():
            data = load_data({"dataset": "shd", "data_dir": str(d), "dt": 0.01,
                              "max_time": 1.0, "channels": 140, "binary": False,
                              "download": False}, need_test=True, progress=False)
            name = str(d.relative_to(ROOT)) if d.is_relative_to(ROOT) else str(d)
            return name, data.test.speaker.numpy(), data.train.speaker.unique().numpy()
    return None


def speaker_section(groups: dict) -> list[str]:
    """Test accuracy on the speakers the training file lacks and on the others, per group
    (each run's test_predictions.npy: targets and predictions in test-file order)."""
    found = test_speakers()
    head = ["", "## Where the test accuracy is lost: speakers never heard in training", ""]
    if found is None:
        return head + ["(No copy of SHD-repro here: the speaker ids come from its test file.)"]
    _, spk, train_spk = found
    absent = sorted(set(spk.tolist()) - set(train_spk.tolist()))
    n_abs = int(np.isin(spk, absent).sum())
    n_other = len(set(spk.tolist())) - len(absent)
    out = head + [
        f"The test file's speakers {', '.join(map(str, absent))} are absent from the training "
        f"file ({n_abs} of {len(spk)} test samples); the other {n_other} "
        f"speakers' test samples ({len(spk) - n_abs}) come from speakers the training file "
        f"has (under the augmentation protocol two of these, 6 and 8, are held out for "
        f"validation, so unheard in training too: {_held_out_share(spk)}). Accuracy on each "
        f"part, mean +- std over seeds (speaker ids from SHD-repro's "
        "shd_test.h5).", "",
        "| model | seeds | test, absent speakers (%) | test, training-file speakers (%) |",
        "|---|---|---|---|"]
    rows = []
    for label, dirs in groups.values():
        parts = {True: [], False: []}
        for d in dirs:
            f = ROOT / d / "test_predictions.npy"
            if not (ROOT / d / "final.json").exists() or not f.exists():
                continue
            targets, preds = np.load(f)
            res = EvalResult(float((targets == preds).mean()), 0.0, preds, targets)
            for key, g in seen_unseen(res.per_speaker(spk, train_spk)).items():
                parts[key == "seen"].append(g["accuracy"])
        if parts[False]:
            out.append(f"| {label} | {len(parts[False])} | {mean_std(parts[False])} | "
                       f"{mean_std(parts[True])} |")
            rows.append((label, parts[False], parts[True]))
    speaker_figure(rows, absent)
    return out + ["", "![test accuracy by speaker group](speakers.png)"]


def _held_out_share(spk: np.ndarray) -> str:
    n = int(np.isin(spk, [6, 8]).sum())
    return f"{n} of the {int((~np.isin(spk, [4, 5])).sum())} samples"


def speaker_figure(rows: list[tuple[str, list[float], list[float]]], absent: list[int]) -> None:
    """results/sota/speakers.png: per group, test accuracy on the speakers the training file
    lacks and on the others (mean +- std over seeds, seeds as dots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(15, 0.75 * len(rows) + 1.6))
    for i, (label, unheard, heard) in enumerate(rows):
        color = "tab:red" if label.startswith("DCLS") else "tab:blue"
        for off, vals, alpha in ((-0.2, unheard, 0.85), (0.2, heard, 0.35)):
            v = [100 * x for x in vals]
            m = statistics.mean(v)
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            ax.barh(i + off, m, height=0.38, color=color, alpha=alpha, xerr=sd, capsize=2)
            ax.plot(v, [i + off] * len(v), "k.", ms=4)
            ax.text(m + sd + 0.3, i + off, f"{m:.1f}", va="center", fontsize=7)
    ax.set_yticks(range(len(rows)), [textwrap.fill(r[0], 75) for r in rows], fontsize=7)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first row on top
    ax.set_xlim(70, 100)
    ax.set_xlabel(f"test accuracy (%): dark = speakers {', '.join(map(str, absent))} (absent "
                  "from the training file), light = the other speakers")
    ax.set_title("Where SHD-repro's test accuracy is lost")
    fig.tight_layout()
    fig.savefig(ROOT / "results/sota/speakers.png", dpi=120)
    plt.close(fig)


def main() -> int:
    groups = dict(GROUPS)
    ch = chosen_recipe()
    if ch is not None:
        groups["eprop_recipe_aug"] = ("e-prop ~32k, chosen recipe, augmentation protocol", ch[1])
        groups["eprop_recipe_pub"] = ("e-prop ~32k, chosen recipe, published protocol",
                                      [f"{S}/eprop_recipe_pub_seed{k}" for k in range(3)])
    # rounds 3 and 4 start from the chosen recipe (tau_m 30)
    r3_lines, r3 = round3_section(ch[1] if ch else [])
    r4_lines, r4 = dropout_section(ch[1] if ch else [])
    final_lines, final = final_recipe(r3, r4)
    # rounds 5-18: each starts from the recipe after the round before; --roundN-winner prints
    # what results/sota/commands{8,10,11,15,18,21,22,24,25,26,29,30,33,37}.sh read
    # --roundN-best: what commands21.sh / 22 / 24 / 25 / 26 / 29 / 30 / 33 run for the record
    # without a winner
    for n, probes in ((10, READOUT_DELAYS), (11, PER_STEP), (12, PER_STEP_80),
                      (13, RD_DROPOUT), (14, TAU_RD), (15, EMA_RD), (16, INDROP_RD),
                      (17, PACE_RD)):
        if f"--round{n}-best" in sys.argv:
            print(best_probe(probes))
            return 0
    if "--round19-plan" in sys.argv:  # what results/sota/commands38.sh stacks
        plan = round19_plan()
        print("none" if plan is None else " ".join(plan))
        return 0
    before = final  # the final recipe of rounds 3-4, kept in the tables if a later round wins
    round_lines = []
    wins = []  # (round, winner) of the rounds that changed the final recipe
    for n, section, answer in (
            (5, round5_section, lambda w: w[0].rsplit(" ", 1)[-1]),
            (6, round6_section, lambda w: "yes"),
            (7, round7_section, lambda w: w[3].split("_", 1)[1]),
            (8, round8_section, lambda w: w[3].split("_", 1)[1]),
            (9, round9_section, lambda w: w[3].split("_", 1)[1]),
            (10, round10_section, lambda w: w[3].split("_", 1)[1]),
            (11, round11_section, lambda w: w[3].split("_", 1)[1]),
            (12, round12_section, lambda w: w[3].split("_", 1)[1]),
            (13, round13_section, lambda w: w[3].split("_", 1)[1]),
            (14, round14_section, lambda w: w[3].split("_", 1)[1]),
            (15, round15_section, lambda w: w[3].split("_", 1)[1]),
            (16, round16_section, lambda w: w[3].split("_", 1)[1]),
            (17, round17_section, lambda w: w[3].split("_", 1)[1]),
            (18, round18_section, lambda w: w[3].split("_", 1)[1]),
            (19, round19_section, lambda w: w[3].split("_", 1)[1]),
            (20, round20_section, lambda w: w[3].split("_", 1)[1]),
            (21, lambda f: single_round_section(21, f), lambda w: w[3].split("_", 1)[1]),
            (22, lambda f: single_round_section(22, f), lambda w: w[3].split("_", 1)[1])):
        lines, won = section(final)
        if f"--round{n}-winner" in sys.argv and n >= 20 and incumbent_after(n) is None:
            # commands41-43.sh stop on this rather than read an unfinished (crashed) run
            print(f"round {n} is unfinished: a cell has no final.json", file=sys.stderr)
            return 1
        if f"--round{n}-winner" in sys.argv:
            print(("no" if n == 6 else "none") if won is None else answer(won))
            return 0
        round_lines += lines
        if won is not None:
            final = won
            wins.append((n, won))
    for n, won in wins[:-1]:  # a recipe a later round replaced keeps its rows
        for proto, name, dirs in (("aug", "augmentation", won[1]), ("pub", "published", won[2])):
            groups[f"eprop_r{n}_{proto}"] = (f"e-prop ~32k, recipe of round {n} ({won[0]}), "
                                             f"{name} protocol", dirs)
    if before is not None and final is not before:
        groups["eprop_r34_aug"] = (f"e-prop ~32k, recipe of rounds 3-4 ({before[0]}), "
                                   "augmentation protocol", before[1])
        groups["eprop_r34_pub"] = (f"e-prop ~32k, recipe of rounds 3-4 ({before[0]}), "
                                   "published protocol", before[2])
    if final is not None:
        groups["eprop_final_aug"] = (f"e-prop ~32k, final recipe ({final[0]}), augmentation "
                                     "protocol", final[1])
        groups["eprop_final_pub"] = (f"e-prop ~32k, final recipe ({final[0]}), published "
                                     "protocol", final[2])
    # five seeds, 3-4 for the record: round 20's recipe published (commands41.sh), round 22's
    # under both protocols (commands44.sh)
    changed = {n for n, _ in wins}
    for n, protos in ((20, ("pub",)), (22, ("pub", "aug"))):
        after = incumbent_after(n)
        if after is None or n not in changed:
            continue  # unfinished, or round n did not change the recipe
        for proto in protos:
            stem = after[1][0][0].replace("_aug_seed0", f"_{proto}_seed")  # 6 + 8 seed-0 cell
            groups[f"eprop_r{n}x5_{proto}"] = (
                f"e-prop ~32k, recipe after round {n} ({after[0]}), {PROTOCOLS[proto]} protocol, "
                "seeds 0-4 (3-4 for the record)", [f"{stem}{k}" for k in range(5)])
    record = set()  # RECORD_GROUPS' keys, a row per protocol
    for key, label, prefix in RECORD_GROUPS:
        for proto in PROTOCOLS:
            record.add(f"{key}_{proto}")
            groups[f"{key}_{proto}"] = (f"{label}, {PROTOCOLS[proto]} protocol",
                                        [f"{S}/{prefix}_{proto}_seed{k}" for k in range(3)])
    # a record group that a later round chose (the same runs as a round's rows) is listed once
    for key in record:
        if any(o not in record and groups[o][1] == groups[key][1] for o in groups):
            del groups[key]
    # seeds 3-4 of DCLS as published, on the CPU, for the record (commands45.sh)
    groups["dcls_pub5"] = ("DCLS (BPTT), published protocol, seeds 0-4 (0-2 on an H200, 3-4 on "
                           "the CPU, for the record)", GROUPS["dcls_pub"][1]
                           + [f"{S}/dcls_shd_pub_seed{k}" for k in (3, 4)])
    # and under the augmentation protocol (commands47.sh)
    groups["dcls_aug5"] = ("DCLS (BPTT), augmentation protocol, seeds 0-4 (1-2 on an H200, 0 and "
                           "3-4 on the CPU; 3-4 for the record)", GROUPS["dcls_aug"][1]
                           + [f"{S}/dcls_shd_aug_seed{k}" for k in (3, 4)])
    # DCLS's recipe at e-prop's budget (commands13.sh, commands14.sh): the equal-size pairs
    for key, (label, _, dirs) in zip(("dcls32k_pub", "dcls32k_aug"), SIZE_RUNS[2:]):
        groups[key] = (label.replace("32,480)", "32,480 parameters)"), dirs)
    out = ["# e-prop with delays against DCLS on SHD-repro", "",
           "Made by `python results/sota/table.py` (commands: results/gpu/command.sh, "
           "command2.sh, command3.sh, results/sota/commands.sh to commands48.sh). Test "
           "accuracy of the best-validation checkpoint, mean +- std over seeds; latency from "
           "best.pt (learned delays, 10 ms steps).", "",
           "| model | seeds done | params | val acc (%) | test acc (%) | latency (ms) | "
           "epochs |", "|---|---|---|---|---|---|---|"]
    summary = {}
    for key, (label, dirs) in groups.items():
        infos = [run_info(d) for d in dirs]
        done = [i for i in infos if i["finished"]]
        pending = [f"{Path(i['dir']).name}: {i['epochs_done']} epochs" for i in infos
                   if not i["finished"]]
        lat = sorted({i["latency"]["latency_ms"] for i in done})
        params = sorted({i["params"] for i in done})
        summary[key] = {"test": [i["test"] for i in done], "val": [i["val"] for i in done],
                        "params": params[0] if params else None,
                        "latency": max(lat) if lat else None}
        note = f" (unfinished: {', '.join(pending)})" if pending else ""
        out.append(
            f"| {label}{note} | {len(done)}/{len(infos)} | "
            f"{', '.join(f'{p:,}' for p in params) or '-'} | {mean_std(summary[key]['val'])} | "
            f"{mean_std(summary[key]['test'])} | "
            f"{'-'.join(f'{x:g}' for x in lat) or '-'} | "
            f"{', '.join(sorted({str(i['epochs']) for i in done})) or '-'} |")
    out += ["", "## The paper's comparison", "",
            "The difference's standard error is sqrt(s_e^2 / n_e + s_d^2 / n_d) over the "
            "seeds' test accuracies (sample std s, n seeds).", "",
            "| e-prop | DCLS | test acc difference (points) | its std error | size ratio | "
            "latency |", "|---|---|---|---|---|---|"]
    pairs = [("eprop_pub", "dcls_pub"), ("eprop_aug", "dcls_aug"), ("eprop_aug", "dcls_pub")]
    if ch is not None:
        pairs += [("eprop_recipe_pub", "dcls_pub"), ("eprop_recipe_aug", "dcls_aug"),
                  ("eprop_recipe_aug", "dcls_pub")]
    if final is not None:
        pairs += [("eprop_final_pub", "dcls_pub"), ("eprop_final_aug", "dcls_aug"),
                  ("eprop_final_pub", "dcls32k_pub"), ("eprop_final_aug", "dcls32k_aug")]
    if "eprop_r34_pub" in groups:
        pairs += [("eprop_r34_pub", "dcls_pub"), ("eprop_r34_aug", "dcls_aug")]
    for n, _ in wins[:-1]:
        pairs += [(f"eprop_r{n}_pub", "dcls_pub"), (f"eprop_r{n}_aug", "dcls_aug")]
    pairs += [("eprop_rdsum_pub", "dcls_pub"), ("eprop_rdsum_aug", "dcls_aug"),
              ("eprop_rdsum_pub", "dcls32k_pub"), ("eprop_rdsum_aug", "dcls32k_aug"),
              ("eprop_ema_pub", "dcls_pub"), ("eprop_ema_aug", "dcls_aug"),
              ("eprop_idrop_pub", "dcls_pub"), ("eprop_idrop_aug", "dcls_aug"),
              ("eprop_rmax10_pub", "dcls_pub"), ("eprop_rmax10_aug", "dcls_aug"),
              ("eprop_nord_pub", "dcls_pub"), ("eprop_nord_aug", "dcls_aug")]
    pairs += [("eprop_r20x5_pub", "dcls_pub"), ("eprop_r22x5_pub", "dcls_pub"),
              ("eprop_r22x5_aug", "dcls_aug"), ("eprop_r22x5_pub", "dcls_pub5"),
              ("eprop_r22x5_aug", "dcls_aug5"),
              ("eprop_r22rmax10_pub", "dcls_pub"), ("eprop_r22nord_pub", "dcls_pub"),
              ("eprop_r22rmax10_aug", "dcls_aug"), ("eprop_r22nord_aug", "dcls_aug")]
    pairs = [(e, d) for e, d in pairs if e in groups]  # record groups listed once
    for e, d in pairs:
        se, sd = summary[e], summary[d]
        if not se["test"] or not sd["test"]:
            out.append(f"| {groups[e][0]} | {groups[d][0]} | not finished | - | - | - |")
            continue
        diff = (statistics.mean(se["test"]) - statistics.mean(sd["test"])) * 100
        err = "-"
        if len(se["test"]) > 1 and len(sd["test"]) > 1:
            var = sum(statistics.variance(s["test"]) / len(s["test"]) for s in (se, sd))
            err = f"{100 * math.sqrt(var):.2f}"
        ratio = sd["params"] / se["params"]
        lower = 1 - se["latency"] / sd["latency"]
        out.append(f"| {groups[e][0]} | {groups[d][0]} | {diff:+.2f} | {err} | "
                   f"{ratio:.2f}x smaller | "
                   f"{se['latency']:g} vs {sd['latency']:g} ms ({lower:.0%} lower) |")
    out += ["", "## e-prop recipe search (~32k parameters, chosen on validation only)", "",
            "Augmentation protocol, seed 0; validation = the held-out training speakers. "
            "Test accuracy is listed for the record, not used to choose. Rounds 1 and 2: one "
            "change each to the base recipe.", "",
            "| probe | params | val acc | test acc | best epoch |", "|---|---|---|---|---|"]
    for label, d in PROBES.items():
        i = run_info(d)
        if not i["finished"]:
            out.append(f"| {label} | - | unfinished ({i['epochs_done']} epochs) | - | - |")
            continue
        out.append(f"| {label} | {i['params']:,} | {i['val']:.4f} | {i['test']:.4f} | "
                   f"{i['best_epoch']} |")
    if ch is not None:
        out += ["", ch[0]]
    size = {f"size{i}": (label, dirs)
            for i, (label, _, dirs) in enumerate(SIZE_RUNS[:2] + DCLS_ABLATIONS)}
    out += speaker_section({**groups, **size})
    out += r3_lines + r4_lines + final_lines + round_lines + other_pairs_section()
    out += size_section()
    text = "\n".join(out) + "\n"
    (ROOT / "results/sota/TABLE.md").write_text(text)
    figure(groups, summary)
    headline_figure(groups, summary)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
