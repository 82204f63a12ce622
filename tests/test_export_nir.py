"""NIR export (delayprop.export.nir, ``delayprop export``): the exported graph, run by an
interpreter written from NIR's node definitions (tests/nir_interpreter.py, nothing of
delayprop's forward pass), gives delayprop's spikes and readout; export -> from_nir gives the
same network; the released e-prop network on 100 SHD-repro test samples."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")

from nir_interpreter import run as interpret  # noqa: E402

from delayprop.cli import main  # noqa: E402
from delayprop.errors import ConfigError  # noqa: E402
from delayprop.export.nir import read_nir, write_nir  # noqa: E402
from delayprop.layers import DelayNet, NetConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHD_REPRO = ROOT.parent / "shared" / "data" / "shd-repro"
HEADLINE = ROOT / "results" / "models" / "eprop_pub_seed0"

CASES = {
    "subtract": dict(),
    "zero_reset": dict(reset="zero"),
    "axonal": dict(axonal_delays=True),
    "axonal_only": dict(synaptic_delays=False, axonal_delays=True),
    "recurrent": dict(recurrent=True, recurrent_delays=True),
    "recurrent_zero": dict(recurrent=True, reset="zero"),
    "two_layers_readout_delays": dict(n_hidden=(12, 9), readout_delays=True, kappa=0.9),
    "everything": dict(axonal_delays=True, recurrent=True, recurrent_delays=True,
                       readout_delays=True, readout_max_delay=4, kappa=0.5, theta=0.8),
    "no_delays_no_bias": dict(synaptic_delays=False, readout_bias=False, kappa=0.3),
}


def make_net(seed: int = 0, **kw) -> DelayNet:
    kw.setdefault("n_hidden", (10,))
    cfg = NetConfig(n_in=7, n_out=3, max_delay=5, tau_m=30.0, weight_scale=3.0, seed=seed, **kw)
    net = DelayNet(cfg).eval()
    with torch.no_grad():  # non-zero biases, so that the Affine branch is tested
        if net.readout.bias is not None:
            net.readout.bias.copy_(torch.linspace(-0.5, 0.5, cfg.n_out))
    return net


def spike_input(seed: int, B: int = 3, T: int = 40, C: int = 7) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(1, 4, (B, T, C), generator=g).float()
    return counts * (torch.rand(B, T, C, generator=g) < 0.3)


def spike_nodes(graph) -> list[str]:
    return [n for n in graph.nodes if n.endswith((".spikes", ".lif"))]


def reference(net: DelayNet, x: torch.Tensor):
    """delayprop's hard-mode forward in float64 (exact sums): y (B, T, C), spikes per layer."""
    net64 = copy.deepcopy(net).double()
    with torch.no_grad():
        y, recs = net64(x.double(), record=True)
    return y.numpy(), [r.z.numpy() for r in recs]


@pytest.mark.parametrize("case", sorted(CASES))
def test_interpreter_gives_delayprops_spikes_and_readout(case):
    net = make_net(**CASES[case])
    x = spike_input(1)
    graph = net.to_nir(loss="sum")
    names = spike_nodes(graph)
    out = interpret(graph, x.numpy(), record=tuple(names))
    y, zs = reference(net, x)
    assert len(names) == len(zs)
    for name, z in zip(names, zs):
        assert 0.02 < z.mean() < 0.9  # the layers fire, but not all the time
        np.testing.assert_array_equal(out[name], z)
    np.testing.assert_allclose(out["output"], y, rtol=0, atol=1e-9)
    with torch.no_grad():  # and the float32 network delayprop eval runs
        y32 = net(x).numpy()
    np.testing.assert_allclose(out["output"], y32, rtol=0, atol=1e-5 * max(1.0, np.abs(y).max()))


