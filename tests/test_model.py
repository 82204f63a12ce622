"""Model construction, shapes, delay bounds and clear errors on bad settings."""

import json
import math

import pytest
import torch

from delayprop.cli import main
from delayprop.delays import DelayLine, delay_kernel, delay_kernel_derivative
from delayprop.errors import ConfigError
from delayprop.layers import DelayNet, NetConfig
from delayprop.neurons import LIFParameters, Surrogate
from delayprop.rules import EpropConfig, eprop_gradients


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(max_delay=-1), "max_delay"),
        (dict(max_delay=2.5), "whole number"),
        (dict(delay_mode="smooth", sigma=0.0), "sigma"),
        (dict(delay_mode="smooth", sigma=-1.0), "sigma"),
        (dict(delay_mode="fuzzy"), "delay mode"),
        (dict(n_hidden=()), "n_hidden"),
        (dict(n_hidden=(0,)), "n_hidden"),
        (dict(kappa=1.0), "kappa"),
        (dict(tau_m=0.0), "tau_m"),
        (dict(reset="bounce"), "reset"),
        (dict(surrogate="magic"), "surrogate"),
    ],
)
def test_bad_settings_raise_clear_errors(kw, match):
    with pytest.raises(ConfigError, match=match):
        DelayNet(NetConfig(**kw))


def test_bad_inputs_raise_clear_errors():
    net = DelayNet(NetConfig(n_in=4, n_hidden=(3,), n_out=2, max_delay=2))
    with pytest.raises(ConfigError, match=r"shape \(batch, time, 4\)"):
        net(torch.zeros(2, 5, 3))
    with pytest.raises(ConfigError, match="shape"):
        net(torch.zeros(5, 4))
    x = torch.zeros(2, 5, 4)
    x[0, 1, 2] = float("nan")
    with pytest.raises(ConfigError, match="NaN"):
        net(x)
    with pytest.raises(ConfigError, match="NaN"):
        eprop_gradients(net, x, torch.zeros(2, dtype=torch.long))
    with pytest.raises(ConfigError, match="target shape"):
        eprop_gradients(net, torch.zeros(2, 5, 4), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ConfigError, match="labels"):
        eprop_gradients(net, torch.zeros(2, 5, 4), torch.tensor([0, 7]))
    with pytest.raises(ConfigError, match="input step"):
        net.step(torch.zeros(2, 5), net.initial_state(2))
    with pytest.raises(ConfigError, match="loss"):
        EpropConfig(loss="max")
    with pytest.raises(ConfigError, match="feedback"):
        EpropConfig(feedback="mirror")


def test_unknown_config_key_is_named():
    with pytest.raises(ConfigError, match="n_hiden"):
        NetConfig.from_dict({"n_hiden": [3]})
    cfg = NetConfig(n_hidden=(7, 5))
    assert NetConfig.from_dict(cfg.to_dict()) == cfg


def test_parameter_counts_split_weights_and_delays():
    net = DelayNet(NetConfig(n_in=140, n_hidden=(107,), n_out=20, synaptic_delays=True))
    c = net.count_parameters()
    assert c == {"weights": 140 * 107 + 107 * 20 + 20, "delays": 140 * 107,
                 "total": 2 * 140 * 107 + 107 * 20 + 20}
    net = DelayNet(NetConfig(n_in=10, n_hidden=(4,), n_out=2, synaptic_delays=False,
                             axonal_delays=True, recurrent=True, recurrent_delays=True))
    assert net.count_parameters()["delays"] == 10 + 4 * 4


def test_delays_initialised_and_clamped_in_range():
    net = DelayNet(NetConfig(n_in=6, n_hidden=(5,), n_out=2, axonal_delays=True, max_delay=7))
    ff = net.layers[0].ff
    assert ff.window == 15  # synaptic + axonal, 7 steps each
    for d in (ff.syn_delay, ff.ax_delay):
        assert 0 <= d.min() and d.max() <= 7
        with torch.no_grad():
            d.add_(100.0)
    net.clamp_delays_()
    assert ff.syn_delay.max() == 7 and ff.ax_delay.max() == 7
    with torch.no_grad():
        ff.syn_delay.fill_(-3.0)
    net.clamp_delays_()
    assert ff.syn_delay.min() == 0


def test_hard_delay_shifts_spikes_by_rounded_delay():
    net = DelayNet(NetConfig(n_in=1, n_hidden=(1,), n_out=1, max_delay=10, tau_m=1.0))
    with torch.no_grad():
        net.layers[0].ff.weight.fill_(2.0)
        net.layers[0].ff.syn_delay.fill_(4.4)
    x = torch.zeros(1, 12, 1)
    x[0, 3, 0] = 1
    _, rec = net(x, record=True)
    assert rec[0].z[0, :, 0].nonzero().flatten().tolist() == [7]


def test_kernels_and_derivative():
    d = torch.tensor([2.3, 0.0])
    k = delay_kernel(d, 6, "hard", 1.0)
    assert k.tolist() == [[0, 0, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]]
    ks = delay_kernel(d, 6, "smooth", 0.7)
    u = torch.arange(6.0) - 2.3
    assert torch.allclose(ks[0], torch.exp(-u**2 / (2 * 0.49)) / (math.sqrt(2 * math.pi) * 0.7))
    # analytic derivative equals autograd of the smooth kernel
    dd = d.clone().double().requires_grad_(True)
    g = torch.autograd.functional.jacobian(lambda v: delay_kernel(v, 6, "smooth", 0.7), dd)
    assert torch.allclose(torch.diagonal(g, dim1=0, dim2=2).t(),
                          delay_kernel_derivative(dd.detach(), 6, 0.7))


def test_delay_line_history_order():
    line = DelayLine(1, 1, 3, torch.float32, "cpu")
    for v in (1.0, 2.0, 3.0, 4.0):
        line.push(torch.tensor([[v]]))
    assert line.history()[0, 0].tolist() == [4.0, 3.0, 2.0]


def test_surrogates_peak_at_threshold():
    v = torch.linspace(-1, 3, 401)
    for kind in ("triangle", "atan", "fast_sigmoid"):
        psi = Surrogate(kind).derivative(v, 1.0)
        assert psi.argmax() == 200 and (psi >= 0).all()
    assert Surrogate("triangle").derivative(torch.tensor([1.0]), 1.0).item() == pytest.approx(0.3)
    assert LIFParameters(tau_m=20.0, dt=10.0).alpha == pytest.approx(math.exp(-0.5))


def test_gradcheck_cli_json(capsys):
    assert main(["gradcheck", "--json", "--hidden", "8", "--steps", "20"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"layers.0.ff.weight", "layers.0.ff.syn_delay", "layers.0.ff.ax_delay"}
    for r in out.values():
        assert r["rel_err"] < 1e-9 and r["cosine"] > 1 - 1e-9


def test_gradcheck_cli_recurrent_reports_approximation(capsys):
    assert main(["gradcheck", "--json", "--recurrent", "--delays", "syn,rec", "--hidden", "8",
                 "--steps", "30", "--mode", "hard"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "layers.0.rec.syn_delay" in out
    assert 0.5 < out["layers.0.rec.weight"]["cosine"] < 1 - 1e-9


def test_gradcheck_cli_bad_settings_one_line_error(capsys):
    assert main(["gradcheck", "--mode", "smooth", "--sigma", "0"]) == 2
    err = capsys.readouterr().err
    assert "sigma" in err and "Traceback" not in err and err.count("\n") == 1
    assert main(["gradcheck", "--max-delay", "-2"]) == 2
    assert main(["gradcheck", "--delays", "rec"]) == 2  # needs --recurrent
