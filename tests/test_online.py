"""The per-step learner's memory account and its late evaluation of the last layer's
eligibility under readout delays (rules/online.py): the state it keeps against the minimum
derived from the rule, and what evaluating late must not change."""

import pytest
import torch

from delayprop.errors import ConfigError
from delayprop.layers import DelayNet, NetConfig
from delayprop.rules import EpropConfig, OnlineEprop, eprop_gradients, minimum_state
from tests.test_eprop import B, T, make, rel_err

CASES = [
    dict(),
    dict(readout_delays=True, kappa=0.9),
    dict(readout_delays=True, kappa=0.0),
    dict(readout_delays=True, kappa=0.5, loss="mean"),
    dict(readout_delays=True, kappa=0.5, recurrent=True, recurrent_delays=True),
    dict(kappa=0.7, axonal_delays=True, n_hidden=(5, 4)),
    dict(readout_delays=True, kappa=0.6, reg_rate=0.3),
]


def _learner(case: dict, batch: int = 1):
    case = dict(case)
    ecfg = EpropConfig(**{k: case.pop(k) for k in ("loss", "reg_rate") if k in case})
    net, x, target = make(**case)
    learner = OnlineEprop(net, ecfg)
    learner.begin(batch)
    return net, ecfg, learner, x, target


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items())
                         or "plain")
def test_state_within_twice_the_derived_minimum(case):
    """What the learner keeps for learning (the network's own state aside) is within 2x of
    the minimum derived from the rule, for batch 1 and 4."""
    for batch in (1, 4):
        net, ecfg, learner, *_ = _learner(case, batch)
        parts = learner.state_parts()
        learning = sum(v for k, v in parts.items() if not k.startswith("network"))
        need = sum(minimum_state(net, ecfg, batch).values())
        assert need <= learning <= 2 * need, (parts, need)


def test_paper_shape_state_is_a_small_fraction_of_paying_on_arrival():
    """140-100-20, max delay 25, readout delays: paying each error when it arrives needs
    every trace of the last 25 steps; evaluating 25 steps late needs about a tenth."""
    net = DelayNet(NetConfig(n_in=140, n_hidden=(100,), n_out=20, max_delay=25, kappa=0.9,
                             readout_delays=True, seed=0))
    late = sum(minimum_state(net).values())
    arrival = sum(minimum_state(net, scheme="on_arrival").values())
    learner = OnlineEprop(net)
    learner.begin(1)
    assert arrival > 9 * late
    assert late <= learner.state_numel() <= 1.2 * late
    assert learner.kernel_numel() > 0
    with pytest.raises(ConfigError, match="scheme"):
        minimum_state(net, scheme="later")


def test_late_evaluation_pays_the_tail_at_end_for_a_sequence_shorter_than_the_lag():
    """A sequence shorter than the readout window: no step is paid before end(), and end()
    still gives the whole-sequence updates."""
    net, x, target = make(readout_delays=True, kappa=0.5)
    short = x[:, :3]
    assert net.readout.window - 1 > 3
    learner = OnlineEprop(net)
    learner.begin(B)
    for t in range(3):
        learner.step(short[:, t], target)
    acc = learner.groups[-1][0].acc[0]
    assert float(acc.abs().max()) == 0.0  # nothing paid yet
    grads = learner.end(target, set_grad=False)
    whole = eprop_gradients(net, short, target, set_grad=False)
    for name, g in whole.grads.items():
        assert rel_err(grads[name], g) < 1e-9, name


def test_accumulated_does_not_disturb_the_sequence():
    """accumulated() mid-sequence pays the tail on copies: the final updates are unchanged."""
    net, x, target = make(readout_delays=True, kappa=0.5)
    ref = OnlineEprop(net)
    ref.begin(B)
    probe = OnlineEprop(net)
    probe.begin(B)
    for t in range(T):
        ref.step(x[:, t], target)
        probe.step(x[:, t], target)
        if t in (2, 9):
            probe.accumulated()
    a, b = ref.end(target, set_grad=False), probe.end(target, set_grad=False)
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_eligibility_vectors_are_those_of_the_current_step():
    """eligibility() after step t: eps^W_ji = x-bar_i[t - D_ji] for hard delays (B, post,
    pre), also on the last layer, whose learning runs lag steps late."""
    net, x, target = make(readout_delays=True, kappa=0.5)
    learner = OnlineEprop(net)
    learner.begin(B)
    alpha = net.layers[0].lif.alpha
    xbar, hist = torch.zeros(B, x.shape[-1], dtype=x.dtype), []
    for t in range(T):
        learner.step(x[:, t], target)
        xbar = alpha * xbar + x[:, t]
        hist.append(xbar.clone())
    eps_w, eps_d = learner.eligibility(0)
    d = net.layers[0].ff.rounded_delay().long()  # (post, pre)
    expect = torch.stack([torch.stack([hist[T - 1 - int(d[j, i])][:, i]
                                       for i in range(d.shape[1])], -1)
                          for j in range(d.shape[0])], 1)
    assert eps_w.shape == (B, *d.shape) and eps_d.shape == eps_w.shape
    assert torch.allclose(eps_w, expect, atol=1e-12)


def test_online_forward_equals_the_network_step():
    """The learner runs the network itself: its outputs and spikes are DelayNet.step's."""
    net, x, target = make(readout_delays=True, recurrent=True, recurrent_delays=True,
                          n_hidden=(5, 4), delay_mode="smooth", kappa=0.3)
    learner = OnlineEprop(net)
    learner.begin(B)
    st = net.initial_state(B)
    for t in range(T):
        out = learner.step(x[:, t], target)
        y = net.step(x[:, t], st)
        assert torch.allclose(out.y, y, atol=1e-12)
        for z_a, z_b in zip(out.z, st.z):
            assert torch.equal(z_a, z_b)


@pytest.mark.parametrize("kw", [dict(axonal_delays=True, readout_delays=True),
                                dict(recurrent=True, recurrent_delays=True, n_hidden=(5, 4)),
                                dict(synaptic_delays=False, axonal_delays=False),
                                dict(delay_mode="smooth", readout_delays=True)])
def test_network_step_without_autograd_reads_delays_directly(kw):
    """DelayNet.step without autograd reads x[t - D] at the rounded delays (hard delays) instead
    of building the kernels at every step: the same outputs and spikes as with autograd."""
    net, x, _ = make(**kw)
    st_a, st_b = net.initial_state(B), net.initial_state(B)
    for t in range(T):
        y_a = net.step(x[:, t], st_a)  # parameters require grad: the kernel path
        with torch.no_grad():
            y_b = net.step(x[:, t], st_b)
        assert torch.allclose(y_a, y_b, atol=1e-12)
        for z_a, z_b in zip(st_a.z, st_b.z):
            assert torch.equal(z_a, z_b)
