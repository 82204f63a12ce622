"""Issue #11: nothing corrupt is used silently, nothing diverges silently, one run per directory.

Every case runs on tiny generated files and runs of one to three epochs: a clear one-line error
(exit code 2) or a documented recovery, and nothing lost or half-written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from shd_files import write_shd, write_shd_file
from test_cli_train import TINY
from test_train import splits_for, toy_config, toy_dataset

from delayprop.cli import main
from delayprop.data import load_file
from delayprop.errors import ConfigError, CorruptFileError, DataError, DivergenceError, WriteError
from delayprop.fileio import (
    DirLock,
    atomic_open,
    atomic_torch_save,
    atomic_write_text,
    remove_stale_temps,
    torch_load_checked,
    verify_checksum,
)
from delayprop.safety import TrainingGuard, all_finite, check_device
from delayprop.train import (
    BEST,
    CHECKPOINT,
    FINAL,
    INIT,
    METRICS,
    load_checkpoint,
    model_from_checkpoint,
    resolve_config,
    split_datasets,
    train,
)

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"



@pytest.fixture
def tiny(tmp_path):
    p = tmp_path / "tiny.toml"
    p.write_text(TINY.format(method="eprop"))
    return p


def cli(capsys, *argv):
    """(exit code, stdout, stderr); never a traceback, an error is one line."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if line.startswith("delayprop: error:")]
    assert len(errors) == (1 if rc else 0), err
    return rc, out, err


def error_line(err: str) -> str:
    return next(line for line in err.splitlines() if line.startswith("delayprop: error:"))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (but the lock note and the log) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in (".lock", "train.log")}


def temps(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.endswith((".tmp", ".part"))]


def flip(path: Path, where: float, n: int = 8) -> None:
    """Flip ``n`` bytes at the relative position ``where`` of a file (size unchanged)."""
    b = bytearray(path.read_bytes())
    i = min(int(len(b) * where), len(b) - n)
    for k in range(i, i + n):
        b[k] ^= 0xFF
    path.write_bytes(bytes(b))


def train_args(tiny, data_dir, run_dir, *extra):
    return ("train", "--config", tiny, "--data-dir", data_dir, "--run-dir", run_dir, "-q",
            "--no-plots", *extra)


# --------------------------------------------------------------------------------------------
# 1. checksums of checkpoints and caches


def test_checksum_detects_flipped_bytes_anywhere(tmp_path):
    p = tmp_path / "x.pt"
    obj = {"w": torch.arange(4000, dtype=torch.float32), "note": "hello"}
    atomic_torch_save(obj, p)
    assert verify_checksum(p) is True
    assert torch.equal(torch.load(p, weights_only=True)["w"], obj["w"])  # plain torch.load works
    good = p.read_bytes()
    for where in (0.0, 0.3, 0.6, 0.95, 0.999):  # header, tensor data, zip directory, trailer
        p.write_bytes(good)
        flip(p, where, n=1)
        assert verify_checksum(p) is False, where
        with pytest.raises(CorruptFileError, match="checksum mismatch"):
            torch_load_checked(p, weights_only=True)
    # a file without the trailer (older delayprop) loads, reported as unverified
    old = tmp_path / "old.pt"
    torch.save(obj, old)
    loaded, verified = torch_load_checked(old, weights_only=True)
    assert verified is None and loaded["note"] == "hello"


def test_corrupt_checkpoint_is_refused_on_resume_and_eval(tmp_path, data_dir, tiny, capsys):
    rd = tmp_path / "run"
    cfg = resolve_config({"name": "tiny", **_toml(tiny)}, {"data": {"data_dir": str(data_dir)}})
    assert train(cfg, rd, progress=False, plots=False, stop_after=1) == {"stopped_at": 1}
    flip(rd / CHECKPOINT, 0.5)
    before = snapshot(rd)
    rc, _, err = cli(capsys, *train_args(tiny, data_dir, rd, "--resume"))
    assert rc == 2 and "checkpoint.pt: checksum mismatch" in error_line(err)
    assert snapshot(rd) == before and not (rd / FINAL).exists()  # nothing written or lost
    flip(rd / BEST, 0.5)
    rc, _, err = cli(capsys, "eval", rd)
    assert rc == 2 and "best.pt: checksum mismatch" in error_line(err)


