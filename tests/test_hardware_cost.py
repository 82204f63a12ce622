"""Hardware cost (delayprop.export.cost, ``delayprop eval --cost / --weight-bits``,
``delayprop export --report``): quantisation, counts of synapses, delays and buffers, and the
measured synaptic operations and spikes, each against values computed here by plain loops."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from delayprop.baselines.dcls import DCLSConfig, DCLSNet
from delayprop.cli import main
from delayprop.errors import ConfigError
from delayprop.export.cost import (
    _dcls_forward,
    delay_bits,
    group_inputs,
    quantise_network_,
    quantise_tensor,
    synapse_groups,
)
from delayprop.layers import DelayNet, NetConfig


def test_delay_bits():
    assert [delay_bits(m) for m in (0, 1, 2, 3, 4, 24, 25, 31, 32)] == [0, 1, 2, 2, 3, 5, 5, 5, 6]


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_quantise_tensor_is_symmetric_uniform_with_one_scale(bits):
    w = torch.randn(30, 40, generator=torch.Generator().manual_seed(bits))
    q = quantise_tensor(w, bits)
    levels = 2 ** (bits - 1) - 1
    scale = float(w.abs().max()) / levels
    k = q / scale
    assert torch.allclose(k, k.round(), atol=1e-4)
    assert int(k.round().abs().max()) == levels
    assert len(torch.unique(k.round())) <= 2 * levels + 1
    # every weight goes to its nearest level
    assert float((q - w).abs().max()) <= scale / 2 + 1e-6
    if bits == 2:
        assert set(torch.unique(k.round()).tolist()) <= {-1.0, 0.0, 1.0}
    for bad in (1, 0, 33, 2.5, True):
        with pytest.raises(ConfigError, match="weight-bits"):
            quantise_tensor(w, bad)


def small_net(**kw) -> DelayNet:
    cfg = NetConfig(n_in=6, n_hidden=(5,), n_out=3, max_delay=4, tau_m=30.0, weight_scale=3.0,
                    **kw)
    net = DelayNet(cfg).eval()
    with torch.no_grad():
        net.layers[0].ff.weight[0, :2] = 0.0  # two pruned synapses
    return net


def test_counts_and_buffers_against_loops():
    net = small_net(axonal_delays=True, readout_delays=True, readout_max_delay=3)
    groups = {g["name"]: g for g in synapse_groups(net)}
    ff = net.layers[0].ff
    syn = torch.round(ff.syn_delay.detach())
    ax = torch.round(ff.ax_delay.detach())
    g = groups["layers.0.ff"]
    assert g["delay_params"] == 5 * 6 + 6 and g["bits_per_delay"] == 3  # max_delay 4
    assert g["max_delay"] == 8
    W = ff.weight.detach()
    ring = queue = 0
    for i in range(6):
        longest = 0
        for j in range(5):
            if W[j, i] != 0:
                d = int(syn[j, i] + ax[i])
                assert g["delays"][j, i] == d
                ring += d
                longest = max(longest, d)
        queue += longest
    r = groups["readout"]
    assert r["delay_params"] == 15 and r["bits_per_delay"] == 2 and r["max_delay"] == 3
    # the same numbers through the report (slot bits 1 for spikes, input counts up to 3: 2)
    x = torch.tensor([[[3.0, 0, 1, 0, 2, 1]] * 8] * 2)
    rep = _report(net, x)
    row = next(rw for rw in rep["groups"] if rw["name"] == "layers.0.ff")
    assert rep["input_slot_bits"] == 2 and row["slot_bits"] == 2
    assert row["buffer_bits_per_synapse"] == 2 * ring
    assert row["buffer_bits_shared_queue"] == 2 * queue
    assert row["buffer_bits_per_synapse_at_max"] == 2 * 28 * 8
    assert row["synapses"] == 30 and row["nonzero_synapses"] == 28
    assert row["delay_memory_bits"] == 36 * 3


def _report(net, x, bits=()):
    """hardware_cost of ``net`` on input x (B, T, n_in) through a minimal method and
    dataset (what the report uses of them)."""
    from delayprop.data.tensors import SpikeTensorDataset
    from delayprop.export.cost import hardware_cost

    class Model:
        method, loss = "test", "sum"

        def __init__(self, net):
            self.net = net

        def eval_mode(self):
            self.net.eval()

        def train_mode(self):
            self.net.train()

        @torch.no_grad()
        def output(self, xb):
            return self.net(xb)

        def predict(self, y):
            return torch.softmax(y, -1).sum(1).argmax(-1)

        def batch_loss(self, y, t):
            return 0.0

        def count_parameters(self):
            return self.net.count_parameters()

    B = x.shape[0]
    ds = SpikeTensorDataset(x=x.to(torch.uint8), y=torch.zeros(B, dtype=torch.int64),
                            speaker=torch.full((B,), -1), dt=0.01, num_classes=3,
                            class_names=["a", "b", "c"], source="test")
    return hardware_cost(Model(net), ds, weight_bits=bits, batch_size=2, progress=False)


def test_synops_and_spikes_against_loops():
    net = small_net(readout_delays=True)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 3, (5, 30, 6), generator=g).float() * (torch.rand(5, 30, 6,
                                                                          generator=g) < 0.4)
    rep = _report(net, x, bits=(8, 2))
    with torch.no_grad():
        _, (rec,) = net(x, record=True)
    z = rec.z
    W1, W2 = net.layers[0].ff.weight, net.readout.weight
    ops_ff = ops_ro = 0.0
    for b in range(5):
        for t in range(30):
            for i in range(6):
                ops_ff += float(x[b, t, i]) * int((W1[:, i] != 0).sum())
            for j in range(5):
                ops_ro += float(z[b, t, j]) * int((W2[:, j] != 0).sum())
    rows = {r["name"]: r for r in rep["groups"]}
    assert rows["layers.0.ff"]["synops_per_inference"] == pytest.approx(ops_ff / 5)
    assert rows["readout"]["synops_per_inference"] == pytest.approx(ops_ro / 5)
    assert rep["totals"]["synops_per_inference"] == pytest.approx((ops_ff + ops_ro) / 5)
    assert rep["spikes_per_inference"]["layer 0"] == pytest.approx(float(z.sum()) / 5)
    assert rep["totals"]["input_events_per_inference"] == pytest.approx(float(x.sum()) / 5)
    assert rows["layers.0.ff"]["dense_macs_per_inference"] == 30 * 30
    assert rep["latency"]["latency_steps"] >= 2
    assert set(rep["accuracy"]) == {"float32", "8", "2"}
    assert rep["weight_memory_bits"]["8"] == 8 * rep["parameters"]["weights"]
    json.dumps(rep)


def test_quantised_delaynet_and_accuracy_restore():
    net = small_net(recurrent=True)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = (torch.rand(3, 20, 6, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    rep = _report(net, x, bits=(4,))
    for k, v in net.state_dict().items():  # the report leaves the network as it was
        assert torch.equal(v, before[k]), k
    assert "layers.0.rec" in [r["name"] for r in rep["groups"]]
    quantise_network_(net, 4)
    for name in ("layers.0.ff.weight", "layers.0.rec.weight", "readout.weight"):
        w, w0 = net.state_dict()[name], before[name]
        scale = float(w0.abs().max()) / 7
        assert torch.allclose(w / scale, (w / scale).round(), atol=1e-4), name
    assert torch.equal(net.readout.bias, before["readout.bias"])  # biases stay float


def tiny_dcls() -> DCLSNet:
    net = DCLSNet(DCLSConfig(n_in=6, n_hidden=(7, 5), n_out=3, max_delay=5, seed=1))
    with torch.no_grad():  # a trained-looking BatchNorm
        for k, bn in enumerate(net.norms):
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.1, 0.1)
            bn.weight[0] = 0.0 if k == 0 else bn.weight[0]
    return net.eval()


def test_dcls_forward_replica_and_folded_quantisation():
    net = tiny_dcls()
    x = (torch.rand(4, 25, 6, generator=torch.Generator().manual_seed(2)) < 0.4).float() * 2
    seen, y = _dcls_forward(net, x)
    with torch.no_grad():
        np.testing.assert_allclose(y.numpy(), net(x).numpy(), atol=1e-5)
    assert seen[1].shape[0] == 25 + 2  # right padding (L - 1) // 2 per layer
    assert set(group_inputs(net, x)) == {"input", "layer 0", "layer 1"}
    groups = synapse_groups(net)
    assert [g["bits_per_delay"] for g in groups] == [3, 3, 3]  # taps 5: delays 0..4
    assert groups[0]["extra_steps"] == 2 and groups[2]["extra_steps"] == 6
    w0 = [s.weight.detach().clone() for s in net.synapses]
    quantise_network_(net, 3)
    for k, syn in enumerate(net.synapses):
        if k < 2:
            bn = net.norms[k]
            gain = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().unsqueeze(1)
            folded, ref = syn.weight * gain, w0[k] * gain
        else:
            folded, ref = syn.weight.detach(), w0[k]
        scale = float(ref.abs().max()) / 3
        assert torch.allclose(folded / scale, (folded / scale).round(), atol=1e-4), k
        if k == 0:
            assert torch.all(syn.weight[0] == 0)  # a neuron with BatchNorm gain 0


def test_eval_and_export_report_on_a_trained_run(tmp_path, data_dir, capsys):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    rd = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--data-dir", str(data_dir), "--run-dir",
                 str(rd), "-q"]) == 0
    final = json.loads(capsys.readouterr().out)
    assert main(["eval", str(rd), "--weight-bits", "8", "2", "--cost", "--json", "-q"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["accuracy"] == pytest.approx(final["test_acc"])
    assert set(rep["quantised_accuracy"]) == {"8", "2"}
    hw = rep["hardware"]
    assert hw["accuracy"]["float32"] == pytest.approx(final["test_acc"])
    n_out = hw["groups"][-1]["post"]
    assert hw["totals"]["synapses"] == 35 * 6 + 6 * n_out
    assert rep["params"]["weights"] == 35 * 6 + 6 * n_out + n_out  # and the biases
    assert hw["totals"]["delay_params"] == 35 * 6
    out = tmp_path / "hw.json"
    assert main(["export", str(rd), "--report", "--weight-bits", "4", "--report-json", str(out),
                 "-q"]) == 0
    text = capsys.readouterr().out
    assert "synaptic operations" in text and "4-bit weights" in text
    saved = json.loads(out.read_text())
    assert saved["totals"] == pytest.approx(hw["totals"])
    assert main(["export", str(rd), "--weight-bits", "4"]) == 2
    assert "--report" in capsys.readouterr().err
    assert main(["eval", str(rd), "--weight-bits", "1", "-q"]) == 2
    assert "weight-bits" in capsys.readouterr().err
    assert math.isfinite(saved["totals"]["synops_per_inference"])


TINY = """
[model]
n_hidden = [6]
max_delay = 3
tau_m = 30.0
weight_scale = 2.0

[method]
name = "eprop"

[train]
epochs = 1
batch_size = 16
lr = 0.01

[data]
max_time = 0.2
channels = 35
"""
