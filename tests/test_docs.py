"""The documentation as a product: docs/cli.md is the CLI's current --help, README.md stays
short, user pages carry no lab-notebook wording, links and named configs exist, and the delays
example runs."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
HISTORY = DOCS / "search-history.md"  # the one page that tells the search as it happened
README_MAX_BYTES = 12288

#: lab-notebook wording, allowed on the history page only
DIARY = re.compile(r"\bsessions?\b|for the record|\bround \d+|previous session|\blent\b",
                   re.IGNORECASE)


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def _user_pages() -> list[Path]:
    return [p for p in _pages() if p != HISTORY]


@pytest.mark.skipif(not (3, 10) <= sys.version_info[:2] <= (3, 12),
                    reason="argparse's help layout differs in other Python versions")
def test_cli_reference_is_current():
    make_cli = _load(DOCS / "make_cli.py", "make_cli")
    assert make_cli.CLI_MD.read_text() == make_cli.render(), (
        "docs/cli.md is stale: run `python docs/make_cli.py`")


def test_readme_is_short():
    size = len(README.read_bytes())
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes (at most {README_MAX_BYTES})"


def test_the_pages_exist():
    for name in ("index", "method", "cli", "datasets", "experiments", "api", "search-history"):
        assert (DOCS / f"{name}.md").is_file(), name


@pytest.mark.parametrize("page", _user_pages(), ids=lambda p: p.name)
def test_no_diary_words_outside_the_history_page(page):
    hits = [(n, m.group(0)) for n, line in enumerate(page.read_text().splitlines(), 1)
            for m in DIARY.finditer(line)]
    assert not hits, f"{page.relative_to(ROOT)}: {hits}"


_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.name)
def test_relative_links_point_at_files(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    missing = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL or an anchor on the same page
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            missing.append(target)
    assert not missing, f"{page.relative_to(ROOT)}: links to missing files {missing}"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.name)
def test_named_configs_exist(page):
    named = set(re.findall(r"\bconfigs/[\w/.-]+?\.toml\b", page.read_text()))
    missing = sorted(c for c in named if not (ROOT / c).is_file())
    assert not missing, f"{page.relative_to(ROOT)}: {missing}"


def test_readme_keeps_the_ci_commands():
    """.ci/run runs exactly the README's install and test commands."""
    text = README.read_text()
    assert 'pip install torch==2.13.0 -e ".[dev]"\n' in text
    assert "python -m pytest -q\n" in text
    ci = ROOT / ".ci" / "run"
    if ci.exists():
        assert 'pip install torch==2.13.0 -e ".[dev]"' in ci.read_text()
        assert "python -m pytest -q" in ci.read_text()


def test_readme_table_markers():
    text = README.read_text()
    assert text.count("<!-- table:begin -->") == 1 and text.count("<!-- table:end -->") == 1
    assert text.index("<!-- table:begin -->") < text.index("<!-- table:end -->")


def test_delays_example_runs_its_three_arms(tmp_path):
    """examples/delays_matter.py: none / fixed / learned delays at equal architecture (tiny)."""
    import torch

    ex = _load(ROOT / "examples" / "delays_matter.py", "delays_matter")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = ex.run(tmp_path, epochs=1, n_train=64)
    finally:
        torch.set_num_threads(threads)
    assert (tmp_path / "summary.json").is_file()
    p = {arm: summary[arm]["params"] for arm in ("none", "fixed", "learned")}
    assert p["none"]["weights"] == p["fixed"]["weights"] == p["learned"]["weights"]
    assert p["none"]["delays"] == 0 and p["fixed"]["delays"] == p["learned"]["delays"] > 0
    cfg = {arm: ex.arm_config(arm, d, lr, 1, 0) for arm, d, lr in ex.ARMS}
    assert cfg["fixed"]["train"]["delay_lr"] == 0 < cfg["learned"]["train"]["delay_lr"]
    assert cfg["fixed"]["model"] == cfg["learned"]["model"]


def _python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("page", [README, DOCS / "api.md"], ids=lambda p: p.name)
def test_python_snippets_run(page, tmp_path, monkeypatch):
    """Every Python snippet of the page runs as written (those that need SHD files, in DIR,
    are skipped)."""
    import torch

    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for n, code in enumerate(_python_blocks(page)):
            if '"DIR"' in code:
                continue
            exec(compile(code, f"{page.name}:snippet{n}", "exec"), {"__name__": "__snippet__"})
    finally:
        torch.set_num_threads(threads)
