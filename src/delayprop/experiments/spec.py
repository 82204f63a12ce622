"""Experiments declared as data: a TOML file names configurations, overrides, protocols and
seeds, and expands into one :class:`RunSpec` per run.

An experiment file (``experiments/NAME.toml``)::

    description = "e-prop ~32k against DCLS on SHD"
    seeds = [0, 1, 2, 3, 4]            # default seeds of every entry
    protocols = ["pub", "aug"]         # default protocols of every entry
    figure = "results/headline.png"    # optional (default results/NAME.png)
    readme = ["eprop", "dcls"]         # optional: entries of the README table

    [protocol.pub]
    label = "published"
    [protocol.aug]
    label = "augmentation"
    set = { "data.by_speaker" = true, "data.channel_shift" = 6, "data.time_shift" = 5 }

    [[run]]
    name = "eprop"                     # entry name: letters, digits, '_', '-'
    label = "e-prop, learned delays"
    config = "configs/shd_eprop.toml"  # relative to the experiment file's folder or its parent
    set = { "train.delay_lr" = 0.0 }   # optional overrides, dotted keys, TOML values
    seeds = [0, 1, 2]                  # optional, replaces the default
    protocols = ["pub"]                # optional, replaces the default

    [[compare]]                        # a difference of means with a Welch t interval
    a = "eprop"
    b = "dcls"

Each (entry, protocol, seed) is one run named ``<entry>_<protocol>_seed<k>`` (without
protocols: ``<entry>_seed<k>``); its configuration is the file, then the protocol's ``set``,
then the entry's ``set``, then ``train.seed = model.seed = k``; its ``name`` is
``<entry>_<protocol>``.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from delayprop.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
TOP_KEYS = {"description", "seeds", "protocols", "figure", "readme", "protocol", "run",
            "compare"}
RUN_KEYS = {"name", "label", "config", "set", "seeds", "protocols"}


@dataclass
class Entry:
    name: str
    label: str
    config: Path
    config_name: str
    overrides: dict[str, Any]
    seeds: list[int]
    protocols: list[str]


@dataclass
class Experiment:
    name: str
    path: Path
    description: str
    protocols: dict[str, dict[str, Any]]  # name -> {"label": str, "set": {dotted: value}}
    entries: list[Entry]
    compare: list[tuple[str, str]]
    figure: Path | None
    readme: list[str] = field(default_factory=list)

    def entry(self, name: str) -> Entry:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(name)

    def protocol_label(self, protocol: str) -> str:
        return str(self.protocols.get(protocol, {}).get("label", protocol))


@dataclass
class RunSpec:
    experiment: str
    entry: str
    protocol: str
    seed: int
    cfg: dict[str, Any]
    config_file: str
    run_id: str
    run_dir: Path


def group_name(entry: str, protocol: str) -> str:
    """``<entry>_<protocol>`` (``<entry>`` without a protocol): a run's ``name`` and group."""
    return f"{entry}_{protocol}" if protocol else entry


def run_name(entry: str, protocol: str, seed: int) -> str:
    """``<entry>_<protocol>_seed<k>``: a run's folder and record name."""
    return f"{group_name(entry, protocol)}_seed{seed}"


def experiments_dir() -> Path:
    """``experiments/`` of the working directory, else of the source checkout."""
    local = Path("experiments")
    if local.is_dir():
        return local
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "experiments").is_dir() and (parent / "pyproject.toml").exists():
            return parent / "experiments"
    return local


def list_experiments() -> list[Path]:
    d = experiments_dir()
    return sorted(d.glob("*.toml")) if d.is_dir() else []


def find_experiment(name: str) -> Path:
    """An experiment file from its name (``sota``) or its path (``my/grid.toml``)."""
    p = Path(name)
    if p.suffix == ".toml" or os.sep in name or "/" in name:
        if not p.is_file():
            raise ConfigError(f"{p}: no such experiment file")
        return p
    cand = experiments_dir() / f"{name}.toml"
    if cand.is_file():
        return cand
    known = ", ".join(q.stem for q in list_experiments()) or "none"
    raise ConfigError(f"unknown experiment {name!r} (no {cand}); known: {known}")


