"""Help texts of the configuration flags, drawn from the configuration's own documentation:
the ``Attributes:`` section of :class:`~delayprop.layers.NetConfig`'s docstring for
``[model]``, :data:`delayprop.train.OPTION_DOCS` for ``[method]``, ``[train]`` and
``[data]``; choices from the constants the code checks against."""

from __future__ import annotations

import inspect
import re
from typing import Any

# defaults that the data (or the environment) decide, shown in words
_DEFAULT_WORDS = {
    ("model", "n_in"): "the data's channels",
    ("model", "n_out"): "the data's classes",
    ("model", "dt"): "data.dt in ms",
    ("model", "surrogate_scale"): "the surrogate's own",
    ("data", "data_dir"): "$DELAYPROP_DATA or ~/.cache/delayprop/data",
    ("data", "val_speakers"): "none",
}
_METAVARS = {("data", "data_dir"): "DIR", ("train", "device"): "DEVICE"}


def docstring_fields(cls: type) -> dict[str, str]:
    """``{name: text}`` from the ``Attributes:`` section of ``cls``'s docstring (Google style:
    ``name: text``, continuation lines indented further)."""
    doc = inspect.getdoc(cls) or ""
    out: dict[str, str] = {}
    in_section, current, indent = False, None, None
    for line in doc.splitlines():
        if line.strip() == "Attributes:":
            in_section = True
            continue
        if not in_section:
            continue
        if line and not line[0].isspace():  # the next section (or text) ends it
            break
        m = re.match(r"^(\s+)(\w+): (.*)$", line)
        if m and (indent is None or len(m.group(1)) == indent):
            indent = len(m.group(1))
            current = m.group(2)
            out[current] = m.group(3).strip()
        elif current and line.strip():
            out[current] += " " + line.strip()
    return out


def choices() -> dict[tuple[str, str], tuple[str, ...]]:
    """The accepted values of the options that take one of a few words."""
    from delayprop.data.registry import DATASETS
    from delayprop.delays import MODES
    from delayprop.losses import LOSSES
    from delayprop.neurons import _DEFAULT_SCALE
    from delayprop.train import METHODS

    return {
        ("model", "delay_mode"): tuple(MODES),
        ("model", "delay_init"): ("uniform", "zero"),
        ("model", "reset"): ("subtract", "zero"),
        ("model", "surrogate"): tuple(_DEFAULT_SCALE),
        ("method", "name"): tuple(METHODS),
        ("method", "loss"): tuple(LOSSES),
        ("method", "feedback"): ("symmetric", "random"),
        ("train", "optimizer"): ("adam", "adamw", "sgd"),
        ("train", "lr_schedule"): ("cosine", "none"),
        ("data", "dataset"): tuple(DATASETS) + ("PATH",),
    }


def option_docs() -> dict[tuple[str, str], str]:
    """``{(section, key): text}`` for every configuration option that has documentation."""
    from delayprop.layers import NetConfig
    from delayprop.train import OPTION_DOCS

    out = {("model", k): v for k, v in docstring_fields(NetConfig).items()}
    for sec, docs in OPTION_DOCS.items():
        out.update({(sec, k): v for k, v in docs.items()})
    return out


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return " ".join(str(v) for v in value)
    if value is None:
        return "none"
    if isinstance(value, str):
        return value or '""'
    return f"{value:g}" if isinstance(value, float) else str(value)


def option_help(section: str, key: str, default: Any,
                docs: dict[tuple[str, str], str] | None = None) -> str:
    """``text (default: X)`` for argparse (``%`` escaped)."""
    docs = option_docs() if docs is None else docs
    text = docs.get((section, key), f"[{section}] {key}")
    shown = _DEFAULT_WORDS.get((section, key), _show(default))
    return f"{text} (default: {shown})".replace("%", "%%")


def metavar(section: str, key: str, fallback: str) -> str:
    """``{a,b,c}`` for options with a few accepted words, else ``fallback``."""
    c = choices().get((section, key))
    return "{" + ",".join(c) + "}" if c else _METAVARS.get((section, key), fallback)