@pytest.mark.parametrize("name", ["eprop_pub_seed0", "dcls_pub_seed0"])
def test_checkpoints_without_checksum_still_load(tmp_path, capsys, name):
    # a checkpoint written before checksums (plain torch.save, no trailer) loads, with a
    # warning; the released ones carry the trailer
    from delayprop.fileio import verify_checksum

    released = REPO / "results" / "models" / name / "best.pt"
    assert verify_checksum(released) is True
    old = tmp_path / "best.pt"
    torch.save(load_checkpoint(released), old)
    assert verify_checksum(old) is None
    capsys.readouterr()
    ckpt = load_checkpoint(old)
    assert "no checksum" in capsys.readouterr().err
    model = model_from_checkpoint(ckpt)
    assert all_finite(model.net.parameters())


def test_corrupt_cache_is_rebuilt_with_a_warning(tmp_path, capsys):
    p = write_shd(tmp_path / "d" / "shd_train.h5", 30)
    first = load_file(p, dt=0.01, max_time=0.2, channels=35, cache_dir=tmp_path / "c",
                      progress=False)
    cache = Path(first.cache_path)
    assert verify_checksum(cache) is True
    flip(cache, 0.5)  # inside the spike tensor: torch.load alone would not notice
    again = load_file(p, dt=0.01, max_time=0.2, channels=35, cache_dir=tmp_path / "c",
                      progress=False)
    assert "ignoring corrupt cache file" in capsys.readouterr().err
    assert not again.from_cache and torch.equal(again.x, first.x)
    assert verify_checksum(cache) is True  # rewritten
    rc, out, _ = cli(capsys, "data", "prepare", p, "--dt", "0.01", "--max-time", "0.2",
                     "--channels", "35", "--cache-dir", tmp_path / "c", "--no-progress")
    assert rc == 0 and "loaded from cache" in out


def _toml(path: Path) -> dict:
    from delayprop.train import load_config

    return load_config(path)


# --------------------------------------------------------------------------------------------
# 2. the data a run was trained on


def test_resume_on_other_data_is_refused(tmp_path, data_dir, tiny, capsys):
    rd = tmp_path / "run"
    cfg = resolve_config({"name": "tiny", **_toml(tiny)},
                         {"data": {"data_dir": str(data_dir)}, "train": {"epochs": 3}})
    train(cfg, rd, progress=False, plots=False, stop_after=1)
    ident = load_checkpoint(rd / CHECKPOINT)["data"]
    assert ident["train"]["file"] == "shd_train.h5" and ident["train"]["samples"] == 54
    assert ident["val"]["samples"] == 6 and ident["num_classes"] == 20
    other = tmp_path / "other"
    write_shd(other / "shd_train.h5", 57, seed=5)
    write_shd(other / "shd_test.h5", 24, seed=1)
    before = snapshot(rd)
    rc, _, err = cli(capsys, *train_args(tiny, other, rd, "--resume", "--epochs", "3"))
    line = error_line(err)
    assert rc == 2 and "other data" in line and "train split" in line and "54 samples" in line
    assert snapshot(rd) == before
    # an identical copy elsewhere is the same data: the run resumes and finishes
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in data_dir.glob("*.h5"):
        (copy / f.name).write_bytes(f.read_bytes())
    rc, out, err = cli(capsys, *train_args(tiny, copy, rd, "--resume", "--epochs", "3"))
    assert rc == 0 and json.loads(out)["epochs"] == 3


def test_resume_of_a_checkpoint_without_data_identity_warns(tmp_path, capsys):
    cfg = toy_config("eprop")
    rd = tmp_path / "run"
    train(cfg, rd, splits=splits_for(cfg), progress=False, plots=False, stop_after=1)
    ckpt = load_checkpoint(rd / CHECKPOINT)
    del ckpt["data"]  # as written before this check
    atomic_torch_save(ckpt, rd / CHECKPOINT)
    capsys.readouterr()
    final = train(cfg, rd, resume=True, splits=splits_for(cfg), progress=False, plots=False)
    assert final["epochs"] == 3 and "records no data identity" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# 3. divergence

