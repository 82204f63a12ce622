"""The results table, made from run records (and from any finished run folders).

* ``results/results.csv``: one row per run, columns :data:`CSV_COLUMNS` (accuracies as
  fractions). Rows of experiments not tabled this time are kept, so tabling one experiment
  never drops another's rows.
* ``results/<experiment>.md``: per group (entry x protocol) the number of seeds, mean +- std
  (ddof 1) and the t-based 95% interval of the mean; for every ``[[compare]]`` pair of the
  experiment file, the difference of the means with Welch's t 95% interval.
* ``results/<experiment>.png`` (or the file's ``figure``): test accuracy against latency, one
  panel per protocol, seeds as dots, means with their t intervals.
* the README's table, between ``<!-- table:begin -->`` and ``<!-- table:end -->``, from the
  entries the experiment file lists under ``readme``.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import stats
from .spec import Experiment, group_name

CSV_COLUMNS = ("experiment", "run", "group", "config", "method", "protocol", "architecture",
               "delays", "params", "weights", "delay_params", "seed", "epochs", "best_epoch",
               "val_acc", "test_acc", "latency_ms", "wall_s", "device")
README_BEGIN = "<!-- table:begin -->"
README_END = "<!-- table:end -->"


def describe(cfg: dict[str, Any]) -> tuple[str, str]:
    """(architecture, delays) of a configuration, e.g. ('ff 140-100-20', 'syn+readout').

    Delays that are never updated (``train.delay_lr = 0``) read ``fixed syn``."""
    m = cfg["model"]
    hidden = m.get("n_hidden", [128])
    hidden = [hidden] if isinstance(hidden, int) else list(hidden)
    rec = bool(m.get("recurrent", False))
    n_in = m.get("n_in", cfg["data"].get("channels", "?"))
    arch = ("rec " if rec else "ff ") + "-".join(str(v) for v in [n_in, *hidden,
                                                                  m.get("n_out", 20)])
    if cfg["method"]["name"] == "dcls":
        return arch, "syn (DCLS)"
    kinds = [k for k, key in (("syn", "synaptic_delays"), ("ax", "axonal_delays"))
             if m.get(key, key == "synaptic_delays")]
    if rec and m.get("recurrent_delays", False):
        kinds.append("rec")
    if m.get("readout_delays", False):
        kinds.append("readout")
    if not kinds:
        return arch, "none"
    fixed = float(cfg["train"].get("delay_lr", 1.0)) == 0.0
    return arch, ("fixed " if fixed else "") + "+".join(kinds)


def row_of(rec: dict[str, Any], exp: Experiment | None = None) -> dict[str, Any]:
    cfg, f = rec["config"], rec["final"]
    arch, delays = describe(cfg)
    lat = rec.get("latency") or {}
    protocol = rec.get("protocol", "")
    group = group_name(rec["entry"], protocol)
    params = f.get("params", {})
    return {
        "experiment": rec["experiment"], "run": rec["run"], "group": group,
        "entry": rec["entry"],
        "config": rec.get("config_file") or cfg.get("name", ""),
        "method": cfg["method"]["name"],
        "protocol": exp.protocol_label(protocol) if exp and protocol else protocol,
        "protocol_key": protocol,
        "architecture": arch, "delays": delays,
        "params": params.get("total"), "weights": params.get("weights"),
        "delay_params": params.get("delays"),
        "seed": rec.get("seed"), "epochs": f.get("epochs"), "best_epoch": f.get("best_epoch"),
        "val_acc": f.get("val_acc"), "test_acc": f.get("test_acc"),
        "latency_ms": lat.get("latency_ms"), "wall_s": f.get("wall_s"),
        "device": rec.get("device", cfg["train"].get("device", "")),
    }


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}" if abs(v) >= 10 else f"{v:.6f}"
    return str(v)


def write_csv(path: Path, rows: list[dict[str, Any]], experiments: set[str]) -> None:
    """Write ``path`` with ``rows``; rows of other experiments already there are kept."""
    from delayprop.fileio import atomic_write_text

    kept: list[dict[str, str]] = []
    if path.exists():
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames and list(reader.fieldnames) == list(CSV_COLUMNS):
                kept = [r for r in reader if r.get("experiment") not in experiments]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    out = [[r.get(c, "") for c in CSV_COLUMNS] for r in kept]
    out += [[_cell(r[c]) for c in CSV_COLUMNS] for r in rows]
    out.sort(key=lambda r: (r[0], r[1]))
    w.writerows(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, buf.getvalue())


@dataclass
class Group:
    key: str           # entry_protocol
    entry: str
    label: str
    protocol: str      # label
    protocol_key: str
    rows: list[dict[str, Any]]

    def values(self, col: str = "test_acc") -> list[float]:
        return [float(r[col]) for r in self.rows if isinstance(r.get(col), (int, float))]

    def first(self, col: str) -> Any:
        return self.rows[0].get(col) if self.rows else None


def groups_of(rows: list[dict[str, Any]], exp: Experiment | None) -> list[Group]:
    """Rows grouped by entry and protocol, in the experiment file's order."""
    by: dict[str, Group] = {}
    for r in rows:
        g = by.get(r["group"])
        if g is None:
            label = r["entry"]
            if exp is not None:
                try:
                    label = exp.entry(r["entry"]).label
                except KeyError:
                    pass
            g = by[r["group"]] = Group(r["group"], r["entry"], label, r["protocol"],
                                       r["protocol_key"], [])
        g.rows.append(r)
    order = {e.name: i for i, e in enumerate(exp.entries)} if exp else {}
    porder = {p: i for i, p in enumerate(exp.protocols)} if exp else {}
    return sorted(by.values(), key=lambda g: (order.get(g.entry, len(order)), g.entry,
                                              porder.get(g.protocol_key, len(porder)),
                                              g.protocol_key))


