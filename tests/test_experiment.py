"""``delayprop experiment``: experiment files, the runner (one process, several, Ray), run
records, and the results table with its statistics."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from delayprop.cli import main
from delayprop.errors import ConfigError
from delayprop.experiments import stats
from delayprop.experiments.records import load_records
from delayprop.experiments.spec import load_experiment, plan

ROOT = Path(__file__).resolve().parents[1]

TIMING_CFG = """
name = "tiny_timing"
[model]
n_hidden = [12]
max_delay = 4
tau_m = 5.0
weight_scale = 4.0
[method]
name = "eprop"
loss = "sum"
[train]
epochs = 2
batch_size = 32
lr = 0.01
delay_lr = 1.0
[data]
dataset = "timing"
train_subset = 96
"""

GRID = """
description = "two configurations x two seeds on the timing task"
seeds = [0, 1]

[[run]]
name = "learned"
config = "tiny.toml"

[[run]]
name = "fixed"
config = "tiny.toml"
set = {{ "train.delay_lr" = 0.0 }}

[[compare]]
a = "learned"
b = "fixed"
{extra}
"""


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


@pytest.fixture
def grid(tmp_path, monkeypatch):
    """A 2-configuration x 2-seed timing-task experiment in an empty working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DELAYPROP_CACHE", str(tmp_path / "cache"))
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "tiny.toml").write_text(TIMING_CFG)
    (tmp_path / "experiments" / "grid.toml").write_text(GRID.format(extra=""))
    return tmp_path


def finals(records_file: Path) -> dict[str, tuple]:
    """The numbers of each run's final.json that must not depend on where it ran."""
    out = {}
    for run_id, r in load_records(records_file).items():
        f = r["final"]
        out[run_id] = (f["val_acc"], f["test_acc"], f["best_epoch"], f["test_loss"],
                       tuple(m["train_loss"] for m in r["metrics"]))
    return out


# --- statistics ----------------------------------------------------------------------------


def test_t_quantiles_match_tables():
    # two-sided 95% critical values of Student's t
    for df, t in ((1, 12.706205), (2, 4.302653), (4, 2.776445), (8, 2.306004), (30, 2.042272)):
        assert stats.t_quantile(0.975, df) == pytest.approx(t, abs=1e-5)
    assert stats.t_quantile(0.5, 3) == 0.0
    assert stats.t_quantile(0.025, 4) == pytest.approx(-2.776445, abs=1e-5)
    assert stats.t_cdf(0.0, 7.3) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        stats.t_quantile(1.0, 3)


def test_mean_interval_and_welch():
    xs = [0.85, 0.84, 0.86, 0.83, 0.87]
    iv = stats.mean_interval(xs)
    half = 2.776445 * stats.std(xs) / math.sqrt(5)
    assert iv.estimate == pytest.approx(0.85)
    assert (iv.low, iv.high) == pytest.approx((0.85 - half, 0.85 + half), abs=1e-6)
    assert stats.std([0.5, 0.7]) == pytest.approx(0.1414214, rel=1e-6)
    assert math.isnan(stats.std([0.5])) and math.isnan(stats.mean_interval([0.5]).low)
    # Welch's interval, checked against scipy.stats.ttest_ind(equal_var=False)
    w = stats.welch_interval(xs, [0.83, 0.87, 0.86, 0.84, 0.88, 0.8])
    assert w.df == pytest.approx(7.880347, rel=1e-5)
    assert (w.low, w.high) == pytest.approx((-0.0289075416, 0.0355742082), abs=1e-8)


# --- experiment files ----------------------------------------------------------------------


