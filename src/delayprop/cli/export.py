"""``delayprop export RUN_DIR|CHECKPOINT [OUT.nir]``: the trained network as a NIR graph
(``--format nir``; needs the ``nir`` extra) and/or its hardware cost (``--report``).

The NIR graph is the network with hard delays at its time step dt (in the graph's metadata),
meant to be stepped by forward Euler; per-synapse delays are expanded into one Delay + Linear
branch per distinct delay, the subtractive reset into LI + Threshold + a reset loop (see
docs/hardware.md). A network trained with smooth delays is exported with its rounded delays.
A DCLS run is exported as it evaluates (rounded kernel positions as delays, BatchNorm folded
into the weights and a bias, no dropout); run its graph on the input followed by
metadata["extra_steps"] zero steps (its layers' padding).

``--report`` counts synapses, delays and their bits, delay-buffer memory (per-synapse ring
buffers against one queue per presynaptic neuron), measures synaptic operations and spikes
per inference on the split, gives the latency, and the accuracy with the weights quantised to
each ``--weight-bits`` width (one scale per synapse group) beside the float accuracy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from delayprop.errors import ConfigError


def _run(args: argparse.Namespace) -> int:
    import torch

    from delayprop.cli.evaluate import _checkpoint_path
    from delayprop.training.checkpoint import load_checkpoint, model_from_checkpoint

    if args.out is None and not args.report:
        raise ConfigError("nothing to do: give an output file (OUT.nir) and/or --report")
    if args.weight_bits and not args.report:
        raise ConfigError("--weight-bits is part of the hardware-cost report: add --report")
    if args.report_json and not args.report:
        raise ConfigError("--report-json needs --report")
    if args.threads:
        torch.set_num_threads(args.threads)
    path = _checkpoint_path(args.target)
    ckpt = load_checkpoint(path)
    if "config" not in ckpt or "model" not in ckpt:
        raise ConfigError(f"{path}: not a delayprop training checkpoint")
    cfg = json.loads(json.dumps(ckpt["config"]))
    model = model_from_checkpoint(ckpt, device="cpu")
    if args.out is not None:
        from delayprop.baselines.dcls import DCLSNet
        from delayprop.export.nir import dcls_to_nir, require_nir, to_nir, write_nir

        require_nir()
        dcls = isinstance(model.net, DCLSNet)
        if not dcls and not hasattr(model.net, "to_nir"):
            raise ConfigError(f"{path}: NIR export covers DelayNet and DCLS networks, not the "
                              f"{type(model.net).__name__} of method {model.method!r}")
        out = Path(args.out)
        if out.parent and not out.parent.exists():
            raise ConfigError(f"{out}: its folder {out.parent} does not exist")
        if dcls:  # the DCLS model counts in steps: the data's bin width is its dt
            graph = dcls_to_nir(model.net, name=str(path), dt=float(cfg["data"]["dt"]) * 1000.0)
        else:
            graph = to_nir(model.net, loss=model.loss, name=str(path))
        write_nir(graph, out)
        extra = (f"; run it on the input followed by {graph.metadata['extra_steps']} zero steps"
                 if dcls else "")
        print(f"wrote {out}: NIR graph of {len(graph.nodes)} nodes, {len(graph.edges)} edges, "
              f"dt {graph.metadata['dt']:g} ms{extra}")
    if args.report:
        from delayprop.export.cost import format_report, hardware_cost, jsonable
        from delayprop.training.splits import load_splits

        if args.data_dir:
            cfg["data"]["data_dir"] = args.data_dir
        splits = load_splits(cfg, progress=not args.quiet, need_test=args.split == "test")
        ds = splits.test if args.split == "test" else splits.val
        rep = hardware_cost(model, ds, weight_bits=tuple(args.weight_bits or ()),
                            batch_size=args.batch_size, progress=not args.quiet,
                            dt_ms=float(cfg["data"]["dt"]) * 1000.0)
        rep = jsonable({"checkpoint": str(path), "split": args.split, **rep})
        print(format_report(rep))
        if args.report_json:
            from delayprop.fileio import atomic_write_text

            atomic_write_text(args.report_json, json.dumps(rep, indent=2) + "\n")
            print(f"wrote {args.report_json}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export", help="a trained network as a NIR graph, and its hardware cost",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("target", metavar="RUN_DIR_or_CHECKPOINT")
    p.add_argument("out", nargs="?", metavar="OUT.nir", help="where to write the graph")
    p.add_argument("--format", choices=("nir",), default="nir",
                   help="format of OUT (default nir)")
    p.add_argument("--report", action="store_true",
                   help="print the hardware-cost report (measured on --split)")
    p.add_argument("--report-json", metavar="PATH", help="also write the report as JSON")
    p.add_argument("--weight-bits", type=int, nargs="+", metavar="N",
                   help="with --report: accuracy with weights quantised to N bits (e.g. 8 4 2)")
    p.add_argument("--split", choices=("test", "val"), default="test")
    p.add_argument("--data-dir", help="data directory (default: the one the run used)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)