DIVERGE = ("--max-time", "0.2", "--channels", "35", "--n-hidden", "8", "--weight-scale", "1e38",
           "--epochs", "1", "--batch-size", "16")


@pytest.mark.parametrize("method,mode", [("eprop", "hard"), ("bptt", "smooth")])
def test_divergence_stops_with_one_line_and_saves_nothing(tmp_path, data_dir, capsys, method,
                                                          mode):
    # hard mode used to crash on NaN delays ("index -9223372036854775808 is out of bounds"),
    # smooth mode (BPTT) to save a NaN best.pt with exit code 0
    rd = tmp_path / "run"
    rc, _, err = cli(capsys, "train", "--data-dir", data_dir, "--run-dir", rd, "--method",
                     method, "--delay-mode", mode, *DIVERGE, "-q", "--no-plots")
    line = error_line(err)
    assert rc == 2 and "training diverged at epoch 1, batch 1" in line, err
    assert "layers.0.ff.weight" in line and "--lr" in line
    assert not (rd / BEST).exists() and not (rd / CHECKPOINT).exists()
    assert not (rd / FINAL).exists() and temps(rd) == []


def test_dcls_divergence_stops(tmp_path, capsys):
    cfg = resolve_config({
        "name": "toy-dcls",
        "model": {"n_hidden": [6], "max_delay": 3, "sigma0": 1.0, "sigma_end": 0.5,
                  "tau_m": 2.0, "right_padding": 1},
        "method": {"name": "dcls"},
        "train": {"epochs": 2, "batch_size": 16, "lr": 1e30, "delay_lr": 1e30, "seed": 1},
        "data": {"val_fraction": 0.25},
    })
    with pytest.raises(DivergenceError, match="training diverged at epoch 1"):
        train(cfg, tmp_path / "run", splits=splits_for(cfg), progress=False, plots=False)
    assert not (tmp_path / "run" / BEST).exists()
    assert not (tmp_path / "run" / CHECKPOINT).exists()


def test_divergence_in_a_later_epoch_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    import delayprop.train as tr

    cfg = toy_config("bptt")
    calls = {"n": 0}
    update = tr.Model.update

    def poisoned(self, x, y):  # the 2nd epoch's 2nd batch yields a NaN gradient
        loss, pred = update(self, x, y)
        calls["n"] += 1
        if calls["n"] == 7:  # 5 batches per epoch
            next(self.net.parameters()).grad.view(-1)[0] = float("nan")
        return loss, pred

    monkeypatch.setattr(tr.Model, "update", poisoned)
    rd = tmp_path / "run"
    with pytest.raises(DivergenceError, match=r"epoch 2, batch 2: the gradient of \S+ is NaN"):
        train(cfg, rd, splits=splits_for(cfg), progress=False, plots=False)
    ckpt = load_checkpoint(rd / CHECKPOINT)
    assert ckpt["epoch"] == 1 and all_finite(ckpt["model"].values())
    assert all_finite(load_checkpoint(rd / BEST)["model"].values())
    assert len((rd / METRICS).read_text().splitlines()) == 1 and not (rd / FINAL).exists()
    # resuming (without the poison) continues from epoch 1
    monkeypatch.setattr(tr.Model, "update", update)
    final = train(cfg, rd, resume=True, splits=splits_for(cfg), progress=False, plots=False)
    assert final["epochs"] == 3


