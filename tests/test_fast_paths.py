"""The fast paths against the plain references (float64): spectral delayed sums and lagged
correlations, the no-autograd LIF loop and filters, and chunked (streaming) e-prop."""

from __future__ import annotations

import pytest
import torch

from delayprop.delays import (
    block_size,
    delayed_sum_spectral,
    dft_matrices,
    even_chunk,
    kernel_cost,
    lagged_correlation_tm,
    use_spectral,
)
from delayprop.errors import ConfigError
from delayprop.layers import DelayedSynapses, DelayNet, NetConfig, leaky_filter, leaky_filter_tm
from delayprop.losses import predict
from delayprop.rules.bptt import bptt_gradients
from delayprop.rules.eprop import (
    EpropConfig,
    eprop_gradients,
    lagged_correlation,
    lagged_correlation_reference,
)

TOL = 1e-9


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).detach())


def conv_reference(x: torch.Tensor, wk: torch.Tensor) -> torch.Tensor:
    """I[b, t, j] = sum_{i, tau} wk[j, i, tau] x[b, t - tau, i], by explicit loops over lags."""
    B, T, _ = x.shape
    out = x.new_zeros(B, T, wk.shape[0])
    for tau in range(min(wk.shape[-1], T)):
        out[:, tau:] += x[:, : T - tau] @ wk[..., tau].t()
    return out


@pytest.mark.parametrize("mode", ["hard", "smooth"])
@pytest.mark.parametrize("steps,max_delay", [(1, 6), (5, 25), (37, 25), (300, 25), (64, 3)])
def test_delayed_sum_matches_reference(mode: str, steps: int, max_delay: int) -> None:
    g = torch.Generator().manual_seed(steps)
    syn = DelayedSynapses(11, 7, max_delay=max_delay, mode=mode, sigma=1.7, generator=g).double()
    x = torch.rand(3, steps, 11, generator=g, dtype=torch.float64)
    hist = torch.rand(3, syn.window - 1, 11, generator=g, dtype=torch.float64)
    with torch.no_grad():
        wk = syn.weighted_kernel()
        ref = conv_reference(x, wk)
        ref_h = conv_reference(torch.cat([hist, x], 1), wk)[:, syn.window - 1:]
        for method in ("spectral", "direct"):
            assert rel(syn.current_sequence(x, wk, method=method), ref) < TOL
            out_h = syn.current_sequence(x, wk, history=hist, method=method)
            assert rel(out_h, ref_h) < TOL


