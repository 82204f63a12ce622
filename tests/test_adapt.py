"""`delayprop adapt`: per-step e-prop adaptation to a new speaker (delayprop.adapt).

The timing task stands in for a new speaker: the same four classes with every offset moved
by one step (--data timing). A network trained on the task (10 epochs, a few seconds) must
learn the moved offsets from one pass over 200 samples."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from shd_files import write_shd_file

from delayprop.adapt import (
    AdaptSettings,
    RehearsalBuffer,
    load_adapt_data,
    param_kind,
    split_new_speaker,
)
from delayprop.cli import main
from delayprop.data.synthetic import timing_task
from delayprop.errors import ConfigError
from delayprop.layers import DelayNet, NetConfig
from delayprop.rules import EpropConfig, OnlineEprop


@pytest.fixture(scope="module")
def timing_run(tmp_path_factory):
    from delayprop.train import resolve_config, train

    run = tmp_path_factory.mktemp("timing") / "run"
    cfg = resolve_config({"data": {"dataset": "timing"}, "train": {"epochs": 10}})
    final = train(cfg, run, progress=False, plots=False)
    assert final["test_acc"] > 0.9
    return run


def _one_line_error(capsys, argv) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("delayprop: error: ") and "\n" not in err, err
    return err


def test_adapt_learns_the_moved_offsets(timing_run, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["adapt", str(timing_run), "--data", "timing", "--out", str(out),
                 "--eval-every", "50", "--quiet"]) == 0
    rep = json.loads((out / "adapt.json").read_text())
    assert (out / "adapt.png").stat().st_size > 0
    (r,) = rep["speakers"]
    sizes = r["sizes"]
    assert (sizes["adapt"], sizes["known_test"], sizes["known_val"]) == (200, 1000, 200)
    assert abs(sizes["held"] - 500) <= 2 and abs(sizes["val"] - 200) <= 2  # by class
    # the trained network does not know the moved offsets; one pass teaches them
    assert r["before"]["new_held"] < 0.6
    assert r["after"]["new_held"] > r["before"]["new_held"] + 0.25
    assert r["after"]["new_val"] > r["before"]["new_val"] + 0.25
    assert r["before"]["known_test"] > 0.9  # the task it was trained on
    assert [p["samples"] for p in r["curve"]] == [0, 50, 100, 150, 200]
    assert r["curve"][0]["new_held"] == r["before"]["new_held"]
    assert r["curve"][-1]["known_test"] == r["after"]["known_test"]
    assert r["steps_learned"] == 200 * 40 and r["ms_per_step"] > 0
    assert r["rehearsal"] is None and r["learner_state_bytes"] > 0
    assert rep["settings"]["lr"] == 3e-4 and rep["command"]
    assert rep["pooled"]["after"]["new_held"] == r["after"]["new_held"]
    assert "held out" in capsys.readouterr().out


def test_rehearsal_and_parameter_subsets(timing_run, tmp_path):
    data = load_adapt_data(timing_run, "timing", n_adapt=40)
    from delayprop.adapt import adapt_speakers

    rep = adapt_speakers(data, AdaptSettings(lr=1e-3, rehearsal=8, replay=2, eval_every=0))
    (r,) = rep["speakers"]
    buf = r["rehearsal"]
    # timing samples are binary: 40 steps x 10 channels = 400 bits = 50 bytes, + 1 label byte
    assert buf["bytes"] == 8 * (50 + 1) and buf["stored_as"].startswith("1 bit")
    assert r["steps_learned"] == 40 * 40 * 3  # each new sample and two replayed ones
    assert len(r["curve"]) == 2
    # only the readout learns: the hidden layer is unchanged
    from delayprop.adapt import adapt_one
    from delayprop.training.checkpoint import model_from_checkpoint

    model = model_from_checkpoint(data.ckpt)
    hidden = {n: p.clone() for n, p in model.net.named_parameters()}
    adapt_one(model, data.speakers[0], data, AdaptSettings(lr=1e-3, params=("readout",),
                                                          eval_every=0))
    for n, p in model.net.named_parameters():
        same = torch.equal(p, hidden[n])
        assert same == (param_kind(n) != "readout"), n


def test_learner_state_does_not_grow_with_length():
    net = DelayNet(NetConfig(n_in=12, n_hidden=(16,), n_out=4, synaptic_delays=True,
                             readout_delays=True, max_delay=5, kappa=0.9, seed=0))
    sizes = []
    for T in (30, 60):
        learner = OnlineEprop(net, EpropConfig(loss="sum"))
        learner.begin(1)
        x = (torch.rand(1, T, 12, generator=torch.Generator().manual_seed(T)) < 0.2).float()
        for t in range(T):
            learner.step(x[:, t], torch.tensor([1]))
        sizes.append(learner.state_numel())
        learner.end()
    assert sizes[0] == sizes[1] > 0


def test_rehearsal_buffer_bytes_and_contents():
    ds = timing_task(50, steps=20, noise_channels=6, seed=3)  # binary, 20 x 8
    buf = RehearsalBuffer(ds, 10, seed=0)
    assert buf.nbytes == 10 * (math.ceil(20 * 8 / 8) + 1)
    for i in range(10):
        x, y = buf.sample(i)
        j = buf.indices[i]
        assert torch.equal(x[0], ds.x[j].float()) and int(y) == int(ds.y[j])
    assert sorted(np.bincount(ds.y.numpy()[buf.indices])) == [2, 2, 3, 3]  # by class in turn
    counts = ds.subset(slice(0, 50))
    counts.x = counts.x * 3  # spike counts above 1: one byte per step and channel
    buf = RehearsalBuffer(counts, 7, seed=0)
    assert not buf.binary and buf.nbytes == 7 * (20 * 8 + 1)
    x, _ = buf.sample(0)
    assert torch.equal(x[0], counts.x[buf.indices[0]].float())
    odd = timing_task(20, steps=13, noise_channels=1, seed=0)  # 39 bits: 5 bytes a sample
    assert RehearsalBuffer(odd, 4, seed=0).nbytes == 4 * (5 + 1)
    with pytest.raises(ConfigError, match="needs 60"):
        RehearsalBuffer(ds, 60, seed=0)


def test_split_new_speaker():
    y = np.repeat(np.arange(4), 50)
    parts = {s: split_new_speaker(y, 60, 0.2, 0.5, seed=s) for s in (0, 1)}
    for a, v, h in parts.values():
        assert len(a) == 60 and len(v) == 40 and len(h) == 100
        assert not (set(a) & set(v) or set(a) & set(h) or set(v) & set(h))
        assert np.bincount(y[a]).tolist() == [15] * 4 and np.bincount(y[h]).tolist() == [25] * 4
    assert np.array_equal(parts[0][2], parts[1][2])  # the held-out part ignores the seed
    assert not np.array_equal(parts[0][0], parts[1][0])
    with pytest.raises(ConfigError, match="leave 60 for adaptation"):
        split_new_speaker(y, 61, 0.2, 0.5, seed=0)
    with pytest.raises(ConfigError, match="sum to less than 1"):
        split_new_speaker(y, 10, 0.5, 0.5, seed=0)


def test_errors_are_one_line(timing_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DELAYPROP_CACHE", str(tmp_path / "cache"))
    run = str(timing_run)
    out = ["--out", str(tmp_path / "o"), "-q"]
    assert "no such file" in _one_line_error(
        capsys, ["adapt", run, "--data", str(tmp_path / "missing.h5"), *out])
    assert "no best.pt" in _one_line_error(
        capsys, ["adapt", str(tmp_path), "--data", "timing", *out])
    assert "leave" in _one_line_error(
        capsys, ["adapt", run, "--data", "timing", "--n-adapt", "900", *out])
    assert "finite" in _one_line_error(
        capsys, ["adapt", run, "--data", "timing", "--lr", "nan", *out])
    assert "--params" in _one_line_error(
        capsys, ["adapt", run, "--data", "timing", "--params", "weights,gains", *out])
    assert "one new speaker" in _one_line_error(
        capsys, ["adapt", run, "--data", "timing", "--speaker", "3", *out])
    # an SHD-format file: the timing run's channels do not match, its speakers are unknown
    f = write_shd_file(tmp_path / "new_test.h5", [np.array([0.1, 0.2])] * 4,
                       [np.array([1, 2])] * 4, [0, 1, 0, 1], speakers=[7, 7, 8, 8])
    err = _one_line_error(capsys, ["adapt", run, "--data", str(f), *out])
    assert "speaker ids" in err or "training data" in err


def test_speakers_from_a_file(tmp_path, monkeypatch, capsys):
    """An SHD-format run: the new speaker comes from the test file; unknown and known
    speakers, too few samples and a file without speaker ids are one-line errors."""
    from delayprop.train import resolve_config, train

    monkeypatch.setenv("DELAYPROP_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)

    def samples(n):
        labels = np.arange(n) % 2
        times = [np.sort(rng.uniform(0, 0.3, 20)) for _ in range(n)]
        units = [np.where(rng.random(20) < 0.5, 5, 600) if c else np.full(20, 300)
                 for c in labels]
        return times, units, labels

    d = tmp_path / "data"
    t, u, lab = samples(80)
    write_shd_file(d / "mine_train.h5", t, u, lab, speakers=np.arange(80) % 2)
    t, u, lab = samples(60)
    spk = np.r_[np.zeros(10), np.full(50, 5)]
    write_shd_file(d / "mine_test.h5", t, u, lab, speakers=spk)
    cfg = resolve_config({"data": {"dataset": str(d / "mine_train.h5"), "max_time": 0.3,
                                   "channels": 10},
                          "model": {"n_hidden": [8], "max_delay": 3},
                          "train": {"epochs": 1, "threads": 1}})
    run = tmp_path / "run"
    train(cfg, run, progress=False, plots=False)
    data = load_adapt_data(run, d, n_adapt=10, val_fraction=0.2, held_fraction=0.5)
    (sp,) = data.speakers
    # 25 samples of each class: round(12.5) = 12 held out, 5 for validation
    assert sp.speaker == 5 and (len(sp.adapt), len(sp.val), len(sp.held)) == (10, 10, 24)
    assert data.known_speakers == [0, 1] and len(data.known_test) == 10
    out = ["--out", str(tmp_path / "o"), "-q", "--n-adapt", "10"]
    assert "speaker 9 is not in" in _one_line_error(
        capsys, ["adapt", str(run), "--data", str(d), "--speaker", "9", *out])
    assert "is in the run's training split" in _one_line_error(
        capsys, ["adapt", str(run), "--data", str(d), "--speaker", "0", *out])
    assert "leave" in _one_line_error(
        capsys, ["adapt", str(run), "--data", str(d), "--speaker", "5", "--n-adapt", "40",
                 "--out", str(tmp_path / "o")])
    write_shd_file(tmp_path / "nospk_test.h5", t, u, lab)
    assert "no speaker ids" in _one_line_error(
        capsys, ["adapt", str(run), "--data", str(tmp_path / "nospk_test.h5"),
                 "--data-dir", str(d), *out])
    assert main(["adapt", str(run), "--data", str(d / "mine_test.h5"), "--eval-every", "5",
                 *out]) == 0
    rep = json.loads((tmp_path / "o" / "adapt.json").read_text())
    assert rep["speakers"][0]["speaker"] == 5 and rep["known_speakers"] == [0, 1]


def test_saved_adapted_network_is_a_run(timing_run, tmp_path, capsys):
    """--save keeps the adapted network as OUT/shifted/best.pt: it loads with a checksum, has
    the accuracy the report gives it on the held-out moved offsets, and `delayprop eval`,
    `adapt` and `export` take its folder as a run."""
    from delayprop.adapt import adapt_speakers
    from delayprop.fileio import verify_checksum
    from delayprop.training.checkpoint import load_checkpoint, model_from_checkpoint
    from delayprop.training.evaluation import evaluate

    data = load_adapt_data(timing_run, "timing", n_adapt=60)
    rep = adapt_speakers(data, AdaptSettings(lr=1e-3, eval_every=0), save_dir=tmp_path / "o")
    (r,) = rep["speakers"]
    saved = tmp_path / "o" / "shifted" / "best.pt"
    assert r["saved"] == str(saved) and verify_checksum(saved) is True
    ckpt = load_checkpoint(saved)
    assert ckpt["adapted"]["samples"] == 60 and ckpt["adapted"]["after"] == r["after"]
    model = model_from_checkpoint(ckpt)
    acc = float(evaluate(model, data.speakers[0].held).accuracy)
    assert acc == r["after"]["new_held"] != r["before"]["new_held"]
    capsys.readouterr()
    assert main(["eval", str(saved.parent)]) == 0
    assert main(["adapt", str(saved.parent), "--data", "timing", "--n-adapt", "20",
                 "--eval-every", "0", "--quiet", "--out", str(tmp_path / "again")]) == 0
    pytest.importorskip("nir")
    assert main(["export", str(saved.parent), str(tmp_path / "a.nir")]) == 0
    assert (tmp_path / "a.nir").stat().st_size > 0


def test_adapt_cli_save_flag(timing_run, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["adapt", str(timing_run), "--data", "timing", "--out", str(out), "--n-adapt",
                 "20", "--eval-every", "0", "--quiet", "--save"]) == 0
    assert (out / "shifted" / "best.pt").is_file()
    assert "adapted network" in capsys.readouterr().out


def test_chip_formats_keep_parameters_on_their_grids(timing_run):
    """--weight-bits 8 --delay-frac-bits 2: the network starts as export --report quantises it
    and every update puts weights and delays back on their grids; stochastic rounding still
    learns the moved offsets."""
    from delayprop.adapt import adapt_one
    from delayprop.export.cost import quantise_tensor
    from delayprop.training.checkpoint import model_from_checkpoint

    data = load_adapt_data(timing_run, "timing", n_adapt=100)
    trained = model_from_checkpoint(data.ckpt).net
    model = model_from_checkpoint(data.ckpt)
    s = AdaptSettings(lr=1e-3, eval_every=0, weight_bits=8, delay_frac_bits=2)
    r = adapt_one(model, data.speakers[0], data, s)
    fmt = r["chip_format"]
    assert fmt["rounding"] == "stochastic" and fmt["delay_step"] == 0.25
    syns = [syn for _, syn in model.net.synapses()]
    for syn, step, (_, old) in zip(syns, fmt["weight_steps"], trained.synapses()):
        assert step == pytest.approx(float(old.weight.detach().abs().max()) / 127)
        q = syn.weight.detach() / step
        assert torch.allclose(q, q.round(), atol=1e-3) and float(q.abs().max()) <= 127 + 1e-3
        assert not torch.equal(syn.weight, quantise_tensor(old.weight.detach(), 8))  # learned
        for d in (syn.syn_delay, syn.ax_delay):
            if d is not None:
                assert torch.equal(d * 4, (d * 4).round())
    assert r["after"]["new_held"] > r["before"]["new_held"] + 0.15


def test_stochastic_rounding_keeps_small_updates_and_nearest_loses_them():
    """An update of a tenth of a grid step: nearest rounding undoes it every time; stochastic
    rounding keeps it in expectation."""
    from delayprop.adapt import ChipFormat

    net = DelayNet(NetConfig(n_in=4, n_hidden=(8,), n_out=2, max_delay=3, seed=0))
    sums = {}
    for rounding in ("nearest", "stochastic"):
        fmt = ChipFormat(net, 8, None, rounding, seed=0)
        w, step, _ = fmt.weights[0]
        with torch.no_grad():
            w.copy_(torch.round(w / step) * step)
            start = w.clone()
            for _ in range(200):
                w.add_(0.1 * step)
                fmt.apply_()
        sums[rounding] = float(((w - start) / step).mean())
    assert sums["nearest"] == 0.0
    assert abs(sums["stochastic"] - 20.0) < 2.0


def test_chip_format_settings_are_checked(timing_run, tmp_path, capsys):
    run = str(timing_run)
    out = ["--out", str(tmp_path / "o"), "--quiet"]
    assert "weight_bits" in _one_line_error(
        capsys, ["adapt", run, "--data", "timing", "--weight-bits", "1", *out])
    assert "delay_frac_bits" in _one_line_error(
        capsys, ["adapt", run, "--data", "timing", "--delay-frac-bits", "40", *out])
