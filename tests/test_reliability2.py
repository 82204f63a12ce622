"""Issue #31, reliability second round: no overwritten runs, no stale caches, no tracebacks
from bad values.

One test (or parametrized case) per numbered item of the issue, named after it, on generated
files (tests/shd_files.py) and tiny runs (the timing task, one epoch, one thread): a one-line
error that names the file or option and a non-zero exit, or a documented recovery; nothing
overwritten or half-written. ``test_property_invalid_config_values`` feeds seeded random
invalid values of every option to ``delayprop train``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from shd_files import write_shd, write_shd_file
from test_cli_train import TINY
from test_reliability import cli, error_line, snapshot

from delayprop.cli import main
from delayprop.data import load_file
from delayprop.data.packed import load_packed, packed_name, save_packed
from delayprop.data.reader import bin_spikes
from delayprop.errors import ConfigError, DataError
from delayprop.layers import DelayNet, NetConfig
from delayprop.rules import EpropConfig, OnlineEprop
from delayprop.train import BEST, CHECKPOINT, CONFIG, FINAL, INIT, METRICS

# the timing task, small and fast: 20 steps, 4 hidden neurons, one epoch, big batches
FAST = ["train", "--dataset", "timing", "--max-time", "0.2", "--n-hidden", "4", "--max-delay", "3",
        "--epochs", "1", "--batch-size", "500", "--threads", "1", "-q", "--no-plots"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DELAYPROP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DELAYPROP_DATA", str(tmp_path / "default-data"))


def tiny_run(capsys, tmp_path: Path, data_dir: Path) -> tuple[Path, Path]:
    """(config, run folder) of a finished one-epoch e-prop run of the tiny SHD config."""
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY.format(method="eprop"))
    rd = tmp_path / "run"
    rc, _, err = cli(capsys, "train", "--config", cfg, "--data-dir", data_dir, "--run-dir", rd,
                     "--epochs", "1", "-q", "--no-plots", "--threads", "1")
    assert rc == 0, err
    return cfg, rd


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished one-epoch timing run (shared, copied by the tests that change it)."""
    rd = tmp_path_factory.mktemp("finished") / "run"
    assert main([*FAST, "--run-dir", str(rd)]) == 0
    return rd


