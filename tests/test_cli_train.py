"""``delayprop train | eval`` through ``delayprop.cli.main`` on a tiny SHD-format
file: exit codes, run directory, flags over config files, one-line errors."""

from __future__ import annotations

import json

import pytest

from delayprop.cli import main

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
