"""What ran on the lent GPU machine (one NVIDIA H200, 16 CPU cores), in one call of the
`device` tool, inside a fixed time budget. Run from the repository root there:

    python3 results/gpu/orchestrate.py --data .devdata/shd --out $OUT --budget 520

The data are SHD-repro packed by `delayprop data pack shd --out .devdata/shd` (10 ms, 140
channels, 1 s), carried along because the raw files exceed the tool's 64 MiB limit.

1. `benchmarks/cuda_check.py`: every forward and learning path on CUDA against the CPU.
2. `benchmarks/bench.py --device cuda --no-memory --shd-epoch` alone on the machine (timings).
3. Then, side by side until the budget ends: six DCLS runs on the GPU (configs/dcls_shd.toml and
   configs/dcls_shd_aug.toml, seeds 0-2, 150 epochs) and e-prop runs on the CPU cores, one
   thread each (the third seed of the ~32k e-prop net under both protocols, and the recipe
   probes of RECIPES, chosen later on validation only). If after two epochs the published-
   protocol DCLS runs would not finish in time beside the others, the augmented-protocol ones
   are stopped first.
Every run directory, log and report is packed into at most 8 files under --out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

DCLS = [(f"dcls_shd_seed{k}", "configs/dcls_shd.toml", k) for k in range(3)]
DCLS_AUG = [(f"dcls_shd_aug_seed{k}", "configs/dcls_shd_aug.toml", k) for k in range(3)]
EPROP_CFG = "configs/shd_a_ff_syn_eprop_aug.toml"
# (name, config, seed, extra flags): e-prop, paper-size net (107 hidden, ~32k parameters)
EPROP = [
    ("shd_a_ff_syn_eprop_seed2", "configs/shd_a_ff_syn_eprop.toml", 2, ["--epochs", "40"]),
    ("shd_a_ff_syn_eprop_aug_seed2", EPROP_CFG, 2, ["--epochs", "40"]),
]
RECIPES = [
    ("recipe_maxdelay40", ["--epochs", "40", "--max-delay", "40"]),
    ("recipe_taum30", ["--epochs", "40", "--tau-m", "30"]),
    ("recipe_epochs80", ["--epochs", "80"]),
    ("recipe_syn_ax", ["--epochs", "40", "--axonal-delays"]),
    ("recipe_smooth_sigma", ["--epochs", "40", "--delay-mode", "smooth", "--sigma0", "3",
                             "--sigma1", "0.5"]),
    ("recipe_lr1e-2", ["--epochs", "40", "--lr", "0.01"]),
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def start(name: str, cfg: str, seed: int, extra: list[str], device: str, data: str,
          runs: Path, logs: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "delayprop", "train", "-c", cfg, "--data-dir", data,
           "--seed", str(seed), "--model-seed", str(seed), "--device", device, "--threads", "1",
           "--run-dir", str(runs / name), "--quiet", *extra]
    f = open(logs / f"{name}.log", "w")
    f.write(" ".join(cmd) + "\n")
    f.flush()
    return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)


def epochs_done(run: Path) -> int:
    m = run / "metrics.jsonl"
    return len(m.read_text().splitlines()) if m.exists() else 0


def stop_all(procs: dict[str, subprocess.Popen], runs: Path, logs: Path) -> None:
    """Stop the runs still going (at the deadline), wait for all, write logs/status.json."""
    for n, p in procs.items():
        if p.poll() is None:
            p.terminate()
            log(f"{n}: stopped at the deadline after {epochs_done(runs / n)} epochs")
    for p in procs.values():
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    status = {n: {"rc": p.returncode, "epochs": epochs_done(runs / n),
                  "final": (runs / n / "final.json").exists()} for n, p in procs.items()}
    (logs / "status.json").write_text(json.dumps(status, indent=2))
    log(json.dumps(status))


def keep_small(work: Path):
    """tarfile filter: init.pt and a finished run's checkpoint.pt are left out (16 MiB a
    file; best.pt is kept, an unfinished run keeps its checkpoint for --resume)."""
    def keep(ti: tarfile.TarInfo) -> tarfile.TarInfo | None:
        p = Path(ti.name)
        if p.name == "init.pt" or (p.name == "checkpoint.pt"
                                   and (work / p.parent / "final.json").exists()):
            return None
        return ti
    return keep


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=float, default=520.0, help="seconds for everything")
    ap.add_argument("--dry", action="store_true",
                    help="rehearsal on a CPU machine: every job for one epoch on 128 samples")
    args = ap.parse_args()
    dev = "cpu" if args.dry else "cuda"
    small = ["--epochs", "1", "--train-subset", "128"] if args.dry else []
    t0 = time.time()
    deadline = t0 + args.budget
    out = Path(args.out)
    work = Path("gpu_work")
    runs, logs = work / "runs", work / "logs"
    runs.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    if not args.dry:
        env_info = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
        log(f"GPU: {env_info.strip()}")

    log("cuda_check")
    subprocess.run([sys.executable, "benchmarks/cuda_check.py", "--device", dev, "--out",
                    str(logs / "cuda_check.json")], stdout=open(logs / "cuda_check.log", "w"),
                   stderr=subprocess.STDOUT, timeout=90)
    log("bench")
    try:
        sizes = ["--T", "20", "--reps", "1", "--batch", "8"] if args.dry else [
            "--T", "100", "300", "1000", "--reps", "3", "--warmup", "1", "--shd-epoch"]
        subprocess.run([sys.executable, "benchmarks/bench.py", "--device", dev, *sizes,
                        "--no-memory", "--data-dir", args.data, "--label", "H200",
                        "--out", str(logs / "bench_cuda.json"),
                        "--md", str(logs / "bench_cuda.md")],
                       stdout=open(logs / "bench_cuda.log", "w"), stderr=subprocess.STDOUT,
                       timeout=150)
    except subprocess.TimeoutExpired:
        log("bench timed out")
    log("training")
    procs: dict[str, subprocess.Popen] = {}
    for name, cfg, k in DCLS + DCLS_AUG:
        procs[name] = start(name, cfg, k, ["--no-plots", *small], dev, args.data, runs, logs)
    for name, cfg, k, extra in EPROP:
        procs[name] = start(name, cfg, k, extra + small, "cpu", args.data, runs, logs)
    for name, extra in RECIPES:
        procs[name] = start(name, EPROP_CFG, 0, extra + small, "cpu", args.data, runs, logs)
    trimmed = False
    t_train = time.time()
    while time.time() < deadline - 25 and any(p.poll() is None for p in procs.values()):
        time.sleep(10)
        done = {n: epochs_done(runs / n) for n, _, _ in DCLS}
        if not trimmed and min(done.values()) >= 2:
            rate = (time.time() - t_train) / min(done.values())
            finish = time.time() + rate * (150 - min(done.values()))
            log(f"DCLS epochs {done}, {rate:.2f} s/epoch, projected finish in "
                f"{finish - time.time():.0f} s, {deadline - time.time():.0f} s left")
            if finish > deadline - 30:
                for n, _, _ in DCLS_AUG:
                    procs[n].terminate()
                log("stopped the augmented-protocol DCLS runs to let the published ones finish")
            trimmed = True
    stop_all(procs, runs, logs)

    def pack(name: str, members: list[Path]) -> None:
        with tarfile.open(out / name, "w:gz") as tar:
            for m in members:
                if m.exists():  # init.pt (the untrained model) is re-creatable: left out
                    tar.add(m, arcname=str(m.relative_to(work)),
                            filter=lambda ti: None if ti.name.endswith("init.pt") else ti)
    pack("logs.tar.gz", [logs])
    pack("dcls_published.tar.gz", [runs / n for n, _, _ in DCLS])
    pack("dcls_aug.tar.gz", [runs / n for n, _, _ in DCLS_AUG])
    pack("eprop.tar.gz", [runs / n for n, *_ in EPROP] + [runs / n for n, _ in RECIPES])
    for f in sorted(out.iterdir()):
        log(f"{f.name}: {f.stat().st_size / 1e6:.1f} MB")
    log(f"total {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