def _pct(x: float) -> str:
    return "-" if x is None or math.isnan(x) else f"{100 * x:.2f}"


def _count(n: Any) -> str:
    return "-" if n is None else f"{n:,}"


def _ms(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.0f}"


def _mean_std(vals: list[float]) -> str:
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{100 * vals[0]:.2f}"
    return f"{100 * stats.mean(vals):.2f} +- {100 * stats.std(vals):.2f}"


def _interval(iv: stats.Interval) -> str:
    if math.isnan(iv.low):
        return "-"
    return f"[{100 * iv.low:+.2f}, {100 * iv.high:+.2f}]" if iv.low < 0 < iv.high or \
        iv.estimate < 0 else f"[{100 * iv.low:.2f}, {100 * iv.high:.2f}]"


def comparisons(groups: list[Group], exp: Experiment | None) -> list[dict[str, Any]]:
    """For each ``[[compare]]`` pair and protocol both groups have: the difference of the
    mean test accuracies with Welch's t 95% interval."""
    if exp is None:
        return []
    out = []
    for a, b in exp.compare:
        for ga in groups:
            if ga.entry != a:
                continue
            for gb in groups:
                if gb.entry == b and gb.protocol_key == ga.protocol_key:
                    iv = stats.welch_interval(ga.values(), gb.values())
                    out.append({"a": ga, "b": gb, "interval": iv})
    return out


def summary_markdown(name: str, groups: list[Group], exp: Experiment | None,
                     sources: list[str]) -> str:
    lines = [f"# Experiment `{name}`", ""]
    if exp is not None and exp.description:
        lines += [exp.description, ""]
    lines += [f"Made by `delayprop experiment table {name}` from {', '.join(sources)}. "
              "Test accuracy of the model chosen on validation accuracy (`best.pt`), in %; "
              "mean +- sample standard deviation over seeds (n), the 95% interval of the "
              "mean from Student's t with n - 1 degrees of freedom; latency of the chosen "
              "model (longest learned delay path plus one step per layer), mean over seeds.",
              "", "| entry | protocol | n | params | latency (ms) | val acc | test acc | "
              "95% interval | epochs | device |", "|---|---|---|---|---|---|---|---|---|---|"]
    for g in groups:
        tv = g.values()
        lat = g.values("latency_ms")
        devices = sorted({str(r["device"]) for r in g.rows})
        iv = stats.mean_interval(tv)
        lines.append(
            f"| {g.label} | {g.protocol or '-'} | {len(tv)} | "
            f"{_count(g.first('params'))} | {_ms(stats.mean(lat))} | "
            f"{_pct(stats.mean(g.values('val_acc')))} | {_mean_std(tv)} | "
            f"{_interval(iv)} | {g.first('epochs')} | {', '.join(devices)} |")
    comps = comparisons(groups, exp)
    if comps:
        lines += ["", "## Differences", "",
                  "Difference of mean test accuracies (a - b, percentage points) with Welch's "
                  "t 95% interval (unequal variances, Welch-Satterthwaite degrees of freedom).",
                  "", "| a | b | protocol | n (a, b) | a - b | 95% interval | df |",
                  "|---|---|---|---|---|---|---|"]
        for c in comps:
            a, b, iv = c["a"], c["b"], c["interval"]
            lines.append(f"| {a.label} | {b.label} | {a.protocol or '-'} | "
                         f"{len(a.values())}, {len(b.values())} | {100 * iv.estimate:+.2f} | "
                         f"{_interval(iv)} | "
                         + ("-" if math.isnan(iv.df) else f"{iv.df:.1f}") + " |")
    lines += ["", "## Runs", "", "| run | seed | val acc | test acc | best epoch | latency (ms) "
              "| wall (min) | device |", "|---|---|---|---|---|---|---|---|"]
    for g in groups:
        for r in sorted(g.rows, key=lambda r: r["seed"] if r["seed"] is not None else -1):
            lat = r["latency_ms"]
            lines.append(f"| {r['run']} | {r['seed']} | {_pct(r['val_acc'])} | "
                         f"{_pct(r['test_acc'])} | {r['best_epoch']} | "
                         f"{_ms(lat)} | "
                         f"{(r['wall_s'] or 0) / 60:.1f} | {r['device']} |")
    return "\n".join(lines) + "\n"


