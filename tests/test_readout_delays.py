"""Learned readout delays: e-prop against autograd BPTT (one layer: exact, with and without
dropout), the three forward paths against each other, per-step OnlineEprop against the
whole-sequence updates, latency and parameter counts."""

import pytest
import torch

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


def test_counts_latency_and_clamp():
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


@pytest.mark.parametrize("r", [2, 7])
def test_readout_max_delay_bounds_the_readout_alone(r):
    """readout_max_delay: the readout delays (not the hidden ones) start, stay and count in
    latency within [0, r]; e-prop is still the exact gradient (one layer) and per-step
    e-prop still equals the whole-sequence updates."""
    net, x, target = make(readout_max_delay=r, kappa=0.5)
    assert (net.readout.max_delay, net.readout.window) == (r, r + 1)
    assert net.layers[0].ff.max_delay == 4
    assert 0 < float(net.readout.syn_delay.max()) <= r
    ecfg = EpropConfig(loss="sum")
    e = eprop_gradients(net, x, target, ecfg, set_grad=False)
    b = bptt_gradients(net, x, target, loss="sum", set_grad=False)
    for name, g in b.grads.items():
        assert g.norm() > 1e-8, name
        assert rel_err(e.grads[name], g) < 1e-9, name
    learner = OnlineEprop(net, ecfg)
    learner.begin(B)
    for t in range(T):
        learner.step(x[:, t], target)
    online = learner.end(target, set_grad=False)
    for name, g in e.grads.items():
        assert rel_err(online[name], g) < 1e-9, name
    with torch.no_grad():
        net.readout.syn_delay.fill_(50.0)
        net.layers[0].ff.syn_delay.fill_(50.0)
    net.clamp_delays_()
    assert float(net.readout.syn_delay.max()) == r
    assert float(net.layers[0].ff.syn_delay.max()) == 4
    lat = network_latency(net, 10.0)
    assert lat["latency_steps"] == 4 + r + 2
    assert lat["delay_path_bound_steps"] == 4 + r


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_readout_max_delay_rejects_impossible_values(bad):
    from delayprop.errors import ConfigError

    with pytest.raises(ConfigError, match="readout_max_delay must be"):
        NetConfig(readout_delays=True, readout_max_delay=bad)
    with pytest.raises(ConfigError, match="readout_delays is off"):
        NetConfig(readout_max_delay=3)


def test_readout_max_delay_from_the_command_line(tmp_path):
    """--readout-max-delay 3 reaches the network as 3 steps; a whole float (TOML's 10.0)
    is taken as the whole number, as max_delay is."""
    from delayprop.cli import main

    cfg = NetConfig(readout_delays=True, readout_max_delay=10.0)
    assert cfg.readout_max_delay == 10 and isinstance(cfg.readout_max_delay, int)
    run = tmp_path / "run"
    assert main(["train", "--dataset", "timing", "--epochs", "1", "--n-hidden", "4",
                 "--readout-delays", "--readout-max-delay", "3", "--run-dir", str(run),
                 "--quiet", "--no-plots"]) == 0
    from delayprop.train import load_checkpoint, model_from_checkpoint

    net = model_from_checkpoint(load_checkpoint(run / "best.pt")).net
    assert net.readout.max_delay == 3 and float(net.readout.syn_delay.max()) <= 3

ONLINE_CASES = [
    dict(loss="sum", kappa=0.0, delay_mode="hard"),
    dict(loss="sum", kappa=0.7, delay_mode="smooth"),
    dict(loss="mean", kappa=0.4, delay_mode="hard"),
    dict(loss="mean", kappa=0.0, delay_mode="smooth"),
    dict(loss="sum", kappa=0.5, delay_mode="hard", n_hidden=(5, 4), recurrent=True),
    dict(loss="mean", kappa=0.5, delay_mode="smooth", n_hidden=(5, 4), axonal_delays=True),
    dict(loss="sum", kappa=0.6, delay_mode="hard", reg_rate=0.3),
    dict(loss="sum", kappa=0.6, delay_mode="hard", feedback="random"),
]


