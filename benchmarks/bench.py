"""Benchmark e-prop against BPTT on the same DelayNet: training and inference throughput,
peak memory, one SHD-repro epoch, and the distance to the machine's matmul limit.

Usage (from the repository root)::

    python benchmarks/bench.py                      # full suite -> results/bench.json, BENCH.md
    python benchmarks/bench.py --quick              # < 60 s on 2 cores; one JSON object on stdout
                                                    # (paper net, T = 25/50/100, batch 64, 1 thread)
    python benchmarks/bench.py --shd-epoch          # also time one SHD-repro epoch (e-prop)

Networks: ``paper`` (140 -> 107 hidden with synaptic delays, max_delay 25, 20 outputs: 32k
parameters) and ``dcls`` (140 -> 256 -> 256 with synaptic delays: 0.21M parameters). A training
step is the gradient computation plus an Adam step and the delay clamp; e-prop is called as
``delayprop train`` calls it (``keep_output=False``: no B x T x C output sequence kept; the
peak with the outputs kept is reported beside it). Inputs are synthetic
spike counts with SHD-repro's statistics at 10 ms / 140 channels (13.8% non-zero bins, 0.41
spikes per bin on average).

Peak memory: on CPU each (rule, network, T) runs in a fresh subprocess that builds the network,
input and optimiser, runs a short warm-up step (library start-up), resets the kernel's RSS
high-water mark (``/proc/self/clear_refs``), runs one training step and reports the high-water
mark (VmHWM) minus the RSS before the step; glibc is told to return large blocks to the OS
(fixed mmap threshold), so freed memory is not reused invisibly. The input batch itself is in
the baseline. On CUDA it is ``torch.cuda.max_memory_allocated`` minus the allocation before
the step.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable

import torch

from delayprop.layers import DelayNet, NetConfig
from delayprop.rules.bptt import bptt_gradients
from delayprop.rules.eprop import EpropConfig, eprop_gradients

NETS: dict[str, dict] = {
    "paper": dict(n_in=140, n_hidden=(107,), n_out=20, max_delay=25, synaptic_delays=True),
    "dcls": dict(n_in=140, n_hidden=(256, 256), n_out=20, max_delay=25, synaptic_delays=True),
}
SHD_DENSITY, SHD_MEAN_COUNT = 0.138, 0.41  # measured on SHD-repro train, 10 ms, 140 channels


def make_net(name: str, device: str) -> DelayNet:
    net = DelayNet(NetConfig(**NETS[name], seed=0)).to(device)
    return net


def make_batch(batch: int, steps: int, n_in: int, device: str, seed: int = 0):
    """Synthetic spike counts with SHD-repro's density and mean count, and random labels."""
    g = torch.Generator().manual_seed(seed)
    on = torch.rand(batch, steps, n_in, generator=g) < SHD_DENSITY
    extra = torch.poisson(torch.full((batch, steps, n_in), SHD_MEAN_COUNT / SHD_DENSITY - 1.0),
                          generator=g)
    x = on.float() * (1.0 + extra)
    y = torch.randint(0, 20, (batch,), generator=g)
    return x.to(device), y.to(device)


def eprop_kwargs(bounded: bool) -> dict:
    """Extra keyword arguments for the memory-bounded e-prop mode, if this version has one."""
    params = inspect.signature(eprop_gradients).parameters
    if not bounded or "keep_output" not in params:
        return {}
    return {"keep_output": False}


