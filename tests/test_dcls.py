"""The DCLS baseline: kernels against the `dcls` package, sigma schedule, eval rounding, shapes."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from delayprop.baselines.dcls import (
    NORM_EPS,
    DCLSConfig,
    DCLSNet,
    DCLSSynapses,
    dcls_loss,
    dcls_predict,
    epoch_begin,
    flipped_gauss_kernel,
    gauss_kernel,
    make_optimizers,
    sigma_at,
)
from delayprop.errors import ConfigError

L = 25


def _small_cfg(**kw) -> DCLSConfig:
    base = dict(n_in=6, n_hidden=(5, 4), n_out=3, max_delay=L, dropout=0.0, seed=1)
    base.update(kw)
    return DCLSConfig(**base)


def _paired_dcls1d(n_in: int, n_out: int, sig: float, seed: int = 0):
    """A Dcls1d (gauss) and a DCLSSynapses with the same weights, positions and SIG, float64."""
    modules = pytest.importorskip("DCLS.construct.modules")  # the `dcls` extra
    torch.manual_seed(seed)
    ref = modules.Dcls1d(n_in, n_out, kernel_count=1, dilated_kernel_size=L, bias=False,
                         version="gauss").double()
    syn = DCLSSynapses(n_in, n_out, L, sig, (L - 1) // 2).double()
    with torch.no_grad():
        pos = syn.P.clone()
        pos[0, 0], pos[0, 1] = -(L // 2), L // 2  # both ends of the range
        pos[1, 0] = 0.5  # a half-tap position
        syn.P.copy_(pos)
        syn.SIG.fill_(sig)
        ref.weight.copy_(syn.weight.unsqueeze(-1))
        ref.P.copy_(pos[None, :, :, None])
        ref.SIG.fill_(sig)
    return ref, syn


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).abs().max() / b.abs().max()).detach())


@pytest.mark.parametrize("sig", [12.0, 3.7, 1.0, 0.23, 0.0])
def test_kernel_matches_dcls1d_gauss(sig):
    ref, syn = _paired_dcls1d(7, 5, sig)
    k_ref = ref.DCK(ref.weight, ref.P, ref.SIG)  # (out, in, taps)
    k = syn.kernel()
    assert k.shape == k_ref.shape == (5, 7, L)
    assert _rel(k, k_ref) < 1e-9
    # also the free function on plain tensors
    assert _rel(gauss_kernel(syn.weight, syn.P, sig, L), k_ref) < 1e-9


@pytest.mark.parametrize("sig", [12.0, 0.23, 0.0])
def test_flipped_kernel_node_matches_autograd_through_gauss_kernel(sig):
    """The one-node kernel of the fast layer (values, layout, both gradients) against the
    plain formula flipped, float64; torch.autograd.gradcheck on its backward."""
    g = torch.Generator().manual_seed(4)
    w = torch.randn(5, 7, dtype=torch.float64, generator=g).requires_grad_()
    p = (torch.rand(5, 7, dtype=torch.float64, generator=g) * 24 - 12).requires_grad_()
    sig_t = torch.tensor(sig, dtype=torch.float64)
    k = flipped_gauss_kernel(w, p, sig_t, L)
    ref = gauss_kernel(w, p, sig_t, L).flip(-1)
    assert k.shape == ref.shape == (5, 7, L) and _rel(k, ref) < 1e-13
    assert k.permute(2, 1, 0).is_contiguous()  # what kernel_spectrum reads without a copy
    grad = torch.randn(5, 7, L, dtype=torch.float64, generator=g)
    ga = torch.autograd.grad((k * grad).sum(), (w, p))
    gb = torch.autograd.grad((ref * grad).sum(), (w, p))
    for a, b in zip(ga, gb):
        assert _rel(a, b) < 1e-12
    assert torch.autograd.gradcheck(lambda a, b: flipped_gauss_kernel(a, b, sig, L), (w, p))


@pytest.mark.parametrize("sig", [12.0, 0.23])
def test_layer_output_and_gradients_match_dcls1d(sig):
    ref, syn = _paired_dcls1d(7, 5, sig, seed=3)
    x = torch.rand(3, 40, 7, dtype=torch.float64)
    # SNN-delays pads (B, C, T) left by L-1 and right by (L-1)//2 before the Dcls1d
    out_ref = ref(F.pad(x.transpose(1, 2), (L - 1, (L - 1) // 2))).transpose(1, 2)
    out = syn(x)
    assert out.shape == (3, 40 + (L - 1) // 2, 5)
    assert _rel(out, out_ref) < 1e-9
    g = torch.randn_like(out)
    (out_ref * g).sum().backward()
    (out * g).sum().backward()
    assert _rel(syn.weight.grad, ref.weight.grad[..., 0]) < 1e-9
    assert _rel(syn.P.grad, ref.P.grad[0, ..., 0]) < 1e-9


def test_tap_k_is_a_delay_of_L_minus_1_minus_k():
    syn = DCLSSynapses(1, 1, L, 0.0, 0).double().eval()
    with torch.no_grad():
        syn.weight.fill_(2.0)
        syn.P.fill_(-5.0)  # centre tap 7 -> delay 17
    x = torch.zeros(1, 40, 1, dtype=torch.float64)
    x[0, 3, 0] = 1.0
    out = syn(x)[0, :, 0]
    assert syn.delays().item() == 17
    assert out[3 + 17].item() == pytest.approx(2.0 / (1 + NORM_EPS), rel=1e-15)
    assert out.abs().sum().item() == pytest.approx(out[20].item(), rel=1e-15)


def test_eval_rounds_positions_train_uses_gaussian():
    net = DCLSNet(_small_cfg()).double()
    syn = net.synapses[0]
    with torch.no_grad():
        syn.P[0, 0] = 2.4
        syn.P[0, 1] = -3.6
    epoch_begin(net, 0, 8)  # sigma = 12: wide kernels in training
    k_train = syn.kernel()
    assert (k_train[0, 0] != 0).sum() == L
    net.eval()
    k_eval = syn.kernel()
    nonzero = (k_eval != 0).sum(-1)
    assert bool((nonzero == 1).all())
    assert k_eval[0, 0].abs().argmax().item() == 2 + L // 2
    assert k_eval[0, 1].abs().argmax().item() == -4 + L // 2
    w = syn.weight.detach()
    assert torch.allclose(k_eval.sum(-1), w / (1 + NORM_EPS), rtol=1e-15, atol=0)
    # positions themselves are not changed by evaluating
    assert syn.P[0, 0].item() == pytest.approx(2.4)


def test_sigma_schedule_matches_snn_delays_recurrence():
    epochs, s0, s_end = 150, 12.0, 0.23
    final = epochs // 4
    alpha = (s_end / s0) ** (1 / final)
    sig, expected = s0, []
    for e in range(epochs):  # SNN-delays: train epoch e with sig, then decrease_sig(e)
        expected.append(sig)
        if e < final and sig > s_end:
            sig *= alpha
    got = [sigma_at(e, epochs, s0, s_end) for e in range(epochs)]
    assert got[0] == s0
    assert got[final] == pytest.approx(s_end, rel=1e-12)
    assert all(g == got[final] for g in got[final:])
    assert all(a > b for a, b in zip(got[:final], got[1:final + 1]))
    for g, x in zip(got, expected):
        assert g == pytest.approx(x, rel=1e-9)


def test_epoch_begin_sets_every_layer():
    net = DCLSNet(_small_cfg())
    sig = epoch_begin(net, 1, 8)  # F = 2: halfway through the decay
    assert sig == pytest.approx(math.sqrt(12.0 * 0.23))
    assert all(float(s.SIG) == pytest.approx(sig) for s in net.synapses)
    assert epoch_begin(net, 7, 8) == pytest.approx(0.23)
    assert sigma_at(0, 3, 12.0, 0.23) == 0.23  # fewer than 4 epochs: no decay phase
    with pytest.raises(ConfigError):
        sigma_at(-1, 8, 12.0, 0.23)


def test_shapes_loss_predict_and_parameter_count():
    cfg = _small_cfg()
    net = DCLSNet(cfg)
    x = (torch.rand(4, 30, 6) < 0.3).float()
    y = net(x)
    assert y.shape == (4, 30 + 3 * cfg.right_padding, 3)
    target = torch.tensor([0, 1, 2, 0])
    m = torch.softmax(y, -1).sum(1)
    assert dcls_loss(y, target).item() == pytest.approx(F.cross_entropy(m, target).item())
    assert torch.equal(dcls_predict(y), m.argmax(-1))
    full = DCLSNet(DCLSConfig()).count_parameters()
    syn = 140 * 256 + 256 * 256 + 256 * 20
    assert full == {"weights": syn + 4 * 256, "delays": syn, "total": 2 * syn + 4 * 256}


def test_readout_without_delays_is_a_weight_matrix():
    """readout_delays=False: the readout is W h[t] (delay 0) in training and evaluation, its
    positions are neither counted, nor learned, nor moved by the optimiser; the hidden layers
    keep their Gaussian delays."""
    cfg = _small_cfg(n_hidden=(5,), batchnorm=False, readout_delays=False)
    net = DCLSNet(cfg).double()
    out = net.synapses[-1]
    assert not out.learn_delays and not out.P.requires_grad
    assert float(out.rounded_delays().abs().max()) == 0.0
    h = (torch.rand(3, 20, 5, dtype=torch.float64) < 0.4).double()
    for training in (True, False):
        out.train(training)
        current = out(h)[:, :20]
        assert _rel(current, h @ out.weight.t() / (1 + NORM_EPS)) < 1e-12
        assert float(out(h)[:, 20:].abs().max()) < 1e-12  # the padding steps: no late input
    assert net.count_parameters()["delays"] == 6 * 5
    net.train()
    opts, _ = make_optimizers(net, {"lr_w": 1e-3}, 2, 2)
    assert all(p is not out.P for g in opts[1].param_groups for p in g["params"])
    before = out.P.detach().clone()
    x, target = (torch.rand(2, 15, 6) < 0.3).double(), torch.tensor([0, 2])
    net.set_sigma(3.0)
    dcls_loss(net(x), target).backward()
    assert out.P.grad is None and net.synapses[0].P.grad.abs().sum() > 0
    for o in opts:
        o.step()
    assert torch.equal(out.P.detach(), before)
    with pytest.raises(ConfigError, match="readout_delays"):
        _small_cfg(readout_delays="no")


def test_hidden_layers_spike_and_reset_to_zero():
    net = DCLSNet(_small_cfg(n_hidden=(5,), batchnorm=False)).double()
    x = torch.ones(2, 20, 6, dtype=torch.float64)
    with torch.no_grad():
        net.synapses[0].weight.fill_(1.0)
    current = net.synapses[0](x)
    v, z, decay = torch.zeros(2, 5, dtype=x.dtype), torch.zeros(2, 5, dtype=x.dtype), 1 - 1 / 1.005
    spikes = []
    for t in range(current.shape[1]):
        v = decay * v * (1 - z) + current[:, t]
        z = (v >= 1.0).to(x.dtype)
        spikes.append(z)
    from delayprop.baselines.dcls import _lif_sequence

    assert torch.equal(_lif_sequence(current, net.lif), torch.stack(spikes, 1))
    assert torch.stack(spikes).sum() > 0


def test_optimizers_and_schedules():
    net = DCLSNet(_small_cfg())
    opts, scheds = make_optimizers(net, {"lr_w": 1e-3, "max_lr_w": 5e-3}, 3, 4)
    opt_w, opt_p = opts
    assert opt_w.param_groups[0]["weight_decay"] == 1e-5
    assert opt_w.param_groups[1]["weight_decay"] == 0.0  # BatchNorm
    assert opt_p.param_groups[0]["lr"] == pytest.approx(0.1)
    assert opt_w.param_groups[0]["lr"] == pytest.approx(5e-3 / 25)  # one-cycle start
    x, target = (torch.rand(2, 10, 6) < 0.3).float(), torch.tensor([0, 2])
    peak = 0.0
    for _ in range(12):
        for o in opts:
            o.zero_grad()
        dcls_loss(net(x), target).backward()
        for o in opts:
            o.step()
        for s in scheds:
            s.step()
        net.clamp_delays_()
        peak = max(peak, opt_w.param_groups[0]["lr"])
    assert peak == pytest.approx(5e-3, rel=0.2)
    assert opt_p.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert all(bool((s.P.abs() <= L // 2).all()) for s in net.synapses)
    with pytest.raises(ConfigError):
        make_optimizers(net, {}, 0, 4)


def test_clamp_delays_keeps_positions_in_range():
    net = DCLSNet(_small_cfg())
    with torch.no_grad():
        net.synapses[1].P.fill_(40.0)
    net.clamp_delays_()
    assert float(net.synapses[1].P.detach().max()) == L // 2
    assert float(net.synapses[1].delays().min()) == 0.0


@pytest.mark.parametrize(
    "bad",
    [dict(max_delay=24), dict(max_delay=0), dict(tau_m=1.0), dict(sigma0=-1.0),
     dict(sigma_end=20.0), dict(dropout=1.0), dict(n_hidden=()), dict(n_in=0),
     dict(right_padding=-1)],
)
def test_bad_config_raises(bad):
    with pytest.raises(ConfigError):
        _small_cfg(**bad)


def test_wrong_input_shape_raises():
    net = DCLSNet(_small_cfg())
    with pytest.raises(ConfigError, match=r"\(B, T, 6\)"):
        net(torch.zeros(2, 10, 7))
    with pytest.raises(ConfigError):
        dcls_loss(torch.zeros(2, 3), torch.tensor([0, 1]))


def test_optimizer_settings_read_both_layouts():
    from delayprop.baselines.dcls import optimizer_settings

    snn_delays = {"lr_w": 1e-3, "max_lr_w": 5e-3, "lr_pos_factor": 100.0, "weight_decay": 1e-5}
    loop = {"lr": 1e-3, "delay_lr": 0.1, "weight_decay": 1e-5, "optimizer": "adam"}
    want = {"lr_w": 1e-3, "max_lr_w": 5e-3, "lr_pos": 0.1, "weight_decay": 1e-5}
    for cfg in (snn_delays, loop, {}):
        got = optimizer_settings(cfg)
        assert got == pytest.approx(want)
    with pytest.raises(ConfigError):
        optimizer_settings({"lr": -1.0})
    with pytest.raises(ConfigError):
        optimizer_settings({"lr_w": 1e-3, "max_lr_w": 1e-4})


def test_config_file_and_bad_settings_through_the_training_loop():
    from pathlib import Path

    from delayprop.train import load_config, resolve_config

    root = Path(__file__).resolve().parents[1]
    cfg = resolve_config(load_config(root / "configs" / "dcls_shd.toml"))
    assert cfg["method"]["name"] == "dcls" and cfg["model"]["max_delay"] == 25
    base = {"method": {"name": "dcls"}}
    for bad, words in [({"model": {"max_delay": 24}}, "max_delay"),
                       ({"model": {"n_hiden": [4]}}, "n_hiden"),
                       ({"method": {"name": "dcls", "loss": "mean"}}, "loss")]:
        with pytest.raises(ConfigError, match=words):
            resolve_config({**base, **bad})


def _conv_reference(net: DCLSNet, x: torch.Tensor) -> torch.Tensor:
    """DCLSNet's forward written batch-major around F.conv1d, as SNN-delays computes it."""
    from delayprop.baselines.dcls import _lif_sequence

    h = x
    for syn, norm in zip(net.synapses[:-1], net.norms):
        h = _lif_sequence(norm(syn.forward_conv(h).transpose(1, 2)).transpose(1, 2), net.lif)
    current = net.synapses[-1].forward_conv(h)
    y, out = torch.zeros_like(current[:, 0]), []
    for t in range(current.shape[1]):
        y = net.decay * y + current[:, t]
        out.append(y)
    return torch.stack(out, 1)