@pytest.mark.parametrize("block", [None, 7, 200])
def test_delayed_sum_spectral_output_length_is_a_zero_padded_input(block) -> None:
    """``steps`` > T: the same as the input padded with zeros to ``steps`` (values and
    gradients, with and without history, one or several blocks); ``steps`` < T refused."""
    g = torch.Generator().manual_seed(5)
    x = torch.rand(30, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    wk = torch.randn(5, 4, 9, generator=g, dtype=torch.float64, requires_grad=True)
    hist = torch.rand(8, 3, 4, generator=g, dtype=torch.float64)
    for h in (None, hist):
        out = delayed_sum_spectral(x, wk, history=h, block=block, steps=42)
        padded = torch.cat([x, x.new_zeros(12, 3, 4)], 0)
        ref = delayed_sum_spectral(padded, wk, history=h, block=block)
        assert out.shape == (42, 3, 5) and rel(out, ref) < TOL
        w = torch.randn_like(out)
        ga = torch.autograd.grad((out * w).sum(), (x, wk))
        gb = torch.autograd.grad((ref * w).sum(), (x, wk))
        for a, b in zip(ga, gb):
            assert rel(a, b) < TOL
    with pytest.raises(ConfigError, match="steps"):
        delayed_sum_spectral(x, wk, steps=29)


@pytest.mark.parametrize("steps,block", [(12, None), (12, 4), (12, 100), (17, 5)])
def test_delayed_sum_spectral_gradients_pass_gradcheck(steps, block) -> None:
    """The spectral sum's hand-written backward (_SpectralSum) against finite differences,
    float64: input, history and kernel all differentiable; one block, several blocks with a
    short last one, a zero-padded output length."""
    g = torch.Generator().manual_seed(steps)
    x = torch.rand(12, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    hist = torch.rand(4, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    wk = torch.randn(3, 2, 5, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, h, w: delayed_sum_spectral(a, w, history=h, block=block, steps=steps),
        (x, hist, wk))
    assert torch.autograd.gradcheck(  # without history (one block: the no-fill route)
        lambda a, w: delayed_sum_spectral(a, w, block=block, steps=steps), (x, wk))
    # a time-major view of a batch-major tensor (what the DCLS layers pass) works the same
    xb = x.detach().transpose(0, 1).contiguous().requires_grad_()
    out = delayed_sum_spectral(xb.transpose(0, 1), wk, block=block, steps=steps)
    ref = delayed_sum_spectral(x, wk, block=block, steps=steps)
    w = torch.randn_like(out)
    (ga,) = torch.autograd.grad((out * w).sum(), xb)
    (gb,) = torch.autograd.grad((ref * w).sum(), x)
    assert rel(ga.transpose(0, 1), gb) < TOL


def test_spectral_current_is_differentiable_like_the_direct_one() -> None:
    g = torch.Generator().manual_seed(0)
    syn = DelayedSynapses(9, 6, max_delay=12, axonal=True, generator=g).double()
    x = torch.rand(2, 50, 9, generator=g, dtype=torch.float64, requires_grad=True)
    w_out = torch.randn(2, 50, 6, generator=g, dtype=torch.float64)
    grads = {}
    for method in ("spectral", "direct"):
        params = [x, syn.weight, syn.syn_delay, syn.ax_delay]
        value = (syn.current_sequence(x, method=method) * w_out).sum()
        grads[method] = torch.autograd.grad(value, params)
    for a, b in zip(grads["spectral"], grads["direct"]):
        assert rel(a, b) < TOL


@pytest.mark.parametrize("steps,window", [(1, 26), (40, 26), (250, 26), (60, 1), (33, 51)])
def test_lagged_correlation_matches_reference(steps: int, window: int) -> None:
    g = torch.Generator().manual_seed(window + steps)
    h = torch.randn(4, steps, 8, generator=g, dtype=torch.float64)
    xbar = torch.rand(4, steps, 10, generator=g, dtype=torch.float64)
    ref = lagged_correlation_reference(h, xbar, window)
    for method in ("spectral", "direct", "auto"):
        assert rel(lagged_correlation(h, xbar, window, method=method), ref) < TOL
    if window > 1:  # with history: the same as correlating the concatenated sequences
        hist = torch.rand(4, window - 1, 10, generator=g, dtype=torch.float64)
        h_full = torch.cat([h.new_zeros(4, window - 1, 8), h], 1)
        ref_h = lagged_correlation_reference(h_full, torch.cat([hist, xbar], 1), window)
        for method in ("spectral", "direct"):
            out = lagged_correlation(h, xbar, window, history=hist, method=method)
            assert rel(out, ref_h) < TOL


def test_spectral_route_in_float32_is_close_to_float64_reference() -> None:
    g = torch.Generator().manual_seed(3)
    h = torch.randn(8, 120, 16, generator=g, dtype=torch.float64)
    xbar = torch.rand(8, 120, 20, generator=g, dtype=torch.float64)
    ref = lagged_correlation_reference(h, xbar, 26)
    out = lagged_correlation_tm(h.float().transpose(0, 1), xbar.float().transpose(0, 1), 26)
    assert use_spectral("auto", torch.float32, 26)
    assert rel(out.double(), ref) < 1e-5


def test_leaky_filters_agree() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 30, 5, generator=g, dtype=torch.float64)
    for reverse in (False, True):
        ref = leaky_filter(x.clone().requires_grad_(True), 0.7, reverse=reverse).detach()
        assert torch.equal(leaky_filter(x, 0.7, reverse=reverse), ref)
        first, last = leaky_filter_tm(x[:, :12].transpose(0, 1), 0.7)
        second, _ = leaky_filter_tm(x[:, 12:].transpose(0, 1), 0.7, state=last)
        if not reverse:
            chunked = torch.cat([first, second], 0).transpose(0, 1)
            assert torch.equal(chunked, ref)


@pytest.mark.parametrize("kw", [
    dict(),
    dict(reset="zero", theta=0.7),
    dict(recurrent=True, recurrent_delays=True, axonal_delays=True),
    dict(n_hidden=(10, 8), delay_mode="smooth", sigma=1.5),
])
def test_no_grad_forward_is_bitwise_the_autograd_forward(kw: dict) -> None:
    kw = dict(kw)
    net = DelayNet(NetConfig(n_in=12, n_hidden=kw.pop("n_hidden", (15,)), n_out=4, max_delay=6,
                             seed=2, **kw)).double()
    x = (torch.rand(3, 40, 12, generator=torch.Generator().manual_seed(5)) < 0.3).double() * 2
    with torch.no_grad():
        y0, r0 = net(x, record=True)
    y1, r1 = net(x, record=True)
    assert torch.equal(y0, y1.detach())
    for a, b in zip(r0, r1):
        assert torch.equal(a.v, b.v.detach()) and torch.equal(a.z, b.z.detach())
    assert sum(float(r.z.sum()) for r in r0) > 0  # the comparison saw spikes


CASES = [
    (dict(), EpropConfig()),
    (dict(kappa=0.8), EpropConfig()),
    (dict(), EpropConfig(loss="mean")),
    (dict(kappa=0.5), EpropConfig(loss="mean", reg_rate=0.3)),
    (dict(recurrent=True, recurrent_delays=True, axonal_delays=True), EpropConfig(reg_rate=0.5)),
    (dict(n_hidden=(14, 9), delay_mode="smooth", sigma=1.5, axonal_delays=True),
     EpropConfig(feedback="random")),
    (dict(max_delay=0), EpropConfig()),
]


@pytest.mark.parametrize("kw,cfg", CASES)
def test_streaming_eprop_matches_whole_sequence(kw: dict, cfg: EpropConfig) -> None:
    kw = dict(kw)
    net = DelayNet(NetConfig(n_in=12, n_hidden=kw.pop("n_hidden", (17,)), n_out=5,
                             max_delay=kw.pop("max_delay", 6), theta=0.5, seed=1, **kw)).double()
    g = torch.Generator().manual_seed(6)
    x = (torch.rand(3, 41, 12, generator=g) < 0.3).double() * 2
    target = torch.randint(0, 5, (3,), generator=g)
    ref = eprop_gradients(net, x, target, cfg, set_grad=False, streaming=False, method="direct")
    assert sum(float(r.z.sum()) for r in ref.records) > 0
    for method, chunk in [("direct", None), ("direct", 1), ("direct", 41), ("direct", 100),
                          ("spectral", None), ("spectral", 7)]:
        res = eprop_gradients(net, x, target, cfg, set_grad=False, chunk=chunk, method=method,
                              record=True)
        assert set(res.grads) == set(ref.grads)
        for k in ref.grads:
            assert rel(res.grads[k], ref.grads[k]) < TOL, (method, chunk, k)
        assert rel(res.y, ref.y) < TOL
        assert abs(res.loss - ref.loss) < TOL * abs(ref.loss)
        for ra, rb in zip(res.records, ref.records):
            for a, b in zip(ra, rb):
                assert torch.allclose(a, b, rtol=0, atol=1e-12)


def test_streaming_eprop_equals_bptt_in_the_exact_case() -> None:
    net = DelayNet(NetConfig(n_in=12, n_hidden=(17,), n_out=5, max_delay=6, theta=0.5,
                             seed=3)).double()
    g = torch.Generator().manual_seed(7)
    x = (torch.rand(3, 41, 12, generator=g) < 0.3).double() * 2
    target = torch.randint(0, 5, (3,), generator=g)
    ref = bptt_gradients(net, x, target, set_grad=False)
    for method in ("direct", "spectral"):
        res = eprop_gradients(net, x, target, set_grad=False, chunk=9, method=method)
        for k in ref.grads:
            assert rel(res.grads[k], ref.grads[k]) < TOL


def test_streaming_outputs_options_and_scores() -> None:
    net = DelayNet(NetConfig(n_in=6, n_hidden=(9,), n_out=4, max_delay=3, theta=0.5, seed=4))
    g = torch.Generator().manual_seed(8)
    x = (torch.rand(5, 30, 6, generator=g) < 0.4).float() * 2
    target = torch.randint(0, 4, (5,), generator=g)
    for loss in ("sum", "mean"):
        cfg = EpropConfig(loss=loss)
        full = eprop_gradients(net, x, target, cfg, set_grad=False)
        lean = eprop_gradients(net, x, target, cfg, set_grad=False, keep_output=False)
        assert lean.y is None and lean.records == [] and full.records == []
        assert torch.equal(full.scores.argmax(-1), predict(full.y, loss))
        assert torch.allclose(lean.scores, full.scores)
        for k in full.grads:
            assert torch.equal(lean.grads[k], full.grads[k])
    with pytest.raises(ConfigError):
        eprop_gradients(net, x, target, chunk=0)
    with pytest.raises(ConfigError):
        eprop_gradients(net, x[..., :5], target)
    bad = x.clone()
    bad[0, 29, 0] = float("nan")
    with pytest.raises(ConfigError):
        eprop_gradients(net, bad, target)


def test_dft_matrices_and_cost_model() -> None:
    for n in (7, 8, 77):
        fr, fi, ir, ii = dft_matrices(n, torch.float64, "cpu")
        x = torch.randn(n, 3, dtype=torch.float64)
        spec = torch.fft.rfft(x, dim=0)
        assert torch.allclose(fr @ x, spec.real, atol=1e-12)
        assert torch.allclose(fi @ x, spec.imag, atol=1e-12)
        assert torch.allclose(ir @ (fr @ x) + ii @ (fi @ x), x, atol=1e-12)
    c, n = block_size(1000, 26)
    assert n == c + 25 and c == 52
    assert block_size(10, 26) == (10, 35)
    with pytest.raises(ConfigError):
        use_spectral("sparse", torch.float32, 26)
    fast = kernel_cost(100, 140, 107, 26, torch.float32)
    direct = kernel_cost(100, 140, 107, 26, torch.float64)
    assert direct["current"] == 100 * 140 * 107 * 26
    assert fast["current"] < direct["current"] / 4
    assert even_chunk(100, 26) == 50 and even_chunk(1000, 26) == 50 and even_chunk(10, 26) == 10


# --- SpectralStream: streaming e-prop's fused kernel (one spectrum for currents and traces)


def _stream_run(stream, x: torch.Tensor, h: torch.Tensor, sizes: list[int],
                use_buffer: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    currents, t0 = [], 0
    for c in sizes:
        chunk = x[t0: t0 + c]
        if use_buffer:
            chunk = stream.input_buffer(c, x.shape[1], x).copy_(chunk)
        currents.append(stream.currents(chunk).clone())
        stream.correlate(h[t0: t0 + c])
        t0 += c
    return torch.cat(currents, 0), stream.correlation()


@pytest.mark.parametrize("sizes", [[60], [1] * 60, [3] * 20, [8, 8, 8, 36], [20, 20, 20],
                                   [7, 50, 3], [59, 1]])
def test_spectral_stream_matches_direct_currents_and_filtered_correlation(sizes) -> None:
    from delayprop.delays import SpectralStream, delayed_sum

    g = torch.Generator().manual_seed(11)
    T, B, pre, post, window, alpha = 60, 3, 5, 4, 9, 0.9
    x = (torch.rand(T, B, pre, generator=g) < 0.3).double() * 2
    h = torch.randn(T, B, post, generator=g, dtype=torch.float64)
    wk = torch.randn(post, pre, window, generator=g, dtype=torch.float64)
    xbar = leaky_filter_tm(x, alpha)[0]
    ref_cur = delayed_sum(x, wk, method="direct")
    ref_corr = lagged_correlation_tm(h, xbar, window, method="direct")
    for use_buffer in (False, True):
        cur, corr = _stream_run(SpectralStream(wk, alpha), x, h, sizes, use_buffer)
        assert rel(cur, ref_cur) < TOL
        assert rel(corr, ref_corr) < TOL


def test_spectral_stream_kept_buffers_start_each_sequence_from_rest() -> None:
    """Buffers kept between streams of one slot must not leak history or filter state from
    one sequence into the next."""
    from delayprop.delays import SpectralStream, clear_workspaces, delayed_sum

    g = torch.Generator().manual_seed(12)
    T, B, pre, post, window, alpha = 40, 2, 6, 3, 7, 0.8
    wk = torch.randn(post, pre, window, generator=g, dtype=torch.float64)
    clear_workspaces()
    for _ in range(3):  # same slot, same shapes: the second and third reuse the buffers
        x = torch.rand(T, B, pre, generator=g, dtype=torch.float64) * 5
        h = torch.randn(T, B, post, generator=g, dtype=torch.float64)
        cur, corr = _stream_run(SpectralStream(wk, alpha, slot="t"), x, h, [10] * 4, True)
        assert rel(cur, delayed_sum(x, wk, method="direct")) < TOL
        ref = lagged_correlation_tm(h, leaky_filter_tm(x, alpha)[0], window, method="direct")
        assert rel(corr, ref) < TOL
    clear_workspaces()


def test_spectral_stream_misuse_is_refused() -> None:
    from delayprop.delays import SpectralStream

    wk = torch.randn(3, 4, 5)
    stream = SpectralStream(wk, 0.9)
    with pytest.raises(RuntimeError, match="currents"):
        stream.correlate(torch.randn(6, 2, 3))
    with pytest.raises(ConfigError, match="presynaptic"):
        stream.currents(torch.randn(6, 2, 7))
    assert stream.correlation().abs().sum() == 0


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_float32_streaming_eprop_refuses_non_finite_input(value: float) -> None:
    net = DelayNet(NetConfig(n_in=12, n_hidden=(17,), n_out=5, max_delay=10, seed=1))
    g = torch.Generator().manual_seed(6)
    x = (torch.rand(3, 80, 12, generator=g) < 0.3).float()
    target = torch.randint(0, 5, (3,), generator=g)
    x[1, 70, 3] = value
    with pytest.raises(ConfigError, match="NaN or infinite"):
        eprop_gradients(net, x, target)


def test_float32_streaming_eprop_is_close_to_float64_reference() -> None:
    """The default float32 route (SpectralStream) against the float64 direct sums."""
    net = DelayNet(NetConfig(n_in=12, n_hidden=(17, 9), n_out=5, max_delay=10, theta=0.5,
                             seed=1))
    g = torch.Generator().manual_seed(7)
    x = (torch.rand(4, 130, 12, generator=g) < 0.3).float() * 2
    target = torch.randint(0, 5, (4,), generator=g)
    ref = eprop_gradients(net.double(), x.double(), target, set_grad=False, method="direct")
    res = eprop_gradients(net.float(), x, target, set_grad=False)
    for k in ref.grads:
        assert rel(res.grads[k].double(), ref.grads[k]) < 1e-4, k


def test_kept_buffers_are_per_slot_name_and_shape() -> None:
    from delayprop import workspace

    workspace.clear()
    like = torch.zeros(1)
    a = workspace.kept("s", "v", (4, 5), like)
    assert workspace.kept("s", "v", (4, 5), like) is a
    assert workspace.kept("t", "v", (4, 5), like) is not a
    assert workspace.kept("s", "z", (4, 5), like) is not a
    b = workspace.kept("s", "v", (5, 4), like)  # another shape replaces the buffer
    assert b is not a and b.shape == (5, 4)
    assert workspace.kept("s", "v", (5, 4), like) is b
    assert workspace.kept("s", "v", (5, 4), like.double()).dtype == torch.float64
    assert len([k for k in workspace._KEPT if k[:2] == ("s", "v")]) == 1
    assert workspace.kept(None, "v", (4, 5), like) is not workspace.kept(None, "v", (4, 5), like)
    assert workspace.kept_bytes() > 0
    for i in range(workspace.MAX_KEPT + 5):
        workspace.kept("many", str(i), (1,), like)
    assert len(workspace._KEPT) == workspace.MAX_KEPT
    workspace.clear()
    assert workspace.kept_bytes() == 0


def test_streaming_eprop_calls_do_not_leak_state_through_kept_buffers() -> None:
    """e-prop on batch B after a call on batch A gives bitwise what it gives from scratch."""
    from delayprop.delays import clear_workspaces

    net = DelayNet(NetConfig(n_in=12, n_hidden=(17, 9), n_out=5, max_delay=10, theta=0.5,
                             seed=1))
    g = torch.Generator().manual_seed(8)
    xa = (torch.rand(4, 101, 12, generator=g) < 0.5).float() * 3
    xb = (torch.rand(4, 101, 12, generator=g) < 0.3).float()
    target = torch.randint(0, 5, (4,), generator=g)
    clear_workspaces()
    fresh = eprop_gradients(net, xb, target, set_grad=False)
    eprop_gradients(net, xa, target, set_grad=False)
    again = eprop_gradients(net, xb, target, set_grad=False)
    clear_workspaces()
    for k in fresh.grads:
        assert torch.equal(fresh.grads[k], again.grads[k]), k
    assert fresh.loss == again.loss


@pytest.mark.parametrize("kw", [
    dict(),
    dict(n_hidden=(10, 8), delay_mode="smooth", sigma=1.5, kappa=0.8),
    dict(recurrent=True, recurrent_delays=True, axonal_delays=True),
    dict(max_delay=0),
])
@pytest.mark.parametrize("chunk", [None, 3, 17])
def test_streaming_forward_matches_the_autograd_forward(kw: dict, chunk) -> None:
    from delayprop.stream import forward_streaming

    kw = dict(kw)
    net = DelayNet(NetConfig(n_in=12, n_hidden=kw.pop("n_hidden", (15,)), n_out=4,
                             max_delay=kw.pop("max_delay", 9), theta=0.5, seed=2, **kw)).double()
    x = (torch.rand(3, 40, 12, generator=torch.Generator().manual_seed(5)) < 0.3).double() * 2
    ref = net(x, record=True)[0].detach()  # autograd path, whole sequence
    assert rel(forward_streaming(net, x, chunk=chunk), ref) < TOL  # direct sums (float64)
    assert rel(forward_streaming(net, x, chunk=chunk, method="spectral"), ref) < TOL
    with torch.no_grad():
        assert rel(net(x), ref) < TOL  # the no-autograd forward is the streaming one


def test_spectral_stream_without_traces_gives_the_same_currents() -> None:
    from delayprop.delays import SpectralStream, delayed_sum

    g = torch.Generator().manual_seed(13)
    x = torch.rand(50, 2, 5, generator=g, dtype=torch.float64)
    wk = torch.randn(4, 5, 9, generator=g, dtype=torch.float64)
    stream = SpectralStream(wk, 0.9, traces=False)
    cur = torch.cat([stream.currents(x[t0: t0 + 12]).clone() for t0 in range(0, 50, 12)])
    assert rel(cur, delayed_sum(x, wk, method="direct")) < TOL
    with pytest.raises(RuntimeError, match="traces"):
        stream.correlate(torch.randn(2, 2, 4, dtype=torch.float64))


@pytest.mark.parametrize("graded", [False, True])
@pytest.mark.parametrize("window,one_tap", [(1, False), (9, False), (9, True)])
def test_future_currents_match_the_delay_line_product(window, one_tap, graded):
    """blocks.FutureCurrents (ring buffer of coming recurrent currents: sparse-kernel CSR,
    sparse-spike or dense products) against the per-step product of the spike history with
    the kernels, float64, across a carried boundary. ``one_tap``: one non-zero lag per synapse,
    as hard delays give (the CSR route)."""
    from delayprop.delays import DelayLine
    from delayprop.layers import FutureCurrents

    g = torch.Generator().manual_seed(window)
    B, pre, post, T = 8, 7, 5, 40
    wk = torch.randn(post, pre, window, generator=g, dtype=torch.float64)
    if one_tap:
        tap = torch.randint(0, window, (post, pre, 1), generator=g)
        wk = torch.zeros_like(wk).scatter_(2, tap, wk[..., :1])
    # sparse steps (below FutureCurrents.SPARSE_MAX: the index_add route) and one dense step
    z = (torch.rand(T, B, pre, generator=g) < 0.03).double()
    density = z.flatten(1).mean(1)
    assert ((density > 0) & (density <= FutureCurrents.SPARSE_MAX)).sum() > 10
    if graded:
        z = z * torch.rand(T, B, pre, generator=g, dtype=torch.float64)
    z[5] = 1.0  # one dense step: the dense branch
    line = DelayLine(B, pre, window, torch.float64, "cpu")
    fut = FutureCurrents(wk, B)
    assert (fut.csr is not None) == one_tap
    prev = torch.zeros(B, pre, dtype=torch.float64)
    for t in range(T):
        line.push(prev)  # the recurrent input at step t is z[t-1]
        want = line.history().reshape(B, -1) @ wk.reshape(post, -1).t()
        base = torch.randn(B, post, generator=g, dtype=torch.float64)
        got = fut.take(base) - base
        assert torch.allclose(got, want, rtol=0, atol=1e-12), t
        fut.push(z[t])
        prev = z[t]
