"""``delayprop reproduce``: train a grid of configurations and write the results table.

Runs every configuration of the grid (``paper``: {ff, rec} x {weights, syn, ax, both} x
{eprop, bptt}; ``must-show``: the SHD runs (a)-(d)) for ``--seeds`` seeds in
``<out>/<dataset>/<name>/seed<k>``, one after another. Finished runs are skipped and killed
ones resumed, so re-running the same command continues where it stopped. Then it writes
``<out>/results.csv`` and the table in ``<out>/RESULTS.md`` from every finished run.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from delayprop.experiments import collect_rows, grid_configs, run_grid, write_results
    from delayprop.experiments.grid import plan

    paths = grid_configs(args.grid, args.configs)
    if args.only:
        wanted = {n.strip() for n in args.only.split(",") if n.strip()}
        known = {p.stem for p in paths}
        unknown = sorted(wanted - known)
        if unknown:
            from delayprop.errors import ConfigError

            raise ConfigError(f"--only: not in grid {args.grid}: {', '.join(unknown)}")
        paths = [p for p in paths if p.stem in wanted]
    overrides: dict[str, dict] = {"train": {}, "data": {}}
    if args.epochs:
        overrides["train"]["epochs"] = args.epochs
    if args.threads:
        overrides["train"]["threads"] = args.threads
    if args.device:
        overrides["train"]["device"] = args.device
    if args.data_dir:
        overrides["data"]["data_dir"] = args.data_dir
    if args.collect:
        specs = plan(paths, args.seeds, args.out, overrides)
    else:
        specs = run_grid(paths, args.seeds, args.out, overrides, progress=not args.quiet,
                         plots=not args.no_plots)
    # the table covers the whole grid, including runs of other invocations (e.g. --only)
    all_specs = plan(grid_configs(args.grid, args.configs), args.seeds, args.out, overrides)
    rows = collect_rows(all_specs)
    command = "delayprop reproduce " + " ".join(shlex.quote(a) for a in sys.argv[2:]) \
        if len(sys.argv) > 1 and sys.argv[1] == "reproduce" else ""
    write_results(rows, args.out, command, grid=args.grid)
    done = sum(1 for s in specs if (s.run_dir / "final.json").exists())
    print(f"{done}/{len(specs)} runs finished; wrote {Path(args.out) / 'results.csv'} and "
          f"{Path(args.out) / 'RESULTS.md'} ({len(rows)} rows)")
    for r in rows:
        print(f"  {r['experiment']:28s} {r['params']:7d} params  val {r['val_acc']:.4f}  "
              f"test {r['test_acc']:.4f} +- {r['test_std']:.4f} ({r['seeds']} seeds)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from delayprop.experiments.grid import GRIDS

    p = subparsers.add_parser(
        "reproduce", help="train a grid of configurations and write results/",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--grid", choices=tuple(GRIDS), default="must-show")
    p.add_argument("--epochs", type=int, default=0, help="epochs per run (default: the configs')")
    p.add_argument("--seeds", type=int, default=1, help="seeds per configuration")
    p.add_argument("--data-dir", help="dataset directory")
    p.add_argument("--out", default="results", help="results folder (default: results)")
    p.add_argument("--configs", help="configuration folder (default: configs/ of the checkout)")
    p.add_argument("--only", help="comma-separated configuration names of the grid to run")
    p.add_argument("--collect", action="store_true",
                   help="train nothing; write the table from the finished runs")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    p.add_argument("--device", default="", help="cpu or cuda (default: the configs')")
    p.add_argument("--no-plots", action="store_true", help="skip the figures of each run")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)