def train_step_fn(rule: str, net: DelayNet, x, y, bounded: bool = True) -> Callable[[], None]:
    """One training step: gradients by ``rule`` + Adam step + delay clamp. ``bounded``
    (default): e-prop keeps no output sequence, as ``delayprop train`` calls it."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    cfg = EpropConfig(loss="sum")
    kw = eprop_kwargs(bounded)

    def step() -> None:
        if rule == "eprop":
            eprop_gradients(net, x, y, cfg, **kw)
        else:
            bptt_gradients(net, x, y, loss="sum")
        opt.step()
        net.clamp_delays_()

    return step


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], None], device: str) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def load() -> list[float]:
    return list(os.getloadavg())


# --------------------------------------------------------------------------------------------
# Peak memory (one subprocess per configuration on CPU)


def proc_status_bytes(key: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def reset_rss_high_water() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_child(rule: str, net_name: str, steps: int, batch: int, device: str,
                 bounded: bool) -> dict:
    """Run in a fresh process: peak memory of one training step above the set-up baseline."""
    torch.manual_seed(0)
    net = make_net(net_name, device)
    xw, yw = make_batch(batch, min(steps, 10), net.config.n_in, device, seed=1)
    train_step_fn(rule, net, xw, yw, bounded)()  # library start-up costs are not the step's
    del xw, yw
    try:  # buffers e-prop keeps between calls belong to the measured step: drop the warm-up's
        from delayprop.delays import clear_workspaces
        clear_workspaces()
    except ImportError:  # versions without kept buffers
        pass
    x, y = make_batch(batch, steps, net.config.n_in, device)
    step = train_step_fn(rule, net, x, y, bounded)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return {"peak_bytes": int(torch.cuda.max_memory_allocated() - before), "how": "cuda"}
    gc.collect()
    if reset_rss_high_water():
        base = proc_status_bytes("VmRSS")
        step()
        return {"peak_bytes": proc_status_bytes("VmHWM") - base, "how": "VmHWM after reset",
                "baseline_rss_bytes": base}
    base = proc_status_bytes("VmRSS")
    base_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    step()
    after_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"peak_bytes": int(after_max - base), "how": "ru_maxrss",
            "baseline_rss_bytes": base, "lower_bound": bool(after_max <= base_max)}


def measure_memory(rule: str, net_name: str, steps: int, batch: int, device: str,
                   bounded: bool, threads: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--_memory-child",
           json.dumps([rule, net_name, steps, batch, device, bounded]),
           "--threads", str(threads)]
    # a fixed mmap threshold makes glibc return every large block to the OS when it is freed,
    # so the RSS high-water mark tracks the step's own peak
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# Arithmetic


def matmul_gflops(device: str, n: int = 2048, reps: int = 5) -> float:
    """Best of ``reps`` float32 (n x n) @ (n x n) products, in GFLOP/s."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    best = min(timed(lambda: a @ b, device) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def dense_macs_per_sample(net: DelayNet, steps: int) -> int:
    """Multiply-adds per sample of a plain dense network of the same shape, without delays:
    the forward currents (and the same again for one weight-gradient product)."""
    return steps * sum(layer.ff.n_pre * layer.ff.n_post for layer in net.layers)


def kernel_macs_per_sample(net: DelayNet, steps: int) -> dict:
    """Real multiply-adds per sample of the delay kernels this version runs, forward currents
    and lagged correlation, if the version exposes its cost model (``delays.kernel_cost``)."""
    try:
        from delayprop.delays import kernel_cost
    except ImportError:  # the original dense-convolution implementation
        conv = steps * sum(layer.ff.n_pre * layer.ff.n_post * layer.ff.window
                           for layer in net.layers)
        return {"current": conv, "correlation": conv, "model": "dense conv1d over the window"}
    cur = cor = 0
    for layer in net.layers:
        c = kernel_cost(steps, layer.ff.n_pre, layer.ff.n_post, layer.ff.window,
                        torch.float32)
        cur += c["current"]
        cor += c["correlation"]
        model = c["model"]
    return {"current": cur, "correlation": cor, "model": model}


# --------------------------------------------------------------------------------------------
# One configuration


