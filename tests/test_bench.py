"""benchmarks/bench.py: ``--md`` writes the table block (machine line, command, header) and
replaces only its own block in an existing file; ``--json`` writes the report; a file without
the block is refused before anything is measured; old reports render with ``--table-from``."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEADER = ("| network | params | method | T | batch | ms / batch | ms / sequence | "
          "peak memory (MiB) | e-prop speed-up over BPTT |")


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("bench", ROOT / "benchmarks" / "bench.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


TINY = ["--device", "cpu", "--nets", "paper", "--T", "4", "--batch", "2", "--reps", "1",
        "--warmup", "0", "--no-memory"]


def test_md_and_json_of_a_tiny_run(bench, tmp_path, capsys):
    md, js = tmp_path / "table.md", tmp_path / "report.json"
    bench.main(TINY + ["--dcls", "--dcls-T", "4", "--json", str(js), "--md", str(md)])
    text = md.read_text()
    lines = text.splitlines()
    assert lines[0] == "<!-- bench.py:begin cpu -->" and lines[-1] == "<!-- bench.py:end cpu -->"
    assert lines[1].startswith("Measured 20") and "cores" in lines[1] and "torch" in lines[1]
    assert f"--md {md}" in text and f"(record: `{js}`)" in text
    assert HEADER in lines
    rows = [ln for ln in lines if ln.startswith("| paper") or ln.startswith("| DCLS")]
    assert [r.split(" | ")[2] for r in rows] == [
        "e-prop (train)", "BPTT (train)", "inference", "DCLS (train)", "inference"]
    assert rows[0].split(" | ")[-1].endswith("x** |")  # e-prop's speed-up over BPTT
    report = json.loads(js.read_text())
    assert report["configs"][0]["T"] == 4 and report["dcls"]["T"] == 4
    assert {"date", "cpu_model", "cores", "threads", "torch", "device"} <= set(report)
    assert not list(tmp_path.glob("*.tmp*"))  # written through a temporary file
    assert HEADER in capsys.readouterr().out


def test_md_replaces_only_its_block(bench, tmp_path):
    md = tmp_path / "doc.md"
    md.write_text("# Title\n\nbefore\n\n<!-- bench.py:begin cpu -->\nold table\n"
                  "<!-- bench.py:end cpu -->\n\nafter\n<!-- bench.py:begin cuda -->\nkept\n"
                  "<!-- bench.py:end cuda -->\n")
    bench.main(TINY + ["--md", str(md)])
    text = md.read_text()
    assert text.startswith("# Title\n\nbefore\n\n<!-- bench.py:begin cpu -->\nMeasured ")
    assert "old table" not in text and HEADER in text
    assert text.endswith("<!-- bench.py:end cpu -->\n\nafter\n<!-- bench.py:begin cuda -->\n"
                         "kept\n<!-- bench.py:end cuda -->\n")


def test_file_without_the_block_is_refused_before_measuring(bench, tmp_path, monkeypatch):
    md = tmp_path / "doc.md"
    md.write_text("someone's page\n")
    monkeypatch.setattr(bench, "bench_config", lambda *a, **k: pytest.fail("measured"))
    with pytest.raises(SystemExit, match="no block"):
        bench.main(TINY + ["--md", str(md)])
    assert md.read_text() == "someone's page\n"


def test_table_from_an_older_report(bench, tmp_path):
    """Reports written before --md had no date, CPU model or DCLS entry."""
    cfg = {"net": "dcls", "T": 100, "batch": 256, "params": {"total": 207892},
           "seconds": {"eprop": [0.1, 0.2, 0.1], "bptt": [0.4, 0.4, 0.5], "infer": [0.05]},
           "eprop_peak_mem_bytes": 400 * 2**20, "bptt_peak_mem_bytes": 380 * 2**20}
    old = {"command": "python benchmarks/bench.py --device cuda", "device": "cuda",
           "batch": 256, "torch": "2.11.0+cu130", "threads": 16, "cpu": "x86_64", "cores": 16,
           "load_1min": 0.3, "configs": [cfg], "matmul_gflops": 47000.0}
    src = tmp_path / "old.json"
    src.write_text(json.dumps(old))
    md = tmp_path / "t.md"
    bench.main(["--table-from", str(src), "--md", str(md), "--note", "On one H200."])
    text = md.read_text()
    assert "<!-- bench.py:begin cuda -->" in text and "(date not in the report)" in text
    assert "On one H200." in text and f"--table-from {src}" in text
    assert "| dcls (140-256-256-20) | 207,892 | e-prop (train) | 100 | 256 | 100 | 0.391 | 400 " \
           "| **4.00x** |" in text


def test_markers_quoted_in_prose_are_not_the_block(bench, tmp_path):
    page = tmp_path / "page.md"
    page.write_text("Rewrites `<!-- bench.py:begin cpu -->` to `<!-- bench.py:end cpu -->`.\n\n"
                    "<!-- bench.py:begin cpu -->\nold\n<!-- bench.py:end cpu -->\ntail\n")
    bench.write_md(str(page), "cpu", "new table")
    assert page.read_text() == (
        "Rewrites `<!-- bench.py:begin cpu -->` to `<!-- bench.py:end cpu -->`.\n\n"
        "<!-- bench.py:begin cpu -->\nnew table\n<!-- bench.py:end cpu -->\ntail\n")