def dotted_to_nested(values: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """``{"train.lr": 1e-3}`` -> ``{"train": {"lr": 1e-3}}``."""
    from delayprop.train import SECTIONS

    out: dict[str, dict[str, Any]] = {}
    for key, v in values.items():
        if key == "name":
            raise ConfigError(f"{where}: 'name' is set by the experiment, not by 'set'")
        sec, _, k = key.partition(".")
        if sec not in SECTIONS or not k:
            raise ConfigError(f"{where}: set key {key!r} must read SECTION.KEY with SECTION "
                              f"one of {', '.join(SECTIONS)}")
        out.setdefault(sec, {})[k] = v
    return out


def merge(*dicts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for d in dicts:
        for sec, values in d.items():
            out.setdefault(sec, {}).update(values)
    return out


def _int_list(v: Any, where: str) -> list[int]:
    if not isinstance(v, list) or not v or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in v):
        raise ConfigError(f"{where} must be a non-empty list of integers >= 0, got {v!r}")
    if len(set(v)) != len(v):
        raise ConfigError(f"{where} lists a seed twice: {v!r}")
    return list(v)


def _resolve_config_path(value: Any, exp_path: Path, where: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: 'config' must be a path to a TOML configuration file")
    p = Path(value)
    cands = [p] if p.is_absolute() else [exp_path.parent / p, exp_path.parent.parent / p, p]
    for c in cands:
        if c.is_file():
            return c
    raise ConfigError(f"{where}: configuration file {value} not found (looked in "
                      f"{', '.join(str(c.parent) for c in cands)})")


def load_experiment(name_or_path: str) -> Experiment:
    path = find_experiment(name_or_path)
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; expected "
                          f"{', '.join(sorted(TOP_KEYS))}")
    protocols: dict[str, dict[str, Any]] = {}
    for pname, p in (raw.get("protocol") or {}).items():
        if not _NAME.match(pname) or not isinstance(p, dict):
            raise ConfigError(f"{path}: [protocol.{pname}] must be a table with a simple name")
        extra = sorted(set(p) - {"label", "set"})
        if extra:
            raise ConfigError(f"{path}: [protocol.{pname}] unknown key(s) {', '.join(extra)}")
        protocols[pname] = {"label": str(p.get("label", pname)),
                            "set": dotted_to_nested(p.get("set") or {}, f"{path} protocol "
                                                    f"{pname}")}
    default_seeds = _int_list(raw.get("seeds", [0]), f"{path}: seeds")
    default_protocols = list(raw.get("protocols", []))
    entries: list[Entry] = []
    runs = raw.get("run")
    if not isinstance(runs, list) or not runs:
        raise ConfigError(f"{path}: no [[run]] entries")
    for i, r in enumerate(runs):
        where = f"{path}: [[run]] #{i + 1}"
        if not isinstance(r, dict):
            raise ConfigError(f"{where} must be a table")
        extra = sorted(set(r) - RUN_KEYS)
        if extra:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(extra)}; expected "
                              f"{', '.join(sorted(RUN_KEYS))}")
        name = r.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{where}: 'name' must be letters, digits, '_', '-' or '.'")
        if any(e.name == name for e in entries):
            raise ConfigError(f"{where}: entry name {name!r} used twice")
        where = f"{path}: run {name!r}"
        prots = list(r.get("protocols", default_protocols))
        for pr in prots:
            if pr not in protocols:
                raise ConfigError(f"{where}: unknown protocol {pr!r}; declared: "
                                  f"{', '.join(protocols) or 'none'}")
        entries.append(Entry(
            name=name, label=str(r.get("label", name)),
            config=_resolve_config_path(r.get("config"), path, where),
            config_name=str(r.get("config")),
            overrides=dotted_to_nested(r.get("set") or {}, where),
            seeds=_int_list(r.get("seeds", default_seeds), f"{where}: seeds"),
            protocols=prots))
    compare = []
    for c in raw.get("compare", []):
        a, b = c.get("a"), c.get("b")
        names = {e.name for e in entries}
        if a not in names or b not in names:
            raise ConfigError(f"{path}: [[compare]] a = {a!r}, b = {b!r}: both must be entries "
                              f"of the experiment ({', '.join(sorted(names))})")
        compare.append((a, b))
    readme = list(raw.get("readme", []))
    for r in readme:
        if r not in {e.name for e in entries}:
            raise ConfigError(f"{path}: readme lists {r!r}, which is not an entry")
    fig = raw.get("figure")
    return Experiment(name=path.stem, path=path, description=str(raw.get("description", "")),
                      protocols=protocols, entries=entries, compare=compare,
                      figure=Path(fig) if fig else None, readme=readme)


def plan(exp: Experiment, out: str | os.PathLike = "runs",
         runtime: dict[str, dict[str, Any]] | None = None,
         only: list[str] | None = None, seeds: list[int] | None = None) -> list[RunSpec]:
    """Every run of the experiment, configurations resolved and checked.

    ``runtime`` adds options that do not change results (device, threads, data_dir);
    ``only`` keeps these entries, ``seeds`` these seeds."""
    from delayprop.train import load_config, resolve_config

    if only:
        unknown = sorted(set(only) - {e.name for e in exp.entries})
        if unknown:
            raise ConfigError(f"--only: not an entry of {exp.name}: {', '.join(unknown)} "
                              f"(entries: {', '.join(e.name for e in exp.entries)})")
    specs: list[RunSpec] = []
    for e in exp.entries:
        if only and e.name not in only:
            continue
        raw = load_config(e.config)
        for pr in e.protocols or [""]:
            pset = exp.protocols[pr]["set"] if pr else {}
            for k in e.seeds:
                if seeds is not None and k not in seeds:
                    continue
                group = group_name(e.name, pr)
                over = merge(pset, e.overrides, {"train": {"seed": k}, "model": {"seed": k}},
                             runtime or {})
                try:
                    cfg = resolve_config(raw, over)
                except ConfigError as exc:
                    raise ConfigError(f"{exp.path}: run {e.name!r}: {exc}") from None
                cfg["name"] = group
                run_id = run_name(e.name, pr, k)
                specs.append(RunSpec(exp.name, e.name, pr, k, cfg, e.config_name, run_id,
                                     Path(out) / exp.name / run_id))
    return specs
