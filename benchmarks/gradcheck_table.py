"""How exactly e-prop's updates match BPTT's gradients: ``delayprop gradcheck`` on the
standard set of small networks, as one JSON record and one markdown table.

Usage (from the repository root)::

    python benchmarks/gradcheck_table.py --json results/gradcheck.json --md docs/benchmarks.md

Each case runs ``delayprop gradcheck <COMMON> <flags> --json`` (a random network; COMMON: 32
neurons per hidden layer, 20 inputs, 5 classes, T = 50, batch 8, float64, seed 0) and keeps,
per parameter, the relative error and cosine similarity of the e-prop update to the BPTT
(autograd) gradient. ``--md`` writes the block ``gradcheck`` of the file (as ``bench.py
--md`` does: only that block is replaced in an existing file). The cases take about half a
minute; the numbers do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from datetime import datetime, timezone

from bench import check_md_target, write_json, write_md

# name, what the network is, flags, what e-prop should give
CASES = [
    ("ff1_smooth", "1 feedforward layer, smooth delays", "--mode smooth --delays syn,ax",
     "exact"),
    ("ff1_hard", "1 feedforward layer, hard delays", "--mode hard --delays syn,ax", "exact"),
    ("ff1_hard_kappa", "1 feedforward layer, leaky readout (kappa 0.9), time-mean loss",
     "--mode hard --delays syn,ax --kappa 0.9 --loss mean", "exact"),
    ("ff1_readout_delays", "1 feedforward layer, learned readout delays, kappa 0.9",
     "--mode hard --delays syn,out --kappa 0.9", "exact"),
    ("ff2_hard", "2 feedforward layers", "--layers 2 --mode hard --delays syn,ax",
     "last layer and readout exact; first layer approximate"),
    ("ff2_readout_delays", "2 feedforward layers, learned readout delays, kappa 0.9",
     "--layers 2 --mode hard --delays syn,out --kappa 0.9",
     "last layer and readout exact; first layer approximate"),
    ("rec1_hard", "1 recurrent layer, recurrent delays",
     "--recurrent --mode hard --delays syn,ax,rec", "readout exact; hidden layer approximate"),
    ("rec1_hard_kappa", "1 recurrent layer, recurrent delays, kappa 0.9, time-mean loss",
     "--recurrent --mode hard --delays syn,ax,rec --kappa 0.9 --loss mean",
     "readout exact; hidden layer approximate"),
]
COMMON = "--hidden 32 --inputs 20 --classes 5 --steps 50 --batch 8 --dtype float64 --seed 0"
EXACT = 1e-10  # relative error below this: equal up to float64 rounding


def run_case(flags: str) -> dict:
    cmd = [sys.executable, "-m", "delayprop", "gradcheck", *shlex.split(COMMON),
           *shlex.split(flags), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def markdown(report: dict) -> str:
    lines = [
        f"Command: `{report['command']}`"
        + (f" (record: `{report['json']}`)." if report.get("json") else "."),
        f"Every case: `delayprop gradcheck {report['common_flags']} <flags>`.",
        "",
        "| network | `delayprop gradcheck` flags | exact (rel. error < 1e-10): largest error | "
        "approximate: cosine similarity to BPTT |",
        "|---|---|---|---|",
    ]
    for c in report["cases"]:
        exact = {k: v for k, v in c["params"].items() if v["rel_err"] < EXACT}
        approx = {k: v for k, v in c["params"].items() if v["rel_err"] >= EXACT}
        ex = (f"{max(v['rel_err'] for v in exact.values()):.1e} ({len(exact)} of "
              f"{len(c['params'])} parameters)") if exact else "none"
        ap = ", ".join(f"`{k}` {v['cosine']:.3f}" for k, v in approx.items()) or "none"
        lines.append(f"| {c['what']} | `{c['flags']}` | {ex} | {ap} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default="", help="write the record here")
    ap.add_argument("--md", default="", help="write the markdown block 'gradcheck' here")
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    if args.md:
        check_md_target(args.md, "gradcheck")
    import torch

    report = {
        "command": shlex.join(["python", "benchmarks/gradcheck_table.py", *argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__, "json": args.json,
        "common_flags": COMMON,
        "cases": [],
    }
    for name, what, flags, expect in CASES:
        params = run_case(flags)
        report["cases"].append({"name": name, "what": what, "flags": flags, "expected": expect,
                                "params": params})
        print(f"{name}: " + ", ".join(f"{k} {v['rel_err']:.1e}" for k, v in params.items()),
              file=sys.stderr, flush=True)
    if args.json:
        write_json(args.json, report)
    body = markdown(report)
    if args.md:
        write_md(args.md, "gradcheck", body)
    print(body, end="")


if __name__ == "__main__":
    main()
