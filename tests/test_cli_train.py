"""``delayprop train | eval | reproduce`` through ``delayprop.cli.main`` on a tiny SHD-format
file: exit codes, run directory, flags over config files, one-line errors, results table."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from delayprop.cli import main
from delayprop.experiments import CSV_COLUMNS, GRIDS

TINY = """
[model]
n_hidden = [6]
max_delay = 3
tau_m = 30.0
weight_scale = 2.0

[method]
name = "{method}"

[train]
epochs = 2
batch_size = 16
lr = 0.01

[data]
max_time = 0.2
channels = 35
"""


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def test_train_then_eval(tmp_path, data_dir, capsys):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY.format(method="eprop"))
    rd = tmp_path / "run"
    rc, out, err = run(capsys, "train", "--config", cfg, "--data-dir", data_dir, "--run-dir", rd,
                       "--epochs", "3", "--no-synaptic-delays", "--set", "train.seed=5", "-q")
    assert rc == 0, err
    final = json.loads(out)
    assert final["epochs"] == 3 and final["params"]["delays"] == 0
    resolved = json.loads((rd / "config.json").read_text())
    assert resolved["train"]["epochs"] == 3 and resolved["train"]["seed"] == 5
    assert resolved["model"]["synaptic_delays"] is False and resolved["name"] == "tiny"
    assert len((rd / "metrics.jsonl").read_text().splitlines()) == 3
    rc, out, err = run(capsys, "eval", rd, "--split", "test")
    assert rc == 0, err
    assert f"accuracy {final['test_acc']:.4f}" in out
    assert "eins" in out and out.count("\n") >= 3 + 3
    # per speaker: the tiny files have speakers 0-3 in both, all seen in training
    seen = final["test_speakers"]["seen"]
    assert seen["speakers"] == [0, 1, 2, 3] and seen["n"] == 24
    assert seen["accuracy"] == pytest.approx(final["test_acc"])
    assert "unseen" not in final["test_speakers"]
    assert f"speakers seen in training (0, 1, 2, 3): accuracy {final['test_acc']:.4f}" in out
    rc, out, err = run(capsys, "eval", rd / "best.pt", "--split", "val", "--json")
    rep = json.loads(out)
    assert rc == 0 and rep["accuracy"] == pytest.approx(final["val_acc"])
    assert sum(r["n"] for r in rep["per_speaker"]) == rep["n"]
    assert rep["speakers"]["seen"]["accuracy"] == pytest.approx(rep["accuracy"])
    # the same run directory again without --resume is refused in one line
    rc, out, err = run(capsys, "train", "--config", cfg, "--data-dir", data_dir, "--run-dir", rd)
    assert rc == 2 and "--resume" in err


def test_train_errors(tmp_path, data_dir, capsys):
    rc, _, err = run(capsys, "train", "--config", tmp_path / "nope.toml")
    assert rc == 2 and "no such configuration file" in err
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nlr = -1\n")
    rc, _, err = run(capsys, "train", "--config", bad)
    assert rc == 2 and "train.lr" in err
    rc, _, err = run(capsys, "train", "--method", "magic")
    assert rc == 2 and "method.name" in err
    rc, _, err = run(capsys, "train", "--set", "nonsense")
    assert rc == 2 and "--set" in err
    rc, _, err = run(capsys, "eval", tmp_path / "missing")
    assert rc == 2 and "no such run directory" in err


def test_reproduce_writes_table_and_skips_finished_runs(tmp_path, data_dir, capsys):
    cdir = tmp_path / "configs"
    cdir.mkdir()
    for name in GRIDS["must-show"]:
        method = "bptt" if name.endswith("bptt") else "eprop"
        (cdir / f"{name}.toml").write_text(TINY.format(method=method))
    out = tmp_path / "results"
    out.mkdir()
    (out / "RESULTS.md").write_text("# Results\n\nText that must survive.\n")
    rc, o, err = run(capsys, "reproduce", "--grid", "must-show", "--configs", cdir,
                     "--data-dir", data_dir, "--out", out, "--epochs", "1", "--seeds", "2",
                     "--only", "shd_a_ff_syn_eprop,shd_d_ff_syn_bptt", "-q", "--no-plots")
    assert rc == 0, err
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0].keys()) == CSV_COLUMNS
    assert [r["experiment"] for r in rows] == ["shd_a_ff_syn_eprop", "shd_d_ff_syn_bptt"]
    assert all(r["seeds"] == "2" and r["epochs"] == "1" for r in rows)
    assert 0.0 <= float(rows[0]["test_acc"]) <= 1.0
    finals = sorted(out.glob("shd/*/seed*/final.json"))
    assert len(finals) == 4
    stamp = {p: p.stat().st_mtime_ns for p in finals}
    md = (out / "RESULTS.md").read_text()
    assert "Text that must survive." in md and "shd_d_ff_syn_bptt" in md
    # collect-only leaves the finished runs alone and keeps the table
    rc, o, err = run(capsys, "reproduce", "--configs", cdir, "--data-dir", data_dir,
                     "--out", out, "--epochs", "1", "--seeds", "2", "--collect")
    assert rc == 0 and "4/8 runs finished" in o
    assert {p: p.stat().st_mtime_ns for p in finals} == stamp
    assert (out / "RESULTS.md").read_text().count("results-table: begin") == 1
    rc, _, err = run(capsys, "reproduce", "--configs", cdir, "--only", "nope", "--out", out)
    assert rc == 2 and "--only" in err


def test_table_std_and_markdown():
    from delayprop.experiments.table import _std, csv_text, markdown_table

    assert np.isnan(_std([0.5]))
    assert _std([0.5, 0.7]) == pytest.approx(0.1414214, rel=1e-6)
    row = {"experiment": "x", "method": "eprop", "architecture": "ff 140-8-20", "delays": "syn",
           "params": 10, "weights": 6, "delay_params": 4, "val_acc": 0.5, "test_acc": 0.25,
           "test_std": float("nan"), "seeds": 1, "epochs": 2, "wall_s": 3.0, "best_epochs": [2]}
    assert csv_text([row]).splitlines()[1] == "x,eprop,ff 140-8-20,syn,10,0.5000,0.2500,nan,1,2,3.0"
    assert "| 25.00% | - | 1 |" in markdown_table([row])


def test_results_table_keeps_rows_of_other_experiments(tmp_path):
    from delayprop.experiments.table import CSV_COLUMNS, write_results

    (tmp_path / "results.csv").write_text(
        ",".join(CSV_COLUMNS) + "\n"
        "old_run,eprop,ff,syn,10,0.5,0.4,nan,1,1,1.0\n"
        "dcls_shd,dcls,ff 140-256-256-20,syn,214016,0.8687,0.7687,nan,1,8,7376.7\n"
    )
    row = dict(experiment="old_run", method="eprop", architecture="ff", delays="syn",
               params=12, weights=6, delay_params=6, val_acc=0.6, test_acc=0.55,
               test_std=float("nan"), seeds=1, epochs=2, best_epochs=[2], wall_s=3.0)
    write_results([row], tmp_path)
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS)
    assert lines[1].startswith("old_run,eprop,ff,syn,12,0.6000,0.5500")  # replaced
    assert lines[2].startswith("dcls_shd,dcls,")  # kept
    assert len(lines) == 3


def test_each_grid_writes_its_own_table_block(tmp_path):
    from delayprop.experiments.table import write_results

    def row(name, acc):
        return dict(experiment=name, method="eprop", architecture="ff", delays="syn",
                    params=12, weights=6, delay_params=6, val_acc=acc, test_acc=acc,
                    test_std=float("nan"), seeds=1, epochs=2, best_epochs=[2], wall_s=3.0)

    (tmp_path / "RESULTS.md").write_text("# Results\n\nintro\n")
    write_results([row("plain", 0.5)], tmp_path, "cmd one")
    write_results([row("augmented", 0.75)], tmp_path, "cmd two", grid="must-show-aug")
    write_results([row("plain", 0.6)], tmp_path, "cmd three")  # rewrites its block only
    text = (tmp_path / "RESULTS.md").read_text()
    assert text.startswith("# Results\n\nintro\n")
    assert text.count("<!-- results-table: begin") == 1
    assert text.count("<!-- results-table must-show-aug: begin") == 1
    assert "| 60.00% |" in text and "| 75.00% |" in text and "| 50.00% |" not in text
    assert "cmd three" in text and "cmd two" in text and "cmd one" not in text
    rows = (tmp_path / "results.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[1].startswith("plain,") and rows[2].startswith("augmented,")


def test_every_grid_config_in_the_repository_resolves():
    from delayprop.experiments import grid_configs
    from delayprop.train import load_config, resolve_config

    for grid in GRIDS:
        for path in grid_configs(grid):
            cfg = resolve_config(load_config(path))
            assert cfg["name"] == path.stem
            if grid == "must-show-aug":
                assert cfg["data"]["by_speaker"] and cfg["data"]["channel_shift"] == 6


def test_val_speakers_hold_out_exactly_those_speakers(tmp_path, data_dir, capsys):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY.format(method="eprop"))
    rd = tmp_path / "run"
    rc, out, err = run(capsys, "train", "--config", cfg, "--data-dir", data_dir, "--run-dir", rd,
                       "--val-speakers", "2", "1", "-q")
    assert rc == 0, err
    final = json.loads(out)
    assert json.loads((rd / "config.json").read_text())["data"]["val_speakers"] == [2, 1]
    log = (rd / "train.log").read_text()
    assert "speakers 1, 2 held out (30 samples); training speakers 0, 3 (30 samples)" in log
    # the held-out speakers are unseen in training, on the test file too
    assert final["test_speakers"]["unseen"]["speakers"] == [1, 2]
    assert final["test_speakers"]["seen"]["speakers"] == [0, 3]
    for bad, msg in (("9", "val_speakers [9] not in the data"),
                     ("0 1 2 3", "would leave no training speaker")):
        rc, _, err = run(capsys, "train", "--config", cfg, "--data-dir", data_dir, "--run-dir",
                         tmp_path / "bad", "--val-speakers", *bad.split(), "-q")
        assert rc == 2 and msg in err and not (tmp_path / "bad").exists()
    rc, _, err = run(capsys, "train", "--config", cfg, "--set", "data.val_speakers=[-1]")
    assert rc == 2 and "data.val_speakers must be a list of speaker ids" in err
