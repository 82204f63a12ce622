"""``delayprop experiment``: experiments declared as data (``experiments/NAME.toml``), run and
tabled by one command.

  delayprop experiment list                      the experiments and how far each has run
  delayprop experiment run NAME --dry-run        the runs, each done / partial / missing
  delayprop experiment run NAME --jobs 2         train what is missing here, 2 processes
  delayprop experiment run NAME --ray auto       ... on a running Ray cluster
  delayprop experiment table [NAME ...]          results/results.csv, results/NAME.md,
                                                 results/NAME.png and the README table

A run that finished is skipped, one with a checkpoint resumed, so the same command continues
an interrupted experiment. Every finished run is kept as a compact record (configuration,
final numbers, per-epoch metrics, latency) in ``results/records/NAME.jsonl``; the table is
made from these records and from finished run folders under ``runs/NAME/``, so run folders
(checkpoints) need not be kept. ``experiment table NAME --runs DIR`` tables any folder of
``delayprop train`` runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from delayprop.errors import ConfigError


def _runtime(args: argparse.Namespace, parallel: bool) -> dict[str, dict[str, Any]]:
    train: dict[str, Any] = {}
    data: dict[str, Any] = {}
    if args.device:
        from delayprop.safety import check_device

        check_device(args.device)
        train["device"] = args.device
    if args.threads is not None:
        if args.threads < 0:
            raise ConfigError(f"--threads must be >= 0, got {args.threads}")
        train["threads"] = args.threads
    elif parallel:
        train["threads"] = 1  # one thread per run: runs, not threads, use the cores
    if args.data_dir:
        data["data_dir"] = args.data_dir
    return {"train": train, "data": data}


def _seeds(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds takes comma-separated integers, got {text!r}") from None


def _cmd_list(args: argparse.Namespace) -> int:
    from delayprop.experiments.records import load_records, records_path
    from delayprop.experiments.spec import list_experiments, load_experiment

    paths = list_experiments()
    if not paths:
        print("no experiments/ folder with *.toml files here")
        return 0
    from delayprop.experiments.runner import DONE, status_of
    from delayprop.experiments.spec import plan

    for p in paths:
        exp = load_experiment(str(p))
        planned = status_of(plan(exp, args.out), args.records)
        done = sum(1 for q in planned if q.status == DONE)
        extra = len(load_records(records_path(args.records, exp.name))) - done
        more = f" (+{extra} other)" if extra > 0 else ""
        print(f"{exp.name:12s} {done:4d}/{len(planned):<4d} runs done{more}  {exp.description}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from delayprop.experiments.runner import DONE, run_experiment, status_of
    from delayprop.experiments.spec import load_experiment, plan

    if args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    exp = load_experiment(args.name)
    parallel = args.jobs > 1 or args.ray is not None
    only = [s.strip() for s in args.only.split(",")] if args.only else None
    specs = plan(exp, args.out, _runtime(args, parallel), only=only, seeds=_seeds(args.seeds))
    planned = status_of(specs, args.records)
    counts: dict[str, int] = {}
    for p in planned:
        counts[p.status] = counts.get(p.status, 0) + 1
    if args.dry_run:
        for p in planned:
            note = f"  ({p.note})" if p.note else ""
            print(f"{p.status:8s} {p.spec.run_id:34s} {p.spec.config_file}{note}")
        print(f"{exp.name}: {len(planned)} runs: "
              + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
        return 0
    todo = sum(1 for p in planned if p.status != DONE)
    where = f"Ray ({args.ray})" if args.ray is not None else f"{args.jobs} local process(es)"
    print(f"{exp.name}: {len(planned)} runs, {todo} to do on {where}; records in "
          f"{Path(args.records) / (exp.name + '.jsonl')}", file=sys.stderr)
    run_experiment(planned, args.records, jobs=args.jobs, ray_address=args.ray,
                   progress=not args.quiet)
    if not args.no_table:
        _table([exp.name], args)
    return 0


def _table(names: list[str], args: argparse.Namespace) -> None:
    from delayprop.experiments import table as T
    from delayprop.experiments.records import load_records, record_from_run_dir, records_path
    from delayprop.experiments.spec import load_experiment, run_name
    from delayprop.train import FINAL

    all_rows = []
    tabled = set()
    for name in names:
        exp = None
        try:
            exp = load_experiment(name)
            name = exp.name
        except ConfigError:
            if not records_path(args.records, name).exists() and not getattr(args, "runs", None):
                raise
        recs = load_records(records_path(args.records, name))
        sources = [str(records_path(args.records, name))] if recs else []
        folders = []
        run_root = Path(args.runs) if getattr(args, "runs", None) else Path(args.out) / name
        # the experiment's run names -> (entry, protocol, seed), for folders without a record
        known = {run_name(e.name, pr, k): (e.name, pr, k) for e in (exp.entries if exp else [])
                 for pr in e.protocols or [""] for k in e.seeds}
        if run_root.is_dir():
            for final in sorted(run_root.rglob(FINAL)):
                run_dir = final.parent
                run_id = run_dir.name if run_dir != run_root else run_root.name
                if run_id in recs:
                    continue
                entry, protocol, seed = known.get(run_id, ("", "", None))
                recs[run_id] = record_from_run_dir(run_dir, experiment=name, run=run_id,
                                                   entry=entry, protocol=protocol, seed=seed)
                folders.append(run_id)
        if folders:
            sources.append(f"{len(folders)} run folder(s) under {run_root}")
        if not recs:
            print(f"{name}: no finished runs yet", file=sys.stderr)
            continue
        rows = [T.row_of(r, exp) for r in recs.values()]
        all_rows += rows
        tabled.add(name)
        groups = T.groups_of(rows, exp)
        out = Path(args.results)
        from delayprop.fileio import atomic_write_text

        atomic_write_text(out / f"{name}.md", T.summary_markdown(name, groups, exp, sources))
        fig = exp.figure if exp is not None and exp.figure else out / f"{name}.png"
        plot = exp is not None and not args.no_plots  # records alone: no figure
        if plot:
            T.figure(Path(fig), groups, f"{name}: test accuracy against latency")
        wrote = [str(out / f"{name}.md")] + ([str(fig)] if plot else [])
        if exp is not None and exp.readme and args.readme:
            block = T.readme_table(groups, exp, f"delayprop experiment table {name}")
            if T.update_readme(Path(args.readme), block):
                wrote.append(f"{args.readme} (table)")
        print(f"{name}: {len(rows)} runs in {len(groups)} groups; wrote {', '.join(wrote)}")
    if all_rows:
        csv_path = Path(args.results) / "results.csv"
        T.write_csv(csv_path, all_rows, tabled)
        print(f"wrote {csv_path}")


def _cmd_table(args: argparse.Namespace) -> int:
    from delayprop.experiments.spec import list_experiments

    names = list(args.names)
    if not names:
        names = [p.stem for p in list_experiments()]
        rec_dir = Path(args.records)
        if rec_dir.is_dir():
            names += sorted(p.stem for p in rec_dir.glob("*.jsonl") if p.stem not in names)
    if not names:
        raise ConfigError("no experiments to table (no experiments/*.toml, no records)")
    if args.runs and len(names) != 1:
        raise ConfigError("--runs tables one folder: give exactly one NAME for it")
    _table(names, args)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "experiment", help="run and table experiments declared in experiments/*.toml",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", metavar="ACTION")

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--out", default="runs", help="run folders: OUT/NAME/RUN (default runs)")
        q.add_argument("--records", default="results/records",
                       help="records folder (default results/records)")

    q = sub.add_parser("list", help="the experiments and how many runs each has recorded")
    common(q)
    q.set_defaults(func=_cmd_list)

    q = sub.add_parser("run", help="train what is missing, resume what is partial",
                       description="Train every run of the experiment that has no record; "
                       "resume runs with a checkpoint. Then write its table.")
    q.add_argument("name", metavar="NAME", help="experiment name (experiments/NAME.toml) or "
                   "path to an experiment file")
    q.add_argument("--dry-run", "-n", action="store_true", help="list the runs and what each "
                   "needs (done / collect / partial / missing / changed); train nothing")
    q.add_argument("--jobs", "-j", type=int, default=1, help="runs at a time on this machine, "
                   "each in its own process with one thread (default 1: in this process)")
    q.add_argument("--ray", metavar="ADDRESS", help="run on a Ray cluster: 'auto' (the "
                   "cluster this machine belongs to), HOST:PORT, or 'local' (start one here); "
                   "needs pip install 'delayprop[ray]'")
    q.add_argument("--only", help="comma-separated entry names to run")
    q.add_argument("--seeds", help="comma-separated seeds to run (default: the file's)")
    q.add_argument("--data-dir", help="dataset directory for every run")
    q.add_argument("--device", default="", help="cpu, cuda, cuda:N (default: the configs')")
    q.add_argument("--threads", type=int, default=None,
                   help="torch threads per run (default: 1 with --jobs > 1 or --ray)")
    q.add_argument("--no-table", action="store_true", help="do not write the table at the end")
    q.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    common(q)
    _table_opts(q)
    q.set_defaults(func=_cmd_run)

    q = sub.add_parser("table", help="write results/results.csv and the summaries",
                       description="Write results/results.csv (one row per run), "
                       "results/NAME.md (groups, t intervals, Welch differences), the figure and "
                       "the README table from the records and finished run folders.")
    q.add_argument("names", metavar="NAME", nargs="*",
                   help="experiments (default: every experiment and records file)")
    q.add_argument("--runs", help="table every finished run folder under this directory "
                   "(any `delayprop train` runs) as experiment NAME")
    common(q)
    _table_opts(q)
    q.set_defaults(func=_cmd_table)

    def no_action(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=no_action)


def _table_opts(q: argparse.ArgumentParser) -> None:
    q.add_argument("--results", default="results",
                   help="where results.csv and the summaries go (default results)")
    q.add_argument("--readme", default="README.md",
                   help="README whose table block to update ('' for none; default README.md)")
    q.add_argument("--no-plots", action="store_true", help="skip the figures")
