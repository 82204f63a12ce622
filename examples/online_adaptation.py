"""On-device adaptation to a new voice: per-step e-prop, one sample at a time.

Takes a network trained by ``delayprop train`` (its ``best.pt``) and, for each test speaker
the training file never has, learns online from part of that speaker's test samples (the
adaptation half, stratified by class, seeded) with :class:`delayprop.rules.OnlineEprop`: one
sample at a time, one time step at a time, one optimiser step after each sample, the state
independent of the sequence length. Each speaker starts from the trained network. Reported
per speaker: accuracy on the other half of that speaker's samples (never learned from)
before and after, and on the test samples of the speakers the network was trained on (what
the adaptation costs them).

    python examples/online_adaptation.py --run results/models/eprop_pub_seed0 \\
        --data-dir DIR --lr 3e-4 --out runs/adaptation.json

This is not the SHD benchmark protocol (it learns from test speakers' samples); it measures
what on-device learning buys on voices the training set lacks.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from delayprop.data import batches
from delayprop.data.registry import load_data
from delayprop.errors import ConfigError
from delayprop.fileio import atomic_write_text
from delayprop.progress import progress_bar
from delayprop.rules import OnlineEprop, eprop_gradients
from delayprop.train import (
    evaluate,
    load_checkpoint,
    model_from_checkpoint,
    param_groups,
    split_datasets,
)


def halves(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a class-stratified half split of labels y: (adapt, held)."""
    rng = np.random.default_rng(seed)
    adapt, held = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        adapt.append(idx[: len(idx) // 2])
        held.append(idx[len(idx) // 2:])
    return np.sort(np.concatenate(adapt)), np.sort(np.concatenate(held))


def adapt(model, ds, args, log) -> dict:
    """Online e-prop over ``ds`` (one pass, batch 1, shuffled with args.seed)."""
    net = model.net
    opt = torch.optim.Adam(param_groups(net, args.cur_lr, args.cur_delay_lr))
    learner = OnlineEprop(net, model.eprop_cfg)
    sum_loss = model.eprop_cfg.loss == "sum"
    t0, n = time.perf_counter(), 0
    bar = progress_bar(total=len(ds), desc="adapting", enabled=not args.quiet)
    for k, (x, y) in enumerate(batches(ds, batch_size=1, shuffle=True, seed=args.seed,
                                       device=args.device)):
        if k == 0:  # the per-step updates are the whole-sequence ones (float32 rounding)
            whole = eprop_gradients(net, x, y, model.eprop_cfg, set_grad=False)
        learner.begin(1)
        for t in range(x.shape[1]):
            learner.step(x[:, t], y if sum_loss else None)
        opt.zero_grad(set_to_none=True)
        grads = learner.end(y)
        if k == 0:
            err = max(float((grads[m] - g).norm() / g.norm().clamp_min(1e-30))
                      for m, g in whole.grads.items())
            log(f"  first sample: per-step vs whole-sequence updates, max rel. err {err:.1e}")
            if err > 1e-3:
                raise RuntimeError(f"per-step and whole-sequence e-prop differ ({err:.1e})")
        opt.step()
        net.clamp_delays_()
        n += x.shape[1]
        bar.update(1)
    bar.close()
    return {"samples": len(ds), "ms_per_step": 1e3 * (time.perf_counter() - t0) / max(n, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="run directory with best.pt (e-prop)")
    ap.add_argument("--data-dir", default=None, help="SHD files (default: the run's)")
    ap.add_argument("--pool", choices=("test", "val"), default="test",
                    help="test: the test file's speakers absent from the run's training split; "
                         "val: the speakers of the run's validation split (a speaker hold-out "
                         "run), to choose --lr on voices that are not the test's")
    ap.add_argument("--exclude", type=int, nargs="*", default=[],
                    help="speakers to leave out of the pool (e.g. those --lr was chosen on)")
    ap.add_argument("--lr", type=float, nargs="+", default=[1e-3],
                    help="Adam lr of the weights (several: each is run)")
    ap.add_argument("--delay-ratio", type=float, default=200.0,
                    help="delay lr / weight lr (the training recipe's 1.0 / 0.005)")
    ap.add_argument("--seed", type=int, default=0, help="split and sample order")
    ap.add_argument("--limit", type=int, default=0,
                    help="learn from at most this many samples per speaker (0: the half)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="", help="JSON report (and a .md table beside it)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    def log(msg: str) -> None:
        print(msg, flush=True)

    ckpt = load_checkpoint(Path(args.run) / "best.pt")
    if ckpt["config"]["method"]["name"] != "eprop":
        raise ConfigError(f"{args.run}: trained by {ckpt['config']['method']['name']}; "
                          "online adaptation needs an e-prop network")
    model = model_from_checkpoint(ckpt, args.device)
    cfg = copy.deepcopy(ckpt["config"])
    if args.data_dir:
        cfg["data"]["data_dir"] = args.data_dir
    data = load_data(cfg["data"], need_test=True, progress=not args.quiet)
    splits = split_datasets(cfg, data.train, data.test)  # the run's own split
    if bool((splits.train.speaker < 0).all()) or bool((data.test.speaker < 0).all()):
        raise ConfigError("this dataset has no speaker ids: nothing to adapt to")
    seen = sorted(set(int(s) for s in splits.train.speaker.unique()))
    if args.pool == "val":
        if not (cfg["data"]["by_speaker"] or cfg["data"].get("val_speakers")):
            raise ConfigError(f"{args.run}: its validation split is not by speaker (--pool "
                              "val needs a speaker hold-out run)")
        pool = splits.val
    else:
        pool = data.test
    spk = pool.speaker.numpy()
    new = sorted(set(int(s) for s in np.unique(spk)) - set(seen) - set(args.exclude))
    if not new:
        raise ConfigError(f"no {args.pool} speaker is new to this run: nothing to adapt to")
    tspk = data.test.speaker.numpy()
    known = data.test.subset(torch.from_numpy(np.flatnonzero(np.isin(tspk, seen))))
    base_known = evaluate(model, known, device=args.device).accuracy
    log(f"{args.run}: new {args.pool} speakers {new}; the training split's speakers' test "
        f"samples: {len(known)}, accuracy {100 * base_known:.2f}%")
    parts = {}
    for s in new:
        idx = np.flatnonzero(spk == s)
        a, h = halves(pool.y.numpy()[idx], args.seed)
        if args.limit:
            a = a[:args.limit]
        ds_h = pool.subset(torch.from_numpy(idx[h]))
        parts[s] = (pool.subset(torch.from_numpy(idx[a])), ds_h,
                    evaluate(model, ds_h, device=args.device).accuracy)
    rows = []
    for lr in args.lr:
        args.cur_lr, args.cur_delay_lr = lr, lr * args.delay_ratio
        for s, (ds_a, ds_h, before) in parts.items():
            m = copy.deepcopy(model)
            log(f"lr {lr:g}, speaker {s}: {len(ds_a)} samples to learn from, {len(ds_h)} held "
                f"out; held-out accuracy before {100 * before:.2f}%")
            info = adapt(m, ds_a, args, log)
            after = evaluate(m, ds_h, device=args.device).accuracy
            after_known = evaluate(m, known, device=args.device).accuracy
            log(f"  after: held out {100 * after:.2f}% ({100 * (after - before):+.2f}), known "
                f"speakers {100 * after_known:.2f}% ({100 * (after_known - base_known):+.2f}); "
                f"{info['ms_per_step']:.2f} ms per step")
            rows.append({"lr": lr, "delay_lr": args.cur_delay_lr, "speaker": s,
                         "adapt_samples": len(ds_a), "held_samples": len(ds_h),
                         "held_before": before, "held_after": after,
                         "known_before": base_known, "known_after": after_known, **info})
    pooled = []
    for lr in args.lr:
        rs = [r for r in rows if r["lr"] == lr]
        n = sum(r["held_samples"] for r in rs)
        pooled.append({"lr": lr, **{k: sum(r[k] * r["held_samples"] for r in rs) / n
                                    for k in ("held_before", "held_after")},
                       "known_after": sum(r["known_after"] for r in rs) / len(rs)})
    command = " ".join(["python", *sys.argv])
    lines = [f"Online adaptation (`{command}`): per-step e-prop, batch 1, one pass, Adam, "
             f"delay lr = {args.delay_ratio:g} x lr, seed {args.seed}; known speakers' test "
             f"accuracy before: {100 * base_known:.2f}%", "",
             "| lr | new speaker | learned from | held out | held-out acc before (%) | "
             "after (%) | known speakers' acc after (%) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['lr']:g} | {r['speaker']} | {r['adapt_samples']} | "
                     f"{r['held_samples']} | {100 * r['held_before']:.2f} | "
                     f"{100 * r['held_after']:.2f} | {100 * r['known_after']:.2f} |")
    for p in pooled:
        lines.append(f"| {p['lr']:g} | all (pooled; known: mean) | | | "
                     f"{100 * p['held_before']:.2f} | **{100 * p['held_after']:.2f}** | "
                     f"{100 * p['known_after']:.2f} |")
    best = max(pooled, key=lambda p: p["held_after"])
    lines += ["", f"Best lr on these speakers' held-out halves: {best['lr']:g}"]
    log("\n".join(lines))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        report = {"run": args.run, "args": vars(args), "new_speakers": new,
                  "known_before": base_known, "rows": rows, "pooled": pooled,
                  "best_lr": best["lr"], "command": command}
        atomic_write_text(out, json.dumps(report, indent=2) + "\n")
        atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
