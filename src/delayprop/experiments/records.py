"""Run records: what the results table and the figures need of a finished run, kept compactly
(``results/records/<experiment>.jsonl``, one JSON object per line, sorted by run) so that run
folders, with their checkpoints, can stay out of version control.

A record holds the run's resolved configuration, ``final.json`` (final numbers), the per-epoch
``metrics.jsonl``, the inference latency of its selected model (``best.pt``, learned delays)
and where it came from. :func:`record_from_run_dir` makes one from any run folder written by
``delayprop train``.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any, Iterable

from delayprop.errors import ConfigError

RECORD_VERSION = 1


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc})") from None


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: line {i + 1} is not JSON ({exc})") from None
    return out


def latency_of(run_dir: Path) -> dict[str, Any] | None:
    """Latency of the run's selected model (``best.pt``) as ``delayprop eval`` reports it;
    None if the run folder holds no ``best.pt``."""
    from delayprop.latency import network_latency
    from delayprop.train import BEST, load_checkpoint, model_from_checkpoint

    best = run_dir / BEST
    if not best.exists():
        return None
    ckpt = load_checkpoint(best)
    model = model_from_checkpoint(ckpt, "cpu")
    lat = network_latency(model.net, float(ckpt["config"]["data"]["dt"]) * 1000.0)
    return {k: (float(v) if isinstance(v, float) else v) for k, v in lat.items()
            if isinstance(v, (int, float, str, bool)) or v is None}


def record_from_run_dir(run_dir: str | os.PathLike, *, experiment: str, run: str,
                        entry: str = "", protocol: str = "", seed: int | None = None,
                        config_file: str = "", source: str = "") -> dict[str, Any]:
    """The record of a finished run folder (``final.json``, ``config.json``,
    ``metrics.jsonl``, ``best.pt`` for the latency)."""
    from delayprop.train import CONFIG, FINAL, METRICS

    run_dir = Path(run_dir)
    if not (run_dir / FINAL).exists():
        raise ConfigError(f"{run_dir}: no {FINAL}: the run has not finished")
    cfg = _read_json(run_dir / CONFIG)
    final = _read_json(run_dir / FINAL)
    if seed is None:
        seed = int(cfg.get("train", {}).get("seed", 0))
    return {
        "version": RECORD_VERSION,
        "experiment": experiment,
        "run": run,
        "entry": entry or cfg.get("name", run),
        "protocol": protocol,
        "seed": seed,
        "config_file": config_file,
        "config": cfg,
        "final": final,
        "metrics": read_metrics(run_dir / METRICS),
        "latency": latency_of(run_dir),
        "device": str(cfg.get("train", {}).get("device", "cpu")),
        "host": platform.node(),
        "source": source or str(run_dir),
    }


def records_path(records_dir: str | os.PathLike, experiment: str) -> Path:
    return Path(records_dir) / f"{experiment}.jsonl"


def load_records(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Records of one file by run name (an absent file: none)."""
    path = Path(path)
    if not path.exists():
        return {}
    out: dict[str, dict[str, Any]] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: line {i + 1} is not a JSON record ({exc})") from None
        if not isinstance(rec, dict) or "run" not in rec or "final" not in rec:
            raise ConfigError(f"{path}: line {i + 1} is not a run record (needs 'run' and "
                              "'final')")
        out[rec["run"]] = rec
    return out


def save_records(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> None:
    """Add or replace records (by run name) in ``path``, under a lock, written atomically."""
    from delayprop.fileio import atomic_write_text, lock_fd

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.parent / f".{path.name}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        lock_fd(fd, blocking=True)
        have = load_records(path)
        for r in records:
            have[r["run"]] = r
        text = "".join(json.dumps(have[k], sort_keys=True, separators=(",", ":")) + "\n"
                       for k in sorted(have))
        atomic_write_text(path, text)
    finally:
        os.close(fd)
