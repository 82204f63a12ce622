"""Training loop: configuration, determinism, resume, checkpoints, final test, plots."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from delayprop.data import SpikeTensorDataset
from delayprop.errors import ConfigError
from delayprop.train import (
    CHECKPOINT,
    FINAL,
    METRICS,
    load_checkpoint,
    model_from_checkpoint,
    resolve_config,
    sigma_at,
    split_datasets,
    train,
)


def toy_dataset(n: int = 96, T: int = 12, C: int = 6, classes: int = 3, seed: int = 0,
                ) -> SpikeTensorDataset:
    """Class k fires channel pair k early or late: learnable from timing in a few epochs."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = (torch.rand(n, T, C, generator=g) < 0.05).to(torch.uint8)
    for i in range(n):
        k = int(y[i])
        x[i, 2 + k, (2 * k) % C] = 1
        x[i, 5 + k, (2 * k + 1) % C] = 1
    return SpikeTensorDataset(
        x=x, y=y.long(), speaker=torch.arange(n) % 4, dt=0.01, num_classes=classes,
        class_names=[f"c{k}" for k in range(classes)], source="toy",
    )


def toy_config(method: str = "eprop", **train_kw) -> dict:
    t = {"epochs": 3, "batch_size": 16, "lr": 1e-2, "delay_lr": 0.5, "seed": 3,
         "sigma0": 2.0, "sigma1": 1.0, "lr_schedule": "cosine"}
    t.update(train_kw)
    return resolve_config({
        "name": "toy",
        "model": {"n_hidden": [8], "max_delay": 4, "tau_m": 30.0, "weight_scale": 2.0},
        "method": {"name": method},
        "train": t,
        "data": {"val_fraction": 0.25},
    })


def toy_dcls_config(**train_kw) -> dict:
    """The DCLS baseline at toy size (train options ``train_kw`` on top)."""
    t = {"epochs": 3, "batch_size": 16, "lr": 1e-2, "delay_lr": 0.1, "seed": 1}
    t.update(train_kw)
    return resolve_config({
        "name": "toy-dcls",
        "model": {"n_hidden": [6], "max_delay": 3, "sigma0": 1.0, "sigma_end": 0.5,
                  "dropout": 0.2, "tau_m": 2.0, "right_padding": 1},
        "method": {"name": "dcls"},
        "train": t,
        "data": {"val_fraction": 0.25},
    })


def splits_for(cfg):
    return split_datasets(cfg, toy_dataset(), toy_dataset(n=30, seed=1))


def _metrics(run_dir):
    rows = [json.loads(line) for line in (run_dir / METRICS).read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "epoch_s"} for r in rows]


