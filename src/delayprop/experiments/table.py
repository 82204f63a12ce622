"""The results table: one row per configuration, mean over its finished seeds.

``results.csv`` has exactly the columns :data:`CSV_COLUMNS` (accuracies as fractions, ``params``
the total count, ``test_std`` the sample standard deviation over seeds, ``nan`` for one seed,
``wall_s`` the mean training time of one run); ``RESULTS.md`` gets the same
table (plus weights / delays counts) between two marker lines, so text written around it
survives a re-run.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from .grid import RunSpec

CSV_COLUMNS = ("experiment", "method", "architecture", "delays", "params", "val_acc",
               "test_acc", "test_std", "seeds", "epochs", "wall_s")
BEGIN = "<!-- results-table: begin (written by `delayprop reproduce`) -->"
END = "<!-- results-table: end -->"


def describe(cfg: dict[str, Any]) -> tuple[str, str]:
    """(architecture, delays) of a configuration, e.g. ('ff 140-107-20', 'syn')."""
    m = cfg["model"]
    hidden = m.get("n_hidden", [128])
    hidden = [hidden] if isinstance(hidden, int) else list(hidden)
    rec = bool(m.get("recurrent", False))
    arch = ("rec " if rec else "ff ") + "-".join(
        str(v) for v in [m.get("n_in", cfg["data"]["channels"]), *hidden, m.get("n_out", 20)])
    if cfg["method"]["name"] == "dcls":
        return arch, "syn (DCLS)"
    kinds = [k for k, key in (("syn", "synaptic_delays"), ("ax", "axonal_delays"))
             if m.get(key, key == "synaptic_delays")]
    if rec and m.get("recurrent_delays", False):
        kinds.append("rec")
    return arch, "+".join(kinds) if kinds else "none"


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _std(xs: list[float]) -> float:
    """Sample standard deviation; NaN for fewer than two values (undefined)."""
    if len(xs) < 2:
        return float("nan")
    mu = _mean(xs)
    return math.sqrt(sum((x - mu) ** 2 for x in xs) / (len(xs) - 1))


def collect_rows(specs: list[RunSpec]) -> list[dict[str, Any]]:
    """One row per configuration over its finished seeds (runs without final.json are left
    out; a configuration with none is left out)."""
    from delayprop.train import FINAL

    by_name: dict[str, list[tuple[RunSpec, dict]]] = {}
    order: list[str] = []
    for s in specs:
        if s.name not in by_name:
            by_name[s.name] = []
            order.append(s.name)
        f = s.run_dir / FINAL
        if f.exists():
            by_name[s.name].append((s, json.loads(f.read_text())))
    rows = []
    for name in order:
        done = by_name[name]
        if not done:
            continue
        cfg = done[0][0].cfg
        arch, delays = describe(cfg)
        finals = [f for _, f in done]
        tests = [f["test_acc"] for f in finals if "test_acc" in f]
        rows.append({
            "experiment": name,
            "method": cfg["method"]["name"],
            "architecture": arch,
            "delays": delays,
            "params": finals[0]["params"]["total"],
            "weights": finals[0]["params"]["weights"],
            "delay_params": finals[0]["params"]["delays"],
            "val_acc": _mean([f["val_acc"] for f in finals]),
            "test_acc": _mean(tests) if tests else float("nan"),
            "test_std": _std(tests) if tests else float("nan"),
            "seeds": len(finals),
            "epochs": cfg["train"]["epochs"],
            "wall_s": _mean([f["wall_s"] for f in finals]),
            "best_epochs": [f["best_epoch"] for f in finals],
        })
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow([f"{r[c]:.1f}" if c == "wall_s" else _fmt(r[c]) for c in CSV_COLUMNS])
    return buf.getvalue()


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = ["experiment", "method", "architecture", "delays", "params (weights + delays)",
            "val acc", "test acc", "test std", "seeds", "epochs", "best epoch", "wall (min/run)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([
            r["experiment"], r["method"], r["architecture"], r["delays"],
            f"{r['params']:,} ({r['weights']:,} + {r['delay_params']:,})",
            f"{100 * r['val_acc']:.2f}%", f"{100 * r['test_acc']:.2f}%",
            "-" if math.isnan(r["test_std"]) else f"{100 * r['test_std']:.2f}",
            str(r["seeds"]), str(r["epochs"]),
            ", ".join(str(b) for b in r["best_epochs"]), f"{r['wall_s'] / 60:.1f}",
        ]) + " |")
    return "\n".join(lines)


def table_markers(grid: str = "must-show") -> tuple[str, str]:
    """The comment lines around a grid's table in RESULTS.md: one block per grid (the
    must-show grid keeps the original, unnamed markers)."""
    if grid == "must-show":
        return BEGIN, END
    return (f"<!-- results-table {grid}: begin (written by `delayprop reproduce`) -->",
            f"<!-- results-table {grid}: end -->")


def write_results(rows: list[dict[str, Any]], out: str | Path, command: str = "",
                  grid: str = "must-show") -> None:
    """Write ``<out>/results.csv`` and the table block of ``grid`` in ``<out>/RESULTS.md``
    (atomic; other grids' blocks are left as they are)."""
    from delayprop.fileio import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text_csv = csv_text(rows)
    # rows of other experiments already in the file (e.g. the DCLS runner's) are kept
    old_csv = out / "results.csv"
    if old_csv.exists():
        names = {r["experiment"] for r in rows}
        with open(old_csv, newline="") as f:
            kept = [r for r in csv.DictReader(f) if r.get("experiment") not in names]
        if kept:
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            for r in kept:
                w.writerow([r.get(c, "") for c in CSV_COLUMNS])
            text_csv += buf.getvalue()
    atomic_write_text(old_csv, text_csv)
    begin, end = table_markers(grid)
    block = [begin, ""]
    if command:
        block += [f"Written by `{command}`.", ""]
    block += [markdown_table(rows) if rows else "(no finished runs yet)", "", end]
    md = out / "RESULTS.md"
    text = md.read_text() if md.exists() else "# Results\n\n"
    if begin in text and end in text:
        pre, rest = text.split(begin, 1)
        post = rest.split(end, 1)[1]
        text = pre + "\n".join(block) + post
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(block) + "\n"
    atomic_write_text(md, text)
