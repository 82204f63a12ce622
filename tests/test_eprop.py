"""E-prop against autograd BPTT, the per-step API against the whole-sequence API, and a toy
problem with a known answer for synaptic and axonal delays."""

import pytest
import torch

from delayprop.layers import DelayNet, NetConfig
from delayprop.rules import EpropConfig, OnlineEprop, bptt_gradients, eprop_gradients

T, B, N_IN, N_OUT = 15, 4, 6, 3


def make(seed: int = 0, **kw) -> tuple[DelayNet, torch.Tensor, torch.Tensor]:
    kw.setdefault("n_hidden", (5,))
    cfg = NetConfig(n_in=N_IN, n_out=N_OUT, max_delay=4, sigma=1.0, tau_m=30.0, dt=10.0,
                    weight_scale=3.0, seed=seed, **kw)
    net = DelayNet(cfg).double()
    g = torch.Generator().manual_seed(seed + 1)
    x = (torch.rand(B, T, N_IN, generator=g) < 0.3).double()
    target = torch.randint(0, N_OUT, (B,), generator=g)
    return net, x, target


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


EXACT_CASES = [
    dict(delay_mode="smooth", synaptic_delays=True, axonal_delays=True),
    dict(delay_mode="hard", synaptic_delays=True, axonal_delays=True),
    dict(delay_mode="smooth", synaptic_delays=False, axonal_delays=True),
    dict(delay_mode="hard", synaptic_delays=True, axonal_delays=False, surrogate="atan"),
]


@pytest.mark.parametrize("kw", EXACT_CASES, ids=lambda kw: kw["delay_mode"] + str(sorted(kw)))
def test_eprop_equals_bptt_one_feedforward_layer(kw):
    """The property of method.md: one FF layer, detached reset, kappa = 0, per-step loss."""
    net, x, target = make(**kw)
    e = eprop_gradients(net, x, target, EpropConfig(loss="sum"), set_grad=False)
    b = bptt_gradients(net, x, target, loss="sum", set_grad=False)
    assert sum(r.z.sum() for r in b.records) > 5, "the network must spike for a real test"
    assert set(e.grads) == set(b.grads)
    for name in ("layers.0.ff.weight", "layers.0.ff.syn_delay", "layers.0.ff.ax_delay"):
        if name in b.grads:
            assert b.grads[name].norm() > 1e-6, name
            assert rel_err(e.grads[name], b.grads[name]) < 1e-9, name
    assert rel_err(e.grads["readout.weight"], b.grads["readout.weight"]) < 1e-9
    assert e.loss == pytest.approx(b.loss, rel=1e-12)


@pytest.mark.parametrize("loss,kappa", [("sum", 0.6), ("mean", 0.0), ("mean", 0.4)])
def test_eprop_exact_for_one_layer_with_leaky_readout_and_mean_loss(loss, kappa):
    """With one FF layer the kappa-filtered traces keep e-prop exact (dE/dz is the filtered
    readout error), for both losses."""
    net, x, target = make(kappa=kappa, axonal_delays=True)
    e = eprop_gradients(net, x, target, EpropConfig(loss=loss), set_grad=False)
    b = bptt_gradients(net, x, target, loss=loss, set_grad=False)
    for name, g in b.grads.items():
        assert rel_err(e.grads[name], g) < 1e-9, name


def test_hard_and_smooth_forward_differ_but_share_delay_surrogate():
    net, x, target = make(delay_mode="hard")
    y_hard = net(x)
    net.set_delay_mode("smooth")
    y_smooth = net(x)
    assert not torch.allclose(y_hard, y_smooth)


def test_recurrent_and_deep_are_approximations_with_high_cosine():
    net, x, target = make(recurrent=True, recurrent_delays=True, kappa=0.5)
    e = eprop_gradients(net, x, target, set_grad=False)
    b = bptt_gradients(net, x, target, set_grad=False)
    cos = torch.nn.functional.cosine_similarity
    for name in ("layers.0.ff.weight", "layers.0.rec.weight", "layers.0.ff.syn_delay"):
        c = cos(e.grads[name].flatten(), b.grads[name].flatten(), dim=0)
        assert 0.9 < c < 1 - 1e-9, (name, float(c))  # close, but not exact


def test_set_grad_writes_into_parameters():
    net, x, target = make()
    eprop_gradients(net, x, target)
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name


ONLINE_CASES = [
    dict(),
    dict(axonal_delays=True, delay_mode="smooth"),
    dict(kappa=0.7, axonal_delays=True),
    dict(recurrent=True, recurrent_delays=True),
    dict(recurrent=True, recurrent_delays=True, kappa=0.5, loss="mean"),
    dict(n_hidden=(5, 4), axonal_delays=True, feedback="random"),
    dict(reg_rate=0.5, target_rate=0.05),
    dict(reg_rate=0.5, kappa=0.3, recurrent=True),
]


