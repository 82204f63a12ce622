"""Issue 12: the README quick start (``delayprop train --dataset timing``), ``delayprop train
--help`` (every flag described, from the configuration's own documentation; docs/cli.md shows
the real output, tests/test_docs.py), and progress output that suits a terminal or a log file."""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import pytest
from test_cli_train import run

from delayprop.cli import build_parser
from delayprop.progress import LineProgress, progress_bar
from delayprop.train import DEFAULTS, OPTION_DOCS, resolve_config

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DELAYPROP_DATA", str(tmp_path / "no-data-here"))
    monkeypatch.setenv("DELAYPROP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DELAYPROP_PROGRESS_INTERVAL", raising=False)


# --------------------------------------------------------------------------- quick start


def test_quick_start_trains_the_timing_task_with_plots(tmp_path, capsys):
    """The README's quick start, as written: no files, no flags but the dataset."""
    text = README.read_text()
    assert "delayprop train --dataset timing\n" in text
    t0 = time.perf_counter()
    rc, out, err = run(capsys, "train", "--dataset", "timing")
    wall = time.perf_counter() - t0
    assert rc == 0, err
    rd = tmp_path / "runs" / "timing"
    for name in ("config.json", "train.log", "metrics.jsonl", "best.pt", "final.json",
                 "learning_curves.png", "delays.png", "raster.png", "confusion.png"):
        assert (rd / name).is_file(), name
    final = json.loads(out)
    assert final["epochs"] == 10 and final["test_acc"] > 0.6  # chance: 0.25
    assert not (tmp_path / "no-data-here").exists()  # no data directory needed
    assert wall < 60
    # again: the run directory is taken, said in one line
    rc, _, err = run(capsys, "train", "--dataset", "timing")
    assert rc == 2 and "--resume" in err


def test_timing_preset_is_overridden_by_flags_and_files(tmp_path, capsys):
    rc, out, _ = run(capsys, "train", "--dataset", "timing", "--epochs", "3", "--print-config")
    cfg = json.loads(out)
    assert rc == 0 and cfg["train"]["epochs"] == 3 and cfg["train"]["lr"] == 0.01
    assert cfg["model"]["n_in"] == 10 and cfg["model"]["n_out"] == 4 and cfg["name"] == "timing"
    f = tmp_path / "t.toml"
    f.write_text('[model]\ntau_m = 20.0\n[data]\ndataset = "timing"\nchannels = 6\n')
    cfg = resolve_config({"model": {"tau_m": 20.0}, "data": {"dataset": "timing",
                                                             "channels": 6}})
    rc, out, _ = run(capsys, "train", "-c", f, "--print-config")
    shown = json.loads(out)
    assert shown["model"]["tau_m"] == 20.0 and shown["model"]["n_in"] == 6
    assert shown["data"] == cfg["data"] and shown["name"] == "t"


# --------------------------------------------------------------------------- progress


def test_progress_lines_instead_of_bars_when_not_on_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DELAYPROP_PROGRESS_INTERVAL", "0")
    rc, _, err = run(capsys, "train", "--dataset", "timing", "--epochs", "1", "--n-hidden", "4",
                     "--train-subset", "64", "--batch-size", "32", "--no-plots")
    assert rc == 0, err
    assert "\r" not in err and "\x1b" not in err
    assert "epoch 1/1: 1/2 batch (50%), loss=" in err
    assert "epoch 1/1: 2/2 batch (100%)" in err


def test_progress_bar_kinds():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    from tqdm import tqdm

    assert isinstance(progress_bar(range(3), file=Tty()), tqdm)
    assert isinstance(progress_bar(range(3), file=io.StringIO()), LineProgress)
    quiet = progress_bar(range(3), enabled=False, file=io.StringIO())
    assert isinstance(quiet, tqdm) and quiet.disable
    buf = io.StringIO()
    bar = LineProgress(total=4_000_000, desc="f.gz", unit="B", unit_scale=True, file=buf,
                       interval=3600, final_line=True)
    bar.update(1_000_000)
    assert buf.getvalue() == ""  # not before the interval
    bar.close()
    assert buf.getvalue().startswith("f.gz: 1.0 MB/4.0 MB (25%), ")


# --------------------------------------------------------------------------- --help


def _train_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def test_every_train_flag_has_a_description_with_default():
    from delayprop.cli.helptext import choices

    actions = [a for a in _train_parser()._actions if a.option_strings and a.dest != "help"]
    for a in actions:
        assert a.help and len(a.help) > 10, a.option_strings
        if a.dest.startswith("cfg__"):
            assert "(default: " in a.help, a.option_strings
    by_dest = {a.dest: a for a in actions}
    for (sec, key), values in choices().items():
        a = by_dest[f"cfg__{sec}__{key}"]
        assert a.metavar == "{" + ",".join(values) + "}"
        for v in values:  # every listed choice is accepted
            if v != "PATH":
                resolve_config({sec: {key: v}})


def test_every_option_is_documented():
    from dataclasses import fields

    from delayprop.cli.helptext import docstring_fields
    from delayprop.layers import NetConfig

    docs = docstring_fields(NetConfig)
    assert sorted(docs) == sorted(f.name for f in fields(NetConfig))
    assert "Gaussian kernel of width sigma" in docs["delay_mode"]  # continuation line joined
    for sec in ("method", "train", "data"):
        assert sorted(OPTION_DOCS[sec]) == sorted(DEFAULTS[sec]), sec


# The full `delayprop train --help` is in docs/cli.md, checked by tests/test_docs.py.
