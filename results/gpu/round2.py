"""The second call on a lent GPU machine (one NVIDIA H200, 16 CPU cores): finish the DCLS
augmentation-protocol seeds and run the third round of the e-prop recipe search, inside a fixed
time budget. Run from the repository root there:

    python3 results/gpu/round2.py --data .devdata/shd --out $OUT --budget 540

1. `benchmarks/cuda_check.py` again (the recurrent ring buffer, layers.FutureCurrents, was
   written after the first call and had not run on CUDA).
2. `configs/dcls_shd_aug.toml`, seeds 1 and 2 (seed 0 ran on the CPU), 150 epochs, on the GPU,
   started at once. They come first: whenever their pace (after 5 epochs) would not finish
   them 30 s before the deadline, fewer e-prop runs are started (4 fewer, down to 4).
3. e-prop probes on the GPU, at most --concurrency at a time, one CPU thread each. Every probe
   is the chosen recipe so far (configs/shd_a_ff_syn_eprop_aug.toml + --tau-m 30, 40 epochs,
   ~32k parameters) with one change (PROBES); seeds 0 and 1, all seed-0 runs queued first.
4. Selection, fixed before the run: once every probe run has finished, or when the time left
   is what one more e-prop run took (median of the finished ones, x 1.3), the probe runs still
   going are stopped and each probe is scored by its mean best validation accuracy
   (held-out training speakers) over the seeds that finished. The chosen recipe so far is
   scored the same way from its existing runs (seed 0 on the first call's CPU cores, seed 1
   here on the CPU: results/gpu/runs/recipe_taum30, results/sota/runs/eprop_recipe_aug_seed1),
   over the same seeds. The best score wins; test accuracy is never read. If a probe wins,
   its remaining runs start: augmentation protocol seed 2, published protocol
   (configs/shd_a_ff_syn_eprop.toml + the same flags) seeds 0-2.
Everything left running at the deadline is stopped (checkpoints kept, resumable with
`delayprop train --resume`). Run directories, logs and choice.json are packed into four
files under --out (each under the tool's 16 MiB).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

# results/gpu/orchestrate.py, the first call
from orchestrate import epochs_done, keep_small, log, start, stop_all

AUG_CFG = "configs/shd_a_ff_syn_eprop_aug.toml"
PUB_CFG = "configs/shd_a_ff_syn_eprop.toml"
BASE = ["--tau-m", "30", "--epochs", "40"]  # the recipe chosen in rounds 1-2
BASE_RUNS = {0: "results/gpu/runs/recipe_taum30", 1: "results/sota/runs/eprop_recipe_aug_seed1"}
# seed 0 ran on the CPU here (results/sota/runs/dcls_shd_aug_seed0)
DCLS_AUG = [(f"dcls_shd_aug_seed{k}", "configs/dcls_shd_aug.toml", k) for k in (1, 2)]
# (name, flags added to BASE); hidden sizes chosen so that the parameter count stays ~32k;
# the longest runs first
PROBES = [
    ("epochs80", ["--epochs", "80"]),
    ("batch32", ["--batch-size", "32"]),
    ("rec_h83", ["--recurrent", "--n-hidden", "83"]),
    ("kappa0.95", ["--kappa", "0.95"]),
    ("kappa0.8", ["--kappa", "0.8"]),
    ("taum50", ["--tau-m", "50"]),
    ("axonal_h199", ["--no-synaptic-delays", "--axonal-delays", "--n-hidden", "199"]),
    ("ch70_h199", ["--channels", "70", "--n-hidden", "199"]),
    ("reg0.5_rate0.02", ["--reg-rate", "0.5", "--target-rate", "0.02"]),
    ("wd1e-4", ["--weight-decay", "1e-4"]),
    ("wd1e-3", ["--weight-decay", "1e-3"]),
    ("lr2e-3", ["--lr", "0.002"]),
    ("delaylr0.3", ["--delay-lr", "0.3"]),
    ("delaylr3", ["--delay-lr", "3"]),
    ("maxdelay15", ["--max-delay", "15"]),
    ("loss_sum", ["--loss", "sum"]),
    ("wscale2", ["--weight-scale", "2"]),
]


def best_val(run: Path) -> float | None:
    f = run / "final.json"
    return json.loads(f.read_text())["val_acc"] if f.exists() else None


def choose(runs: Path) -> dict:
    """The selection rule of the module docstring: mean best validation accuracy over the
    finished seeds, the chosen recipe so far scored over the same seeds."""
    scores = {}
    for name, _ in PROBES:
        vals = {k: best_val(runs / f"r3_{name}_aug_seed{k}") for k in (0, 1)}
        seeds = [k for k, v in vals.items() if v is not None]
        if not seeds:
            continue
        base = [best_val(Path(BASE_RUNS[k])) for k in seeds]
        scores[name] = {"seeds": seeds, "val": statistics.mean(vals[k] for k in seeds),
                        "base_val": statistics.mean(base)}
    winner = max(scores, key=lambda n: scores[n]["val"] - scores[n]["base_val"], default=None)
    if winner is not None and scores[winner]["val"] <= scores[winner]["base_val"]:
        winner = None
    return {"rule": "mean best validation accuracy over finished seeds, vs the chosen recipe "
                    "so far over the same seeds", "scores": scores, "winner": winner}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=float, default=540.0, help="seconds for everything")
    ap.add_argument("--concurrency", type=int, default=12, help="e-prop runs at a time")
    ap.add_argument("--dry", action="store_true",
                    help="rehearsal on a CPU machine: every job for one epoch on 128 samples")
    args = ap.parse_args()
    dev = "cpu" if args.dry else "cuda"
    small = ["--train-subset", "128"] if args.dry else []
    t0 = time.time()
    deadline = t0 + args.budget
    out = Path(args.out)
    work = Path("gpu_work2")
    runs, logs = work / "runs", work / "logs"
    runs.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    if not args.dry:
        info = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
        log(f"GPU: {info.strip()}")

    log("cuda_check")
    try:
        subprocess.run([sys.executable, "benchmarks/cuda_check.py", "--device", dev, "--out",
                        str(logs / "cuda_check.json")], stdout=open(logs / "cuda_check.log", "w"),
                       stderr=subprocess.STDOUT, timeout=90)
    except subprocess.TimeoutExpired:
        log("cuda_check timed out")

    def job(name: str, cfg: str, seed: int, flags: list[str]) -> tuple:
        if args.dry:
            flags = flags + ["--epochs", "1"]
        return name, cfg, seed, flags + small

    procs: dict[str, subprocess.Popen] = {}
    started: dict[str, float] = {}
    durations: list[float] = []
    stopped: set[str] = set()
    for name, cfg, k in DCLS_AUG:
        n, c, s, f = job(name, cfg, k, ["--no-plots"])
        procs[n] = start(n, c, s, f, dev, args.data, runs, logs)
    dcls_names = {n for n, _, _ in DCLS_AUG}
    queue = [job(f"r3_{name}_aug_seed{k}", AUG_CFG, k, BASE + flags + ["--no-plots"])
             for k in (0, 1) for name, flags in PROBES]
    stage1 = {q[0] for q in queue}
    choice: dict | None = None
    concurrency, t_train, t_checked = args.concurrency, time.time(), 0.0
    while time.time() < deadline - 20:
        done = min(epochs_done(runs / n) for n in dcls_names)
        if done >= 5 and time.time() - t_checked > 30 and concurrency > 4:
            t_checked = time.time()
            finish = t_checked + (t_checked - t_train) / done * (150 - done)
            if finish > deadline - 30:
                concurrency = max(4, concurrency - 4)
                log(f"DCLS at {done} epochs would finish {finish - deadline:+.0f} s after the "
                    f"deadline: e-prop runs at a time -> {concurrency}")
        for n, p in procs.items():
            if n in started and p.poll() is not None:
                t_start = started.pop(n)
                if n in stopped:
                    continue
                durations.append(time.time() - t_start)
                log(f"{n}: done (rc {p.returncode}, {epochs_done(runs / n)} epochs)")
        running = [n for n, p in procs.items() if p.poll() is None and n not in dcls_names]
        while queue and len(running) < concurrency:
            n, c, s, f = queue.pop(0)
            procs[n] = start(n, c, s, f, dev, args.data, runs, logs)
            started[n] = time.time()
            running.append(n)
        reserve = 1.3 * statistics.median(durations) if durations else None
        stage1_left = [n for n in stage1 if n not in procs or procs[n].poll() is None]
        if choice is None and (not stage1_left or (
                reserve is not None and time.time() > deadline - reserve)):
            for n in stage1_left:
                if n in procs:
                    procs[n].terminate()
                    stopped.add(n)
                    log(f"{n}: stopped for the selection after {epochs_done(runs / n)} epochs")
            queue = [q for q in queue if q[0] not in stage1]
            choice = choose(runs)
            log(f"choice: {json.dumps(choice)}")
            (logs / "choice.json").write_text(json.dumps(choice, indent=2))
            if choice["winner"] is not None:
                flags = BASE + dict(PROBES)[choice["winner"]] + ["--no-plots"]
                w = choice["winner"]
                queue = [job(f"r3_{w}_aug_seed2", AUG_CFG, 2, flags)] + [
                    job(f"r3_{w}_pub_seed{k}", PUB_CFG, k, flags) for k in range(3)]
        if choice is not None and not queue and all(p.poll() is not None for p in procs.values()):
            break
        time.sleep(5)
    stop_all(procs, runs, logs)

    keep = keep_small(work)

    def pack(name: str, members: list[Path]) -> None:
        with tarfile.open(out / name, "w:gz") as tar:
            for m in members:
                if m.exists():
                    tar.add(m, arcname=str(m.relative_to(work)), filter=keep)
    eprop = [n for n in sorted(procs) if n not in dcls_names]
    pack("logs.tar.gz", [logs])
    pack("dcls_aug.tar.gz", [runs / n for n in sorted(dcls_names)])
    pack("eprop_round3_seed0.tar.gz", [runs / n for n in eprop if n.endswith("aug_seed0")])
    pack("eprop_round3_rest.tar.gz", [runs / n for n in eprop if not n.endswith("aug_seed0")])
    for f in sorted(out.iterdir()):
        log(f"{f.name}: {f.stat().st_size / 1e6:.1f} MB")
    log(f"total {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
