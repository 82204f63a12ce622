"""`delayprop gradcheck`: e-prop vs BPTT gradients of a small random network."""

from __future__ import annotations

import argparse
import json

from delayprop.errors import ConfigError
from delayprop.gradcheck import compare_gradients, random_problem
from delayprop.layers import NetConfig
from delayprop.rules import EpropConfig

DELAY_KINDS = ("syn", "ax", "rec", "out")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gradcheck",
        help="compare e-prop updates with BPTT gradients on a small random network",
        description="Builds a small random network and prints, per parameter, the relative "
        "error and cosine similarity between e-prop and BPTT (autograd) gradients.",
    )
    p.add_argument("--layers", type=int, default=1, help="number of hidden layers (default 1)")
    p.add_argument("--hidden", type=int, default=32, help="neurons per hidden layer")
    p.add_argument("--inputs", type=int, default=20, help="input channels")
    p.add_argument("--classes", type=int, default=5, help="output classes")
    p.add_argument("--recurrent", action="store_true", help="recurrent hidden layers")
    p.add_argument("--delays", default="syn,ax",
                   help="comma list of learned delays: syn, ax, rec (recurrent synapses), "
                   "out (readout synapses); 'none' for weights only (default syn,ax)")
    p.add_argument("--max-delay", type=int, default=8, help="max delay per kind, in steps")
    p.add_argument("--mode", choices=["hard", "smooth"], default="smooth",
                   help="forward delay mode (default smooth)")
    p.add_argument("--sigma", type=float, default=1.0, help="Gaussian width, steps")
    p.add_argument("--kappa", type=float, default=0.0, help="readout leak (default 0)")
    p.add_argument("--loss", choices=["sum", "mean"], default="sum")
    p.add_argument("--feedback", choices=["symmetric", "random"], default="symmetric")
    p.add_argument("--surrogate", choices=["triangle", "atan", "fast_sigmoid"], default="triangle")
    p.add_argument("--reset", choices=["subtract", "zero"], default="subtract")
    p.add_argument("--tau-m", type=float, default=30.0, help="membrane time constant, ms")
    p.add_argument("--weight-scale", type=float, default=3.0)
    p.add_argument("--steps", type=int, default=50, help="time steps T")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--input-rate", type=float, default=0.1, help="input spike probability/step")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def parse_delays(text: str) -> set[str]:
    kinds = {k.strip() for k in text.split(",") if k.strip()}
    if kinds == {"none"}:
        return set()
    unknown = kinds - set(DELAY_KINDS)
    if unknown:
        raise ConfigError(f"unknown delay kind(s) {sorted(unknown)}; use {DELAY_KINDS} or none")
    return kinds


def run(args: argparse.Namespace) -> int:
    kinds = parse_delays(args.delays)
    if "rec" in kinds and not args.recurrent:
        raise ConfigError("recurrent delays ('rec') need --recurrent")
    if args.layers < 1:
        raise ConfigError(f"--layers must be >= 1, got {args.layers}")
    cfg = NetConfig(
        n_in=args.inputs, n_hidden=(args.hidden,) * args.layers, n_out=args.classes,
        recurrent=args.recurrent, synaptic_delays="syn" in kinds, axonal_delays="ax" in kinds,
        recurrent_delays="rec" in kinds, readout_delays="out" in kinds,
        max_delay=args.max_delay, delay_mode=args.mode,
        sigma=args.sigma, kappa=args.kappa, surrogate=args.surrogate, reset=args.reset,
        tau_m=args.tau_m, weight_scale=args.weight_scale, seed=args.seed,
    )
    net, x, target = random_problem(cfg, args.batch, args.steps, args.input_rate, args.dtype,
                                    args.device)
    result = compare_gradients(net, x, target, EpropConfig(loss=args.loss,
                                                           feedback=args.feedback))
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"e-prop vs BPTT, {args.layers} hidden layer(s) x {args.hidden}, "
          f"{'recurrent' if args.recurrent else 'feedforward'}, delays={sorted(kinds) or 'none'}, "
          f"mode={args.mode}, kappa={args.kappa}, loss={args.loss}, {args.dtype}")
    print(f"{'parameter':28s} {'rel_err':>10s} {'cosine':>10s}")
    for name, r in result.items():
        print(f"{name:28s} {r['rel_err']:10.3e} {r['cosine']:10.6f}")
    return 0