def test_plan_applies_protocol_entry_and_seed(tmp_path):
    (tmp_path / "tiny.toml").write_text(TIMING_CFG)
    exp_file = tmp_path / "e.toml"
    exp_file.write_text("""
seeds = [3]
protocols = ["a", "b"]
[protocol.a]
[protocol.b]
set = { "data.time_shift" = 2, "train.lr" = 0.5 }
[[run]]
name = "x"
config = "tiny.toml"
set = { "train.lr" = 0.25 }
""")
    exp = load_experiment(str(exp_file))
    specs = plan(exp, tmp_path / "runs", {"train": {"threads": 1}})
    assert [s.run_id for s in specs] == ["x_a_seed3", "x_b_seed3"]
    a, b = (s.cfg for s in specs)
    assert a["train"]["seed"] == a["model"]["seed"] == 3 and a["name"] == "x_a"
    assert a["data"]["time_shift"] == 0 and b["data"]["time_shift"] == 2
    assert a["train"]["lr"] == b["train"]["lr"] == 0.25  # the entry's set comes last
    assert specs[1].run_dir == tmp_path / "runs" / "e" / "x_b_seed3"


@pytest.mark.parametrize("body, message", [
    ("seeds = [0]\n", "no [[run]] entries"),
    ("bogus = 1\n[[run]]\nname='x'\nconfig='tiny.toml'\n", "unknown key(s) bogus"),
    ("seeds = [-1]\n[[run]]\nname='x'\nconfig='tiny.toml'\n", "seeds must be a non-empty list"),
    ("[[run]]\nname='x'\nconfig='nope.toml'\n", "configuration file nope.toml not found"),
    ("[[run]]\nname='x'\nconfig='tiny.toml'\nprotocols=['p']\n", "unknown protocol 'p'"),
    ("[[run]]\nname='x/y'\nconfig='tiny.toml'\n", "'name' must be"),
    ("[[run]]\nname='x'\nconfig='tiny.toml'\nset={'lr'=1}\n", "must read SECTION.KEY"),
    ("[[run]]\nname='x'\nconfig='tiny.toml'\n[[compare]]\na='x'\nb='z'\n", "both must be"),
    ("[[run]\n", "invalid TOML"),
])
def test_bad_experiment_files_name_the_problem(tmp_path, body, message):
    (tmp_path / "tiny.toml").write_text(TIMING_CFG)
    f = tmp_path / "bad.toml"
    f.write_text(body)
    with pytest.raises(ConfigError) as exc:
        load_experiment(str(f))
    assert message in str(exc.value) and str(f) in str(exc.value)


def test_repository_experiments_resolve():
    for name in ("sota", "paper", "timing"):
        exp = load_experiment(str(ROOT / "experiments" / f"{name}.toml"))
        specs = plan(exp)
        assert len({s.run_id for s in specs}) == len(specs) > 0
    sota = plan(load_experiment(str(ROOT / "experiments" / "sota.toml")))
    by = {s.run_id: s.cfg for s in sota}
    # the control: same architecture, only the delays differ
    learned, fixed, none = (by[f"{e}_pub_seed0"] for e in ("eprop", "eprop_fixed", "eprop_none"))
    assert learned["model"]["n_hidden"] == fixed["model"]["n_hidden"] == none["model"]["n_hidden"]
    assert fixed["train"]["delay_lr"] == 0 and learned["train"]["delay_lr"] > 0
    assert not none["model"]["synaptic_delays"] and not none["model"]["readout_delays"]
    assert by["dcls_aug_seed4"]["data"]["by_speaker"] and by["dcls_pub_seed4"]["train"][
        "epochs"] == 150


# --- the repository's headline ---------------------------------------------------------------


