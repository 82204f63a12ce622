"""Running an experiment: what is finished is skipped, what is partial resumed, what is missing
trained; on this machine (one process, or ``jobs`` processes) or on a Ray cluster.

The unit of work is :func:`execute`: train one run in its folder (resuming its checkpoint)
and return its record. The driver writes every returned record to
``<records>/<experiment>.jsonl`` as soon as the run ends, so an interrupted experiment keeps
what finished, and a second ``run`` continues where the first stopped. On a cluster the record
travels back to the driver: run folders (checkpoints) stay where the worker wrote them.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from delayprop.errors import ConfigError

from .records import load_records, record_from_run_dir, records_path, save_records
from .spec import RunSpec

# status of a run
DONE, COLLECT, PARTIAL, MISSING, CHANGED = "done", "collect", "partial", "missing", "changed"


@dataclass
class Planned:
    spec: RunSpec
    status: str
    note: str = ""


@functools.lru_cache(maxsize=1)
def _model_defaults() -> dict[str, Any]:
    """The defaults of every [model] option (NetConfig's fields)."""
    import dataclasses

    from delayprop.layers import NetConfig

    return {f.name: f.default for f in dataclasses.fields(NetConfig)
            if f.default is not dataclasses.MISSING}


def _config_change(recorded: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """Options (``section.key``) that change results in which two configurations differ (the
    run's ``name`` and runtime options such as the device do not count)."""
    from delayprop.train import config_difference

    def complete(cfg: dict[str, Any]) -> dict[str, Any]:
        # a model option a configuration leaves out takes the network's default
        given = {k: v for k, v in cfg.get("model", {}).items() if v is not None}
        return {**cfg, "model": {**_model_defaults(), **given}}

    return [d for d in config_difference(complete(recorded), complete(wanted)) if d != "name"]


def status_of(specs: list[RunSpec], records_dir: str | os.PathLike) -> list[Planned]:
    """What each run needs: ``done`` (a record with the same configuration), ``collect``
    (its folder has finished: only the record is missing), ``partial`` (a checkpoint to
    resume), ``missing``, or ``changed`` (a record or folder of this run with another
    configuration)."""
    import json

    from delayprop.train import CHECKPOINT, CONFIG, FINAL

    recs: dict[str, dict[str, dict[str, Any]]] = {}
    out = []
    for s in specs:
        if s.experiment not in recs:
            recs[s.experiment] = load_records(records_path(records_dir, s.experiment))
        rec = recs[s.experiment].get(s.run_id)
        if rec is not None:
            diff = _config_change(rec["config"], s.cfg)
            out.append(Planned(s, CHANGED if diff else DONE,
                               f"recorded with another {', '.join(diff)}" if diff else ""))
            continue
        cfg_file = s.run_dir / CONFIG
        if cfg_file.exists():
            try:
                diff = _config_change(json.loads(cfg_file.read_text()), s.cfg)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{cfg_file}: unreadable ({exc})") from None
            if diff:
                out.append(Planned(s, CHANGED, f"{s.run_dir} holds another "
                                   f"{', '.join(diff)}"))
                continue
        if (s.run_dir / FINAL).exists():
            out.append(Planned(s, COLLECT))
        elif (s.run_dir / CHECKPOINT).exists():
            out.append(Planned(s, PARTIAL))
        else:
            out.append(Planned(s, MISSING))
    return out


def execute(spec: RunSpec, progress: bool = False, log_file: str | None = None
            ) -> dict[str, Any]:
    """Train one run in ``spec.run_dir`` (resuming its checkpoint) and return its record.

    With ``log_file`` the process's stdout and stderr go to that file (parallel runs)."""
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    from delayprop.train import CHECKPOINT, FINAL, train

    run_dir = Path(spec.run_dir)
    if not (run_dir / FINAL).exists():
        train(spec.cfg, run_dir, resume=(run_dir / CHECKPOINT).exists(), progress=progress,
              plots=False)
    return record_from_run_dir(run_dir, experiment=spec.experiment, run=spec.run_id,
                               entry=spec.entry, protocol=spec.protocol, seed=spec.seed,
                               config_file=spec.config_file, source=str(spec.run_dir))


def _execute_in_child(spec: RunSpec, log_file: str) -> dict[str, Any]:
    return execute(spec, progress=False, log_file=log_file)


def _report(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _summary(rec: dict[str, Any]) -> str:
    f = rec["final"]
    test = f.get("test_acc")
    t = f"test {100 * test:.2f}%" if isinstance(test, (int, float)) else "no test"
    return (f"val {100 * f.get('val_acc', float('nan')):.2f}% {t} "
            f"({f.get('wall_s', 0) / 60:.1f} min)")


def run_experiment(
    planned: list[Planned], records_dir: str | os.PathLike, *, jobs: int = 1,
    ray_address: str | None = None, progress: bool = True,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every planned run that is not ``done`` and save the records; returns the new
    records. ``changed`` runs are refused (the caller decides what to do with them)."""
    changed = [p for p in planned if p.status == CHANGED]
    if changed:
        raise ConfigError(
            "these runs exist with another configuration: " + "; ".join(
                f"{p.spec.run_id} ({p.note})" for p in changed[:5])
            + ("; ..." if len(changed) > 5 else "")
            + ". Restore the configuration, or move the run folders away and delete their "
            "records (results/records/<experiment>.jsonl, one line per run) to train them anew")
    todo = [p.spec for p in planned if p.status != DONE]
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    new: list[dict[str, Any]] = []

    def keep(rec: dict[str, Any]) -> None:
        save_records(records_path(records_dir, rec["experiment"]), [rec])
        new.append(rec)
        if on_record:
            on_record(rec)

    if not todo:
        return new
    t0 = time.time()
    if ray_address is not None:
        _run_ray(todo, ray_address, keep)
    elif jobs == 1:
        for i, s in enumerate(todo):
            _report(f"[{i + 1}/{len(todo)}] {s.run_id} -> {s.run_dir}")
            rec = execute(s, progress=progress)
            keep(rec)
            _report(f"[{i + 1}/{len(todo)}] {s.run_id}: {_summary(rec)}")
    else:
        _run_local_pool(todo, jobs, keep, progress)
    _report(f"{len(new)} run(s) finished in {(time.time() - t0) / 60:.1f} min")
    return new


def _log_file(s: RunSpec) -> str:
    return str(Path(s.run_dir).parent / f"{s.run_id}.log")


def _run_local_pool(todo: list[RunSpec], jobs: int, keep: Callable, progress: bool) -> None:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    from delayprop.progress import progress_bar

    ctx = mp.get_context("spawn")
    bar = progress_bar(total=len(todo), desc="runs", unit="run", enabled=progress, leave=True)
    errors = []
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        pending = {}
        for s in todo:
            _report(f"queued {s.run_id} (log: {_log_file(s)})")
            pending[pool.submit(_execute_in_child, s, _log_file(s))] = s
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in done:
                s = pending.pop(fut)
                try:
                    rec = fut.result()
                except Exception as exc:  # noqa: BLE001 - reported, the others go on
                    errors.append(f"{s.run_id}: {exc} (log: {_log_file(s)})")
                    _report(f"failed {s.run_id}: {exc} (log: {_log_file(s)})")
                else:
                    keep(rec)
                    _report(f"finished {s.run_id}: {_summary(rec)}")
                bar.update(1)
    bar.close()
    if errors:
        raise ConfigError(f"{len(errors)} of {len(todo)} run(s) failed: " + "; ".join(errors))


def _run_ray(todo: list[RunSpec], address: str, keep: Callable) -> None:
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs the ray package: pip install 'delayprop[ray]'") from None
    import dataclasses

    init_kw: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
    if address != "local":
        init_kw["address"] = address
    started = not ray.is_initialized()
    try:
        ray.init(**init_kw)
    except ConnectionError as exc:
        raise ConfigError(f"--ray {address}: no Ray cluster there ({exc}); start one with "
                          "`ray start --head`, or use --ray local") from None

    def as_absolute(s: RunSpec) -> RunSpec:
        cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in s.cfg.items()}
        dd = cfg["data"].get("data_dir")
        if dd and not Path(dd).is_absolute() and Path(dd).exists():
            cfg["data"]["data_dir"] = str(Path(dd).resolve())
        return dataclasses.replace(s, cfg=cfg, run_dir=Path(s.run_dir).resolve())

    remote = ray.remote(_execute_in_child)
    try:
        refs = {}
        for s in todo:
            threads = int(s.cfg["train"].get("threads") or 1)
            a = as_absolute(s)
            refs[remote.options(num_cpus=threads).remote(a, _log_file(a))] = s
            _report(f"submitted {s.run_id} to Ray")
        errors = []
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                s = refs.pop(ref)
                try:
                    rec = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - reported, the others go on
                    errors.append(f"{s.run_id}: {exc}")
                    _report(f"failed {s.run_id}: {exc}")
                else:
                    rec["source"] = str(s.run_dir)
                    keep(rec)
                    _report(f"finished {s.run_id} on Ray: {_summary(rec)}")
        if errors:
            raise ConfigError(f"{len(errors)} of {len(todo)} run(s) failed: "
                              + "; ".join(errors))
    finally:
        if started:
            ray.shutdown()
