"""Inference latency (longest delay path + layer steps) and its report by `delayprop eval`."""

from __future__ import annotations

import pytest
import torch

from delayprop.baselines.dcls import DCLSConfig, DCLSNet
from delayprop.errors import ConfigError
from delayprop.latency import network_latency
from delayprop.layers import DelayNet, NetConfig


def test_delaynet_longest_path_follows_connected_synapses():
    net = DelayNet(NetConfig(n_in=3, n_hidden=(2, 2), n_out=2, max_delay=10,
                             synaptic_delays=True, axonal_delays=True, seed=0))
    with torch.no_grad():
        for layer in net.layers:
            layer.ff.syn_delay.zero_()
            layer.ff.ax_delay.zero_()
        net.layers[0].ff.syn_delay[1, 2] = 6.6  # -> 7 steps into hidden-1 neuron 1
        net.layers[0].ff.ax_delay[0] = 2.2  # input 0 -> 2 steps into every hidden-1 neuron
        net.layers[1].ff.syn_delay[0, 1] = 4.0  # hidden-1 neuron 1 -> hidden-2 neuron 0
        net.layers[1].ff.syn_delay[1, 0] = 9.0  # hidden-1 neuron 0 -> hidden-2 neuron 1
    lat = network_latency(net, 10.0)
    # paths: in2 -7-> h1[1] -4-> h2[0] = 11; in0 -2-> h1[0] -9-> h2[1] = 11; in2->h1[1]... max 11
    assert lat["delay_path_steps"] == 11
    assert lat["processing_steps"] == 3  # two hidden layers and the readout
    assert lat["latency_ms"] == pytest.approx(140.0)
    assert lat["delay_path_bound_steps"] == 2 * (10 + 10)
    # a silenced synapse is no path: cut h1[0] -> h2[1]
    with torch.no_grad():
        net.layers[1].ff.weight[1, 0] = 0.0
    assert network_latency(net, 10.0)["delay_path_steps"] == 11  # 7 + 4 is still there
    with torch.no_grad():
        net.layers[1].ff.weight[0, 1] = 0.0
    assert network_latency(net, 10.0)["delay_path_steps"] == 7 + 0  # in2 -> h1[1] -> h2[1]


def test_dcls_latency_uses_rounded_kernel_centres_in_every_layer():
    net = DCLSNet(DCLSConfig(n_in=2, n_hidden=(2,), n_out=2, max_delay=25, seed=0))
    with torch.no_grad():
        for syn in net.synapses:
            syn.P.fill_(12.0)  # centre at the last tap: delay 0
        net.synapses[0].P[1, 0] = -12.0  # delay 24
        net.synapses[1].P[0, 1] = 2.4  # rounds to 2: delay 24 - 14 = 10
    lat = network_latency(net, 10.0)
    assert lat["delay_path_steps"] == 24 + 10
    assert lat["delay_path_bound_steps"] == 48 and lat["processing_steps"] == 2
    assert lat["readout_padding_steps"] == 24
    with pytest.raises(ConfigError):
        network_latency(net, 0.0)


def test_eval_prints_parameters_and_latency(tmp_path, capsys):
    import json

    from delayprop.cli import main

    run = tmp_path / "run"
    assert main(["train", "--dataset", "timing", "--epochs", "1", "--n-hidden", "4",
                 "--run-dir", str(run), "--quiet", "--no-plots"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--json", "-q"]) == 0
    rep = json.loads(capsys.readouterr().out)
    from delayprop.train import load_checkpoint, model_from_checkpoint

    model = model_from_checkpoint(load_checkpoint(run / "best.pt"))
    dt_ms = rep["latency"]["dt_ms"]
    assert rep["latency"] == network_latency(model.net, dt_ms)
    assert rep["params"] == model.count_parameters()
    assert main(["eval", str(run), "-q"]) == 0
    text = capsys.readouterr().out
    assert f"latency {rep['latency']['latency_ms']:g} ms" in text and "parameters " in text
