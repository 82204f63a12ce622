"""``delayprop adapt RUN --data NEW``: on-device adaptation of an e-prop network to a new
speaker by per-step e-prop (batch 1, one pass, weights and delays updated while the stream
runs, memory independent of the sequence length).

RUN is a run directory or a released model folder (its ``best.pt``). NEW is an SHD-format
file with speaker ids (``extra/speaker``), a folder (its test file), or ``timing`` (the
built-in timing task with every class offset moved by ``--shift`` steps; for a timing-task
run). The new speakers are the speakers of NEW absent from the run's training split
(``--speaker`` picks some); each is split, stratified by class, into a held-out part (fixed
by ``--split-seed``; never learned from, never used to choose settings), a validation part
and the stream of ``--n-adapt`` samples (drawn and ordered with ``--seed``). The known
speakers are the run's training speakers: their samples in NEW measure forgetting, their
samples in the run's validation split are the forgetting check to choose settings on, and
``--rehearsal K`` keeps K of their training samples on the device and replays ``--replay``
of them after each new sample. ``--weight-bits N`` / ``--delay-frac-bits F`` keep the
parameters in a chip's number formats while it learns (``--rounding``).

Writes ``adapt.json`` (accuracies before / after and along the stream, settings, rehearsal
buffer bytes, learner state bytes, time per step and per update, wall time) and
``adapt.png`` (accuracy on the new and the known speakers as the stream goes on) into
``--out``; with ``--save`` also each adapted network, ``--out/speaker<N>/best.pt``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from delayprop.errors import ConfigError


def _kinds(text: str) -> tuple[str, ...]:
    from delayprop.adapt import PARAM_KINDS

    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in PARAM_KINDS]
    if bad or not kinds:
        raise ConfigError(f"--params: a comma list of {', '.join(PARAM_KINDS)}, got {text!r}")
    return kinds


def _run(args: argparse.Namespace) -> int:
    import torch

    from delayprop.adapt import AdaptSettings, adapt_speakers, load_adapt_data, plot_curves
    from delayprop.fileio import atomic_write_text
    from delayprop.safety import check_device

    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    check_device(args.device)
    settings = AdaptSettings(lr=args.lr, delay_lr=args.delay_lr, readout_lr=args.readout_lr,
                             params=_kinds(args.params), rehearsal=args.rehearsal,
                             replay=args.replay, eval_every=args.eval_every, seed=args.seed,
                             weight_bits=args.weight_bits,
                             delay_frac_bits=args.delay_frac_bits, rounding=args.rounding)
    settings.check()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: not a folder")

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    data = load_adapt_data(args.run, args.data, speakers=args.speaker or None,
                           n_adapt=args.n_adapt, val_fraction=args.val_fraction,
                           held_fraction=args.held_fraction, split_seed=args.split_seed,
                           seed=args.seed, shift=args.shift, data_dir=args.data_dir)
    for note in data.notes:
        log(f"note: {note}")
    log(f"{args.run}: {len(data.speakers)} new speaker(s) of {data.source}; known speakers "
        f"{', '.join(map(str, data.known_speakers)) or '(the timing task)'} "
        f"({len(data.known_test)} test samples)")
    report = adapt_speakers(data, settings, progress=not args.quiet, log=log,
                            device=args.device, save_dir=out if args.save else None)
    report["command"] = " ".join(["delayprop", *sys.argv[1:]])
    report["threads"] = args.threads
    report["torch"] = torch.__version__
    report["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "adapt.json", json.dumps(report, indent=1) + "\n")
    plot_curves(report, out / "adapt.png")
    p = report["pooled"]

    def pct(v):
        return "-" if v is None else f"{100 * v:.2f}%"

    print(f"new speaker(s), held out: {pct(p['before']['new_held'])} -> "
          f"{pct(p['after']['new_held'])}; validation {pct(p['before']['new_val'])} -> "
          f"{pct(p['after']['new_val'])}")
    print(f"known speakers, test: {pct(p['before']['known_test'])} -> "
          f"{pct(p['after']['known_test'])}; validation {pct(p['before']['known_val'])} -> "
          f"{pct(p['after']['known_val'])}")
    r0 = report["speakers"][0]
    buf = r0["rehearsal"]
    print(f"{r0['ms_per_step']:.2f} ms per step, {r0['ms_per_update']:.1f} ms per update; "
          f"learner state {r0['learner_state_bytes'] / 2**20:.2f} MiB; rehearsal buffer "
          + (f"{buf['bytes']:,} bytes ({buf['samples']} samples, {buf['stored_as']})"
             if buf else "none"))
    print(f"wrote {out / 'adapt.json'} and {out / 'adapt.png'}")
    for r in report["speakers"]:
        if "saved" in r:
            print(f"adapted network ({r['name']}): {r['saved']} (delayprop eval / export "
                  f"{Path(r['saved']).parent})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "adapt", help="adapt an e-prop network to a new speaker, one sample at a time, "
        "measuring forgetting",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN", help="run directory or released model folder")
    p.add_argument("--data", required=True, metavar="FILE|DIR|timing",
                   help="the new speaker's data: SHD-format file with speaker ids, a folder "
                   "(its test file), or 'timing'")
    p.add_argument("--speaker", type=int, nargs="+", default=None, metavar="N",
                   help="new speaker id(s) (default: every speaker of --data absent from the "
                   "run's training split with enough samples)")
    p.add_argument("--data-dir", default=None,
                   help="the run's training data (default: --data's folder, else the run's)")
    p.add_argument("--n-adapt", type=int, default=200, help="samples in the stream (200)")
    p.add_argument("--held-fraction", type=float, default=0.5,
                   help="share of each class held out (fixed by --split-seed; 0.5)")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share of each class for validation (0.2)")
    p.add_argument("--split-seed", type=int, default=0, help="held-out split (0)")
    p.add_argument("--seed", type=int, default=0,
                   help="validation / stream draw, stream order and rehearsal buffer (0)")
    p.add_argument("--lr", type=float, default=3e-4, help="Adam lr of hidden weights (3e-4)")
    p.add_argument("--delay-lr", type=float, default=None,
                   help="lr of hidden delays (default: --lr x the run's delay_lr / lr)")
    p.add_argument("--readout-lr", type=float, default=None,
                   help="lr of readout weights and bias (default --lr); readout delays at "
                   "this x the run's delay_lr / lr")
    p.add_argument("--params", default="weights,delays,readout",
                   help="kinds that learn, comma list of weights, delays, readout (all)")
    p.add_argument("--rehearsal", type=int, default=0, metavar="K",
                   help="known training samples kept for rehearsal (0: none; 100, with "
                        "--lr 3e-4, is the setting chosen on validation for SHD, "
                        "docs/adaptation.md)")
    p.add_argument("--replay", type=int, default=1,
                   help="buffer samples learned after each new sample (1)")
    p.add_argument("--weight-bits", type=int, default=None, metavar="N",
                   help="store the weights on an N-bit grid (step fixed per synapse group "
                        "from the trained network, as export --report quantises) and put "
                        "them back on it after every update (default: float)")
    p.add_argument("--delay-frac-bits", type=int, default=None, metavar="F",
                   help="store the delays on a grid of 2^-F steps (default: float)")
    p.add_argument("--rounding", choices=("stochastic", "nearest"), default="stochastic",
                   help="back onto the grids after an update: stochastic (an update smaller "
                        "than one step survives in expectation; default) or nearest")
    p.add_argument("--shift", type=int, default=1,
                   help="--data timing: steps every class offset moves by (1)")
    p.add_argument("--eval-every", type=int, default=25,
                   help="samples between points of the curve (25; 0: before and after only)")
    p.add_argument("--out", default="adapt", help="output folder (./adapt)")
    p.add_argument("--save", action="store_true",
                   help="keep each adapted network as OUT/speaker<N>/best.pt (OUT/shifted/ for "
                        "the timing task): a run folder for delayprop eval, export and adapt")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or log")
    p.set_defaults(func=_run)
