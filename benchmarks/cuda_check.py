"""Same results on CUDA as on the CPU: every forward and learning path, float64 and float32.

Usage: ``python benchmarks/cuda_check.py [--device cuda]`` (exit status 1 if any check fails).
CI has no GPU, so this is the check a GPU machine runs: for each configuration (feedforward /
recurrent; synaptic, axonal, recurrent and readout delays; hard / smooth delays) one network
is built on the CPU and copied to the device; then the autograd forward, the streaming
(no-autograd) forward, e-prop (streaming and per step) and BPTT gradients, and the DCLS
baseline's forward and gradients are compared between the two devices. float64 must agree to
1e-9 (relative to the largest entry), float32 to 1e-3 (looser: a spike threshold crossing can
flip on rounding). ``--cases`` runs only the named configurations (``dcls``: the baseline).
Run with ``--device cpu`` it compares the CPU with itself (what the tests do: every path runs
and reports the same keys).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time

import torch

from delayprop.baselines.dcls import DCLSConfig, DCLSNet, dcls_loss
from delayprop.layers import DelayNet, NetConfig
from delayprop.rules import EpropConfig, OnlineEprop, eprop_gradients
from delayprop.rules.bptt import bptt_gradients

CONFIGS = {
    "ff-syn-hard": dict(recurrent=False, synaptic_delays=True, axonal_delays=False),
    "ff-ax-smooth": dict(recurrent=False, synaptic_delays=False, axonal_delays=True,
                         delay_mode="smooth"),
    "ff-both-hard": dict(recurrent=False, synaptic_delays=True, axonal_delays=True),
    "rec-syn-hard": dict(recurrent=True, synaptic_delays=True, axonal_delays=False),
    "rec-both-smooth": dict(recurrent=True, synaptic_delays=True, axonal_delays=True,
                            delay_mode="smooth"),
    # recurrent delays: on the CPU the hard kernel (one tap per synapse) runs as a CSR matrix
    # in layers.FutureCurrents, on CUDA as the dense product
    "rec-recdelays-hard": dict(recurrent=True, synaptic_delays=True, recurrent_delays=True,
                               kappa=0.8),
    # the final SHD recipe's features: readout delays bounded below max_delay, a leaky readout
    "ff-syn-readout-hard": dict(recurrent=False, synaptic_delays=True, readout_delays=True,
                                readout_max_delay=5, kappa=0.9),
    "rec-all-readout-smooth": dict(recurrent=True, synaptic_delays=True, axonal_delays=True,
                                   recurrent_delays=True, readout_delays=True, kappa=0.8,
                                   delay_mode="smooth"),
}


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    scale = float(b.abs().max())
    return float((a - b).abs().max()) / (scale if scale > 0 else 1.0)


def run_paths(net: DelayNet, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    out["forward_autograd"] = net(x).detach()
    with torch.no_grad():
        out["forward_streaming"] = net(x)
        state = net.initial_state(x.shape[0])  # per-step inference (DelayNet.step)
        out["forward_step"] = torch.stack([net.step(x[:, t], state).clone()
                                           for t in range(x.shape[1])], 1)
    for loss in ("sum", "mean"):
        r = eprop_gradients(net, x, y, EpropConfig(loss=loss), set_grad=False)
        for k, g in r.grads.items():
            out[f"eprop_{loss}:{k}"] = g
    learner = OnlineEprop(net, EpropConfig(loss="sum"))
    learner.begin(x.shape[0])
    for t in range(x.shape[1]):
        learner.step(x[:, t], y)
    for k, g in learner.end(y).items():
        out[f"online:{k}"] = g
    r = bptt_gradients(net, x, y, loss="sum", set_grad=False)
    for k, g in r.grads.items():
        out[f"bptt:{k}"] = g
    return out


def dcls_paths(net: DCLSNet, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    net.train()
    out = net(x)
    grads = torch.autograd.grad(dcls_loss(out, y), list(net.parameters()))
    res = {"dcls_train_forward": out.detach()}
    res.update({f"dcls:{n}": g for (n, _), g in zip(net.named_parameters(), grads)})
    net.eval()
    with torch.no_grad():
        res["dcls_eval_forward"] = net(x)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default="", help="also write the JSON report here")
    ap.add_argument("--cases", nargs="+", default=None, metavar="NAME",
                    choices=[*CONFIGS, "dcls"], help="only these configurations (default: all)")
    args = ap.parse_args(argv)
    dev = args.device
    report: dict = {"device": dev, "checks": [], "torch": torch.__version__}
    if dev.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name(0)
    failed = 0
    t0 = time.time()
    for dtype, tol in ((torch.float64, 1e-9), (torch.float32, 1e-3)):
        g = torch.Generator().manual_seed(0)
        x = (torch.rand(4, 60, 12, generator=g) < 0.2).to(dtype)
        y = torch.randint(0, 5, (4,), generator=g)
        cases = {}
        for name, kw in CONFIGS.items():
            cfg = NetConfig(n_in=12, n_hidden=(16,), n_out=5, max_delay=8, seed=1,
                            weight_scale=2.0, **kw)
            cases[name] = (DelayNet(cfg).to(dtype), run_paths)
        cases["dcls"] = (DCLSNet(DCLSConfig(n_in=12, n_hidden=(16, 16), n_out=5, max_delay=9,
                                            dropout=0.0, seed=1)).to(dtype), dcls_paths)
        for name, (net, fn) in cases.items():
            if args.cases and name not in args.cases:
                continue
            twin = copy.deepcopy(net)  # before the CPU run changes BatchNorm's running stats
            ref = fn(net, x, y)
            try:
                got = fn(twin.to(dev), x.to(dev), y.to(dev))
                errs = {k: rel(got[k], ref[k]) for k in ref}
                worst = max(errs, key=errs.get)
                ok = errs[worst] <= tol and set(got) == set(ref)
                row = {"case": name, "dtype": str(dtype), "ok": ok, "worst": worst,
                       "rel_err": errs[worst], "n_compared": len(errs)}
            except Exception as exc:  # report and go on with the other cases
                ok, row = False, {"case": name, "dtype": str(dtype), "ok": False,
                                  "error": f"{type(exc).__name__}: {exc}"}
            failed += not ok
            report["checks"].append(row)
            print(json.dumps(row), flush=True)
    report["failed"] = failed
    report["seconds"] = round(time.time() - t0, 1)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    print(f"{'FAILED' if failed else 'all passed'}: {failed} of {len(report['checks'])} "
          f"checks failed on {dev} ({report['seconds']} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
