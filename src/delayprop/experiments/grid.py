"""Grids of configurations and their runs (one run directory per configuration and seed)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from delayprop.errors import ConfigError

ARCHS = ("ff", "rec")
DELAYS = ("weights", "syn", "ax", "both")
METHODS = ("eprop", "bptt")

GRIDS: dict[str, list[str]] = {
    "paper": [f"{a}_{d}_{m}" for a in ARCHS for d in DELAYS for m in METHODS],
    "must-show": ["shd_a_ff_syn_eprop", "shd_b_ff_weights_eprop", "shd_c_rec_syn_eprop",
                  "shd_d_ff_syn_bptt"],
    # the same four with training-batch augmentation and a speaker-disjoint validation split
    "must-show-aug": ["shd_a_ff_syn_eprop_aug", "shd_b_ff_weights_eprop_aug",
                      "shd_c_rec_syn_eprop_aug", "shd_d_ff_syn_bptt_aug"],
}


def config_dir() -> Path:
    """``configs/`` of the source checkout (``$DELAYPROP_CONFIGS`` overrides)."""
    env = os.environ.get("DELAYPROP_CONFIGS")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "configs").is_dir() and (parent / "pyproject.toml").exists():
            return parent / "configs"
    return Path("configs")


def grid_configs(grid: str, configs: str | os.PathLike | None = None) -> list[Path]:
    """The configuration files of a named grid, checked to exist."""
    if grid not in GRIDS:
        raise ConfigError(f"unknown grid {grid!r}; choose from {', '.join(GRIDS)}")
    base = Path(configs) if configs else config_dir()
    paths = [base / f"{n}.toml" for n in GRIDS[grid]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ConfigError(f"missing configuration file(s): {', '.join(missing)}")
    return paths


@dataclass
class RunSpec:
    name: str
    seed_index: int
    cfg: dict[str, Any]
    run_dir: Path


def run_dir_for(out: str | os.PathLike, cfg: dict[str, Any], seed_index: int) -> Path:
    """``<out>/<dataset>/<name>/seed<k>`` (a dataset given as a path: its short label)."""
    from delayprop.data.registry import dataset_label

    return Path(out) / dataset_label(cfg["data"]["dataset"]) / cfg["name"] / f"seed{seed_index}"


def plan(
    paths: list[Path], seeds: int, out: str | os.PathLike,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> list[RunSpec]:
    """Resolve every (configuration, seed). Seed k adds k to train.seed and model.seed."""
    from delayprop.train import load_config, resolve_config

    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    specs = []
    for p in paths:
        raw = load_config(p)
        raw.setdefault("name", p.stem)
        for k in range(seeds):
            cfg = resolve_config(raw, overrides)
            if k:  # seed 0 is the configuration as written (same as `delayprop train`)
                cfg["train"]["seed"] = int(cfg["train"]["seed"]) + k
                cfg["model"]["seed"] = int(cfg["model"].get("seed", 0)) + k
            specs.append(RunSpec(cfg["name"], k, cfg, run_dir_for(out, cfg, k)))
    return specs


def run_grid(
    paths: list[Path], seeds: int, out: str | os.PathLike,
    overrides: dict[str, dict[str, Any]] | None = None,
    train_missing: bool = True, progress: bool = True, plots: bool = True,
) -> list[RunSpec]:
    """Train every run of the grid that has no ``final.json`` yet (resuming checkpoints).

    With ``train_missing=False`` nothing is trained (collect what is there)."""
    from delayprop.train import CHECKPOINT, FINAL, config_difference, train

    specs = plan(paths, seeds, out, overrides)
    for i, s in enumerate(specs):
        if (s.run_dir / FINAL).exists():
            continue
        if not train_missing:
            continue
        print(f"[{i + 1}/{len(specs)}] {s.name} seed {s.seed_index} -> {s.run_dir}",
              file=sys.stderr, flush=True)
        cfg_file = s.run_dir / "config.json"
        resume = (s.run_dir / CHECKPOINT).exists()
        if resume and cfg_file.exists():
            diff = config_difference(json.loads(cfg_file.read_text()), s.cfg)
            if diff:
                raise ConfigError(
                    f"{s.run_dir} holds a run with another configuration ({', '.join(diff)}); "
                    f"move it away or use another --out")
        train(s.cfg, s.run_dir, resume=resume, progress=progress, plots=plots)
    return specs