def bench_config(net_name: str, steps: int, batch: int, device: str, reps: int, warmup: int,
                 memory: bool, threads: int, outputs_kept: bool = True) -> dict:
    """Time e-prop (as training calls it), BPTT and inference on one network and T,
    interleaved; peak memory of each training step in fresh processes (and, if
    ``outputs_kept``, of e-prop keeping its output sequence too)."""
    bounded = True
    torch.manual_seed(0)
    x, y = make_batch(batch, steps, NETS[net_name]["n_in"], device)
    nets = {rule: make_net(net_name, device) for rule in ("eprop", "bptt")}
    fns = {rule: train_step_fn(rule, nets[rule], x, y, bounded) for rule in nets}
    infer_net = make_net(net_name, device)

    def infer() -> None:
        with torch.no_grad():
            infer_net(x)

    fns["infer"] = infer
    times: dict[str, list[float]] = {k: [] for k in fns}
    loads = [load()]
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    for _ in range(reps):  # interleaved, so load changes hit every rule alike
        for k, fn in fns.items():
            times[k].append(timed(fn, device))
        loads.append(load())
    med = {k: statistics.median(v) for k, v in times.items()}
    dense = dense_macs_per_sample(nets["eprop"], steps)
    kern = kernel_macs_per_sample(nets["eprop"], steps)
    out = {
        "net": net_name, "T": steps, "batch": batch, "device": device,
        "params": nets["eprop"].count_parameters(),
        "seconds": times, "load_1min": [lv[0] for lv in loads],
        "eprop_train_samples_per_s": batch / med["eprop"],
        "bptt_train_samples_per_s": batch / med["bptt"],
        "infer_samples_per_s": batch / med["infer"],
        "speedup_eprop_over_bptt": med["bptt"] / med["eprop"],
        "dense_macs_per_sample": dense,
        "kernel_macs_per_sample": kern,
        # FLOP rates of the e-prop step (2 FLOP per multiply-add): the delay kernels it runs,
        # and what a delay-free dense layer would need (forward + weight-gradient product)
        "eprop_kernel_gflops": 2 * (kern["current"] + kern["correlation"]) * batch
        / med["eprop"] / 1e9,
        "eprop_dense_equivalent_gflops": 2 * 2 * dense * batch / med["eprop"] / 1e9,
    }
    if memory:
        # e-prop as training calls it (no output sequence kept), BPTT, and e-prop with the
        # output sequence kept (B x T x C, grows with T)
        for rule in ("eprop", "bptt"):
            m = measure_memory(rule, net_name, steps, batch, device, bounded, threads)
            out[f"{rule}_peak_mem_bytes"] = m["peak_bytes"]
            out[f"{rule}_mem_detail"] = m
        if outputs_kept and eprop_kwargs(True):
            m = measure_memory("eprop", net_name, steps, batch, device, False, threads)
            out["eprop_outputs_kept_peak_mem_bytes"] = m["peak_bytes"]
            out["eprop_outputs_kept_mem_detail"] = m
    return out


# --------------------------------------------------------------------------------------------
# One SHD-repro epoch