def test_graph_parameters_follow_the_stated_euler_mapping():
    net = make_net(axonal_delays=True, readout_delays=True, kappa=0.9)
    g = net.to_nir()
    dt = 10.0
    assert g.metadata["dt"] == dt and g.metadata["time_unit"] == "ms"
    alpha = math.exp(-dt / 30.0)
    mem = g.nodes["l0.membrane"]
    assert isinstance(mem, nir.LI) and isinstance(g.nodes["l0.spikes"], nir.Threshold)
    np.testing.assert_allclose(mem.tau, dt / (1 - alpha), rtol=1e-15)
    np.testing.assert_allclose(mem.r, 1 / (1 - alpha), rtol=1e-15)
    np.testing.assert_array_equal(mem.v_leak, 0.0)
    np.testing.assert_array_equal(g.nodes["l0.reset"].weight, -np.eye(10, dtype=np.float32))
    ro = g.nodes["readout"]
    np.testing.assert_allclose(ro.tau, dt / 0.1, rtol=1e-12)
    np.testing.assert_allclose(ro.r, 10.0, rtol=1e-12)
    # axonal delays as one Delay node in ms
    ax = torch.round(net.layers[0].ff.ax_delay.detach()).numpy()
    np.testing.assert_array_equal(g.nodes["l0.axonal"].delay, ax * dt)
    # the branches hold every synapse once, at its rounded delay
    ff = net.layers[0].ff
    W = ff.weight.detach().numpy()
    total = ff.rounded_delay().numpy() - ax[None, :]
    rebuilt = np.zeros_like(W)
    for d in np.unique(total):
        w = g.nodes[f"l0.ff.w{int(d)}"].weight
        np.testing.assert_array_equal(w[total == d], W[total == d])
        np.testing.assert_array_equal(w[total != d], 0.0)
        if d:
            np.testing.assert_array_equal(g.nodes[f"l0.ff.delay{int(d)}"].delay, d * dt)
        rebuilt += w
    np.testing.assert_array_equal(rebuilt, W)
    assert isinstance(g.nodes["readout.w0"] if "readout.w0" in g.nodes else
                      g.nodes[next(n for n in g.nodes if n.startswith("readout.w"))], nir.Affine)
    zero = make_net(reset="zero").to_nir()
    lif = zero.nodes["l0.lif"]
    assert isinstance(lif, nir.LIF)
    np.testing.assert_array_equal(lif.v_threshold, 1.0)
    np.testing.assert_array_equal(lif.v_reset, 0.0)


def test_the_interpreter_sees_a_changed_delay_and_reset():
    """The comparison can fail: a graph with one synapse moved to another delay, or the
    reset loop cut, runs differently."""
    net = make_net()
    x = spike_input(2)
    graph = net.to_nir()
    base = interpret(graph, x.numpy())["output"]
    moved = copy.deepcopy(graph)
    ff = sorted(n for n in moved.nodes if n.startswith("l0.ff.w"))
    a, b = moved.nodes[ff[0]].weight, moved.nodes[ff[-1]].weight
    j, i = np.argwhere(a != 0)[0]
    b[j, i], a[j, i] = a[j, i], 0.0
    assert not np.allclose(interpret(moved, x.numpy())["output"], base)
    cut = copy.deepcopy(graph)
    cut.nodes["l0.reset"].weight[:] = 0.0
    assert not np.allclose(interpret(cut, x.numpy())["output"], base)


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_gives_the_same_network(tmp_path, case):
    net = make_net(seed=3, **CASES[case])
    path = tmp_path / "net.nir"
    write_nir(net.to_nir(), path)
    back = DelayNet.from_nir(read_nir(path))
    again = DelayNet.from_nir(path)  # a path works too
    assert back.config == net.config
    x = spike_input(4)
    with torch.no_grad():
        y = net(x)
        assert torch.equal(back(x), y) and torch.equal(again(x), y)
        _, r1 = net(x, record=True)
        _, r2 = back(x, record=True)
    for a, b in zip(r1, r2):
        assert torch.equal(a.z, b.z)
    for (name, s1), (_, s2) in zip(net.synapses(), back.synapses()):
        assert torch.equal(s1.weight, s2.weight), name
        assert torch.equal(s1.rounded_delay(), s2.rounded_delay()), name


def test_from_nir_without_metadata_infers_a_network_with_the_same_outputs():
    net = make_net(seed=5, n_hidden=(8, 6), readout_delays=True, kappa=0.7)
    g = net.to_nir()
    dt = g.metadata["dt"]
    bare = nir.NIRGraph(nodes=g.nodes, edges=g.edges, metadata={})
    with pytest.raises(ConfigError, match="no dt"):
        DelayNet.from_nir(bare)
    back = DelayNet.from_nir(bare, dt=dt)
    assert back.config.tau_m == pytest.approx(30.0, rel=1e-12)
    x = spike_input(6)
    with torch.no_grad():
        np.testing.assert_allclose(back(x).numpy(), net(x).numpy(), rtol=0, atol=1e-5)