def copy_run(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    return dst


# ---------------------------------------------------------------------------------------------
# 1. Data loss: a directory holding any run file is refused unless --overwrite


def test_1_run_dir_with_run_files_is_not_overwritten(capsys, tmp_path, finished):
    rd = copy_run(finished, tmp_path)
    (rd / CHECKPOINT).unlink()
    before = snapshot(rd)
    rc, _, err = cli(capsys, *FAST, "--run-dir", rd)
    assert rc == 2
    line = error_line(err)
    assert str(rd) in line and "--overwrite" in line and "final.json" in line
    assert snapshot(rd) == before  # best.pt, final.json, metrics.jsonl untouched
    # every single run file counts
    for name in (CONFIG, METRICS, FINAL, BEST, INIT):
        one = tmp_path / f"only-{name}"
        one.mkdir()
        (one / name).write_bytes((rd / name).read_bytes())
        rc, _, err = cli(capsys, *FAST, "--run-dir", one)
        assert rc == 2 and name in error_line(err)
        assert [p.name for p in one.iterdir()] == [name]
    # --overwrite: a start that fails (bad data) still loses nothing
    rc, _, err = cli(capsys, *FAST, "--run-dir", rd, "--overwrite", "--dataset",
                     tmp_path / "nothing_train.h5")
    assert rc == 2 and snapshot(rd) == before
    # --overwrite replaces the old run, and says so
    rc, out, err = cli(capsys, *FAST, "--run-dir", rd, "--overwrite", "--seed", "7")
    assert rc == 0, err
    assert "overwrite" in err and str(rd) in err
    assert json.loads((rd / CONFIG).read_text())["train"]["seed"] == 7
    assert (rd / CHECKPOINT).is_file() and len((rd / METRICS).read_text().splitlines()) == 1


def test_1_run_that_never_finished_an_epoch_restarts_with_the_same_config(capsys, tmp_path,
                                                                          finished):
    """What the experiment runner relies on: a run killed in its first epoch (config.json,
    init.pt and an empty metrics.jsonl, no checkpoint) starts again with the same
    configuration, with another one it is refused."""
    rd = copy_run(finished, tmp_path)
    for p in rd.iterdir():
        if p.name not in (CONFIG, INIT):
            p.unlink() if p.is_file() else shutil.rmtree(p)
    (rd / METRICS).write_text("")
    rc, _, err = cli(capsys, *FAST, "--run-dir", rd, "--seed", "3")
    assert rc == 2 and "train.seed" in error_line(err)
    rc, _, err = cli(capsys, *FAST, "--run-dir", rd)
    assert rc == 0, err
    assert (rd / FINAL).is_file() and "never completed an epoch" in err


# ---------------------------------------------------------------------------------------------
# 2. Stale cache: keyed on the file's contents, not its name, size and mtime


def test_2_cache_is_keyed_on_contents(tmp_path):
    a = write_shd(tmp_path / "A" / "digits_train.h5", 30, seed=0)
    b = write_shd(tmp_path / "B" / "digits_train.h5", 30, seed=1)
    assert a.stat().st_size == b.stat().st_size and a.read_bytes() != b.read_bytes()
    os.utime(a, ns=(10**18, 10**18))
    os.utime(b, ns=(10**18, 10**18))
    cache = tmp_path / "cache"
    da = load_file(a, max_time=0.3, cache_dir=cache, progress=False)
    db = load_file(b, max_time=0.3, cache_dir=cache, progress=False)
    assert not db.from_cache and not torch.equal(da.x, db.x)
    fresh = load_file(b, max_time=0.3, cache=False, progress=False)
    assert torch.equal(db.x, fresh.x)
    # the second load of each comes from the cache, with its own tensors
    assert load_file(a, max_time=0.3, cache_dir=cache, progress=False).from_cache
    again = load_file(b, max_time=0.3, cache_dir=cache, progress=False)
    assert again.from_cache and torch.equal(again.x, fresh.x)
    # the file changed in place, same size and mtime: not the old tensors
    b.write_bytes(a.read_bytes())
    os.utime(b, ns=(10**18, 10**18))
    assert torch.equal(load_file(b, max_time=0.3, cache_dir=cache, progress=False).x, da.x)


# ---------------------------------------------------------------------------------------------
# 3. Wrong binning: a huge finite spike time is dropped, not put into step 0


def test_3_huge_spike_time_is_dropped(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning either
        x, dropped = bin_spikes(np.array([0.015, 1e30, 1e300, 0.5]), np.array([0, 1, 2, 3]),
                                np.array([4]), 0.01, 10, 700)
    assert dropped == 3 and int(x.sum()) == 1 and x[0, 1, 0] == 1
    p = write_shd_file(tmp_path / "far_train.h5", [[0.015, 1e30]], [[0, 5]], [0],
                       tdtype=np.float64)
    ds = load_file(p, max_time=0.1, cache=False, progress=False)
    assert ds.dropped_spikes == 1 and int(ds.x.sum()) == 1 and ds.x[0, 0].sum() == 0


# ---------------------------------------------------------------------------------------------
# 4. --resume on a finished run with another configuration


def test_4_resume_finished_run_with_other_config_is_refused(capsys, tmp_path, finished):
    rd = copy_run(finished, tmp_path)
    before = snapshot(rd)
    rc, out, err = cli(capsys, *FAST, "--run-dir", rd, "--resume")
    assert rc == 0 and json.loads(out) == json.loads((rd / FINAL).read_text())
    for extra, option in ((["--method", "bptt"], "method.name"),
                          (["--max-time", "0.3"], "data.max_time"),
                          (["--lr", "0.5"], "train.lr")):
        rc, _, err = cli(capsys, *FAST, "--run-dir", rd, "--resume", *extra)
        assert rc == 2 and option in error_line(err) and str(rd) in error_line(err)
    rc, _, err = cli(capsys, *FAST, "--run-dir", rd, "--resume", "--epochs", "3")
    line = error_line(err)
    assert rc == 2 and "train.epochs" in line and "finished" in line
    assert "--overwrite" in line  # says how to train longer
    assert snapshot(rd) == before


# ---------------------------------------------------------------------------------------------
# 5. eval --data-dir OTHER: compared with the data identity of the checkpoint


def test_5_eval_on_other_data_warns_naming_both(capsys, tmp_path, data_dir):
    _, rd = tiny_run(capsys, tmp_path, data_dir)
    other = tmp_path / "other"
    write_shd(other / "shd_train.h5", 60, seed=5)
    write_shd(other / "shd_test.h5", 24, seed=6)
    rc, _, err = cli(capsys, "eval", rd, "--data-dir", data_dir, "-q")
    assert rc == 0 and "warning" not in err
    rc, out, err = cli(capsys, "eval", rd, "--data-dir", other, "-q")
    assert rc == 0
    warning = next(line for line in err.splitlines() if "other data" in line)
    assert str(data_dir / "shd_test.h5") in warning and str(other / "shd_test.h5") in warning
    for flag in (["--threads", "-1"], ["--batch-size", "0"]):
        rc, _, err = cli(capsys, "eval", rd, *flag)
        assert rc == 2 and flag[0] in error_line(err)


# ---------------------------------------------------------------------------------------------
# 6. One-line errors instead of tracebacks


@pytest.fixture
def unfinished(tmp_path, finished):
    """A run with its checkpoint but no final.json (as if killed after the last epoch)."""
    rd = copy_run(finished, tmp_path)
    (rd / FINAL).unlink()
    return rd


@pytest.mark.parametrize("impostor", [BEST, INIT, "cache"])
def test_6_resume_from_a_file_that_is_not_a_checkpoint(capsys, tmp_path, unfinished, impostor):
    if impostor == "cache":
        p = write_shd(tmp_path / "d" / "x_train.h5", 6)
        ds = load_file(p, max_time=0.3, cache_dir=tmp_path / "c", progress=False)
        shutil.copy(ds.cache_path, unfinished / CHECKPOINT)
    else:
        shutil.copy(unfinished / impostor, unfinished / CHECKPOINT)
    rc, _, err = cli(capsys, *FAST, "--run-dir", unfinished, "--resume")
    line = error_line(err)
    assert rc == 2 and str(unfinished / CHECKPOINT) in line and "not a training checkpoint" in line


@pytest.mark.parametrize("argv,option", [
    (["--lr", "1e39"], "train.lr"),
    (["--delay-lr", "1e39"], "train.delay_lr"),
    (["--method", "dcls", "--set", "model.hidden=[4]", "--lr", "1e38"], "train.lr"),
    (["--threads", "-1"], "train.threads"),
    (["--set", "model.n_hidden=[1,"], "model.n_hidden"),
    (["--set", "data.train_subset=1.5"], "data.train_subset"),
    (["--set", "train.seed=inf"], "train.seed"),
    (["--set", 'train.sigma_decay_fraction="half"'], "train.sigma_decay_fraction"),
])
def test_6_bad_values_are_one_line_errors(capsys, tmp_path, argv, option):
    rc, _, err = cli(capsys, *FAST, "--run-dir", tmp_path / "r", *argv)
    assert rc == 2 and option in error_line(err)
    assert not (tmp_path / "r").exists()


def test_6_config_file_types(capsys, tmp_path):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('[train]\n# caf\xe9\nlr = 0.01\n'.encode("latin-1"))
    rc, _, err = cli(capsys, "train", "--config", bad, "--dataset", "timing")
    assert rc == 2 and str(bad) in error_line(err) and "UTF-8" in error_line(err)
    one = tmp_path / "one.toml"
    one.write_text("[model]\nn_hidden = 8\n")  # one layer of 8
    rc, out, err = cli(capsys, "train", "--config", one, "--dataset", "timing",
                       "--print-config")
    assert rc == 0 and json.loads(out)["model"]["n_hidden"] == [8]


def test_6_huge_label_without_keys(capsys, tmp_path):
    p = write_shd_file(tmp_path / "d" / "big_train.h5", [[0.01], [0.02]], [[1], [2]],
                       [0, 10**9 % 65536])
    # uint16 labels in the helper: write the huge label directly
    import h5py
    with h5py.File(p, "r+") as f:
        del f["labels"]
        f.create_dataset("labels", data=np.array([0, 10**9], dtype=np.int64))
    rc, _, err = cli(capsys, "train", "--dataset", p, "--max-time", "0.1", "-q",
                     "--run-dir", tmp_path / "r")
    line = error_line(err)
    assert rc == 2 and str(p) in line and "1000000000" in line


def test_6_packed_file_without_checksum(tmp_path):
    ds = load_file(write_shd(tmp_path / "x_train.h5", 6), max_time=0.3, cache=False,
                   progress=False)
    path = save_packed(ds, tmp_path / packed_name("shd", "train", 0.01, 0.3, 140, False))
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    for key in ("x_sha256", "sha256"):
        meta.pop(key, None)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez_compressed(path, **arrays)
    with pytest.raises(DataError, match="no checksum") as e:
        load_packed(path)
    assert str(path) in str(e.value)


def test_6_very_long_data_file_name(capsys, tmp_path):
    name = "d" * 225 + "_train.h5"
    assert len(name) == 234
    p = write_shd(tmp_path / "d" / name, 12)
    ds = load_file(p, max_time=0.3, cache_dir=tmp_path / "c", progress=False)
    assert ds.cache_path and len(Path(ds.cache_path).name) < 200
    assert load_file(p, max_time=0.3, cache_dir=tmp_path / "c", progress=False).from_cache


# ---------------------------------------------------------------------------------------------
# 7. Memory estimated before allocating; max_delay beyond the sequence warned about


@pytest.mark.parametrize("argv", [["--max-delay", "1000000"],
                                  ["--set", "model.n_hidden=[2147483648]"]])
def test_7_settings_that_need_too_much_memory(capsys, tmp_path, argv):
    rc, _, err = cli(capsys, *FAST, "--run-dir", tmp_path / "r", *argv)
    line = error_line(err)
    assert rc == 2 and "GiB" in line and "needs" in line
    assert not (tmp_path / "r").exists()


def test_7_data_prepare_memory_check(capsys, tmp_path, monkeypatch):
    p = write_shd(tmp_path / "x_train.h5", 12)
    monkeypatch.setenv("DELAYPROP_MAX_MEMORY", "10M")  # 12 x 100000 x 140 bytes is 168 MB
    rc, _, err = cli(capsys, "data", "prepare", p, "--max-time", "1000", "--no-progress",
                     "--cache-dir", tmp_path / "c")
    line = error_line(err)
    assert rc == 2 and str(p) in line and "needs" in line and "DELAYPROP_MAX_MEMORY" in line
    assert not list((tmp_path / "c").glob("*.pt"))


def test_7_max_delay_longer_than_the_sequence_warns(capsys, tmp_path):
    rc, _, err = cli(capsys, *FAST, "--run-dir", tmp_path / "r", "--max-delay", "30")
    assert rc == 0
    assert any("max_delay" in line and "30" in line and "20" in line
               for line in err.splitlines() if "warning" in line)


# ---------------------------------------------------------------------------------------------
# 8. Accepted silently before


@pytest.mark.parametrize("toml,option", [
    ("[train]\nlr = true\n", "train.lr"),
    ("[method]\ntarget_rate = nan\n", "method.target_rate"),
    ("[model]\nrecurrent_delays = true\n", "recurrent_delays"),
])
def test_8_silently_accepted_values_are_refused(capsys, tmp_path, toml, option):
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    rc, _, err = cli(capsys, *FAST, "--config", cfg, "--run-dir", tmp_path / "r")
    assert rc == 2 and option in error_line(err)


def test_8_packed_file_with_permuted_labels(tmp_path):
    ds = load_file(write_shd(tmp_path / "x_train.h5", 12), max_time=0.3, cache=False,
                   progress=False)
    path = save_packed(ds, tmp_path / packed_name("shd", "train", 0.01, 0.3, 140, False))
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["y"] = np.roll(arrays["y"], 1)
    np.savez_compressed(path, **arrays)
    with pytest.raises(DataError, match="checksum"):
        load_packed(path)


@pytest.mark.parametrize("name", ["a/../../x", "..", "a/b", "/abs"])
def test_8_run_name_cannot_escape_runs(capsys, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    rc, _, err = cli(capsys, *FAST, "--name", name)
    assert rc == 2 and "--name" in error_line(err)
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------
# 9. The Python API: ConfigErrors, not raw RuntimeError / IndexError / TypeError


def test_9_python_api_errors():
    net = DelayNet(NetConfig(n_in=3, n_hidden=5, n_out=2, max_delay=2))
    assert net.config.n_hidden == (5,)
    learner = OnlineEprop(net, EpropConfig(loss="sum"))
    with pytest.raises(ConfigError, match="batch"):
        learner.begin(0)
    with pytest.raises(ConfigError, match="batch"):
        learner.begin(1.5)
    learner.begin(2)
    with pytest.raises(ConfigError, match="batch size 3.*begin.*2"):
        learner.step(torch.zeros(3, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ConfigError, match="n_in"):
        learner.step(torch.zeros(2, 4), torch.zeros(2, dtype=torch.long))
    learner.step(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ConfigError, match=r"layer=5.*0\.\.0"):
        learner.eligibility(layer=5)
    with pytest.raises(ConfigError, match="group"):
        learner.eligibility(0, group="rec")
    with torch.no_grad():
        net.layers[0].ff.syn_delay[0, 0] = float("nan")
    with pytest.raises(ConfigError, match="syn_delay"):
        net.clamp_delays_()
    for bad in ({"n_hidden": "8"}, {"n_hidden": [1.5]}, {"n_in": True}, {"tau_m": "x"},
                {"kappa": 1.0}, {"recurrent_delays": True}, {"reset": "none"}):
        with pytest.raises(ConfigError):
            NetConfig(**bad)


# ---------------------------------------------------------------------------------------------
# 10. Messages that say enough


def test_10_resume_on_other_contents_names_the_difference(capsys, tmp_path, data_dir):
    cfg, rd = tiny_run(capsys, tmp_path, data_dir)
    (rd / FINAL).unlink()
    # same names, sizes and sample counts; other spikes
    write_shd(data_dir / "shd_train.h5", 60, seed=9)
    write_shd(data_dir / "shd_test.h5", 24, seed=8)
    rc, _, err = cli(capsys, "train", "--config", cfg, "--data-dir", data_dir, "--run-dir", rd,
                     "--epochs", "1", "--resume", "-q", "--no-plots", "--threads", "1")
    line = error_line(err)
    assert rc == 2 and "contents" in line and "sha256" in line
    assert str(data_dir / "shd_train.h5") in line


def test_10_truncated_checkpoint(capsys, unfinished):
    data = (unfinished / CHECKPOINT).read_bytes()
    (unfinished / CHECKPOINT).write_bytes(data[: len(data) // 2])
    rc, _, err = cli(capsys, *FAST, "--run-dir", unfinished, "--resume")
    line = error_line(err)
    assert rc == 2 and str(unfinished / CHECKPOINT) in line
    assert "truncated" in line and "Errno" not in line.split("(")[0]


def test_10_messages_name_the_file(capsys, tmp_path):
    # a validation split with no samples
    p = write_shd(tmp_path / "d" / "one_train.h5", 1)
    rc, _, err = cli(capsys, "train", "--dataset", p, "--max-time", "0.3", "-q",
                     "--run-dir", tmp_path / "r")
    assert rc == 2 and str(p) in error_line(err) and "validation" in error_line(err)
    # spike times print as numbers
    q = write_shd_file(tmp_path / "e" / "nan_train.h5", [[0.01, float("nan")]], [[1, 2]], [0],
                       tdtype=np.float64)
    with pytest.raises(DataError) as e:
        load_file(q, cache=False, progress=False)
    assert "np.float64" not in str(e.value) and "nan" in str(e.value)


def test_10_eval_labels_out_of_range_names_the_file(capsys, tmp_path, data_dir):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY.format(method="eprop").replace("[data]", '[data]\ndataset = "h5"'))
    rd = tmp_path / "run"
    rc, _, err = cli(capsys, "train", "--config", cfg, "--data-dir", data_dir, "--run-dir", rd,
                     "--epochs", "1", "-q", "--no-plots", "--threads", "1")
    assert rc == 0, err
    other = tmp_path / "other"
    write_shd(other / "shd_train.h5", 60, seed=0)
    times, units = [[0.01, 0.02]] * 4, [[1, 2]] * 4
    write_shd_file(other / "shd_test.h5", times, units, [0, 1, 2, 4])
    rc, _, err = cli(capsys, "eval", rd, "--data-dir", other, "-q")
    line = error_line(err)
    assert rc == 2 and str(other / "shd_test.h5") in line and "label 4" in line


# ---------------------------------------------------------------------------------------------
# The tests' own caches


def test_test_packed_isolates_the_cache():
    src = (Path(__file__).parent / "test_packed.py").read_text()
    assert "DELAYPROP_CACHE" in src


def test_suite_runs_with_a_private_cache(request):
    """conftest.py points $DELAYPROP_CACHE / $DELAYPROP_DATA away from ~/.cache for every
    test (checked here without this module's own fixture)."""
    assert "_private_delayprop_dirs" in request.fixturenames
    home = str(Path.home() / ".cache")
    for var in ("DELAYPROP_CACHE", "DELAYPROP_DATA"):
        assert not os.environ[var].startswith(home)


# ---------------------------------------------------------------------------------------------
# Property test: random invalid values of every option give a one-line error


def _option_specs():
    """(section, key, kind) of every option: kind says what is valid."""
    from dataclasses import fields

    from delayprop.training.config import DEFAULTS

    specs = []
    for f in fields(NetConfig):
        if f.name in ("n_in", "n_out", "dt"):
            continue  # taken from the data
        specs.append(("model", f.name, f.default if f.default is not None else 0.0, True))
    for sec in ("method", "train", "data"):
        for k, v in DEFAULTS[sec].items():
            if (sec, k) in (("data", "dataset"), ("data", "data_dir"), ("train", "device")):
                continue  # strings whose invalid values are paths or devices: tested elsewhere
            specs.append((sec, k, v, False))
    return specs


def _invalid_values(rng: random.Random, default, model: bool):
    """Values that are wrong for an option whose default is ``default`` (a [model] option
    may be huge: tau_m = 1e300 is a neuron without leak)."""
    common = ['"x"', "[1, 2]", "{ a = 1 }", '"[1,"']
    if isinstance(default, bool):
        return common + ["1", "0.5", "nan"]
    if isinstance(default, int):
        return common + ["nan", "inf", "-inf", "true", "1.5", "-1", "-7", "1e300"]
    if isinstance(default, float):
        return common + ["nan", "inf", "-inf", "true", "-1.5", "-1e300"] + (
            [] if model else ["1e300"])
    if isinstance(default, str):
        return ["1", "true", "[1]", '"no-such-value"', '""', "nan"]
    if isinstance(default, (list, tuple)):
        return ["0", "-1", "[0]", "[-3]", '["a"]', "[1.5]", "true", "[[1]]", "nan",
                "[2147483648]"]
    return common


def test_property_invalid_config_values(capsys, tmp_path):
    rng = random.Random(31)
    specs = _option_specs()
    cases = []
    for sec, key, default, model in specs:  # every option at least once
        cases.append((sec, key, rng.choice(_invalid_values(rng, default, model))))
    while len(cases) < 200:
        sec, key, default, model = rng.choice(specs)
        cases.append((sec, key, rng.choice(_invalid_values(rng, default, model))))
    failures = []
    for i, (sec, key, value) in enumerate(cases):
        rd = tmp_path / f"r{i}"
        try:
            rc = main([*FAST, "--run-dir", str(rd), "--set", f"{sec}.{key}={value}"])
        except BaseException as exc:  # noqa: BLE001 - that is what the test looks for
            failures.append(f"{sec}.{key}={value}: {type(exc).__name__}: {exc}")
            continue
        out, err = capsys.readouterr()
        errors = [line for line in err.splitlines() if line.startswith("delayprop: error:")]
        if rc != 2 or len(errors) != 1 or "Traceback" in err:
            failures.append(f"{sec}.{key}={value}: exit {rc}, {err.strip()[-300:]!r}")
        elif f"{sec}.{key}" not in errors[0] and key not in errors[0]:
            failures.append(f"{sec}.{key}={value}: the error does not name the option: "
                            f"{errors[0]}")
        if rd.exists() and any(rd.iterdir()):
            failures.append(f"{sec}.{key}={value}: left files in {rd}")
    assert not failures, f"{len(failures)} of {len(cases)} cases:\n" + "\n".join(failures)


@pytest.mark.parametrize("exc", [MemoryError(), MemoryError("cannot allocate 12 GiB"),
                                 torch.OutOfMemoryError("CUDA out of memory. Tried to allocate "
                                                        "2.00 GiB\nmore lines")])
def test_running_out_of_memory_is_one_line(monkeypatch, capsys, exc):
    """Memory that runs out where no estimate refused the setting beforehand (the host's, or
    a GPU's): one line naming it and what to lower, exit 2, no traceback."""
    import delayprop.cli.gradcheck as gc

    def boom(args):
        raise exc

    monkeypatch.setattr(gc, "run", boom)
    assert main(["gradcheck"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "out of " + ("host" if isinstance(exc, MemoryError) else "GPU") + " memory" in err
    assert "--batch-size" in err


def test_other_runtime_errors_are_not_taken_for_memory(monkeypatch):
    import delayprop.cli.gradcheck as gc

    def boom(args):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(gc, "run", boom)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        main(["gradcheck"])