def readme_table(groups: list[Group], exp: Experiment, command: str) -> str:
    """The README's table: one row per ``readme`` entry, a column per protocol."""
    prots = []
    for g in groups:
        if g.protocol_key not in [p for p, _ in prots]:
            prots.append((g.protocol_key, g.protocol))
    head = ["model", "params", "latency (ms)"] + [f"test acc, {lab} (%)" for _, lab in prots]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for entry in exp.readme:
        gs = {g.protocol_key: g for g in groups if g.entry == entry}
        if not gs:
            continue
        any_g = next(iter(gs.values()))
        lat = [v for g in gs.values() for v in g.values("latency_ms")]
        cells = [any_g.label, _count(any_g.first("params")), _ms(stats.mean(lat))]
        for p, _ in prots:
            g = gs.get(p)
            if g is None or not g.values():
                cells.append("-")
            else:
                iv = stats.mean_interval(g.values())
                ci = "" if math.isnan(iv.low) else \
                    f" [{100 * iv.low:.1f}, {100 * iv.high:.1f}]"
                cells.append(f"{100 * iv.estimate:.1f}{ci} (n={len(g.values())})")
        lines.append("| " + " | ".join(cells) + " |")
    comps = [c for c in comparisons(groups, exp)
             if c["a"].entry in exp.readme and c["b"].entry in exp.readme]
    text = "\n".join(lines) + "\n\nMean test accuracy with its t-based 95% interval over n seeds."
    pairs: list[tuple[str, str]] = []
    for c in comps:
        if (c["a"].entry, c["b"].entry) not in pairs:
            pairs.append((c["a"].entry, c["b"].entry))
    if pairs:
        head = ["difference (points)"] + [lab for _, lab in prots]
        diff = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for a, b in pairs:
            cells = []
            for p, _ in prots:
                c = next((c for c in comps if c["a"].entry == a and c["b"].entry == b
                          and c["a"].protocol_key == p), None)
                iv = c["interval"] if c else None
                cells.append("-" if iv is None or math.isnan(iv.low) else
                             f"{100 * iv.estimate:+.1f} [{100 * iv.low:+.1f}, "
                             f"{100 * iv.high:+.1f}]")
            la, lb = exp.entry(a).label, exp.entry(b).label
            diff.append(f"| {la} - {lb} | " + " | ".join(cells) + " |")
        text += (" Differences of the means with Welch's 95% interval:\n\n"
                 + "\n".join(diff))
    return f"{text}\n\nRegenerate with `{command}`."


def update_readme(readme: Path, block: str) -> bool:
    """Replace the README's table block; False if the README has no markers."""
    from delayprop.fileio import atomic_write_text

    if not readme.exists():
        return False
    text = readme.read_text(encoding="utf-8")
    if README_BEGIN not in text or README_END not in text:
        return False
    pre, rest = text.split(README_BEGIN, 1)
    post = rest.split(README_END, 1)[1]
    new = f"{pre}{README_BEGIN}\n{block}\n{README_END}{post}"
    if new != text:
        atomic_write_text(readme, new)
    return True


def figure(path: Path, groups: list[Group], title: str) -> None:
    """Test accuracy against latency, a panel per protocol."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from delayprop.fileio import atomic_open

    prots = []
    for g in groups:
        if g.protocol_key not in prots:
            prots.append(g.protocol_key)
    fig, axes = plt.subplots(1, len(prots), figsize=(5.2 * len(prots), 4.2), squeeze=False,
                             sharey=True, sharex=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    entries = []
    for g in groups:
        if g.entry not in entries:
            entries.append(g.entry)
    for ax, p in zip(axes[0], prots):
        for g in groups:
            if g.protocol_key != p or not g.values():
                continue
            c = colors[entries.index(g.entry) % len(colors)]
            lat = [r["latency_ms"] for r in g.rows if isinstance(r["test_acc"], (int, float))]
            lat = [v if v is not None else math.nan for v in lat]
            acc = [100 * v for v in g.values()]
            ax.scatter(lat, acc, s=14, color=c, alpha=0.45, linewidths=0)
            iv = stats.mean_interval(g.values())
            x = stats.mean([v for v in lat if not math.isnan(v)]) if any(
                not math.isnan(v) for v in lat) else math.nan
            yerr = None if math.isnan(iv.low) else [[100 * (iv.estimate - iv.low)],
                                                    [100 * (iv.high - iv.estimate)]]
            ax.errorbar([x], [100 * iv.estimate], yerr=yerr, fmt="o", color=c, capsize=4,
                        label=f"{g.label} (n={len(acc)})")
        ax.set_title(groups[[g.protocol_key for g in groups].index(p)].protocol or p)
        ax.set_xlabel("latency of the chosen model (ms)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("test accuracy (%)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
