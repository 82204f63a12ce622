"""Weight averaging (train.ema): the average's arithmetic, the swap, and what the training loop
validates, selects, stores and resumes."""

from __future__ import annotations

import pytest
import torch

from delayprop.averaging import WeightAverage
from delayprop.cli.evaluate import holds_average, weights_note
from delayprop.errors import ConfigError
from delayprop.train import (
    BEST,
    CHECKPOINT,
    evaluate,
    load_checkpoint,
    model_from_checkpoint,
    resolve_config,
    train,
)
from tests.test_train import _metrics, splits_for, toy_config, toy_dcls_config


def test_average_follows_the_recurrence_with_warm_up():
    net = torch.nn.Linear(3, 2)
    avg = WeightAverage(net, 0.9)
    ref = {n: p.detach().clone().double() for n, p in net.named_parameters()}
    g = torch.Generator().manual_seed(0)
    for n_upd in range(1, 101):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn(p.shape, generator=g))
        d = min(0.9, (1 + n_upd) / (10 + n_upd))
        assert avg.current_decay() == pytest.approx(d)
        avg.update()
        for n, p in net.named_parameters():
            ref[n] = d * ref[n] + (1 - d) * p.detach().double()
    assert avg.updates == 100
    for n in ref:
        torch.testing.assert_close(avg.avg[n].double(), ref[n], rtol=1e-5, atol=1e-6)
    # past the warm-up (81 updates for 0.9) the decay is the configured one
    assert avg.current_decay() == 0.9


def test_swap_holds_the_average_and_restores_the_raw_parameters_bit_for_bit():
    net = torch.nn.Linear(4, 3)
    avg = WeightAverage(net, 0.5)
    with torch.no_grad():
        net.weight.mul_(3.0)
    avg.update()
    raw = {n: p.detach().clone() for n, p in net.named_parameters()}
    with avg.swapped():
        for n, p in net.named_parameters():
            assert torch.equal(p, avg.avg[n])
            assert not torch.equal(p, raw[n]) or n == "bias"
    for n, p in net.named_parameters():
        assert torch.equal(p, raw[n])
    with pytest.raises(RuntimeError, match="inside"):
        with avg.swapped():
            raise RuntimeError("inside")
    for n, p in net.named_parameters():
        assert torch.equal(p, raw[n])


def test_state_round_trip_and_mismatch():
    net = torch.nn.Linear(2, 2)
    a = WeightAverage(net, 0.99)
    a.update()
    b = WeightAverage(torch.nn.Linear(2, 2), 0.99)
    b.load_state_dict(a.state_dict())
    assert b.updates == 1 and all(torch.equal(a.avg[n], b.avg[n]) for n in a.avg)
    with pytest.raises(ConfigError, match="shape"):
        WeightAverage(torch.nn.Linear(3, 2), 0.99).load_state_dict(a.state_dict())
    with pytest.raises(ConfigError, match="another network"):
        WeightAverage(torch.nn.Linear(2, 2, bias=False), 0.99).load_state_dict(a.state_dict())
    for bad in (0.0, 1.0, -0.5, float("nan"), True):
        with pytest.raises(ConfigError, match="decay"):
            WeightAverage(net, bad)


def test_config_rejects_impossible_decays():
    assert resolve_config({"train": {"ema": 0.999}})["train"]["ema"] == 0.999
    for bad in (1.0, -0.1, True, "0.9", 1.5):
        with pytest.raises(ConfigError, match="train.ema"):
            resolve_config({"train": {"ema": bad}})