def test_sota_dry_run_lists_the_headline_runs(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    rc, out, err = run(capsys, "experiment", "run", "sota", "--dry-run", "--out",
                       "/nonexistent-runs")
    assert rc == 0, err
    lines = {ln.split()[1]: ln.split()[0] for ln in out.splitlines() if ln.startswith(
        ("done", "missing", "partial", "collect", "changed"))}
    for method in ("eprop", "dcls"):
        for p in ("pub", "aug"):
            for k in range(5):
                assert lines[f"{method}_{p}_seed{k}"] == "done"
    assert "changed" not in lines.values()


def test_table_regenerates_headline_from_records(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    rc, out, err = run(capsys, "experiment", "table", "sota", "--results", tmp_path,
                       "--readme", "", "--no-plots", "--out", tmp_path / "no-runs")
    assert rc == 0, err
    with open(tmp_path / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert set(rows[0]) >= {"experiment", "config", "method", "protocol", "architecture",
                            "delays", "params", "seed", "epochs", "best_epoch", "val_acc",
                            "test_acc", "latency_ms", "wall_s", "device"}
    recs = load_records(ROOT / "results" / "records" / "sota.jsonl")
    want = [r["final"]["test_acc"] for k, r in recs.items() if k.startswith("eprop_pub_seed")]
    got = [float(r["test_acc"]) for r in rows if r["group"] == "eprop_pub"]
    assert len(got) == len(want) == 5 and sum(got) / 5 == pytest.approx(sum(want) / 5, abs=1e-6)
    dcls = [r for r in rows if r["group"] == "dcls_pub"]
    assert len(dcls) == 5 and {r["epochs"] for r in dcls} == {"150"}
    md = (tmp_path / "sota.md").read_text()
    mean, sd = 100 * stats.mean(want), 100 * stats.std(want)
    assert f"| {mean:.2f} +- {sd:.2f} |" in md
    assert "Welch" in md and "| DCLS (BPTT) |" in md


# --- running -------------------------------------------------------------------------------


def test_run_skips_finished_and_tables(grid, capsys):
    rc, out, err = run(capsys, "experiment", "run", "grid", "--dry-run")
    assert rc == 0 and out.count("missing ") == 4 and "4 runs: 4 missing" in out
    rc, out, err = run(capsys, "experiment", "run", "grid", "--threads", "1", "-q",
                       "--no-plots", "--readme", "")
    assert rc == 0, err
    rec_file = grid / "results" / "records" / "grid.jsonl"
    first = finals(rec_file)
    assert sorted(first) == ["fixed_seed0", "fixed_seed1", "learned_seed0", "learned_seed1"]
    assert (grid / "results" / "grid.md").exists()
    rows = list(csv.DictReader(open(grid / "results" / "results.csv")))
    assert {r["delays"] for r in rows} == {"syn", "fixed syn"} and len(rows) == 4
    stamp = rec_file.stat().st_mtime_ns
    rc, out, err = run(capsys, "experiment", "run", "grid", "--dry-run")
    assert out.count("done ") == 4
    rc, out, err = run(capsys, "experiment", "run", "grid", "--no-table")
    assert rc == 0 and rec_file.stat().st_mtime_ns == stamp  # nothing to do
    # the record keeps what the table needs without the run folders
    rec = load_records(rec_file)["learned_seed1"]
    assert rec["config"]["train"]["seed"] == 1 and len(rec["metrics"]) == 2
    assert rec["latency"]["latency_ms"] > 0
    # a changed configuration is refused, not silently mixed in
    (grid / "experiments" / "grid.toml").write_text(
        GRID.format(extra="").replace('config = "tiny.toml"\n\n[[run]]',
                                      'config = "tiny.toml"\nset = { "train.lr" = 0.5 }\n\n'
                                      '[[run]]', 1))
    rc, out, err = run(capsys, "experiment", "run", "grid", "--no-table")
    assert rc == 2 and "another configuration" in err and "train.lr" in err


def test_run_resumes_a_partial_run(grid, capsys):
    from delayprop.train import train

    exp = load_experiment("grid")
    spec = plan(exp, "runs", {"train": {"threads": 1}}, only=["learned"], seeds=[0])[0]
    train(spec.cfg, spec.run_dir, progress=False, plots=False, stop_after=1)
    rc, out, _ = run(capsys, "experiment", "run", "grid", "--dry-run")
    assert "partial  learned_seed0" in out
    rc, _, err = run(capsys, "experiment", "run", "grid", "--only", "learned", "--seeds", "0",
                     "--threads", "1", "-q", "--no-table")
    assert rc == 0, err
    assert "resum" in (spec.run_dir / "train.log").read_text().lower()
    assert len(load_records(grid / "results" / "records" / "grid.jsonl")) == 1


def test_parallel_jobs_give_the_same_numbers(grid, capsys):
    rc, _, err = run(capsys, "experiment", "run", "grid", "--threads", "1", "-q", "--no-table")
    assert rc == 0, err
    one = finals(grid / "results" / "records" / "grid.jsonl")
    rc, _, err = run(capsys, "experiment", "run", "grid", "--jobs", "2", "-q", "--no-table",
                     "--out", "runs2", "--records", "records2")
    assert rc == 0, err
    assert finals(grid / "records2" / "grid.jsonl") == one
    assert (grid / "runs2" / "grid" / "fixed_seed1.log").exists()


def test_ray_runs_the_grid_with_the_same_numbers(grid, capsys):
    pytest.importorskip("ray")
    rc, _, err = run(capsys, "experiment", "run", "grid", "--threads", "1", "-q", "--no-table")
    assert rc == 0, err
    local = finals(grid / "results" / "records" / "grid.jsonl")
    rc, _, err = run(capsys, "experiment", "run", "grid", "--ray", "local", "-q", "--no-table",
                     "--out", "runs_ray", "--records", "records_ray")
    assert rc == 0, err
    assert finals(grid / "records_ray" / "grid.jsonl") == local
    for run_id in local:
        assert (grid / "runs_ray" / "grid" / run_id / "final.json").exists()


def test_table_of_any_run_folders(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.toml").write_text(TIMING_CFG)
    for k in (0, 1):
        rc, _, err = run(capsys, "train", "-c", "c.toml", "--run-dir", f"mine/r{k}", "--seed",
                         str(k), "-q", "--no-plots", "--threads", "1")
        assert rc == 0, err
    rc, out, err = run(capsys, "experiment", "table", "mine", "--runs", "mine", "--readme", "")
    assert rc == 0, err
    rows = list(csv.DictReader(open(tmp_path / "results" / "results.csv")))
    assert sorted(r["run"] for r in rows) == ["r0", "r1"]
    assert {r["experiment"] for r in rows} == {"mine"}
    test = [json.loads((tmp_path / f"mine/r{k}/final.json").read_text())["test_acc"]
            for k in (0, 1)]
    assert sorted(float(r["test_acc"]) for r in rows) == pytest.approx(sorted(test), abs=1e-6)


def test_readme_block_is_replaced(tmp_path, grid, capsys):
    (grid / "experiments" / "grid.toml").write_text(GRID.format(extra="") .replace(
        'seeds = [0, 1]', 'seeds = [0, 1]\nreadme = ["learned", "fixed"]'))
    readme = grid / "README.md"
    readme.write_text("intro\n<!-- table:begin -->\nold\n<!-- table:end -->\noutro\n")
    rc, _, err = run(capsys, "experiment", "run", "grid", "--threads", "1", "-q", "--no-plots")
    assert rc == 0, err
    text = readme.read_text()
    assert text.startswith("intro\n<!-- table:begin -->\n| model |") and text.endswith(
        "<!-- table:end -->\noutro\n")
    assert "old" not in text and "delayprop experiment table grid" in text


def test_cli_errors_are_one_line(grid, capsys):
    rc, _, err = run(capsys, "experiment", "run", "nope")
    assert rc == 2 and "unknown experiment 'nope'" in err and "grid" in err
    rc, _, err = run(capsys, "experiment", "run", "grid", "--jobs", "0")
    assert rc == 2 and "--jobs" in err
    rc, _, err = run(capsys, "experiment", "run", "grid", "--only", "zzz", "--dry-run")
    assert rc == 2 and "zzz" in err
    rc, _, err = run(capsys, "experiment", "run", "grid", "--seeds", "a", "--dry-run")
    assert rc == 2 and "--seeds" in err
    rc, _, err = run(capsys, "experiment", "table", "nothing-here")
    assert rc == 2 and "unknown experiment" in err