def test_guard_checks_and_warns(capsys):
    net = torch.nn.Linear(3, 2)
    guard = TrainingGuard(net)
    for p in net.parameters():
        p.grad = torch.ones_like(p)
    guard.check_update(1.0, 1, 1)
    guard.check_step(1, 1)
    with pytest.raises(DivergenceError, match="the loss is nan"):
        guard.check_update(float("nan"), 1, 2)
    net.bias.grad[0] = float("inf")
    with pytest.raises(DivergenceError, match="gradient of bias is infinite"):
        guard.check_update(1.0, 1, 3)
    with torch.no_grad():
        net.weight[0, 0] = float("nan")
    with pytest.raises(DivergenceError, match="parameter weight became NaN"):
        guard.check_step(1, 3)
    with pytest.raises(ConfigError, match="initial parameter weight is NaN"):
        guard.check_initial()
    # huge but finite values are finite (a sum over them overflows; the check does not)
    assert all_finite([torch.full((4,), 3e38)]) and not all_finite([torch.tensor([0.0, -np.inf])])
    # a loss far above its running mean: one warning per epoch, none for ordinary noise
    g = TrainingGuard(torch.nn.Linear(1, 1))
    for i, loss in enumerate([50.0, 48.0, 55.0, 47.0, 52.0]):
        g._watch(loss, 1, i + 1)
    assert capsys.readouterr().err == ""
    g._watch(5000.0, 1, 6)
    g._watch(9000.0, 1, 7)
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "may be diverging" in err and "epoch 1, batch 6" in err


def test_initial_weights_that_overflow_are_refused(tmp_path):
    cfg = resolve_config({**{k: v for k, v in toy_config().items() if k != "model"},
                          "model": {"n_hidden": [8], "max_delay": 4, "weight_scale": 1e39}})
    with pytest.raises(ConfigError, match="initial parameter .* is infinite"):
        train(cfg, tmp_path / "run", splits=splits_for(cfg), progress=False, plots=False)
    assert not (tmp_path / "run" / INIT).exists()


# --------------------------------------------------------------------------------------------
# 4. labels, checked before training


def _spikes(n, rng):
    return ([np.sort(rng.uniform(0, 0.2, 20)) for _ in range(n)],
            [rng.integers(0, 700, 20) for _ in range(n)])