def test_from_nir_refuses_what_a_delaynet_cannot_hold():
    net = make_net()
    g = net.to_nir()
    two = copy.deepcopy(g)
    ws = sorted(n for n in two.nodes if n.startswith("l0.ff.w"))
    two.nodes[ws[1]].weight[:] = two.nodes[ws[0]].weight + two.nodes[ws[1]].weight
    with pytest.raises(ConfigError, match="two branches"):
        DelayNet.from_nir(two)
    odd = copy.deepcopy(g)
    d = next(n for n in odd.nodes if n.startswith("l0.ff.delay"))
    odd.nodes[d].delay = odd.nodes[d].delay + 3.0
    with pytest.raises(ConfigError, match="whole multiples of dt"):
        DelayNet.from_nir(odd)


def test_smooth_delays_export_their_rounded_values(capsys):
    net = make_net(seed=7, delay_mode="smooth", sigma=0.7)
    g = net.to_nir()
    assert "rounded values" in capsys.readouterr().err
    assert g.metadata["smooth_delays_rounded"] is True
    hard = copy.deepcopy(net)
    hard.set_delay_mode("hard")
    x = spike_input(8)
    y, _ = reference(hard, x)
    np.testing.assert_allclose(interpret(g, x.numpy())["output"], y, rtol=0, atol=1e-9)
    assert DelayNet.from_nir(g).config.delay_mode == "hard"


