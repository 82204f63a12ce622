"""Benchmark e-prop against BPTT on the same DelayNet, and the DCLS baseline: time per
training step, peak memory, inference, one SHD-repro epoch.

Usage (from the repository root)::

    python benchmarks/bench.py --threads 1 --dcls --shd-epoch \
        --json results/bench/cpu.json --md docs/benchmarks.md   # the table in docs/benchmarks.md
    python benchmarks/bench.py --quick              # < 60 s on 2 cores; one JSON object on stdout
                                                    # (paper net, T = 25/50/100, batch 64, 1 thread)
    python benchmarks/bench.py --device cuda --dcls --shd-epoch --json results/bench/gpu.json \
        --md docs/benchmarks.md                     # on a GPU (the table's block is named "cuda")
    python benchmarks/bench.py --table-from results/bench/gpu_h200.json --md docs/benchmarks.md
                                                    # the table of a saved report, no measuring

``--md PATH`` writes a markdown block (the machine: CPU model, cores, threads, torch version,
device, date, load average; the command; the table) between the lines
``<!-- bench.py:begin NAME -->`` and ``<!-- bench.py:end NAME -->`` (NAME: ``--md-block``,
default the device type). If PATH exists, only that block is replaced and the rest of the
file is kept; a file without the block is refused (checked before measuring). ``--json PATH``
writes the whole report. Both are written to a temporary file and renamed.

Networks: ``paper`` (140 -> 107 hidden with synaptic delays, max_delay 25, 20 outputs: 32k
parameters) and ``dcls`` (140 -> 256 -> 256 with synaptic delays: 0.21M parameters), each
trained by e-prop and by BPTT. A training step is the gradient computation plus an Adam step
and the delay clamp; e-prop is called as ``delayprop train`` calls it (``keep_output=False``:
no B x T x C output sequence kept). ``--dcls`` adds the DCLS baseline (SNN-delays' SHD network,
``delayprop.baselines.dcls``: 140 -> 256 -> 256 -> 20 with BatchNorm and dropout, trained by
BPTT through Gaussian delay kernels) at ``--dcls-T`` (100, SHD-repro's length): one training
step as ``delayprop train`` runs it (forward, loss, backward, both Adam and scheduler steps,
the position clamp), and its epoch estimated as 29 training steps plus 4 evaluation batches of
256 (7335 / 815 samples, ``configs/dcls_shd.toml``'s split). Inputs are synthetic spike counts
with SHD-repro's statistics at 10 ms / 140 channels (13.8% non-zero bins, 0.41 spikes per bin
on average). The rules are timed interleaved (so load changes hit every rule alike), median of
``--reps`` after ``--warmup``.

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
import shlex
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
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
# configs/dcls_shd.toml's split of SHD-repro's training file: training and validation samples
DCLS_N_TRAIN, DCLS_N_VAL = 7335, 815


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


def dcls_fns(batch: int, steps: int, device: str, seed: int = 0):
    """The DCLS baseline's training step (as ``delayprop train`` runs it: forward in training
    mode, the time-summed-softmax loss, backward, both Adam and scheduler steps, the position
    clamp) and its evaluation forward (``eval()``, no autograd), on a synthetic batch."""
    import math

    from delayprop.baselines.dcls import DCLSConfig, DCLSNet, dcls_loss, make_optimizers

    net = DCLSNet(DCLSConfig(seed=0)).to(device)
    opts, scheds = make_optimizers(net, {}, math.ceil(DCLS_N_TRAIN / batch), 150)
    x, y = make_batch(batch, steps, net.cfg.n_in, device, seed=seed)

    def train_step() -> None:
        net.train()
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss = dcls_loss(net(x), y)
        loss.backward()
        for o in opts:
            o.step()
        for s in scheds:
            s.step()
        net.clamp_delays_()

    def eval_step() -> None:
        net.eval()
        with torch.no_grad():
            net(x)

    return net, train_step, eval_step


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
    if rule == "dcls":
        dcls_fns(batch, min(steps, 10), device, seed=1)[1]()  # library start-up
    else:
        net = make_net(net_name, device)
        xw, yw = make_batch(batch, min(steps, 10), net.config.n_in, device, seed=1)
        train_step_fn(rule, net, xw, yw, bounded)()  # library start-up costs are not the step's
        del xw, yw
    try:  # buffers e-prop keeps between calls belong to the measured step: drop the warm-up's
        from delayprop.delays import clear_workspaces
        clear_workspaces()
    except ImportError:  # versions without kept buffers
        pass
    if rule == "dcls":
        step = dcls_fns(batch, steps, device)[1]
    else:
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


def dcls_config(batch: int, steps: int, device: str, reps: int, warmup: int, memory: bool,
                threads: int) -> dict:
    """Time the DCLS baseline's training step and evaluation forward, interleaved; its
    SHD-repro epoch estimated from them; peak memory of a training step in a fresh process."""
    import math

    torch.manual_seed(0)
    net, train_step, eval_step = dcls_fns(batch, steps, device)
    fns = {"dcls": train_step, "infer": eval_step}
    times: dict[str, list[float]] = {k: [] for k in fns}
    loads = [load()]
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    for _ in range(reps):
        for k, fn in fns.items():
            times[k].append(timed(fn, device))
        loads.append(load())
    med = {k: statistics.median(v) for k, v in times.items()}
    n_train, n_val = math.ceil(DCLS_N_TRAIN / batch), math.ceil(DCLS_N_VAL / batch)
    out = {
        "net": "dcls-baseline", "T": steps, "batch": batch, "device": device,
        "params": net.count_parameters(), "seconds": times,
        "load_1min": [lv[0] for lv in loads],
        "dcls_train_samples_per_s": batch / med["dcls"],
        "infer_samples_per_s": batch / med["infer"],
        "epoch_train_steps": n_train, "epoch_eval_batches": n_val,
        "epoch_estimate_s": n_train * med["dcls"] + n_val * med["infer"],
    }
    if memory:
        m = measure_memory("dcls", "dcls-baseline", steps, batch, device, True, threads)
        out["dcls_peak_mem_bytes"] = m["peak_bytes"]
        out["dcls_mem_detail"] = m
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

NET_LABELS = {
    "paper": "paper (140-107-20)",
    "dcls": "dcls (140-256-256-20)",
    "dcls-baseline": "DCLS baseline (140-256-256-20, BatchNorm)",
}
BLOCK = "<!-- bench.py:{} {} -->"


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ms(seconds: float) -> str:
    """Milliseconds to three significant digits (whole numbers from 100 up)."""
    ms = seconds * 1e3
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.3g}"


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.0f}"


def _loads(report: dict) -> list[float]:
    out = [report["load_1min"]] if "load_1min" in report else []
    for r in report["configs"] + ([report["dcls"]] if "dcls" in report else []):
        out += r.get("load_1min", [])
    return out


def machine_line(report: dict) -> str:
    """Where and when: CPU model, cores, threads, torch, device, date, load average."""
    date = report.get("date", "")
    date = date[:16].replace("T", " ") + " UTC" if date else "(date not in the report)"
    cpu = report.get("cpu_model") or report.get("cpu", "?")
    dev = report["device"]
    if report.get("device_name") and dev != "cpu":
        dev += f" ({report['device_name']})"
    lo = _loads(report)
    load = f"; 1-minute load average {min(lo):.1f}-{max(lo):.1f} during the run" if lo else ""
    return (f"Measured {date}: CPU {cpu}, {report['cores']} cores, {report['threads']} torch "
            f"thread{'s' if report['threads'] != 1 else ''}, torch {report['torch']}, device "
            f"{dev}{load}.")


def table_rows(report: dict) -> list[str]:
    rows = []
    for r in report["configs"]:
        med = {k: statistics.median(v) for k, v in r["seconds"].items()}
        b = r["batch"]
        label = NET_LABELS.get(r["net"], r["net"])
        params = f"{r['params']['total']:,}"
        for key, method, mem, speed in (
            ("eprop", "e-prop (train)", r.get("eprop_peak_mem_bytes"),
             f"**{med['bptt'] / med['eprop']:.2f}x**"),
            ("bptt", "BPTT (train)", r.get("bptt_peak_mem_bytes"), ""),
            ("infer", "inference", None, ""),
        ):
            rows.append(f"| {label} | {params} | {method} | {r['T']} | {b} | {_ms(med[key])} | "
                        f"{_ms(med[key] / b)} | {_mib(mem)} | {speed} |")
    if "dcls" in report:
        r = report["dcls"]
        med = {k: statistics.median(v) for k, v in r["seconds"].items()}
        b = r["batch"]
        label = NET_LABELS["dcls-baseline"]
        params = f"{r['params']['total']:,}"
        rows.append(f"| {label} | {params} | DCLS (train) | {r['T']} | {b} | "
                    f"{_ms(med['dcls'])} | {_ms(med['dcls'] / b)} | "
                    f"{_mib(r.get('dcls_peak_mem_bytes'))} | |")
        rows.append(f"| {label} | {params} | inference | {r['T']} | {b} | "
                    f"{_ms(med['infer'])} | {_ms(med['infer'] / b)} | - | |")
    return rows


def markdown(report: dict, source: str = "") -> str:
    """The report as a markdown block: machine, command, table, epoch times.
    ``source``: the saved report the table was made from (``--table-from``)."""
    lines = [machine_line(report)]
    if report.get("note"):
        lines[0] += " " + report["note"]
    lines += ["", f"Command: `{report['command']}`" + (
        f" (record: `{report['json']}`)." if report.get("json") else ".")]
    if source:
        lines[-1] += f" Table made from the record by `{source}`."
    lines += [
        "",
        "| network | params | method | T | batch | ms / batch | ms / sequence | "
        "peak memory (MiB) | e-prop speed-up over BPTT |",
        "|---|---|---|---|---|---|---|---|---|",
        *table_rows(report),
        "",
    ]
    notes = []
    if "shd_epoch" in report:
        e = report["shd_epoch"]
        notes.append(f"One SHD-repro training epoch of the paper net by e-prop, measured on the "
                     f"real data ({e['samples']} samples, T = {e['T']}, batch {e['batch']}, "
                     f"data batching included): **{e['seconds']:.1f} s**.")
    if "dcls" in report:
        d = report["dcls"]
        notes.append(f"One SHD-repro epoch of the DCLS baseline, estimated from the step times "
                     f"({d['epoch_train_steps']} training steps + {d['epoch_eval_batches']} "
                     f"evaluation batches of {d['batch']}): **{d['epoch_estimate_s']:.1f} s**.")
    if "matmul_gflops" in report:
        gf = report["matmul_gflops"], report.get("matmul_gflops_after", report["matmul_gflops"])
        notes.append(f"float32 matmul in the same run: {gf[0]:.0f} GFLOP/s before the "
                     f"configurations, {gf[1]:.0f} after.")
    return "\n".join(lines + [" ".join(notes)]) + "\n"


def md_block(name: str, body: str) -> str:
    return f"{BLOCK.format('begin', name)}\n{body.rstrip()}\n{BLOCK.format('end', name)}\n"


def _marker_spans(text: str, name: str) -> tuple[int, int]:
    """Start of the begin-marker line and end of the end-marker line of block ``name`` (markers
    count only as whole lines, not where prose quotes them); (-1, -1) if absent."""
    import re

    b = re.search(r"^" + re.escape(BLOCK.format("begin", name)) + r"[ \t]*$", text, re.M)
    if not b:
        return -1, -1
    e = re.compile(r"^" + re.escape(BLOCK.format("end", name)) + r"[ \t]*$", re.M).search(
        text, b.end())
    return (b.start(), e.end()) if e else (-1, -1)


def check_md_target(path: str, name: str) -> None:
    """Refuse (before measuring) a file that exists without the block to replace."""
    p = Path(path)
    if p.exists():
        text = p.read_text(encoding="utf-8")
        i, j = _marker_spans(text, name)
        if i < 0:
            raise SystemExit(f"bench.py: {path} exists and has no block "
                             f"'{BLOCK.format('begin', name)}' ... '{BLOCK.format('end', name)}'"
                             f"; not overwriting it (add the two lines where the table goes)")
    elif not p.parent.is_dir():
        raise SystemExit(f"bench.py: no folder {p.parent} for {path}")


def write_md(path: str, name: str, body: str) -> None:
    """Write ``body`` as block ``name`` of ``path``: the whole file if it does not exist,
    else only the block (the rest of the file is kept). Atomic (temporary file + rename)."""
    from delayprop.fileio import atomic_write_text

    check_md_target(path, name)
    block = md_block(name, body)
    p = Path(path)
    if p.exists():
        text = p.read_text(encoding="utf-8")
        i, j = _marker_spans(text, name)
        if j < len(text) and text[j] == "\n":
            j += 1
        block = text[:i] + block + text[j:]
    atomic_write_text(p, block)


def write_json(path: str, report: dict) -> None:
    from delayprop.fileio import atomic_write_text

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(report, indent=1) + "\n")


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
    ap.add_argument("--quick", action="store_true",
                    help="paper net, T = 25/50/100, batch 64, 1 thread; summary JSON on stdout")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--nets", default="paper,dcls", help="comma list of: paper, dcls")
    ap.add_argument("--T", type=int, nargs="+", default=[100, 300, 1000])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--dcls", action="store_true", help="also time the DCLS baseline")
    ap.add_argument("--dcls-T", type=int, default=100, help="T for the DCLS baseline")
    ap.add_argument("--shd-epoch", action="store_true",
                    help="also time one SHD-repro epoch (e-prop, paper net; needs the data)")
    ap.add_argument("--data-dir", default="/work/shared/data/shd-repro")
    ap.add_argument("--json", "--out", dest="json", default="",
                    help="write the whole report (JSON) here")
    ap.add_argument("--md", default="", help="write the markdown block here (see above)")
    ap.add_argument("--md-block", default="", help="the block's name (default: device type)")
    ap.add_argument("--label", default="", help="stored in the JSON")
    ap.add_argument("--note", default="", help="a sentence printed after the machine line")
    ap.add_argument("--table-from", default="", help="make the table of a saved JSON report")
    ap.add_argument("--_memory-child", dest="memory_child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join(["python", os.path.relpath(__file__)] + argv)
    if args.memory_child is not None:
        if args.threads:
            torch.set_num_threads(args.threads)
        rule, net_name, steps, batch, device, bounded = json.loads(args.memory_child)
        print(json.dumps(memory_child(rule, net_name, steps, batch, device, bounded)))
        return
    if args.table_from:
        with open(args.table_from) as f:
            report = json.load(f)
        report.setdefault("json", args.table_from)
        if args.note:
            report["note"] = args.note
        body = markdown(report, source=command)
        if args.md:
            write_md(args.md, args.md_block or report["device"].split(":")[0], body)
        print(body, end="")
        return
    block = args.md_block or args.device.split(":")[0]
    if args.md:
        check_md_target(args.md, block)  # before minutes of measuring, not after
    if args.quick:
        args.nets, args.T, args.batch, args.reps, args.warmup = "paper", [25, 50, 100], 64, 2, 1
        # one thread: on shared cores, 2-thread parallel regions can stall for a whole
        # scheduler slice each (benchmarks/thread_stall.py)
        args.threads = args.threads or 1
    if args.threads:
        torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    report: dict = {
        "command": command, "label": args.label, "note": args.note,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": args.device,
        "device_name": torch.cuda.get_device_name(args.device)
        if args.device.startswith("cuda") else cpu_model(),
        "batch": args.batch, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu_model": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
        "load_1min": load()[0], "json": args.json, "configs": [],
    }
    mm = 256 if args.batch * max(args.T) < 4096 else 1024 if args.quick else 2048
    report["matmul_gflops"] = matmul_gflops(args.device, n=mm)
    for net_name in args.nets.split(","):
        for steps in args.T:
            r = bench_config(net_name, steps, args.batch, args.device, args.reps, args.warmup,
                             not args.no_memory, torch.get_num_threads(), not args.quick)
            report["configs"].append(r)
            print(json.dumps({k: r[k] for k in ("net", "T", "eprop_train_samples_per_s",
                                                "bptt_train_samples_per_s")}),
                  file=sys.stderr, flush=True)
    if args.dcls:
        report["dcls"] = dcls_config(args.batch, args.dcls_T, args.device, args.reps,
                                     args.warmup, not args.no_memory, torch.get_num_threads())
        print(json.dumps({"net": "dcls-baseline", "T": args.dcls_T,
                          "epoch_estimate_s": report["dcls"]["epoch_estimate_s"]}),
              file=sys.stderr, flush=True)
    if args.shd_epoch:
        report["shd_epoch"] = shd_epoch(args.device, args.data_dir)
    report["matmul_gflops_after"] = matmul_gflops(args.device, n=mm)
    report["seconds_total"] = time.perf_counter() - t_start
    if args.json:
        write_json(args.json, report)
    body = markdown(report)
    if args.md:
        write_md(args.md, block, body)
    if args.quick:
        print(json.dumps(quick_summary(report)))
    else:
        print(body, end="")


if __name__ == "__main__":
    main()