@pytest.mark.parametrize("case", ONLINE_CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_online_eprop_equals_whole_sequence_with_readout_delays(case):
    """Per-step e-prop pays each step's error to the traces of D_kj steps ago (kept for the
    readout's window): the same updates as the whole-sequence path, which reads the error
    D_kj steps ahead, on every layer and group, for both losses, kappa, hard and smooth
    delays, the rate regulariser and random feedback."""
    case = dict(case)
    ecfg = EpropConfig(loss=case.pop("loss"), feedback=case.pop("feedback", "symmetric"),
                       reg_rate=case.pop("reg_rate", 0.0))
    net, x, target = make(**case)
    assert bool((net.readout.rounded_delay() > 0).any())
    whole = eprop_gradients(net, x, target, ecfg, set_grad=False)
    learner = OnlineEprop(net, ecfg)
    learner.begin(B)
    ys = [learner.step(x[:, t], target if ecfg.loss == "sum" else None).y for t in range(T)]
    grads = learner.end(target, set_grad=False)
    assert rel_err(torch.stack(ys, 1), whole.y) < 1e-12
    assert set(grads) == set(whole.grads) >= {"readout.syn_delay", "layers.0.ff.weight"}
    for name, g in whole.grads.items():
        assert g.abs().max() > 0, name
        assert rel_err(grads[name], g) < 1e-9, name


def test_online_readout_delays_are_the_gradient_mid_sequence():
    """accumulated() after t steps: the exact gradient of the loss over those t steps (one
    layer, 'sum' loss), although the errors of the last D_kj steps have not yet reached the
    traces they will pay."""
    net, x, target = make(kappa=0.5)
    learner = OnlineEprop(net, EpropConfig(loss="sum"))
    learner.begin(B)
    for t in range(9):
        learner.step(x[:, t], target)
    part = learner.accumulated()
    ref = bptt_gradients(net, x[:, :9], target, loss="sum", set_grad=False)
    for name, g in ref.grads.items():
        assert rel_err(part[name], g) < 1e-9, name


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


def recorded_config(experiment: str, run: str) -> dict:
    """The resolved configuration a kept run record holds."""
    from pathlib import Path

    from delayprop.experiments.records import load_records

    root = Path(__file__).resolve().parents[1]
    return load_records(root / "results" / "records" / f"{experiment}.jsonl")[run]["config"]


@pytest.mark.parametrize("proto,suffix", [("pub", ""), ("aug", "_aug")])
def test_final_recipe_configs_are_the_runs_of_round_13(proto, suffix):
    """configs/search/shd_eprop_round13*.toml resolve to the configuration the round-13 runs
    trained with (their records in results/records/search.jsonl), but for the name and the
    CLI's model seed."""
    from pathlib import Path

    from delayprop.train import config_difference, load_config, resolve_config

    root = Path(__file__).resolve().parents[1]
    cfg = resolve_config(load_config(root / "configs" / "search"
                                     / f"shd_eprop_round13{suffix}.toml"))
    run = recorded_config("search", f"sota.r13_rd_sum80_drop10_{proto}_seed0")
    assert set(config_difference(cfg, run)) <= {"name", "model.seed"}
    assert cfg["model"]["readout_delays"] and cfg["model"]["dropout"] == 0.1


@pytest.mark.parametrize("proto,suffix", [("pub", ""), ("aug", "_aug")])
@pytest.mark.parametrize("round_,runs,sigma,delay_lr",
                         [(18, "r16_rd_idrop10", 1.0, 1.0), (20, "r20_sigma2", 2.0, 1.0),
                          (22, "r22_dlr05", 2.0, 0.5)])
def test_round_recipe_configs_are_its_runs(proto, suffix, round_, runs, sigma, delay_lr):
    """configs/search/shd_eprop_round{18,20}*.toml and configs/shd_eprop*.toml (the recipe of
    round 22) resolve to the configuration of the runs the
    round chose (records in results/records/: r16_rd_idrop10_*: round 13's recipe +
    --input-dropout 0.1; r20_sigma2_*: that + --sigma 2; r22_dlr05_* (now sota's eprop_*): that
    + --delay-lr 0.5), but for the name and the CLI's model seed."""
    from pathlib import Path

    from delayprop.train import config_difference, load_config, resolve_config

    root = Path(__file__).resolve().parents[1]
    path = (root / "configs" / f"shd_eprop{suffix}.toml" if round_ == 22
            else root / "configs" / "search" / f"shd_eprop_round{round_}{suffix}.toml")
    cfg = resolve_config(load_config(path))
    run = (recorded_config("sota", f"eprop_{proto}_seed0") if round_ == 22
           else recorded_config("search", f"sota.{runs}_{proto}_seed0"))
    assert set(config_difference(cfg, run)) <= {"name", "model.seed"}
    assert cfg["train"]["input_dropout"] == 0.1 and cfg["model"]["dropout"] == 0.1
    assert cfg["model"]["sigma"] == sigma and cfg["train"]["delay_lr"] == delay_lr
