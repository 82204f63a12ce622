"""Learned readout delays: e-prop against autograd BPTT (one layer: exact), the three forward
paths against each other, the online API's refusal, latency and parameter counts."""

import pytest
import torch

from delayprop.errors import ConfigError
from delayprop.latency import network_latency
from delayprop.layers import DelayNet, NetConfig
from delayprop.rules import EpropConfig, OnlineEprop, bptt_gradients, eprop_gradients
from delayprop.stream import forward_streaming
from tests.test_eprop import N_IN, N_OUT, B, T, rel_err
from tests.test_eprop import make as make_plain

H = 5  # test_eprop.make's hidden layer


def make(seed: int = 0, **kw) -> tuple[DelayNet, torch.Tensor, torch.Tensor]:
    """test_eprop's small problem, float64, with learned readout delays."""
    return make_plain(seed, readout_delays=True, **kw)


@pytest.mark.parametrize("mode", ["hard", "smooth"])
@pytest.mark.parametrize("loss,kappa", [("sum", 0.0), ("sum", 0.7), ("mean", 0.4)])
def test_eprop_equals_bptt_one_layer_with_readout_delays(mode, loss, kappa):
    """One FF layer: the learning signal sum_k W_kj err-bar_k(t + D_kj) makes every update
    (hidden weights and delays, readout weights, delays and bias) the exact gradient."""
    net, x, target = make(delay_mode=mode, kappa=kappa)
    assert net.readout.syn_delay is not None
    assert bool((net.readout.rounded_delay() > 0).any()), "the test needs nonzero delays"
    e = eprop_gradients(net, x, target, EpropConfig(loss=loss), set_grad=False)
    b = bptt_gradients(net, x, target, loss=loss, set_grad=False)
    assert sum(r.z.sum() for r in b.records) > 5, "the network must spike for a real test"
    assert set(e.grads) == set(b.grads) >= {"readout.syn_delay", "layers.0.ff.syn_delay"}
    for name, g in b.grads.items():
        assert g.norm() > 1e-8, name
        assert rel_err(e.grads[name], g) < 1e-9, name
    assert e.loss == pytest.approx(b.loss, rel=1e-12)


@pytest.mark.parametrize("mode", ["hard", "smooth"])
def test_forward_paths_agree(mode):
    """Autograd forward, the chunked no-autograd forward (several chunk sizes) and the
    per-step DelayNet.step give the same outputs."""
    net, x, _ = make(delay_mode=mode, kappa=0.5, n_hidden=(5, 4))
    ref = net(x)
    for chunk in (1, 4, 7, T):
        assert rel_err(forward_streaming(net, x, chunk=chunk), ref) < 1e-12, chunk
    state = net.initial_state(B)
    with torch.no_grad():
        steps = torch.stack([net.step(x[:, t], state).clone() for t in range(T)], 1)
    assert rel_err(steps, ref.detach()) < 1e-12
    # and the delays change the output: the same net with readout delays set to zero differs
    with torch.no_grad():
        net.readout.syn_delay.zero_()
    assert rel_err(net(x), ref) > 1e-3


def test_counts_latency_clamp_and_online_refusal():
    net, _, _ = make()
    counts = net.count_parameters()
    assert counts["delays"] == N_IN * H + H * N_OUT
    assert counts["weights"] == N_IN * H + H * N_OUT + N_OUT
    plain = DelayNet(NetConfig(n_in=N_IN, n_out=N_OUT, n_hidden=(H,), max_delay=4,
                               weight_scale=3.0, seed=0))
    with torch.no_grad():  # the readout draws its weights as before readout delays existed
        assert torch.equal(plain.readout.weight, net.readout.weight.float())
        net.readout.syn_delay.fill_(9.0)
    net.clamp_delays_()
    assert float(net.readout.syn_delay.max()) == 4.0
    with torch.no_grad():
        net.layers[0].ff.syn_delay.fill_(2.0)
    lat = network_latency(net, 10.0)
    assert lat["latency_steps"] == 2 + 4 + 2  # hidden + readout delays + one step per layer
    assert lat["delay_path_bound_steps"] == 4 + 4
    with pytest.raises(ConfigError, match="readout delays"):
        OnlineEprop(net)


@pytest.mark.parametrize("loss,kappa", [("sum", 0.9), ("mean", 0.4)])
def test_eprop_equals_bptt_with_readout_delays_and_dropout(loss, kappa):
    """Readout delays with dropout of hidden spikes (one mask per sample and neuron, fixed
    over time): the masked spikes reach the readout D_kj steps later and the learning signal
    comes back the same way, so one layer stays exact."""
    net, x, target = make(kappa=kappa, dropout=0.5)
    net.train()
    torch.manual_seed(5)
    with net.dropped_out(B) as masks:
        assert (masks[0] == 0).any() and (masks[0] > 0).any()
        e = eprop_gradients(net, x, target, EpropConfig(loss=loss), set_grad=False)
        b = bptt_gradients(net, x, target, loss=loss, set_grad=False)
    free = bptt_gradients(net, x, target, loss=loss, set_grad=False)
    for name, g in b.grads.items():
        assert rel_err(e.grads[name], g) < 1e-9, name
    assert rel_err(b.grads["readout.syn_delay"], free.grads["readout.syn_delay"]) > 1e-3
