"""The ``delayprop`` command line.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed
arguments, returning an exit code). Errors meant for the user are raised as
:class:`delayprop.errors.DelaypropError` and printed as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from delayprop.errors import DelaypropError

# Sub-command modules, in the order they appear in --help.
_COMMANDS = ["gradcheck", "data", "train", "evaluate", "adapt", "export", "experiment"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="delayprop",
        description="Train spiking networks with learned synaptic/axonal delays by e-prop or BPTT.",
    )
    from delayprop import __version__

    parser.add_argument("--version", action="version", version=f"delayprop {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        try:
            mod = importlib.import_module(f"delayprop.cli.{name}")
        except ModuleNotFoundError as exc:  # sub-command not built yet
            if exc.name == f"delayprop.cli.{name}":
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except DelaypropError as exc:
        print(f"delayprop: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a disk or file-system problem not named more precisely
        print(f"delayprop: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("delayprop: interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as exc:
        # MemoryError: the host; torch.OutOfMemoryError (a RuntimeError): a GPU. Settings
        # whose need is known beforehand are refused earlier with the figure (memory.py).
        if not isinstance(exc, MemoryError) and type(exc).__name__ != "OutOfMemoryError":
            raise
        where = "GPU" if not isinstance(exc, MemoryError) else "host"
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"delayprop: error: out of {where} memory{f' ({detail})' if detail else ''}; "
              "lower the batch sizes (--batch-size, --eval-batch-size), the network's size "
              "or --max-delay", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
