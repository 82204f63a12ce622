"""Issue 12: datasets by name or path (shd / ssc / h5 / timing / a file), their classes from
the data, automatic downloads for SHD, the training log's data notes, and no run directory
left behind by a failed start. Tiny SHD-format files, one or two short training runs."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from shd_files import write_shd_file
from test_cli_train import run

from delayprop.data import registry
from delayprop.data import remote as dl
from delayprop.errors import ConfigError, DataError
from delayprop.train import resolve_config

FAST = ["--max-time", "0.25", "--channels", "35", "--n-hidden", "6", "--max-delay", "3",
        "--epochs", "1", "--batch-size", "16", "--no-plots"]


def write_digits(path: Path, n: int, classes: int = 10, seed: int = 0, late: int = 0) -> Path:
    """SHD-format file with ``classes`` named classes (extra/keys) and 3 speakers; ``late``
    spikes per sample at 0.28-0.3 s (past a max_time of 0.25 s)."""
    rng = np.random.default_rng(seed)
    times, units = [], []
    for i in range(n):
        c = i % classes
        t = np.concatenate([rng.uniform(0, 0.2, 6), 0.01 * (c + 1) + rng.uniform(0, 0.01, 12),
                            rng.uniform(0.28, 0.3, late)])
        u = np.concatenate([rng.integers(0, 700, 6), 60 * c + rng.integers(0, 20, 12),
                            rng.integers(0, 700, late)])
        order = np.argsort(t)
        times.append(t[order])
        units.append(u[order])
    return write_shd_file(path, times, units, np.arange(n) % classes,
                          speakers=np.arange(n) % 3,
                          keys=[f"digit-{k}".encode() for k in range(classes)])


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Work in tmp_path (default run directories land in runs/), private data and cache."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DELAYPROP_DATA", str(tmp_path / "default-data"))
    monkeypatch.setenv("DELAYPROP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DELAYPROP_DATA_URL", raising=False)
    monkeypatch.delenv("DELAYPROP_PROGRESS_INTERVAL", raising=False)


@pytest.fixture
def digits(tmp_path):
    """Ten-class SHD-format files named like SHD's (the issue's case)."""
    d = tmp_path / "digits"
    write_digits(d / "shd_train.h5", 90, seed=0, late=2)
    write_digits(d / "shd_test.h5", 30, seed=1)
    return d


# --------------------------------------------------------------------------- names, shapes


def test_dataset_names_paths_and_labels(tmp_path):
    assert [registry.kind_of(n) for n in ("shd", "SSC", "h5", "timing")] == \
        ["shd", "ssc", "h5", "timing"]
    assert registry.kind_of("x/digits_train.h5.gz") == "path"
    assert registry.kind_of("digits_train.h5") == "path"
    with pytest.raises(ConfigError, match="shd, ssc, h5, timing"):
        registry.kind_of("mnist")
    with pytest.raises(ConfigError, match="unknown dataset 'mnist'"):
        resolve_config({"data": {"dataset": "mnist"}})
    assert registry.dataset_label("x/digits_train.h5.gz") == "digits"
    assert registry.dataset_label("x/train.h5") == "x"  # then the folder names it
    assert registry.dataset_label("timing") == "timing"


def test_h5_files_found_and_classes_from_the_files(tmp_path, digits):
    d = resolve_config({"data": {"dataset": "h5", "data_dir": str(digits)}})["data"]
    assert registry.data_files(d) == (digits / "shd_train.h5", digits / "shd_test.h5")
    assert registry.data_shape(d).num_classes == 10
    assert registry.data_shape(dict(d, dataset="shd")).num_classes == 20
    # a file path: its test file is the same name with train -> test (any extension)
    f = write_digits(tmp_path / "own" / "spoken_train.h5.gz", 12, classes=4)
    write_digits(tmp_path / "own" / "spoken_test.h5", 8, classes=6)
    d2 = dict(d, dataset=str(f))
    assert registry.data_files(d2) == (f, tmp_path / "own" / "spoken_test.h5")
    data = registry.load_data(d2, progress=False)
    assert data.train.num_classes == data.test.num_classes == 6  # the larger of the two
    assert data.train.class_names[:4] == [f"digit-{k}" for k in range(4)]
    # two candidate training files: a one-line error that names them
    write_digits(digits / "other_train.h5", 6)
    with pytest.raises(DataError, match="several training files.*other_train.h5"):
        registry.data_files(d)
    with pytest.raises(DataError, match="no SHD-format training file"):
        registry.data_files(dict(d, data_dir=str(tmp_path / "empty")))


def test_timing_settings_are_checked():
    cfg = resolve_config({"data": {"dataset": "timing"}})
    assert cfg["data"]["channels"] == 10 and cfg["model"]["tau_m"] == 5.0
    assert resolve_config({"data": {"dataset": "timing", "channels": 4}})["data"]["channels"] == 4
    with pytest.raises(ConfigError, match="channels >= 2"):
        resolve_config({"data": {"dataset": "timing", "channels": 1}})
    with pytest.raises(ConfigError, match="more than 13 steps"):
        resolve_config({"data": {"dataset": "timing", "max_time": 0.1}})
    with pytest.raises(ConfigError, match="must divide 700"):
        resolve_config({"data": {"dataset": "shd", "channels": 33}})
    # the dcls method keeps its own model defaults
    assert resolve_config({"method": {"name": "dcls"}, "data": {"dataset": "timing"}}
                          )["model"] == {}


# --------------------------------------------------------------------------- own class count


def test_own_ten_class_files_train_with_dataset_h5(tmp_path, digits, capsys):
    rc, out, _ = run(capsys, "data", "info", digits / "shd_train.h5", "--no-progress")
    assert rc == 0 and "classes 10" in out
    # as "shd" they are SHD: 20 classes. print-config and training give the same error
    for extra in (["--print-config"], []):
        rc, _, err = run(capsys, "train", "--data-dir", digits, "--n-out", "10", *FAST, *extra)
        assert rc == 2
        assert "model.n_out=10 but the data has 20 classes" in err
        assert "--dataset h5" in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()
    # as "h5" the classes come from the files, in print-config and in the run alike
    rc, out, _ = run(capsys, "train", "--dataset", "h5", "--data-dir", digits, *FAST,
                     "--print-config")
    shown = json.loads(out)
    assert rc == 0 and shown["model"]["n_out"] == 10 and shown["model"]["n_in"] == 35
    assert shown["model"]["tau_m"] == 100.0  # the complete [model] section
    rc, _, err = run(capsys, "train", "--dataset", "h5", "--data-dir", digits, "--n-out", "8",
                     *FAST, "--print-config")
    assert rc == 2 and "model.n_out=8 but the data has 10 classes" in err
    rc, out, err = run(capsys, "train", "--dataset", "h5", "--data-dir", digits, "--n-out", "10",
                       *FAST, "-q")
    assert rc == 0, err
    final = json.loads(out)
    assert len(final["test_per_class"]) == 10
    rd = tmp_path / "runs" / "h5"  # named after the dataset when there is no config file
    assert json.loads((rd / "config.json").read_text())["data"]["dataset"] == "h5"
    rc, out, _ = run(capsys, "eval", rd, "-q")
    assert rc == 0 and "digit-9" in out


def test_a_file_path_without_test_file_trains_and_skips_the_test(tmp_path, capsys):
    f = write_digits(tmp_path / "mine" / "words_train.h5", 40, classes=4)
    rc, out, err = run(capsys, "train", "--dataset", f, *FAST, "-q")
    assert rc == 0, err
    final = json.loads(out)
    assert "test_acc" not in final and final["name"] == "words"
    assert "no test file next to" in err
    log = (tmp_path / "runs" / "words" / "train.log").read_text()
    assert "the final test is skipped" in log


# --------------------------------------------------------------------------- failed starts


def test_failed_starts_leave_no_run_directory(tmp_path, digits, capsys):
    runs = tmp_path / "runs"
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nlr = -1\n")
    for argv in (["--config", bad],                                      # bad config
                 ["--data-dir", tmp_path / "nothing", "--no-download"],  # missing data
                 ["--data-dir", digits, "--n-out", "10"],                # class mismatch
                 ["--data-dir", digits, "--n-in", "140", "--channels", "35"],
                 ["--dataset", "h5", "--data-dir", digits, "--device", "cuda:7"]):
        rc, _, err = run(capsys, "train", *argv, "--run-dir", runs / "x", "-q")
        assert rc == 2 and err.startswith("delayprop: error:"), err
        assert not runs.exists(), argv
    assert not (tmp_path / "nothing").exists()
    # the library call too: a misfit found after loading leaves nothing
    from delayprop.train import split_datasets, train

    cfg = resolve_config({"model": {"n_out": 3}, "data": {"dataset": "h5",
                                                         "data_dir": str(digits)}})
    data = registry.load_data(cfg["data"], progress=False)
    with pytest.raises(ConfigError, match="model.n_out=3 but the data has 10 classes"):
        train(cfg, runs / "lib", splits=split_datasets(cfg, data.train, data.test))
    assert not runs.exists()


# --------------------------------------------------------------------------- downloads


def _mirror(tmp_path: Path, digits: Path, md5_of_train: str | None = None) -> Path:
    m = tmp_path / "mirror"
    m.mkdir()
    lines = []
    for split in ("train", "test"):
        data = gzip.compress((digits / f"shd_{split}.h5").read_bytes())
        (m / f"shd_{split}.h5.gz").write_bytes(data)
        md5 = hashlib.md5(data).hexdigest()
        if split == "train" and md5_of_train:
            md5 = md5_of_train
        lines.append(f"{md5}  shd_{split}.h5.gz")
    (m / "md5sums.txt").write_text("\n".join(lines) + "\n")
    return m


def test_training_downloads_missing_shd_files(tmp_path, digits, capsys, monkeypatch):
    monkeypatch.setenv("DELAYPROP_DATA_URL", _mirror(tmp_path, digits).as_uri())
    monkeypatch.setenv("DELAYPROP_PROGRESS_INTERVAL", "0")
    data = tmp_path / "fresh" / "data"
    rc, out, err = run(capsys, "train", "--data-dir", data, *FAST)
    assert rc == 0, err
    assert sorted(p.name for p in data.glob("*.gz")) == ["shd_test.h5.gz", "shd_train.h5.gz"]
    assert "downloading from file://" in err
    # not on a terminal: the download reports as plain lines, never carriage returns
    assert "shd_train.h5.gz: " in err and "(100%)" in err and "\r" not in err
    assert json.loads(out)["epochs"] == 1


def test_download_failures_are_one_line_and_leave_nothing(tmp_path, digits, capsys,
                                                          monkeypatch):
    # a wrong checksum
    monkeypatch.setenv("DELAYPROP_DATA_URL", _mirror(tmp_path, digits, "0" * 32).as_uri())
    data = tmp_path / "fresh" / "data"
    rc, _, err = run(capsys, "train", "--data-dir", data, *FAST, "-q")
    assert rc == 2 and "checksum mismatch" in err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and "--dataset timing" in errors[0]
    assert not (tmp_path / "fresh").exists() and not (tmp_path / "runs").exists()

    # no network: one error line (no separate checksum warning), with what to do
    def offline(url, timeout):
        raise OSError("Name or service not known")

    monkeypatch.setattr(dl, "_urlopen", offline)
    rc, _, err = run(capsys, "train", "--data-dir", data, *FAST, "-q")
    assert rc == 2
    assert [line for line in err.splitlines() if line.startswith("delayprop: error")] == \
        [err.splitlines()[-1]]
    assert "download failed" in err and "warning" not in err and "into" in err
    # downloads off: say how to get the files
    rc, _, err = run(capsys, "train", "--data-dir", data, "--no-download", *FAST)
    assert rc == 2 and "delayprop data download shd" in err and "downloading" not in err
    assert not (tmp_path / "fresh").exists() and not (tmp_path / "runs").exists()


# --------------------------------------------------------------------------- log notes


def test_training_log_names_dropped_spikes_and_validation_speakers(tmp_path, digits, capsys):
    rc, _, err = run(capsys, "train", "--dataset", "h5", "--data-dir", digits, *FAST,
                     "--by-speaker", "--run-dir", tmp_path / "r", "-q")
    assert rc == 0, err
    log = (tmp_path / "r" / "train.log").read_text()
    assert "train: 180 spikes at t >= 0.25 s dropped" in log  # 90 samples x 2 late spikes
    assert "spikes at t >= 0.25 s dropped" in err
    held = [line for line in log.splitlines() if "validation: speaker" in line]
    assert len(held) == 1 and "held out (30 samples)" in held[0]
    # stratified split: said so
    rc, _, err = run(capsys, "train", "--dataset", "h5", "--data-dir", digits, *FAST,
                     "--run-dir", tmp_path / "r2", "-q")
    assert "stratified by class" in (tmp_path / "r2" / "train.log").read_text()


def test_data_commands_print_no_carriage_returns_when_redirected(tmp_path, digits, capsys):
    for argv in (["data", "prepare", digits / "shd_train.h5", "--rebuild"],
                 ["data", "info", digits / "shd_test.h5"]):
        rc, out, err = run(capsys, *argv)
        assert rc == 0 and "\r" not in out + err
    assert "parsed and binned" in out + err or "samples 30" in out
