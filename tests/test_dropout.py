"""Dropout of hidden spikes (NetConfig.dropout): e-prop with the masks against autograd BPTT
with the same masks, every forward path against the others, and where dropout is off."""

import pytest
import torch

from delayprop.errors import ConfigError
from delayprop.layers import DelayNet, NetConfig
from delayprop.rules import EpropConfig, OnlineEprop, bptt_gradients, eprop_gradients
from delayprop.stream import forward_streaming
from tests.test_eprop import B, make, rel_err


@pytest.mark.parametrize("loss,kappa", [("sum", 0.0), ("mean", 0.4), ("sum", 0.6)])
@pytest.mark.parametrize("streaming", [True, False])
def test_eprop_with_dropout_equals_bptt_one_layer(loss, kappa, streaming):
    """With one FF layer e-prop is exact (method.md); a fixed mask per sample and neuron keeps
    it exact: the dropped neuron's learning signal is masked like its output."""
    net, x, target = make(kappa=kappa, axonal_delays=True, dropout=0.5)
    net.train()
    torch.manual_seed(3)
    with net.dropped_out(B) as masks:
        assert masks is not None and (masks[0] == 0).any() and (masks[0] == 2.0).any()
        e = eprop_gradients(net, x, target, EpropConfig(loss=loss), set_grad=False,
                            streaming=streaming)
        b = bptt_gradients(net, x, target, loss=loss, set_grad=False)
    assert net.masks is None
    free = bptt_gradients(net, x, target, loss=loss, set_grad=False)
    for name, g in b.grads.items():
        assert rel_err(e.grads[name], g) < 1e-9, name
    assert rel_err(b.grads["layers.0.ff.weight"], free.grads["layers.0.ff.weight"]) > 1e-3
    # a neuron dropped in every sample learns nothing from the loss
    dropped = (masks[0] == 0).all(0)
    if dropped.any():
        assert e.grads["layers.0.ff.weight"][dropped].abs().max() == 0
        assert e.grads["readout.weight"][:, dropped].abs().max() == 0


def test_dropout_masks_agree_on_every_forward_path():
    """Two layers, recurrent: the autograd forward, the streamed no-autograd forward and the
    streamed and whole-sequence e-prop see the same masked network."""
    net, x, target = make(n_hidden=(5, 4), recurrent=True, kappa=0.5, dropout=0.3)
    net.train()
    torch.manual_seed(0)
    with net.dropped_out(B):
        y = net(x)
        with torch.no_grad():
            y_stream = forward_streaming(net, x, chunk=4)
        s = eprop_gradients(net, x, target, set_grad=False, chunk=4)
        w = eprop_gradients(net, x, target, set_grad=False, streaming=False)
    assert not torch.allclose(y, net(x))  # the masks change the output
    assert rel_err(y_stream, y.detach()) < 1e-12
    assert rel_err(s.y, y.detach()) < 1e-12
    for name, g in w.grads.items():
        assert rel_err(s.grads[name], g) < 1e-9, name


def test_dropout_is_off_in_eval_mode_and_at_zero():
    net, x, _ = make(dropout=0.5)
    net.eval()
    with net.dropped_out(B) as masks:
        assert masks is None and net.masks is None
    net0, _, _ = make(dropout=0.0)
    net0.train()
    with net0.dropped_out(B) as masks:
        assert masks is None


def test_dropout_settings_and_paths_that_refuse_it():
    with pytest.raises(ConfigError, match="dropout must be in"):
        NetConfig(dropout=1.0)
    with pytest.raises(ConfigError, match="dropout must be in"):
        NetConfig(dropout=-0.1)
    net, x, target = make(dropout=0.5)
    net.train()
    with net.dropped_out(B):
        learner = OnlineEprop(net, EpropConfig(loss="mean"))
        learner.begin(B)
        with pytest.raises(ConfigError, match="per-step path"):
            learner.step(x[:, 0])
        with pytest.raises(ConfigError, match="batch of 4"):
            net(x[:2])


def test_training_with_dropout_draws_new_masks_per_batch(monkeypatch):
    """Model.update wraps each batch in dropped_out: masks exist during the update only."""
    from delayprop.train import Model, resolve_config

    cfg = resolve_config({"model": {"n_hidden": [6], "dropout": 0.5, "max_delay": 3},
                          "data": {"dataset": "timing"}})
    model = Model(cfg, 4, 2, torch.device("cpu"))
    seen = []
    real = DelayNet.outgoing

    def spy(self, layer, z):
        if self.masks is not None:
            seen.append(self.masks[layer].clone())
        return real(self, layer, z)

    monkeypatch.setattr(DelayNet, "outgoing", spy)
    x = (torch.rand(8, 12, 4) < 0.3).float()
    y = torch.randint(0, 2, (8,))
    model.train_mode()
    model.update(x, y)
    model.update(x, y)
    assert model.net.masks is None
    assert seen and not all(torch.equal(seen[0], m) for m in seen)