@pytest.mark.parametrize("method", ["eprop", "bptt"])
def test_training_with_an_average_learns_as_without_and_selects_the_average(tmp_path, method):
    plain_cfg = toy_config(method, epochs=4)
    cfg = toy_config(method, epochs=4, ema=0.9)
    for c in (plain_cfg, cfg):  # dropout masks come from the global generator
        c["model"]["dropout"] = 0.2
    train(plain_cfg, tmp_path / "plain", splits=splits_for(plain_cfg), progress=False,
          plots=False)
    final = train(cfg, tmp_path / "ema", splits=splits_for(cfg), progress=False, plots=False)
    plain, rows = _metrics(tmp_path / "plain"), _metrics(tmp_path / "ema")
    # the averaging does not touch learning: same training losses, and the raw parameters
    # validate as the run without averaging does
    for p, r in zip(plain, rows):
        assert r["train_loss"] == p["train_loss"]
        assert r["val_acc_raw"] == p["val_acc"] and r["val_loss_raw"] == p["val_loss"]
    assert any(r["val_loss"] != r["val_loss_raw"] for r in rows)  # the average is another net
    # best.pt holds the averaged network the selection measured, not the raw one
    splits = splits_for(cfg)
    best = model_from_checkpoint(load_checkpoint(tmp_path / "ema" / BEST))
    measured = rows[final["best_epoch"] - 1]
    assert evaluate(best, splits.val).loss == pytest.approx(measured["val_loss"], abs=1e-6)
    assert final["val_acc"] == measured["val_acc"] == max(r["val_acc"] for r in rows)
    # the last checkpoint: raw parameters train on, the average validates
    ckpt = load_checkpoint(tmp_path / "ema" / CHECKPOINT)
    model = model_from_checkpoint(ckpt)
    assert evaluate(model, splits.val).loss == pytest.approx(rows[-1]["val_loss_raw"], abs=1e-6)
    model.net.load_state_dict({**model.net.state_dict(), **ckpt["ema"]["avg"]})
    assert evaluate(model, splits.val).loss == pytest.approx(rows[-1]["val_loss"], abs=1e-6)
    # `delayprop eval` says which parameters a checkpoint holds
    assert "moving average" in weights_note(load_checkpoint(tmp_path / "ema" / BEST))
    assert "raw training parameters" in weights_note(ckpt)
    assert weights_note(load_checkpoint(tmp_path / "plain" / BEST)) == ""
    assert holds_average(load_checkpoint(tmp_path / "ema" / BEST)) and not holds_average(ckpt)


def test_resume_with_an_average_matches_the_uninterrupted_run(tmp_path):
    cfg = toy_config("eprop", ema=0.95)
    full = train(cfg, tmp_path / "full", splits=splits_for(cfg), progress=False, plots=False)
    train(cfg, tmp_path / "part", splits=splits_for(cfg), progress=False, plots=False,
          stop_after=1)
    resumed = train(cfg, tmp_path / "part", resume=True, splits=splits_for(cfg),
                    progress=False, plots=False)
    assert _metrics(tmp_path / "full") == _metrics(tmp_path / "part")
    assert full["test_acc"] == resumed["test_acc"]
    a = load_checkpoint(tmp_path / "full" / CHECKPOINT)["ema"]
    b = load_checkpoint(tmp_path / "part" / CHECKPOINT)["ema"]
    assert a["updates"] == b["updates"] > 0
    for n in a["avg"]:
        assert torch.equal(a["avg"][n], b["avg"][n]), n


def test_dcls_baseline_trains_with_an_average_and_resumes_exactly(tmp_path):
    pytest.importorskip("delayprop.baselines.dcls")
    cfg = toy_dcls_config(ema=0.9)
    full = train(cfg, tmp_path / "full", splits=splits_for(cfg), progress=False, plots=False)
    train(cfg, tmp_path / "part", splits=splits_for(cfg), progress=False, plots=False,
          stop_after=1)
    resumed = train(cfg, tmp_path / "part", resume=True, splits=splits_for(cfg),
                    progress=False, plots=False)
    rows = _metrics(tmp_path / "full")
    assert rows == _metrics(tmp_path / "part")
    assert full["test_acc"] == resumed["test_acc"]
    assert all("val_acc_raw" in r for r in rows)