def shd_epoch(device: str, data_dir: str, batch: int = 256) -> dict:
    """Wall time of one training epoch of the paper-size e-prop network on SHD-repro (T = 100
    at 10 ms), data batching included."""
    from delayprop.data import batches, load_dataset

    ds = load_dataset("shd", "train", data_dir=data_dir, dt=0.01, max_time=1.0,
                      channels=140, progress=False)
    net = make_net("paper", device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    cfg = EpropConfig(loss="sum")
    load_before = load()
    sync(device)
    t0 = time.perf_counter()
    n = 0
    for xb, yb in batches(ds, batch_size=batch, seed=0, device=device):
        eprop_gradients(net, xb, yb, cfg, **eprop_kwargs(True))
        opt.step()
        net.clamp_delays_()
        n += xb.shape[0]
    sync(device)
    sec = time.perf_counter() - t0
    return {"samples": n, "T": int(ds.x.shape[1]), "batch": batch, "seconds": sec,
            "load_1min_before": load_before[0], "load_1min_after": load()[0]}


# --------------------------------------------------------------------------------------------
# Report


def markdown(report: dict) -> str:
    lines = [
        "| net | params | T | e-prop train (samples/s) | BPTT train (samples/s) | "
        "e-prop / BPTT | inference (samples/s) | e-prop peak mem (MB) | "
        "BPTT peak mem (MB) | load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["configs"]:
        mem = r.get("eprop_peak_mem_bytes")
        e_mem = "-" if mem is None else f"{mem / 2**20:.0f}"
        if "eprop_outputs_kept_peak_mem_bytes" in r:  # mem is the training call
            e_mem += f" (outputs kept: {r['eprop_outputs_kept_peak_mem_bytes'] / 2**20:.0f})"
        elif r.get("eprop_bounded_peak_mem_bytes") is not None:  # older reports
            e_mem += f" (no outputs kept: {r['eprop_bounded_peak_mem_bytes'] / 2**20:.0f})"
        b_mem = "-" if r.get("bptt_peak_mem_bytes") is None else \
            f"{r['bptt_peak_mem_bytes'] / 2**20:.0f}"
        ld = r["load_1min"]
        lines.append(
            f"| {r['net']} | {r['params']['total']} | {r['T']} | "
            f"{r['eprop_train_samples_per_s']:.0f} | {r['bptt_train_samples_per_s']:.0f} | "
            f"{r['speedup_eprop_over_bptt']:.2f}x | {r['infer_samples_per_s']:.0f} | "
            f"{e_mem} | {b_mem} | {min(ld):.1f}-{max(ld):.1f} |"
        )
    gf = report["matmul_gflops"], report.get("matmul_gflops_after", report["matmul_gflops"])
    lines += [
        "",
        f"float32 matmul (2048^3), measured in this run: {gf[0]:.0f} GFLOP/s before, "
        f"{gf[1]:.0f} after the configurations.",
        "",
        "| net | T | dense MACs/sample (no delays) | kernel MACs/sample (current + "
        "correlation) | ratio | e-prop kernel GFLOP/s | fraction of matmul |",
        "|---|---|---|---|---|---|---|",
    ]
    peak = max(gf)
    for r in report["configs"]:
        k = r["kernel_macs_per_sample"]
        total = k["current"] + k["correlation"]
        rate = 2 * total * r["batch"] / statistics.median(r["seconds"]["eprop"]) / 1e9
        lines.append(
            f"| {r['net']} | {r['T']} | {2 * r['dense_macs_per_sample']:,} | {total:,} | "
            f"{total / (2 * r['dense_macs_per_sample']):.1f}x | {rate:.1f} | {rate / peak:.0%} |"
        )
    if "shd_epoch" in report:
        e = report["shd_epoch"]
        lines += ["", f"One SHD-repro epoch, paper-size e-prop net ({e['samples']} samples, "
                  f"T = {e['T']}, batch {e['batch']}): {e['seconds']:.1f} s "
                  f"(load {e['load_1min_before']:.1f} before, {e['load_1min_after']:.1f} after)."]
    return "\n".join(lines) + "\n"


def quick_summary(report: dict) -> dict:
    out: dict = {"device": report["device"], "net": "paper", "batch": report["batch"]}
    keys = ("eprop_train_samples_per_s", "bptt_train_samples_per_s", "infer_samples_per_s",
            "eprop_peak_mem_bytes", "bptt_peak_mem_bytes")
    for k in keys:
        vals = {str(r["T"]): r[k] for r in report["configs"] if k in r}
        if vals:
            out[k] = vals
    out["load_1min"] = report["load_1min"]
    out["seconds_total"] = report["seconds_total"]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small T and batch; JSON on stdout")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--nets", default="paper,dcls")
    ap.add_argument("--T", type=int, nargs="+", default=[100, 300, 1000])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--shd-epoch", action="store_true")
    ap.add_argument("--data-dir", default="/work/shared/data/shd-repro")
    ap.add_argument("--out", default="results/bench.json")
    ap.add_argument("--md", default="results/bench_table.md",
                    help="where to write the markdown table ('' to skip)")
    ap.add_argument("--label", default="", help="stored in the JSON (e.g. 'before')")
    ap.add_argument("--table-from", default="", help="print the tables of a saved JSON report")
    ap.add_argument("--_memory-child", dest="memory_child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.quick and not args.threads:
        # one thread: on shared cores, 2-thread parallel regions can stall for a whole
        # scheduler slice each (see results/BENCH.md)
        args.threads = 1
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.table_from:
        with open(args.table_from) as f:
            report = json.load(f)
        print(f"Command: `{report['command']}`\n\n" + markdown(report))
        return
    if args.memory_child is not None:
        rule, net_name, steps, batch, device, bounded = json.loads(args.memory_child)
        print(json.dumps(memory_child(rule, net_name, steps, batch, device, bounded)))
        return
    if args.quick:
        args.nets, args.T, args.batch, args.reps, args.warmup = "paper", [25, 50, 100], 64, 2, 1
    t_start = time.perf_counter()
    report: dict = {
        "command": "python " + " ".join([os.path.relpath(__file__)] + sys.argv[1:]),
        "label": args.label, "device": args.device, "batch": args.batch,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "load_1min": load()[0], "configs": [],
    }
    report["matmul_gflops"] = matmul_gflops(args.device, n=1024 if args.quick else 2048)
    for net_name in args.nets.split(","):
        for steps in args.T:
            r = bench_config(net_name, steps, args.batch, args.device, args.reps, args.warmup,
                             not args.no_memory, torch.get_num_threads(), not args.quick)
            report["configs"].append(r)
            if not args.quick:
                print(json.dumps({k: r[k] for k in ("net", "T", "eprop_train_samples_per_s",
                                                    "bptt_train_samples_per_s")}),
                      file=sys.stderr, flush=True)
    if args.shd_epoch:
        report["shd_epoch"] = shd_epoch(args.device, args.data_dir)
    report["matmul_gflops_after"] = matmul_gflops(args.device, n=1024 if args.quick else 2048)
    report["seconds_total"] = time.perf_counter() - t_start
    if args.quick:
        print(json.dumps(quick_summary(report)))
        return
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    table = f"Command: `{report['command']}`\n\n" + markdown(report)
    if args.md:
        with open(args.md, "w") as f:
            f.write(table)
    print(table)


if __name__ == "__main__":
    main()
