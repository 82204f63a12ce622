"""``delayprop eval RUN_DIR|CHECKPOINT``: accuracy, per-class accuracy, accuracy per speaker
(seen in training or not), parameter count and inference latency (:mod:`delayprop.latency`) of
a trained model; with ``--weight-bits N ...`` also the accuracy with the weights quantised to N
bits (one scale per synapse group), with ``--cost`` the hardware-cost report
(:mod:`delayprop.export.cost`: synapses, delays and their bits, delay-buffer memory, synaptic
operations and spikes per inference measured on the split).

Given a run directory it evaluates ``best.pt`` (the model selected on validation accuracy);
given a ``.pt`` file, that checkpoint. The data settings come from the checkpoint's
configuration; ``--data-dir`` points at another copy of the data.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from delayprop.errors import ConfigError


def _ema_of(ckpt: dict) -> float:
    """The checkpoint's run's train.ema (0: no weight averaging)."""
    return float(ckpt.get("config", {}).get("train", {}).get("ema", 0.0) or 0.0)


def holds_average(ckpt: dict) -> bool:
    """Whether the checkpoint's parameters are a run's moving average (best.pt of a run with
    train.ema); checkpoint.pt keeps the raw training parameters beside the average."""
    return bool(_ema_of(ckpt)) and "ema" not in ckpt


def weights_note(ckpt: dict) -> str:
    """What a checkpoint of a run with weight averaging (train.ema) holds: best.pt the moving
    average the run validated, checkpoint.pt the raw training parameters; '' without it."""
    ema = _ema_of(ckpt)
    if not ema:
        return ""
    if holds_average(ckpt):
        return f"weights: the moving average of the parameters (train.ema {ema:g})"
    return (f"weights: the raw training parameters (the run validates their moving average, "
            f"train.ema {ema:g}, which best.pt holds)")


def _checkpoint_path(target: str) -> Path:
    from delayprop.training.rundir import BEST, CHECKPOINT

    p = Path(target)
    if p.is_dir():
        if (p / BEST).is_file():
            return p / BEST
        if (p / CHECKPOINT).is_file():
            from delayprop.safety import warn

            warn(f"{p} has no {BEST}; evaluating {CHECKPOINT}, the last epoch's model (not the "
                 "one selected on validation accuracy)")
            return p / CHECKPOINT
        raise ConfigError(f"{p}: no {BEST} or {CHECKPOINT} in this directory")
    if not p.exists():
        raise ConfigError(f"{p}: no such run directory or checkpoint")
    return p


def _compare_data(ckpt: dict, splits, split: str, path: Path) -> None:
    """Warn when the evaluated data are not those the checkpoint records (other files, or
    the same names with other contents), naming both."""
    from delayprop.safety import data_identity, split_differences, warn

    saved = ckpt.get("data")
    if not isinstance(saved, dict):
        return  # an older checkpoint: nothing recorded to compare with
    role = "test" if split == "test" else "val"
    now = data_identity(splits)
    if saved.get(role) is None or now.get(role) is None:
        return
    diffs = split_differences(saved, now, roles=(role,))
    if diffs:
        warn(f"evaluating on other data than {path} records: {'; '.join(diffs)}")


def _run(args: argparse.Namespace) -> int:
    import torch

    from delayprop.latency import network_latency
    from delayprop.safety import check_device, check_labels
    from delayprop.training.checkpoint import load_checkpoint, model_from_checkpoint
    from delayprop.training.evaluation import evaluate, seen_unseen
    from delayprop.training.splits import load_splits

    if args.threads < 0:
        raise ConfigError(f"--threads must be >= 0 (0: torch's default), got {args.threads}")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be a positive integer, got {args.batch_size}")
    if args.threads:
        torch.set_num_threads(args.threads)
    check_device(args.device)
    path = _checkpoint_path(args.target)
    ckpt = load_checkpoint(path)
    if "config" not in ckpt or "model" not in ckpt:
        raise ConfigError(f"{path}: not a delayprop training checkpoint")
    cfg = json.loads(json.dumps(ckpt["config"]))  # a copy
    if args.data_dir:
        cfg["data"]["data_dir"] = args.data_dir
    model = model_from_checkpoint(ckpt, device=args.device)
    splits = load_splits(cfg, progress=not args.quiet, need_test=args.split == "test")
    ds = splits.test if args.split == "test" else splits.val
    _compare_data(ckpt, splits, args.split, path)
    check_labels(ds, int(model.model_cfg["n_out"]), args.split if args.split == "test"
                 else "validation")
    res = evaluate(model, ds, batch_size=args.batch_size, device=args.device)
    per_class = res.per_class(splits.num_classes)
    counts = [int((res.targets == c).sum()) for c in range(splits.num_classes)]
    params = model.count_parameters()
    lat = network_latency(model.net, float(cfg["data"]["dt"]) * 1000.0)
    speakers = []  # SHD's test file is mostly speakers the training file lacks
    if (ds.speaker >= 0).any():
        speakers = res.per_speaker(ds.speaker.numpy(), splits.train.speaker.unique().numpy())
    bits = tuple(args.weight_bits or ())
    quantised, hardware = {}, None
    if args.cost:
        from delayprop.export.cost import hardware_cost, jsonable

        hardware = jsonable(hardware_cost(
            model, ds, weight_bits=bits, batch_size=args.batch_size, device=args.device,
            progress=not args.quiet, dt_ms=lat["dt_ms"], accuracy=res.accuracy))
        quantised = {k: v for k, v in hardware["accuracy"].items() if k != "float32"}
    elif bits:
        from delayprop.export.cost import quantised_accuracies

        quantised = quantised_accuracies(model, ds, bits, batch_size=args.batch_size,
                                         device=args.device)
    if args.json:
        print(json.dumps({
            "checkpoint": str(path), "epoch": ckpt.get("epoch"), "split": args.split,
            "n": int(len(res.targets)), "accuracy": res.accuracy, "loss": res.loss,
            "per_class": [None if math.isnan(a) else a for a in per_class],
            "per_speaker": speakers, "speakers": seen_unseen(speakers),
            "params": params, "latency": lat,
            "weights": "moving average" if holds_average(ckpt) else "raw",
            **({"quantised_accuracy": quantised} if bits else {}),
            **({"hardware": hardware} if hardware is not None else {}),
        }, indent=2))
        return 0
    print(f"{path} (epoch {ckpt.get('epoch')}), {args.split} split, {len(res.targets)} samples")
    note = weights_note(ckpt)
    if note:
        print(note)
    print(f"accuracy {res.accuracy:.4f}   loss {res.loss:.4g}")
    for b, acc in quantised.items():
        print(f"accuracy {acc:.4f} with the weights quantised to {b} bits (one scale per "
              f"synapse group)")
    print("parameters " + ", ".join(f"{k} {v:,}" for k, v in params.items()))
    pad = (f"; output read {lat['readout_padding_steps']} steps after the input ends"
           if lat["readout_padding_steps"] else "")
    print(f"latency {lat['latency_ms']:g} ms = longest delay path {lat['delay_path_steps']} "
          f"+ {lat['processing_steps']} layer steps, x {lat['dt_ms']:g} ms (bound "
          f"{lat['latency_bound_ms']:g} ms with every delay at its maximum){pad}")
    print(f"{'class':>24s} {'n':>5s} {'accuracy':>9s}")
    for c, (a, n) in enumerate(zip(per_class, counts)):
        name = splits.class_names[c] if c < len(splits.class_names) else str(c)
        print(f"{name:>24s} {n:5d} {'-' if math.isnan(a) else f'{a:.4f}':>9s}")
    if hardware is not None:
        from delayprop.export.cost import format_report

        print(format_report(hardware))
    if speakers:
        print(f"{'speaker':>24s} {'n':>5s} {'accuracy':>9s}  in the training split")
        for r in speakers:
            print(f"{r['speaker']:>24d} {r['n']:5d} {r['accuracy']:9.4f}  "
                  f"{'yes' if r['seen'] else 'no'}")
        for key, g in seen_unseen(speakers).items():
            print(f"speakers {key} in training ({', '.join(map(str, g['speakers']))}): "
                  f"accuracy {g['accuracy']:.4f} on {g['n']} samples")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="accuracy and per-class accuracy of a trained run",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("target", metavar="RUN_DIR_or_CHECKPOINT")
    p.add_argument("--split", choices=("test", "val"), default="test")
    p.add_argument("--data-dir", help="data directory (default: the one the run used)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    p.add_argument("--weight-bits", type=int, nargs="+", metavar="N",
                   help="also the accuracy with the weights quantised to N bits (e.g. 8 4 2)")
    p.add_argument("--cost", action="store_true",
                   help="hardware-cost report: synapses, delays and bits, delay buffers, "
                        "synaptic operations and spikes per inference")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)