@pytest.mark.parametrize("training", [True, False])
def test_spectral_layer_matches_the_convolution(training):
    """The fast (frequency-domain) layer against F.conv1d: outputs and gradients, float64."""
    torch.manual_seed(0)
    syn = DCLSSynapses(7, 5, L, 3.0, (L - 1) // 2).double().train(training)
    x = torch.rand(3, 61, 7, dtype=torch.float64)
    out, ref = syn(x), syn.forward_conv(x)
    assert out.shape == ref.shape == (3, 61 + 12, 5)
    assert _rel(out, ref) < 1e-12
    if training:
        g = torch.randn_like(out)
        gw, gp = torch.autograd.grad((out * g).sum(), (syn.weight, syn.P))
        rw, rp = torch.autograd.grad((ref * g).sum(), (syn.weight, syn.P))
        assert _rel(gw, rw) < 1e-12 and _rel(gp, rp) < 1e-12


def test_network_matches_the_convolution_reference():
    """Whole network (time-major, spectral) against the batch-major conv1d reference: outputs
    in training and evaluation mode and all parameter gradients, float64, no dropout."""
    net = DCLSNet(_small_cfg(n_hidden=(9, 8))).double()
    epoch_begin(net, 0, 8)
    x = (torch.rand(4, 37, 6, generator=torch.Generator().manual_seed(2)) < 0.3).double()
    with torch.no_grad():
        for syn in net.synapses:
            syn.weight.mul_(3.0)  # enough drive for spikes in both hidden layers
    y = net(x)
    y_ref = _conv_reference(net, x)
    assert _rel(y, y_ref) < 1e-10
    params = [p for p in net.parameters()]
    g = torch.autograd.grad(dcls_loss(y, torch.tensor([0, 1, 2, 0])), params)
    g_ref = torch.autograd.grad(dcls_loss(y_ref, torch.tensor([0, 1, 2, 0])), params)
    for a, b in zip(g, g_ref):
        assert _rel(a, b) < 1e-9
    net.eval()
    with torch.no_grad():
        assert _rel(net(x), _conv_reference(net, x)) < 1e-10


def test_dcls_trains_through_delayprop_train(tmp_path):
    """The training loop runs the baseline: SNN-delays' selection (no best.pt before epoch
    epochs // 4 - 1), resume after a kill, final test."""
    import json

    from delayprop.data import SpikeTensorDataset
    from delayprop.train import resolve_config, split_datasets, train

    g = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 3
    x = (torch.rand(64, 12, 6, generator=g) < 0.1).to(torch.uint8)
    for i in range(64):
        x[i, 2 + int(y[i]), int(y[i])] = 3
    ds = SpikeTensorDataset(x=x, y=y, speaker=torch.arange(64) % 4, dt=0.01, num_classes=3,
                            class_names=["a", "b", "c"], source="toy")
    cfg = resolve_config({
        "method": {"name": "dcls"},
        "model": {"n_hidden": [8], "max_delay": 5, "sigma0": 2.0, "dropout": 0.0},
        "train": {"epochs": 8, "batch_size": 16, "lr": 1e-2, "delay_lr": 0.5},
        "data": {"val_fraction": 0.25},
    })
    splits = split_datasets(cfg, ds, ds.subset(torch.arange(20)))
    run = tmp_path / "run"
    assert train(cfg, run, splits=splits, progress=False, plots=False,
                 stop_after=3) == {"stopped_at": 3}
    final = train(cfg, run, resume=True, splits=splits, progress=False, plots=False)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, 9))
    assert rows[0]["sigma"] == 2.0 and rows[-1]["sigma"] == pytest.approx(0.23)
    assert final["best_epoch"] >= 2  # epoch index >= 8 // 4 - 1
    best = max(rows[1:], key=lambda r: (r["val_acc"], -r["val_loss"]))
    assert final["best_epoch"] == best["epoch"]
    assert 0.0 <= final["test_acc"] <= 1.0


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fused_lif_matches_the_autograd_loop(dtype):
    """FusedLIF (one autograd node) against lif_step under autograd: spikes and input
    gradients, with enough drive for many spikes and resets."""
    from delayprop.baselines.dcls import FusedLIF, _lif_tm

    p = _small_cfg().lif()
    g = torch.Generator().manual_seed(4)
    current = (torch.randn(50, 3, 7, generator=g) * 0.8 + 0.5).to(dtype).requires_grad_()
    z_ref = _lif_tm(current, p)
    z = FusedLIF.apply(current, p.alpha, p.theta, p.surrogate)
    assert torch.equal(z, z_ref)
    assert 0.2 < float(z.detach().mean()) < 0.8
    w = torch.randn(z.shape, generator=g).to(dtype)
    (g_ref,) = torch.autograd.grad((z_ref * w).sum(), current)
    (g_fused,) = torch.autograd.grad((z * w).sum(), current)
    assert _rel(g_fused, g_ref) < (1e-12 if dtype == torch.float64 else 1e-5)
    # with a dropout mask (1, B, N) applied in the same node: spikes and gradients as the
    # autograd loop's spikes times the mask
    keep = (torch.rand(1, 3, 7, generator=g) < 0.6).to(dtype) / 0.6
    zk = FusedLIF.apply(current, p.alpha, p.theta, p.surrogate, keep)
    z_ref = _lif_tm(current, p)
    assert torch.equal(zk, z_ref * keep)
    (g_ref,) = torch.autograd.grad((z_ref * keep * w).sum(), current)
    (g_fused,) = torch.autograd.grad((zk * w).sum(), current)
    assert _rel(g_fused, g_ref) < (1e-12 if dtype == torch.float64 else 1e-5)
