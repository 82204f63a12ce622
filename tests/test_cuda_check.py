"""benchmarks/cuda_check.py, the script a lent GPU machine runs first: on the CPU against
itself every path must run and agree exactly; a device that cannot be used must fail loudly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cuda_check.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=600)


def test_new_delay_paths_run_and_agree_on_cpu(tmp_path):
    out = tmp_path / "report.json"
    cases = ["ff-syn-hard", "rec-recdelays-hard", "ff-syn-readout-hard"]
    r = run("--device", "cpu", "--cases", *cases, "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(out.read_text())
    assert report["failed"] == 0
    rows = report["checks"]
    assert sorted({row["case"] for row in rows}) == sorted(cases)
    assert len(rows) == 2 * len(cases)  # float64 and float32
    assert all(row["ok"] and row["rel_err"] == 0.0 for row in rows)
    n = {row["case"]: row["n_compared"] for row in rows}
    # recurrent and readout delays add their weight and delay gradients to every learning path
    assert n["rec-recdelays-hard"] > n["ff-syn-hard"]
    assert n["ff-syn-readout-hard"] > n["ff-syn-hard"]


def test_unusable_device_fails_with_the_reason():
    r = run("--device", "nosuchdevice", "--cases", "ff-syn-hard")
    assert r.returncode == 1
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 2 and not any(row["ok"] for row in rows)
    assert all("nosuchdevice" in row["error"] for row in rows)
    assert "2 of 2 checks failed" in r.stdout
