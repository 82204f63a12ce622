"""Write docs/cli.md from the ``--help`` of ``delayprop`` and of every sub-command.

    python docs/make_cli.py            # rewrite docs/cli.md
    python docs/make_cli.py --check    # exit 1 if docs/cli.md differs from the current --help

The text is argparse's own, at 100 columns; ``tests/test_docs.py`` fails when docs/cli.md is
stale. argparse lays help out slightly differently across Python versions; the page is made
with Python 3.10-3.12.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

CLI_MD = Path(__file__).resolve().parent / "cli.md"
COLUMNS = "100"

HEADER = """# Command-line reference

Generated from `delayprop --help` and each sub-command's `--help` by
`python docs/make_cli.py`; do not edit by hand (`tests/test_docs.py` checks it is current).
Every option of a configuration file is also a flag of `delayprop train`
(see [the configuration sections](#delayprop-train)); the Python API is in [api.md](api.md).
"""


def _subcommands(parser: argparse.ArgumentParser):
    """(name, parser) of each sub-command of ``parser``, in the order of its --help, once each."""
    seen = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    yield name, sub


def _walk(parser: argparse.ArgumentParser):
    yield parser
    for _, sub in _subcommands(parser):
        yield from _walk(sub)


def render() -> str:
    """The page: one section per command, its --help verbatim."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = COLUMNS
    try:
        from delayprop.cli import build_parser

        parsers = list(_walk(build_parser()))
        out = [HEADER, "## Commands\n"]
        for p in parsers[1:]:
            anchor = p.prog.replace(" ", "-")
            out.append(f"- [`{p.prog}`](#{anchor})")
        out.append("")
        for p in parsers:
            out.append(f"## {p.prog}\n")
            out.append("```text")
            out.append(p.format_help().rstrip("\n"))
            out.append("```\n")
        return "\n".join(out)
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write docs/cli.md from delayprop's --help.")
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/cli.md is stale")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        current = CLI_MD.read_text() if CLI_MD.exists() else ""
        if current != text:
            print(f"{CLI_MD} is stale: run `python docs/make_cli.py`", file=sys.stderr)
            return 1
        return 0
    CLI_MD.write_text(text)
    print(f"wrote {CLI_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