@pytest.mark.parametrize("kw", ONLINE_CASES, ids=[str(sorted(k.items())) for k in ONLINE_CASES])
def test_online_step_api_equals_whole_sequence_api(kw):
    kw = dict(kw)
    ecfg = EpropConfig(**{k: kw.pop(k) for k in ("loss", "feedback", "reg_rate", "target_rate")
                          if k in kw})
    net, x, target = make(**kw)
    whole = eprop_gradients(net, x, target, ecfg, set_grad=False)
    learner = OnlineEprop(net, ecfg)
    learner.begin(B)
    ys = []
    for t in range(T):
        out = learner.step(x[:, t], target if ecfg.loss == "sum" else None)
        ys.append(out.y)
    grads = learner.end(target, set_grad=False)
    assert torch.allclose(torch.stack(ys, 1), whole.y, rtol=0, atol=1e-12)
    assert set(grads) == set(whole.grads)
    for name, g in whole.grads.items():
        assert g.abs().max() > 0, name
        assert rel_err(grads[name], g) < 1e-9, name


@pytest.mark.parametrize("kappa", [0.0, 0.5])
def test_online_memory_does_not_grow_with_sequence_length(kappa):
    net, _, target = make(kappa=kappa, recurrent=True, recurrent_delays=True)
    learner = OnlineEprop(net)
    learner.begin(B)
    sizes = []
    for t in range(60):
        learner.step((torch.rand(B, N_IN) < 0.3).double(), target)
        if t in (10, 59):
            sizes.append(learner.state_numel())
    assert sizes[0] == sizes[1] > 0


# ---------------------------------------------------------------------------------------------
# Toy problem with a known answer: input channel A spikes at t0, channel B at t0 + 9; the
# neuron only fires when both arrive together, and the loss asks for a spike at t0 + 9. The
# delay of A (synaptic D_jA or axonal D_A) must move to 9 steps.


@pytest.mark.parametrize("mode", ["hard", "smooth"])
@pytest.mark.parametrize("kind", ["synaptic", "axonal"])
@pytest.mark.parametrize("start", [2.0, 14.0])
def test_toy_delay_reaches_target(kind, mode, start):
    t0, target_delay, steps = 2, 9, 24
    cfg = NetConfig(n_in=2, n_hidden=(1,), n_out=2, synaptic_delays=kind == "synaptic",
                    axonal_delays=kind == "axonal", max_delay=15, delay_mode=mode, sigma=3.0,
                    tau_m=2.0, dt=10.0)
    net = DelayNet(cfg).double()
    ff = net.layers[0].ff
    delay = ff.syn_delay if kind == "synaptic" else ff.ax_delay
    with torch.no_grad():
        ff.weight.fill_(0.6)  # one input alone stays below threshold, both together fire
        net.readout.weight.copy_(torch.tensor([[-10.0], [10.0]]))
        net.readout.bias.copy_(torch.tensor([5.0, -5.0]))  # class 0 unless the neuron fires
        delay.zero_()
        delay.view(-1)[0] = start
    x = torch.zeros(1, steps, 2, dtype=torch.float64)
    x[0, t0, 0] = 1
    x[0, t0 + target_delay, 1] = 1
    target = torch.zeros(1, steps, dtype=torch.long)
    target[0, t0 + target_delay] = 1
    name = "layers.0.ff.syn_delay" if kind == "synaptic" else "layers.0.ff.ax_delay"
    for i in range(150):
        g = eprop_gradients(net, x, target, set_grad=False).grads[name].view(-1)[0]
        with torch.no_grad():  # sign descent with a decaying step, on the delay of A only
            delay.view(-1)[0] -= 0.3 * 0.98**i * torch.sign(g)
        net.clamp_delays_()
    assert abs(delay.detach().view(-1)[0].item() - target_delay) < 0.5
    if mode == "hard":  # ... and the neuron now fires on time (the smooth pulse is too low)
        y = net(x)
        assert y[0, t0 + target_delay].argmax() == 1


def test_online_accumulated_update_midway_equals_whole_sequence_prefix():
    net, x, target = make(kappa=0.5, axonal_delays=True)
    learner = OnlineEprop(net)
    learner.begin(B)
    for t in range(8):
        learner.step(x[:, t], target)
    midway = learner.accumulated()
    prefix = eprop_gradients(net, x[:, :8], target, set_grad=False).grads
    for name, g in prefix.items():
        assert rel_err(midway[name], g) < 1e-9, name
    for t in range(8, T):  # the sequence goes on after the look
        learner.step(x[:, t], target)
    full = eprop_gradients(net, x, target, set_grad=False).grads
    grads = learner.end()
    for name, g in full.items():
        assert rel_err(grads[name], g) < 1e-9, name
    with pytest.raises(RuntimeError, match="begin"):
        learner.step(x[:, 0], target)