def test_export_cli_writes_a_file_nir_reads(tmp_path, data_dir, capsys):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    rd = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--data-dir", str(data_dir), "--run-dir",
                 str(rd), "-q"]) == 0
    capsys.readouterr()
    out = tmp_path / "net.nir"
    assert main(["export", str(rd), str(out), "--format", "nir"]) == 0
    assert "wrote" in capsys.readouterr().out
    g = nir.read(str(out))
    assert g.metadata["dt"] == 10.0 and json.loads(g.metadata["delayprop_config"])["n_in"] == 35
    from delayprop.training.checkpoint import load_checkpoint, model_from_checkpoint

    model = model_from_checkpoint(load_checkpoint(rd / "best.pt"))
    back = DelayNet.from_nir(g)
    x = spike_input(9, C=35, T=20)
    with torch.no_grad():
        assert torch.equal(back(x), model.net.eval()(x))
    # one-line errors
    assert main(["export", str(rd)]) == 2
    assert "nothing to do" in capsys.readouterr().err
    assert main(["export", str(rd), str(tmp_path / "no" / "x.nir")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing"), str(out)]) == 2
    assert "no such run directory" in capsys.readouterr().err


TINY = """
[model]
n_hidden = [6]
max_delay = 3
tau_m = 30.0
weight_scale = 2.0
readout_delays = true
kappa = 0.8

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


def exported_released(folder: Path, out: Path):
    """A released model folder exported by the command line to ``out`` and read back by
    nir.read: (graph, the model, its first 100 SHD-repro test samples (float32))."""
    from delayprop.training.checkpoint import load_checkpoint, model_from_checkpoint
    from delayprop.training.splits import load_splits

    assert main(["export", str(folder), str(out)]) == 0
    graph = nir.read(str(out))
    ckpt = load_checkpoint(folder / "best.pt")
    cfg = json.loads(json.dumps(ckpt["config"]))
    cfg["data"]["data_dir"] = str(SHD_REPRO)
    x = load_splits(cfg, progress=False).test.x[:100].float()
    return graph, model_from_checkpoint(ckpt), x


@pytest.mark.skipif(not (SHD_REPRO / "shd_test.h5.gz").exists() or not HEADLINE.exists(),
                    reason="needs ../shared/data/shd-repro and the released e-prop network")
def test_released_network_on_100_shd_repro_test_samples(tmp_path, monkeypatch):
    """The headline network (140-100-20, synaptic and readout delays, subtractive reset,
    kappa 0.9) exported by the command line, read back by nir.read, run by the interpreter on
    the first 100 SHD-repro test samples: the hidden spikes are identical to delayprop's
    hard-mode forward pass with exact sums, the readout within 1e-5; the round trip gives
    identical outputs."""
    monkeypatch.setenv("DELAYPROP_CACHE", str(tmp_path / "cache"))
    from delayprop.stream import ForwardStream, chunk_spans, default_chunk

    graph, model, x = exported_released(HEADLINE, tmp_path / "eprop.nir")
    net = model.net.eval()
    res = interpret(graph, x.numpy(), record=("l0.spikes", "l0.membrane"))
    y64, (z64,) = reference(net, x)
    assert z64.sum() > 10_000
    np.testing.assert_array_equal(res["l0.spikes"], z64)
    np.testing.assert_allclose(res["output"], y64, rtol=0, atol=1e-5)
    with torch.no_grad():  # float32 with the direct sums: the same spikes
        fwd = ForwardStream(net, method="direct")
        z32 = torch.cat([fwd.step(fwd.chunk_input(x, a, b))[1][0][2].clone()
                         for a, b in chunk_spans(x.shape[1], default_chunk(net, x.shape[1]))])
        y_eval = model.output(x)  # what delayprop eval runs (float32, spectral sums)
    np.testing.assert_array_equal(res["l0.spikes"], z32.transpose(0, 1).numpy())
    # delayprop eval's float32 frequency-domain sums round differently: same predictions
    assert torch.equal(model.predict(torch.as_tensor(res["output"])), model.predict(y_eval))
    back = DelayNet.from_nir(graph)
    with torch.no_grad():
        assert torch.equal(back(x), net(x))


# --------------------------------------------------------------------------------------------
# The DCLS baseline (delayprop.export.nir.dcls_to_nir)

DCLS_RELEASED = ROOT / "results" / "models" / "dcls_pub_seed0"

DCLS_CASES = {
    "one_layer_bn": dict(n_hidden=(10,)),
    "one_layer_no_bn_fixed_readout": dict(n_hidden=(10,), batchnorm=False,
                                          readout_delays=False, right_padding=3),
    "two_layers_bn": dict(n_hidden=(9, 8), theta=0.8),
    "two_layers_no_bn": dict(n_hidden=(9, 8), batchnorm=False, tau_m=1.005),
}


def make_dcls(seed: int = 0, **kw):
    """A small DCLS network (5 taps: delays 0..4, right padding 2) with BatchNorm running
    statistics and affine parameters set by hand (so that the folding is exercised)."""
    from delayprop.baselines.dcls import DCLSConfig, DCLSNet

    kw.setdefault("tau_m", 2.0)
    net = DCLSNet(DCLSConfig(n_in=7, n_out=3, max_delay=5, seed=seed, **kw))
    g = torch.Generator().manual_seed(100 + seed)
    with torch.no_grad():
        for norm in net.norms:
            if isinstance(norm, torch.nn.BatchNorm1d):
                norm.running_mean.uniform_(-0.4, 0.4, generator=g)
                norm.running_var.uniform_(0.3, 2.0, generator=g)
                norm.weight.uniform_(0.5, 1.5, generator=g)
                norm.bias.uniform_(-0.3, 0.3, generator=g)
    return net.eval()


def pad_steps(x: torch.Tensor, steps: int) -> torch.Tensor:
    return torch.cat([x, x.new_zeros(x.shape[0], steps, x.shape[2])], 1)


def dcls_reference(net, x: torch.Tensor, extra: int = 0):
    """DCLSNet in evaluation and float64 on x followed by ``extra`` zero steps: (y (B, T', C),
    [hidden spikes (B, T_l, n_l) per layer]); the spikes recorded by running the layers with
    the module's own functions, checked against the network's forward pass."""
    from delayprop.baselines.dcls import lif_sequence_tm
    from delayprop.blocks import leaky_filter_tm

    net64 = copy.deepcopy(net).double().eval()
    xp = pad_steps(x.double(), extra)
    zs = []
    with torch.no_grad():
        h = xp.transpose(0, 1)
        for syn, norm in zip(net64.synapses[:-1], net64.norms):
            current = syn.currents_tm(h)
            T, B, N = current.shape
            h = lif_sequence_tm(norm(current.reshape(T * B, N)).view(T, B, N), net64.lif)
            zs.append(h.transpose(0, 1).numpy())
        y = net64(xp)
        mine, _ = leaky_filter_tm(net64.synapses[-1].currents_tm(h), net64.decay)
    np.testing.assert_allclose(mine.transpose(0, 1).numpy(), y.numpy(), rtol=0, atol=1e-12)
    return y.numpy(), zs


@pytest.mark.parametrize("case", sorted(DCLS_CASES))
def test_dcls_interpreter_gives_dcls_spikes_and_readout(case):
    """Run on the input followed by (n + 1) r zero steps, the graph gives DCLSNet (eval,
    float64) on the input followed by n r zero steps: identical hidden spikes, readout within
    1e-9; and DCLSNet on the input itself on its first T + r output steps."""
    from delayprop.export.nir import dcls_to_nir

    net = make_dcls(**DCLS_CASES[case])
    n, r = len(net.cfg.n_hidden), net.cfg.right_padding
    x = spike_input(11, T=30)
    T = x.shape[1]
    graph = dcls_to_nir(net)
    extra = graph.metadata["extra_steps"]
    assert extra == (n + 1) * r
    names = [f"l{k}.lif" for k in range(n)]
    out = interpret(graph, pad_steps(x, extra).numpy(), record=tuple(names))
    y, zs = dcls_reference(net, x, extra=n * r)
    steps = T + extra
    assert out["output"].shape[1] == steps
    for name, z in zip(names, zs):
        assert z.shape[1] >= steps
        assert 0.02 < z[:, :steps].mean() < 0.9  # the layers fire, but not all the time
        np.testing.assert_array_equal(out[name], z[:, :steps])
    np.testing.assert_allclose(out["output"], y[:, :steps], rtol=0, atol=1e-9)
    # DCLSNet on the input itself: same length, the same on the first T + r steps
    y0, z0 = dcls_reference(net, x)
    assert y0.shape[1] == steps
    np.testing.assert_allclose(out["output"][:, :T + r], y0[:, :T + r], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(out["l0.lif"][:, :T + r], z0[0])
    # and the float32 network delayprop evaluates
    with torch.no_grad():
        y32 = net(pad_steps(x, n * r)).numpy()[:, :steps]
    np.testing.assert_allclose(out["output"], y32, rtol=0, atol=1e-5 * max(1.0, np.abs(y).max()))


def test_dcls_graph_parameters_fold_batchnorm_exactly():
    from delayprop.baselines.dcls import DCLSConfig
    from delayprop.export.nir import dcls_to_nir

    net = make_dcls(n_hidden=(9, 8))
    g = dcls_to_nir(net, name="tiny", dt=4.0)
    md = g.metadata
    assert md["dt"] == 4.0 and md["time_unit"] == "ms" and md["model"] == "DCLSNet"
    assert md["reset"] == "zero" and md["extra_steps"] == 6 and "softmax" in md["classification"]
    assert DCLSConfig(**json.loads(md["dcls_config"])) == net.cfg
    decay = 1 - 1 / 2.0
    for k in range(2):
        lif = g.nodes[f"l{k}.lif"]
        assert isinstance(lif, nir.LIF)
        np.testing.assert_allclose(lif.tau, 4.0 * 2.0, rtol=1e-15)  # dt tau_m
        np.testing.assert_allclose(lif.r, 1 / (1 - decay), rtol=1e-15)
        np.testing.assert_array_equal(lif.v_threshold, 1.0)
        np.testing.assert_array_equal(lif.v_reset, 0.0)
        np.testing.assert_array_equal(lif.v_leak, 0.0)
        syn, bn = net.synapses[k], net.norms[k]
        s = (bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)).detach().numpy()
        c = bn.bias.detach().double().numpy() - s * bn.running_mean.double().numpy()
        W = syn.weight.detach().double().numpy() / (1 + 1e-7)
        d = syn.rounded_delays().numpy().astype(int)
        rebuilt, biases = np.zeros_like(W), []
        for v in np.unique(d):
            node = g.nodes[f"l{k}.ff.w{v}"]
            w = np.asarray(node.weight)
            assert w.dtype == np.float64
            np.testing.assert_array_equal(w[d != v], 0.0)
            if v:
                np.testing.assert_array_equal(g.nodes[f"l{k}.ff.delay{v}"].delay, v * 4.0)
            if isinstance(node, nir.Affine):
                biases.append(np.asarray(node.bias))
            rebuilt += w
        np.testing.assert_allclose(rebuilt, s[:, None] * W, rtol=1e-15, atol=0)
        assert len(biases) == 1  # one Affine per layer: the BatchNorm shift
        np.testing.assert_allclose(biases[0], c, rtol=1e-15, atol=1e-16)
    ro = g.nodes["readout"]
    assert isinstance(ro, nir.LI)
    np.testing.assert_allclose(ro.tau, 8.0, rtol=1e-15)
    assert not any(isinstance(g.nodes[m], nir.Affine) for m in g.nodes if m.startswith("readout"))
    plain = dcls_to_nir(make_dcls(n_hidden=(4,), batchnorm=False))
    assert not any(isinstance(v, nir.Affine) for v in plain.nodes.values())
    assert plain.metadata["dt"] == 10.0


def test_dcls_export_uses_evaluation_semantics_in_training_mode():
    from delayprop.baselines.dcls import DCLSConfig, DCLSNet
    from delayprop.export.nir import dcls_to_nir

    net = make_dcls(n_hidden=(6,))
    ref = dcls_to_nir(net)
    net.train()
    net.set_sigma(3.0)  # the Gaussian kernels of training
    g = dcls_to_nir(net)
    assert net.training and net.norms[0].training  # the module is left as it was
    assert set(g.nodes) == set(ref.nodes)
    for k, node in g.nodes.items():
        for key, value in node.__dict__.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(value, getattr(ref.nodes[k], key), err_msg=k)
    # readout_delays = false: the readout is a single delay-0 branch
    fixed = dcls_to_nir(DCLSNet(DCLSConfig(n_in=5, n_hidden=(4,), n_out=2, max_delay=5,
                                           readout_delays=False)).train())
    assert [m for m in fixed.nodes if m.startswith("readout.")] == ["readout.w0"]


def test_dcls_the_interpreter_sees_the_folded_bias_and_a_moved_delay():
    from delayprop.export.nir import dcls_to_nir

    net = make_dcls(n_hidden=(9, 8))
    x = spike_input(12, T=25)
    graph = dcls_to_nir(net)
    xp = pad_steps(x, graph.metadata["extra_steps"]).numpy()
    base = interpret(graph, xp)["output"]
    nobias = copy.deepcopy(graph)
    for node in nobias.nodes.values():
        if isinstance(node, nir.Affine):
            node.bias[:] = 0.0
    assert not np.allclose(interpret(nobias, xp)["output"], base, rtol=0, atol=1e-6)
    moved = copy.deepcopy(graph)  # the strongest synapse of one readout branch to another
    ro = sorted(m for m in moved.nodes if m.startswith("readout.w"))
    a, b = moved.nodes[ro[0]].weight, moved.nodes[ro[-1]].weight
    j, i = np.unravel_index(np.argmax(np.abs(a)), a.shape)
    b[j, i], a[j, i] = a[j, i], 0.0
    assert not np.allclose(interpret(moved, xp)["output"], base, rtol=0, atol=1e-6)


def test_dcls_written_file_reads_back(tmp_path):
    from delayprop.export.nir import dcls_to_nir

    net = make_dcls(n_hidden=(9, 8))
    graph = dcls_to_nir(net, name="tiny")
    path = tmp_path / "dcls.nir"
    write_nir(graph, path)
    back = nir.read(str(path))
    assert set(back.nodes) == set(graph.nodes) and len(back.edges) == len(graph.edges)
    assert back.metadata["model"] == "DCLSNet" and back.metadata["extra_steps"] == 6
    x = pad_steps(spike_input(13, T=20), 6).numpy()
    np.testing.assert_array_equal(interpret(back, x)["output"], interpret(graph, x)["output"])
    with pytest.raises(ConfigError, match="DCLS network"):
        DelayNet.from_nir(back)


def test_dcls_export_refuses_what_it_cannot_write():
    from delayprop.baselines.dcls import DCLSConfig, DCLSNet
    from delayprop.export.nir import dcls_to_nir

    with pytest.raises(ConfigError, match="exports a DCLSNet"):
        dcls_to_nir(make_net())
    with pytest.raises(ConfigError, match="dt"):
        dcls_to_nir(make_dcls(n_hidden=(4,)), dt=0.0)
    bad = make_dcls(n_hidden=(4,))
    with torch.no_grad():
        bad.synapses[1].weight[0, 0] = float("nan")
    with pytest.raises(ConfigError, match=r"synapses\.1\.weight has non-finite"):
        dcls_to_nir(bad)
    bad = make_dcls(n_hidden=(4,))
    with torch.no_grad():
        bad.synapses[0].P[0, 0] = float("inf")
    with pytest.raises(ConfigError, match=r"synapses\.0\.P has non-finite"):
        dcls_to_nir(bad)
    bad = make_dcls(n_hidden=(4,))
    bad.norms[0].running_var[1] = float("nan")
    with pytest.raises(ConfigError, match=r"norms\.0\.running_var has non-finite"):
        dcls_to_nir(bad)
    bad = DCLSNet(DCLSConfig(n_in=5, n_hidden=(4,), n_out=2, max_delay=3))
    bad.norms[0] = torch.nn.BatchNorm1d(4, track_running_stats=False)
    with pytest.raises(ConfigError, match="running statistics"):
        dcls_to_nir(bad)
    with pytest.raises(ConfigError) as info:
        dcls_to_nir(make_dcls(n_hidden=(4,)), dt=float("nan"))
    assert "\n" not in str(info.value)


def test_export_cli_writes_a_dcls_graph(tmp_path, capsys):
    from delayprop.training.checkpoint import load_checkpoint, model_from_checkpoint

    rd = tmp_path / "run"
    assert main(["train", "--dataset", "timing", "--method", "dcls", "--epochs", "1",
                 "--n-hidden", "5", "--max-delay", "5", "--run-dir", str(rd), "--quiet",
                 "--no-plots"]) == 0
    capsys.readouterr()
    out = tmp_path / "dcls.nir"
    assert main(["export", str(rd), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and "followed by 4 zero steps" in printed
    g = nir.read(str(out))
    assert g.metadata["model"] == "DCLSNet" and g.metadata["dt"] == 10.0
    assert json.loads(g.metadata["dcls_config"])["n_hidden"] == [5]
    net = model_from_checkpoint(load_checkpoint(rd / "best.pt")).net
    x = spike_input(14, C=net.cfg.n_in, T=20)
    y, (z,) = dcls_reference(net, x, extra=2)
    res = interpret(g, pad_steps(x, 4).numpy(), record=("l0.lif",))
    np.testing.assert_array_equal(res["l0.lif"], z[:, :24])
    np.testing.assert_allclose(res["output"], y[:, :24], rtol=0, atol=1e-9)


@pytest.mark.skipif(not (SHD_REPRO / "shd_test.h5.gz").exists() or not DCLS_RELEASED.exists(),
                    reason="needs ../shared/data/shd-repro and the released DCLS network")
def test_released_dcls_network_on_100_shd_repro_test_samples(tmp_path, monkeypatch):
    """The released DCLS network (140-256-256-20, BatchNorm, 25 taps, right padding 12)
    exported by the command line, read back by nir.read, run by the interpreter on the first
    100 SHD-repro test samples followed by 36 zero steps: both hidden layers' spikes are
    identical to DCLSNet's (float64, evaluation) on the samples followed by 24 zero steps, the
    readout within 1e-5; against DCLSNet on the samples themselves (what delayprop eval runs)
    the readout agrees on the first T + 12 steps and the predictions are the same."""
    monkeypatch.setenv("DELAYPROP_CACHE", str(tmp_path / "cache"))
    from delayprop.baselines.dcls import dcls_predict

    graph, model, x = exported_released(DCLS_RELEASED, tmp_path / "dcls.nir")
    net = model.net.eval()
    assert graph.metadata["extra_steps"] == 36 and graph.metadata["dt"] == 10.0
    T = x.shape[1]
    res = interpret(graph, pad_steps(x, 36).numpy(), record=("l0.lif", "l1.lif"))
    y64, zs = dcls_reference(net, x, extra=24)
    for k, z in enumerate(zs):
        assert z[:, :T + 36].sum() > 100_000
        np.testing.assert_array_equal(res[f"l{k}.lif"], z[:, :T + 36])
    np.testing.assert_allclose(res["output"], y64[:, :T + 36], rtol=0, atol=1e-5)
    with torch.no_grad():
        y_eval = net(x)  # float32, the input itself
    np.testing.assert_allclose(res["output"][:, :T + 12], y_eval[:, :T + 12].numpy(), rtol=0,
                               atol=1e-3)
    assert torch.equal(dcls_predict(torch.as_tensor(res["output"])), dcls_predict(y_eval))
