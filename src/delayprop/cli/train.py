"""``delayprop train``: train one configuration (TOML file + flag overrides) in a run directory.

Quick start, no files needed: ``delayprop train --dataset timing`` (the built-in timing task,
under a minute, run directory ``runs/timing`` with plots). SHD / SSC files missing from the
data directory are downloaded first (md5-checked; ``--no-download`` turns that off);
``--dataset h5`` (or a file path) trains on your own SHD-format files, with the number of
classes the files have.

Every option of the configuration is also a flag: ``[train] lr`` is ``--lr``, ``[model]
n_hidden`` is ``--n-hidden 128 128``, booleans take ``--recurrent`` / ``--no-recurrent``.
Three names are changed to avoid clashes: ``[method] name`` is ``--method``, ``[model] seed``
is ``--model-seed`` and ``[model] dt`` (ms; by default the data's ``dt``) is ``--model-dt``.
``--set section.key=value`` (TOML value syntax) sets anything else. Progress shows as bars
on a terminal, as a line every 30 s otherwise (``$DELAYPROP_PROGRESS_INTERVAL`` seconds).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from delayprop.errors import ConfigError

# (section, option) -> flag name, where the plain name would clash
_RENAMED = {("method", "name"): "method", ("model", "seed"): "model-seed",
            ("model", "dt"): "model-dt"}


def _flag(section: str, key: str) -> str:
    return _RENAMED.get((section, key), key.replace("_", "-"))


def _options() -> list[tuple[str, str, Any]]:
    """(section, key, default) of every configuration option."""
    from delayprop.layers import NetConfig
    from delayprop.training.config import DEFAULTS

    out: list[tuple[str, str, Any]] = []
    for f in fields(NetConfig):
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore
        out.append(("model", f.name, default))
    for sec in ("method", "train", "data"):
        out.extend((sec, k, v) for k, v in DEFAULTS[sec].items())
    return out


def _parse_bool(text: str) -> bool:
    t = text.lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def add_config_flags(parser: argparse.ArgumentParser, sections: tuple[str, ...] | None = None
                     ) -> None:
    """Add one flag per configuration option (defaults None = 'not given')."""
    from delayprop.cli.helptext import metavar, option_docs, option_help
    from delayprop.layers import NetConfig

    # optional whole numbers (default None, so their type is not the default's)
    whole = {("model", f.name) for f in fields(NetConfig) if f.type == "int | None"}
    groups = {s: parser.add_argument_group(f"[{s}] options") for s in
              ("model", "method", "train", "data")}
    docs = option_docs()
    for sec, key, default in _options():
        if sections is not None and sec not in sections:
            continue
        g, dest = groups[sec], f"cfg__{sec}__{key}"
        flag = "--" + _flag(sec, key)
        kw: dict[str, Any] = dict(dest=dest, default=None,
                                  help=option_help(sec, key, default, docs))
        if isinstance(default, bool):
            g.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
        elif isinstance(default, (tuple, list)):
            g.add_argument(flag, type=int, nargs="+", metavar="N", **kw)
        elif isinstance(default, int) or (sec, key) in whole:
            g.add_argument(flag, type=int, metavar="INT", **kw)
        elif isinstance(default, float) or default is None:
            g.add_argument(flag, type=float, metavar="X", **kw)
        else:
            g.add_argument(flag, type=str, metavar=metavar(sec, key, "STR"), **kw)
    parser.add_argument("--set", dest="cfg_set", action="append", default=[],
                        metavar="SECTION.KEY=VALUE",
                        help="set any option, the value in TOML syntax (repeatable)")


def _toml_value(text: str, option: str = "") -> Any:
    from delayprop.training.config import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError as exc:
        if text[:1] in ('[', '{', '"', "'"):  # meant as TOML, but broken
            raise ConfigError(f"--set {option}={text}: not a TOML value ({exc})") from None
        return text  # a bare string


def config_overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The options given on the command line (flags and --set), as a nested dict."""
    out: dict[str, dict[str, Any]] = {}
    for dest, value in vars(args).items():
        if dest.startswith("cfg__") and value is not None:
            _, sec, key = dest.split("__", 2)
            out.setdefault(sec, {})[key] = list(value) if isinstance(value, tuple) else value
    for item in getattr(args, "cfg_set", []) or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"--set expects SECTION.KEY=VALUE, got {item!r}")
        lhs, rhs = item.split("=", 1)
        sec, key = lhs.strip().split(".", 1)
        out.setdefault(sec, {})[key] = _toml_value(rhs.strip(), lhs.strip())
    return out


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Resolved configuration: defaults <- --config file <- flags."""
    from delayprop.training.config import load_config, resolve_config

    raw = load_config(args.config) if getattr(args, "config", None) else {}
    cfg = resolve_config(raw, config_overrides(args))
    if getattr(args, "name", None):
        cfg["name"] = args.name
    if not cfg["name"]:
        if getattr(args, "config", None):
            cfg["name"] = Path(args.config).stem
        else:
            from delayprop.data.registry import dataset_label

            cfg["name"] = dataset_label(cfg["data"]["dataset"])
    return cfg


def model_for_data(cfg: dict[str, Any], inspect_files: bool = True) -> dict[str, Any]:
    """The [model] section as the run will use it: every field, ``n_in`` / ``n_out`` / ``dt``
    from the data where not given. Raises the same ConfigError as training if they do not fit
    (SHD-format files are read for their classes only if ``inspect_files``)."""
    from delayprop.data.registry import data_shape
    from delayprop.training.methods import METHOD_CLASSES, fit_model_config

    shape = data_shape(cfg["data"], inspect_files=inspect_files)
    mc = fit_model_config(cfg, shape.channels, shape.num_classes)
    full = METHOD_CLASSES[cfg["method"]["name"]].complete_model_config(mc)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in full.items()}


def _run(args: argparse.Namespace) -> int:
    from delayprop.training.loop import train
    from delayprop.training.rundir import FINAL

    cfg = config_from_args(args)
    if args.run_dir:
        run_dir = Path(args.run_dir)
    else:  # the name becomes a folder under runs/: it must not lead out of it
        run_dir = Path("runs") / check_run_name(cfg["name"])
    if args.print_config:
        shown = copy.deepcopy(cfg)
        shown["model"] = model_for_data(cfg)
        print(json.dumps(shown, indent=2, sort_keys=True))
        return 0
    model_for_data(cfg, inspect_files=False)  # a misfit fails before any download or file
    finished = args.resume and (run_dir / FINAL).exists()
    final = train(cfg, run_dir, resume=args.resume, overwrite=args.overwrite,
                  progress=not args.quiet, plots=not args.no_plots)
    if finished:
        print(f"{run_dir}: finished already ({run_dir / FINAL})", file=sys.stderr)
    print(json.dumps(final, indent=2))
    return 0


def check_run_name(name: str) -> str:
    """A run name is a plain folder name under runs/ (no path: that is --run-dir's job)."""
    if (not name.strip() or "/" in name or "\\" in name or name in (".", "..")
            or name.startswith(".") or "\0" in name or len(name) > 200):
        raise ConfigError(f"--name {name!r}: a run name must be a plain folder name (no '/', "
                          "no leading '.', at most 200 characters); use --run-dir DIR to put "
                          "the run elsewhere")
    return name


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train one configuration",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", "-c", metavar="FILE.toml",
                   help="configuration file ([model], [method], [train], [data] sections); "
                   "flags override it")
    p.add_argument("--run-dir", metavar="DIR", help="run directory (default runs/<name>)")
    p.add_argument("--name", help="run name (default: the config file's name, else the "
                   "dataset's); without --run-dir the run goes to runs/<name>, so a name is a "
                   "plain folder name (no '/')")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --run-dir from its last checkpoint (with the "
                   "same configuration; on a finished run it prints final.json; a finished "
                   "run is not extended by a larger --epochs: train that in a new --run-dir)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run in --run-dir: its files (config.json, metrics.jsonl, "
                   "checkpoints, final.json, plots, train.log) are removed once the new run's "
                   "data and model are ready; without it a directory holding a run is refused")
    p.add_argument("--no-plots", action="store_true", help="skip the figures at the end")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress bars (or progress lines)")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved configuration (the [model] section complete, "
                   "n_in/n_out from the data) and exit")
    add_config_flags(p)
    p.set_defaults(func=_run)
