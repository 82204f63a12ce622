"""Per-step (online) e-prop with and without learned readout delays, at the final recipe's
shape: what one step costs and how much state a learner holds, and that the per-step updates
equal the whole-sequence ones on a real-sized network.

    python benchmarks/bench_online.py --out results/bench/online_step.json \
        --before results/bench/online_step_before.json --md docs/benchmarks.md

For each readout (fixed delay 0, learned delays): the learner's state (numbers kept between
steps, float32 MiB per sample) against the minimum the rule needs
(:func:`delayprop.rules.minimum_state`), the kernels derived from the parameters at each
``begin()``, the median time of one ``OnlineEprop.step`` (after a warm-up) and of one
``DelayNet.step`` without autograd (inference alone), the time per step
of whole samples (``begin``, ``--T`` steps, ``end``) and the real-time factor it gives at the
data's ``--dt-ms`` step, and the relative error of the updates after ``--T`` steps against
``eprop_gradients`` on the same sequence (float64, random input at the SHD rate, a
trained-like delay spread). The script also runs against older code (``PYTHONPATH`` pointing
at a ``git archive``), which lacks the memory account: its kernels are then in its state.
``--before REPORT`` shows such a report beside this run, ``--md FILE`` rewrites the block
between ``<!-- online:begin -->`` and ``<!-- online:end -->`` of FILE, ``--table-from
REPORT`` makes the table of a saved report without measuring.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from delayprop.fileio import atomic_write_text
from delayprop.layers import DelayNet, NetConfig
from delayprop.rules import EpropConfig, OnlineEprop, eprop_gradients

try:  # absent before the learner's memory account (this script also times older code)
    from delayprop.rules import minimum_state
except ImportError:
    minimum_state = None


def make(args, readout_delays: bool, dtype: torch.dtype) -> DelayNet:
    cfg = NetConfig(n_in=args.n_in, n_out=args.n_out, n_hidden=(args.hidden,),
                    max_delay=args.max_delay, tau_m=30.0, kappa=args.kappa,
                    readout_delays=readout_delays, seed=0)
    net = DelayNet(cfg).to(dtype=dtype, device=args.device)
    with torch.no_grad():  # delays spread over the window, as after training
        g = torch.Generator().manual_seed(1)
        for syn in (net.layers[0].ff, net.readout):
            if syn.syn_delay is not None:
                syn.syn_delay.copy_(torch.rand(syn.syn_delay.shape, generator=g)
                                    * args.max_delay)
    return net


def measure(args, readout_delays: bool) -> dict:
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    ecfg = EpropConfig(loss=args.loss)
    # exactness on one real-sized sequence, float64
    net = make(args, readout_delays, torch.float64)
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(args.batch, args.T, args.n_in, generator=g) < args.rate).double().to(dev)
    target = torch.randint(0, args.n_out, (args.batch,), generator=g).to(dev)
    whole = eprop_gradients(net, x, target, ecfg, set_grad=False)
    learner = OnlineEprop(net, ecfg)
    learner.begin(args.batch)
    for t in range(args.T):
        learner.step(x[:, t], target if args.loss == "sum" else None)
    grads = learner.end(target, set_grad=False)
    err = max(float((grads[n] - w).norm() / w.norm()) for n, w in whole.grads.items())
    # time and state, float32
    net = make(args, readout_delays, torch.float32)
    x = x.float()
    learner = OnlineEprop(net, ecfg)
    learner.begin(args.batch)
    times = []
    for t in range(args.warmup + args.steps):
        sync()
        t0 = time.perf_counter()
        learner.step(x[:, t % args.T], target if args.loss == "sum" else None)
        sync()
        if t >= args.warmup:
            times.append(time.perf_counter() - t0)
    row = {"readout_delays": readout_delays, "state_numbers": learner.state_numel()}
    if hasattr(learner, "kernel_numel"):  # kernels derived from the parameters, per batch
        row["kernel_numbers"] = learner.kernel_numel()
        row["kernel_bytes"] = learner.kernel_nbytes()
        row["state_parts"] = learner.state_parts()
    if minimum_state is not None:
        row["minimum_late"] = sum(minimum_state(net, ecfg, args.batch).values())
        row["minimum_on_arrival"] = sum(minimum_state(net, ecfg, args.batch,
                                                      "on_arrival").values())
    # inference alone, one step at a time (DelayNet.step without autograd)
    inf = []
    with torch.no_grad():
        state = net.initial_state(args.batch)
        for t in range(args.warmup + args.steps):
            sync()
            t0 = time.perf_counter()
            net.step(x[:, t % args.T], state)
            sync()
            if t >= args.warmup:
                inf.append(time.perf_counter() - t0)
    row["inference_step_ms_median"] = 1e3 * statistics.median(inf)
    # whole samples: begin, T steps, end (the updates of the last steps are paid there)
    samples = []
    for k in range(args.samples + 1):
        sync()
        t0 = time.perf_counter()
        learner.begin(args.batch)
        for t in range(args.T):
            learner.step(x[:, t], target if args.loss == "sum" else None)
        learner.end(target, set_grad=False)
        sync()
        if k:
            samples.append(time.perf_counter() - t0)
    per_step = 1e3 * statistics.median(samples) / args.T
    row.update({"state_mib_per_sample_float32": row["state_numbers"] * 4 / 2**20 / args.batch,
                "step_ms_median": 1e3 * statistics.median(times),
                "sample_ms_median": 1e3 * statistics.median(samples),
                "per_step_ms_with_end": per_step,
                "real_time_factor": args.dt_ms / per_step,
                "max_rel_err_vs_whole_sequence": err})
    return row


def table(report: dict, before: dict | None = None) -> str:
    """The Markdown table of a report (and of a report of older code, ``before``)."""
    a = report["args"]
    lines = [f"Per-step e-prop, {a['n_in']}-{a['hidden']}-{a['n_out']}, max delay "
             f"{a['max_delay']}, kappa {a['kappa']}, '{a['loss']}' loss, batch {a['batch']}, "
             f"{a['device']}, {a['threads'] or 'default'} thread(s); {report['date']}, "
             f"1-minute load {report['load_1min']:.2f}.", "",
             "| code | readout | learner state (numbers) | state (MiB, float32) | derived "
             "minimum | state / minimum | kernels (numbers) | step (ms, median) | per step "
             f"with end() (ms) | real-time factor ({a['dt_ms']:g} ms step) | inference step, "
             "DelayNet.step (ms) | max rel. err vs whole sequence (float64) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    minima = {r["readout_delays"]: r.get("minimum_late") for r in report["rows"]}
    for label, rep in (("before", before), ("after", report)):
        if rep is None:
            continue
        for r in rep["rows"]:
            mini = r.get("minimum_late") or minima.get(r["readout_delays"])
            kern = (f"{r['kernel_numbers']:,}" if "kernel_numbers" in r
                    else "(in the state)")
            lines.append(
                f"| {label if before else 'this'} | "
                f"{'learned delays' if r['readout_delays'] else 'delay 0'} | "
                f"{r['state_numbers']:,} | {r['state_mib_per_sample_float32']:.2f} | "
                + (f"{mini:,} | {r['state_numbers'] / mini:.2f} | " if mini else "- | - | ")
                + f"{kern} | {r['step_ms_median']:.3f} | {r['per_step_ms_with_end']:.3f} | "
                f"{r['real_time_factor']:.1f}x | "
                + (f"{r['inference_step_ms_median']:.3f} | " if "inference_step_ms_median" in r
                   else "- | ")
                + f"{r['max_rel_err_vs_whole_sequence']:.1e} |")
    return "\n".join(lines)


def write_block(md: Path, text: str) -> None:
    """Replace the block between <!-- online:begin --> and <!-- online:end --> of ``md``."""
    doc = md.read_text()
    begin, end = "<!-- online:begin -->", "<!-- online:end -->"
    if begin not in doc or end not in doc:
        raise SystemExit(f"{md}: no {begin} ... {end} block")
    head, rest = doc.split(begin, 1)
    atomic_write_text(md, head + begin + "\n" + text + "\n" + end + rest.split(end, 1)[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch default)")
    ap.add_argument("--batch", type=int, default=1, help="samples learned at once (1: on-device)")
    ap.add_argument("--T", type=int, default=100, help="steps of the exactness check")
    ap.add_argument("--steps", type=int, default=200, help="timed steps")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--samples", type=int, default=10, help="timed whole samples (begin, T "
                    "steps, end)")
    ap.add_argument("--dt-ms", type=float, default=10.0, help="the data's time step (SHD: 10 ms)")
    ap.add_argument("--n-in", type=int, default=140)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--n-out", type=int, default=20)
    ap.add_argument("--max-delay", type=int, default=25)
    ap.add_argument("--kappa", type=float, default=0.9)
    ap.add_argument("--loss", choices=("sum", "mean"), default="sum")
    ap.add_argument("--rate", type=float, default=0.05, help="input spike probability per step")
    ap.add_argument("--out", default="", help="write the JSON report here")
    ap.add_argument("--table-from", default="", metavar="REPORT",
                    help="make the table of a saved report instead of measuring")
    ap.add_argument("--before", default="", metavar="REPORT",
                    help="a report of older code to show beside (same command)")
    ap.add_argument("--md", default="", help="rewrite the online block of this Markdown file")
    args = ap.parse_args(argv)
    if args.table_from:
        report = json.loads(Path(args.table_from).read_text())
    else:
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            ap.error("--device cuda: no CUDA device here")
        if args.threads:
            torch.set_num_threads(args.threads)
        rows = [measure(args, rd) for rd in (False, True)]
        report = {"args": vars(args), "torch": torch.__version__,
                  "machine": platform.machine(),
                  "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "cores": os.cpu_count(), "load_1min": os.getloadavg()[0],
                  "command": "python " + " ".join([sys.argv[0]] + sys.argv[1:]), "rows": rows}
    before = json.loads(Path(args.before).read_text()) if args.before else None
    text = table(report, before)
    print(text)
    if args.out and not args.table_from:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    if args.md:
        write_block(Path(args.md), text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