def test_test_labels_are_checked_before_training(tmp_path, tiny, capsys, monkeypatch):
    monkeypatch.setenv("DELAYPROP_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    d = tmp_path / "data"
    write_shd_file(d / "shd_train.h5", *_spikes(40, rng), np.arange(40) % 3)  # no extra/keys
    test_labels = np.arange(20) % 3
    test_labels[5] = 30
    write_shd_file(d / "shd_test.h5", *_spikes(20, rng), test_labels)
    rd = tmp_path / "run"
    rc, _, err = cli(capsys, *train_args(tiny, d, rd))
    line = error_line(err)
    assert rc == 2 and "shd_test.h5: sample 5: label 30 out of range" in line
    assert not (rd / INIT).exists() and not (rd / CHECKPOINT).exists()  # before training


def test_a_stray_training_label_is_an_error_not_a_26_class_model(tmp_path, tiny, capsys,
                                                                   monkeypatch):
    monkeypatch.setenv("DELAYPROP_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(1)
    d = tmp_path / "data"
    labels = np.arange(40) % 20
    labels[7] = 25
    write_shd_file(d / "shd_train.h5", *_spikes(40, rng), labels)  # no extra/keys
    write_shd_file(d / "shd_test.h5", *_spikes(20, rng), np.arange(20) % 20)
    rc, _, err = cli(capsys, *train_args(tiny, d, tmp_path / "run"))
    assert rc == 2 and "shd_train.h5: sample 7: label 25 out of range for shd" in error_line(err)


def test_stray_labels_in_own_h5_files_are_reported_before_training(tmp_path, tiny, capsys,
                                                                   monkeypatch):
    # --dataset h5 takes its classes from the files, so a stray label adds classes: a warning
    # naming the file and sample, before the first epoch
    monkeypatch.setenv("DELAYPROP_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(2)
    d = tmp_path / "own"
    labels = np.arange(40) % 3
    labels[7] = 9
    write_shd_file(d / "own_train.h5", *_spikes(40, rng), labels)  # no extra/keys
    test_labels = np.arange(20) % 3
    test_labels[4] = 12
    write_shd_file(d / "own_test.h5", *_spikes(20, rng), test_labels)
    rc, _, err = cli(capsys, *train_args(tiny, d, tmp_path / "run", "--dataset", "h5",
                                         "--epochs", "1"))
    assert rc == 0
    first_epoch = err.index("epoch 1/1")
    holes = err.index("own_train.h5: classes 3, 4, 5, 6, 7, 8 have no training samples, but "
                      "label 9 does")
    unseen = err.index("own_test.h5: sample 4: label 12 has no training sample")
    assert holes < first_epoch and unseen < first_epoch


def test_split_labels_api(capsys):
    cfg = toy_config()
    bad_test = toy_dataset(n=30, seed=1)
    bad_test.y[4] = 7
    with pytest.raises(DataError, match="toy: sample 4: label 7 out of range 0..2"):
        split_datasets(cfg, toy_dataset(), bad_test)
    frac = toy_dataset()
    frac.y = frac.y.float() + 0.5
    with pytest.raises(DataError, match="must be integers"):
        split_datasets(cfg, frac, None)
    holes = toy_dataset()
    holes.y[holes.y == 1] = 0
    holes.num_classes = 3
    split_datasets(cfg, holes, None)
    assert "classes 1 have no training samples" in capsys.readouterr().err


def test_float_labels_and_empty_sequences_in_the_api():
    from delayprop.layers import DelayNet, NetConfig
    from delayprop.rules import EpropConfig, bptt_gradients, eprop_gradients

    net = DelayNet(NetConfig(n_in=6, n_hidden=(5,), n_out=3, max_delay=3))
    x = (torch.rand(4, 10, 6) < 0.2).float()
    for fn in (lambda y: eprop_gradients(net, x, y, EpropConfig()),
               lambda y: bptt_gradients(net, x, y)):
        with pytest.raises(ConfigError, match="must be integers"):
            fn(torch.tensor([0.7, 1.9, 2.2, 0.0]))  # used to be truncated to 0, 1, 2, 0
        fn(torch.tensor([0.0, 1.0, 2.0, 0.0]))  # whole numbers are fine
    x0 = torch.zeros(4, 0, 6)
    y = torch.tensor([0, 1, 2, 0])
    for fn in (lambda: eprop_gradients(net, x0, y, EpropConfig()),
               lambda: eprop_gradients(net, x0, y, EpropConfig(loss="mean")),
               lambda: bptt_gradients(net, x0, y), lambda: net(x0)):
        with pytest.raises(ConfigError, match="no time steps"):  # was ZeroDivisionError
            fn()


# --------------------------------------------------------------------------------------------
# 5. one run per directory; leftovers of killed writes


def _python(code: str, **popen) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def test_a_run_directory_in_use_is_refused(tmp_path, data_dir, tiny, capsys):
    rd = tmp_path / "run"
    holder = _python(f"""
        import sys, time
        from delayprop.fileio import DirLock
        with DirLock({str(rd)!r}):
            print("locked", flush=True)
            time.sleep(60)
    """)
    try:
        assert holder.stdout.readline().strip() == "locked"
        rc, _, err = cli(capsys, *train_args(tiny, data_dir, rd))
        line = error_line(err)
        assert rc == 2 and "in use by another process" in line and f"pid {holder.pid}" in line
        assert sorted(p.name for p in rd.iterdir()) == [".lock"]  # nothing else written
    finally:
        holder.send_signal(signal.SIGKILL)  # a killed holder leaves no stale lock
        holder.wait()
    rc, out, err = cli(capsys, *train_args(tiny, data_dir, rd))
    assert rc == 0 and json.loads(out)["epochs"] == 2
    with DirLock(rd):  # the same process cannot take it twice either
        with pytest.raises(ConfigError, match="in use"):
            train(resolve_config({"name": "tiny", **_toml(tiny)}), rd, resume=True)


def test_temporary_files_of_killed_writes_are_removed(tmp_path, data_dir, tiny, capsys):
    rd = tmp_path / "run"
    rd.mkdir()
    # a writer killed half-way through an atomic write leaves its temporary file
    killed = _python(f"""
        from delayprop.fileio import atomic_open
        with atomic_open({str(rd / CHECKPOINT)!r}) as f:
            f.write(b"half a checkpoint")
            f.flush()
            print("writing", flush=True)
            import time; time.sleep(60)
    """)
    assert killed.stdout.readline().strip() == "writing"
    [left] = temps(rd)
    assert remove_stale_temps(rd) == []  # the writer is alive: its file stays
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert temps(rd) == [left] and not (rd / CHECKPOINT).exists()
    rc, _, err = cli(capsys, *train_args(tiny, data_dir, rd))
    assert rc == 0 and "removed 1 temporary file" in err
    assert temps(rd) == [] and (rd / FINAL).exists()
    # the shared cache folder: only files older than a margin are taken (others may write there)
    cdir = tmp_path / "cache"
    fresh, old = cdir / ".a.pt.abcd1234.tmp", cdir / ".b.pt.efgh5678.tmp"
    fresh.write_bytes(b"x")
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert remove_stale_temps(cdir, min_age=60) == [old] and fresh.exists()


# --------------------------------------------------------------------------------------------
# Also: full disk, unwritable run directory, devices, eval without best.pt


def test_full_disk_is_one_line_and_leaves_no_half_written_file(tmp_path, data_dir, tiny):
    rd = tmp_path / "run"
    # RLIMIT_FSIZE makes every write past 20 kB fail (EFBIG), as a full disk fails (ENOSPC):
    # the cache write is skipped with a warning, the first checkpoint write stops the run
    proc = _python(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
        from delayprop.cli import main
        sys.exit(main(["train", "--config", {str(tiny)!r}, "--data-dir", {str(data_dir)!r},
                       "--run-dir", {str(rd)!r}, "-q", "--no-plots"]))
    """, cwd=tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "Traceback" not in err and err.count("delayprop: error:") == 1
    assert "checkpoint.pt: cannot write" in error_line(err) and "File too large" in err
    assert "could not write cache file" in err
    assert not (rd / CHECKPOINT).exists() and temps(tmp_path) == []


def test_unwritable_run_dir_and_write_errors(tmp_path, data_dir, tiny, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    rc, _, err = cli(capsys, *train_args(tiny, data_dir, blocker / "run"))
    assert rc == 2 and "cannot create or write the run directory" in error_line(err)
    with pytest.raises(WriteError) as ei:
        atomic_write_text(blocker / "x.json", "{}")
    assert isinstance(ei.value, OSError) and "x.json: cannot write" in str(ei.value)
    with pytest.raises(WriteError):
        with atomic_open(tmp_path / "y.bin") as f:
            f.write(b"a")
            raise OSError(28, "No space left on device")
    assert temps(tmp_path) == [] and not (tmp_path / "y.bin").exists()


def test_devices_and_eval_without_best(tmp_path, data_dir, tiny, capsys):
    rd = tmp_path / "run"
    rc, _, _ = cli(capsys, *train_args(tiny, data_dir, rd))
    assert rc == 0
    rc, _, err = cli(capsys, "eval", rd, "--device", "tpu9")
    assert rc == 2 and "unknown device 'tpu9'" in error_line(err)
    if not torch.cuda.is_available():
        rc, _, err = cli(capsys, "eval", rd, "--device", "cuda")
        assert rc == 2 and "no CUDA device" in error_line(err)
        with pytest.raises(ConfigError, match="no CUDA"):
            check_device("cuda:0")
        rc, _, err = cli(capsys, *train_args(tiny, data_dir, tmp_path / "r2", "--device", "cuda"))
        assert rc == 2 and "no CUDA device" in error_line(err)
    assert check_device("cpu") == torch.device("cpu")
    (rd / BEST).unlink()
    rc, out, err = cli(capsys, "eval", rd)
    assert rc == 0 and "has no best.pt; evaluating checkpoint.pt" in err
    assert "checkpoint.pt (epoch 2)" in out