@pytest.mark.parametrize("method", ["eprop", "bptt"])
def test_resume_matches_uninterrupted_run(tmp_path, method):
    cfg = toy_config(method)
    full = train(cfg, tmp_path / "full", splits=splits_for(cfg), progress=False, plots=False)
    part = train(cfg, tmp_path / "part", splits=splits_for(cfg), progress=False, plots=False,
                 stop_after=1)
    assert part == {"stopped_at": 1}
    assert not (tmp_path / "part" / FINAL).exists()
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg, tmp_path / "part", splits=splits_for(cfg), progress=False, plots=False)
    resumed = train(cfg, tmp_path / "part", resume=True, splits=splits_for(cfg),
                    progress=False, plots=False)
    assert _metrics(tmp_path / "full") == _metrics(tmp_path / "part")
    assert len(_metrics(tmp_path / "full")) == 3
    for k in ("val_acc", "test_acc", "best_epoch", "params"):
        assert full[k] == resumed[k]
    a = load_checkpoint(tmp_path / "full" / CHECKPOINT)["model"]
    b = load_checkpoint(tmp_path / "part" / CHECKPOINT)["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # a finished run is not trained again
    again = train(cfg, tmp_path / "full", resume=True, splits=splits_for(cfg), progress=False)
    assert again == json.loads((tmp_path / "full" / FINAL).read_text())


def test_training_learns_and_writes_run_directory(tmp_path):
    cfg = toy_config("eprop", epochs=6)
    final = train(cfg, tmp_path, splits=splits_for(cfg), progress=False, plots=True)
    assert final["params"]["total"] == final["params"]["weights"] + final["params"]["delays"]
    assert final["params"]["delays"] == 8 * 6  # one delay per input synapse
    assert final["test_acc"] > 0.6  # chance is 1/3
    rows = _metrics(tmp_path)
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert final["val_acc"] == max(r["val_acc"] for r in rows)
    assert rows[final["best_epoch"] - 1]["val_acc"] == final["val_acc"]
    # sigma schedule: 2 -> 1 over the first half, then constant
    assert [r["sigma"] for r in rows][:1] == [2.0] and rows[-1]["sigma"] == 1.0
    tp = np.load(tmp_path / "test_predictions.npy")  # (2, N): targets, predictions
    assert tp.shape == (2, 30) and (tp[0] == tp[1]).mean() == pytest.approx(final["test_acc"])
    for f in ("config.json", "train.log", "init.pt", "best.pt", "learning_curves.png",
              "delays.png", "raster.png", "confusion.png"):
        assert (tmp_path / f).exists(), f
    model = model_from_checkpoint(load_checkpoint(tmp_path / "best.pt"))
    delays = model.net.layers[0].ff.syn_delay
    d = delays.detach()
    assert float(d.min()) >= 0 and float(d.max()) <= 4
    init = load_checkpoint(tmp_path / "init.pt")["model"]["layers.0.ff.syn_delay"]
    assert not torch.equal(init, d)  # delays were learned


def test_config_errors():
    with pytest.raises(ConfigError, match="method.name"):
        resolve_config({"method": {"name": "sgd"}})
    with pytest.raises(ConfigError, match="unknown option train.lrr"):
        resolve_config({"train": {"lrr": 1.0}})
    with pytest.raises(ConfigError, match="unknown model option"):
        resolve_config({"model": {"n_hiden": [3]}})
    with pytest.raises(ConfigError, match="sigma0"):
        resolve_config({"train": {"sigma0": 2.0}})
    cfg = resolve_config({"train": {"lr": 0.5}}, {"train": {"lr": 0.1}})
    assert cfg["train"]["lr"] == 0.1


def test_resume_with_other_config_is_refused(tmp_path):
    cfg = toy_config("eprop")
    train(cfg, tmp_path, splits=splits_for(cfg), progress=False, plots=False, stop_after=1)
    other = toy_config("eprop", lr=0.5)
    with pytest.raises(ConfigError, match="train.lr"):
        train(other, tmp_path, resume=True, splits=splits_for(other), progress=False)


def test_sigma_schedule():
    assert sigma_at(0, 10, 4.0, 1.0, 0.5) == 4.0
    assert sigma_at(5, 10, 4.0, 1.0, 0.5) == pytest.approx(1.0)
    assert sigma_at(9, 10, 4.0, 1.0, 0.5) == pytest.approx(1.0)
    assert sigma_at(2, 10, 4.0, 1.0, 0.5) == pytest.approx(4.0 * 0.25 ** 0.4)


def test_validation_split_is_disjoint_from_training():
    cfg = toy_config()
    ds = toy_dataset()
    ds.speaker = torch.arange(len(ds))  # unique ids to trace the samples
    s = split_datasets(cfg, ds, None)
    assert len(s.train) + len(s.val) == 96 and len(s.val) == 24
    assert not set(s.train.speaker.tolist()) & set(s.val.speaker.tolist())
    sub = split_datasets(resolve_config({"data": {"val_fraction": 0.25, "train_subset": 10}}),
                         ds, None)
    assert len(sub.train) == 10 and set(sub.train.speaker.tolist()) <= set(s.train.speaker.tolist())


def test_dcls_method_trains_and_resumes(tmp_path):
    dcls = pytest.importorskip("delayprop.baselines.dcls")
    cfg = toy_dcls_config()
    full = train(cfg, tmp_path / "full", splits=splits_for(cfg), progress=False, plots=False)
    train(cfg, tmp_path / "part", splits=splits_for(cfg), progress=False, plots=False,
          stop_after=1)
    resumed = train(cfg, tmp_path / "part", resume=True, splits=splits_for(cfg),
                    progress=False, plots=False)
    assert _metrics(tmp_path / "full") == _metrics(tmp_path / "part")
    assert full["test_acc"] == resumed["test_acc"]
    assert full["params"]["delays"] > 0
    rows = _metrics(tmp_path / "full")
    assert [r["sigma"] for r in rows] == [dcls.sigma_at(e, 3, 1.0, 0.5) for e in range(3)]


def test_augmentation_options_change_training_and_resume_exactly(tmp_path):
    base = toy_config("eprop")
    aug = resolve_config({**{k: base[k] for k in ("name", "model", "method", "train")},
                          "data": {"val_fraction": 0.25, "channel_shift": 1,
                                   "time_jitter": 0.5, "time_shift": 1}})
    plain = train(base, tmp_path / "plain", splits=splits_for(base), progress=False,
                  plots=False)
    full = train(aug, tmp_path / "full", splits=splits_for(aug), progress=False, plots=False)
    assert _metrics(tmp_path / "plain") != _metrics(tmp_path / "full")  # batches differ
    assert plain["params"] == full["params"]
    train(aug, tmp_path / "part", splits=splits_for(aug), progress=False, plots=False,
          stop_after=2)
    train(aug, tmp_path / "part", resume=True, splits=splits_for(aug), progress=False,
          plots=False)
    assert _metrics(tmp_path / "full") == _metrics(tmp_path / "part")
    for bad in ({"channel_shift": -1}, {"time_shift": 1.5}, {"time_jitter": -0.1}):
        with pytest.raises(ConfigError, match="augmentation"):
            resolve_config({"data": bad})


def test_input_dropout_masks_whole_channels_and_resumes_exactly(tmp_path):
    from delayprop.train import Model

    cfg = toy_config("eprop", input_dropout=0.5)
    model = Model(cfg, 6, 3, torch.device("cpu"))
    x = torch.ones(40, 12, 6)
    torch.manual_seed(0)
    xd = model.drop_inputs(x)
    # one mask per (sample, channel), constant over time, kept channels scaled by 1 / (1 - p)
    assert set(xd.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(xd, xd[:, :1].expand_as(xd))
    assert 0.3 < float((xd[:, 0] == 0).float().mean()) < 0.7
    assert torch.equal(Model(toy_config("eprop"), 6, 3, torch.device("cpu")).drop_inputs(x), x)

    plain = toy_config("eprop")
    train(plain, tmp_path / "plain", splits=splits_for(plain), progress=False, plots=False)
    train(cfg, tmp_path / "full", splits=splits_for(cfg), progress=False, plots=False)
    assert _metrics(tmp_path / "plain") != _metrics(tmp_path / "full")
    train(cfg, tmp_path / "part", splits=splits_for(cfg), progress=False, plots=False,
          stop_after=1)
    train(cfg, tmp_path / "part", resume=True, splits=splits_for(cfg), progress=False,
          plots=False)
    assert _metrics(tmp_path / "full") == _metrics(tmp_path / "part")
    for bad in (1.0, -0.1, True, "0.2"):
        with pytest.raises(ConfigError, match="input_dropout"):
            resolve_config({"train": {"input_dropout": bad}})


def test_resume_of_a_run_from_before_an_option_existed(tmp_path):
    """A checkpoint whose configuration lacks a later option (here train.input_dropout)
    resumes when the option is at its default, and is refused when it is not."""
    cfg = toy_config("eprop")
    train(cfg, tmp_path, splits=splits_for(cfg), progress=False, plots=False, stop_after=1)
    ckpt_path = tmp_path / CHECKPOINT
    ckpt = torch.load(ckpt_path, weights_only=False)
    del ckpt["config"]["train"]["input_dropout"]
    torch.save(ckpt, ckpt_path)
    train(cfg, tmp_path, resume=True, splits=splits_for(cfg), progress=False, plots=False)
    train(cfg, tmp_path / "b", splits=splits_for(cfg), progress=False, plots=False,
          stop_after=1)
    ckpt = torch.load(tmp_path / "b" / CHECKPOINT, weights_only=False)
    del ckpt["config"]["train"]["input_dropout"]
    torch.save(ckpt, tmp_path / "b" / CHECKPOINT)
    other = toy_config("eprop", input_dropout=0.2)
    with pytest.raises(ConfigError, match="train.input_dropout"):
        train(other, tmp_path / "b", resume=True, splits=splits_for(other), progress=False)
