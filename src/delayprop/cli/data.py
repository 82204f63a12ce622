"""``delayprop data download|info|prepare``: get, inspect and preprocess SHD / SSC files."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Tuple

import numpy as np

from delayprop.errors import DataError


def register(subparsers) -> None:
    """Add the ``data`` sub-command and its own sub-commands."""
    p = subparsers.add_parser(
        "data",
        help="download, inspect and preprocess SHD / SSC",
        description="Download, inspect and preprocess the SHD / SSC spike datasets. The data "
        "directory is --data-dir, else $DELAYPROP_DATA, else ~/.cache/delayprop/data.",
    )
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")

    def binning(q: argparse.ArgumentParser, max_time: float) -> None:
        """The binning settings (`prepare` and `pack`)."""
        q.add_argument("--dt", type=float, default=0.01, help="time step in seconds (0.01)")
        q.add_argument("--max-time", type=float, default=max_time,
                       help=f"duration in seconds ({max_time})")
        q.add_argument("--channels", type=int, default=140,
                       help="input channels after pooling the 700 (must divide 700; 140)")
        q.add_argument("--binary", action="store_true", help="clip counts to 0/1")

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--data-dir", default=None, help="data directory (default: "
                       "$DELAYPROP_DATA or ~/.cache/delayprop/data)")
        q.add_argument("--no-progress", action="store_true", help="no progress bars")

    d = sub.add_parser("download", help="download a dataset from zenkelab.org",
                       description="Download shd_train/test.h5.gz (or ssc_*) into the data "
                       "directory, verified against the published md5sums.txt.")
    d.add_argument("name", choices=["shd", "ssc"])
    d.add_argument("--split", action="append", default=None,
                   help="split to download (repeatable; default: all)")
    d.add_argument("--base-url", default=None,
                   help="mirror URL (default: $DELAYPROP_DATA_URL or zenkelab.org/datasets)")
    d.add_argument("--force", action="store_true", help="download even if present and valid")
    d.add_argument("--no-verify", action="store_true", help="skip the md5 check")
    common(d)
    d.set_defaults(func=cmd_download)

    i = sub.add_parser("info", help="statistics of a data file",
                       description="Counts per class and speaker, durations and spikes per "
                       "sample of an SHD-format file (or of a dataset's splits by name).")
    i.add_argument("source", help="a .h5/.h5.gz/.h5.zip file, or 'shd' / 'ssc'")
    i.add_argument("--split", action="append", default=None,
                   help="with a dataset name: split(s) to describe (default: all present)")
    common(i)
    i.set_defaults(func=cmd_info)

    r = sub.add_parser("prepare", help="bin a file (or dataset) into the tensor cache",
                       description="Parse, check and bin a file (or all splits of a dataset) "
                       "and write the tensor cache; prints the timing.")
    r.add_argument("source", help="a .h5/.h5.gz/.h5.zip file, or 'shd' / 'ssc'")
    r.add_argument("--split", action="append", default=None,
                   help="with a dataset name: split(s) to prepare (default: all present)")
    binning(r, max_time=1.4)
    r.add_argument("--cache-dir", default=None,
                   help="cache directory (default: <data dir>/cache, or the default cache "
                   "directory if that is read-only)")
    r.add_argument("--rebuild", action="store_true", help="ignore and replace existing cache")
    r.add_argument("--download", action="store_true", help="download missing files")
    common(r)
    r.set_defaults(func=cmd_prepare)

    k = sub.add_parser("pack", help="bin a dataset's splits into compressed .npz files",
                       description="Bin each split of a dataset (as `prepare`) and write "
                       "<out>/<name>_<split>-dt<ms>ms-T<steps>-C<channels>.npz (compressed, "
                       "checksummed). `--data-dir <out>` then trains from these files on a "
                       "machine without the raw .h5 files (same dt, max_time, channels).")
    k.add_argument("source", choices=["shd", "ssc"])
    k.add_argument("--out", required=True, help="folder for the packed files")
    k.add_argument("--split", action="append", default=None,
                   help="split(s) to pack (default: all present)")
    binning(k, max_time=1.0)
    common(k)
    k.set_defaults(func=cmd_pack)


def _sources(args) -> List[Tuple[str, Path, str, str]]:
    """``[(label, path, name, split)]``; name/split empty for a plain file."""
    from delayprop.data.paths import resolve_data_dir
    from delayprop.data.shd import SPLITS, check_split, find_file

    src = args.source
    if src.lower() in SPLITS and not Path(src).exists():
        name = src.lower()
        ddir = resolve_data_dir(args.data_dir)
        splits = [check_split(name, s) for s in (args.split or SPLITS[name])]
        out = []
        for s in splits:
            path = find_file(name, s, ddir)
            if path is None:
                if args.split or getattr(args, "download", False):
                    out.append((f"{name}/{s}", ddir / f"{name}_{s}.h5.gz", name, s))
                continue
            out.append((f"{name}/{s}", path, name, s))
        if not out:
            raise DataError(
                f"{ddir}: no {name} files here; run `delayprop data download {name} "
                f"--data-dir {ddir}`"
            )
        return out
    if args.split:
        raise DataError("--split only applies to a dataset name (shd / ssc), not to a file")
    path = Path(src).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    return [(path.name, path, "", "")]


def _bars(args) -> bool:
    """Progress bars for reading and binning: on a terminal only (redirected output gets the
    summary lines, not carriage-return frames); downloads report as lines there."""
    from delayprop.progress import is_terminal

    return not args.no_progress and is_terminal()


def cmd_download(args) -> int:
    from delayprop.data.remote import download

    t0 = time.perf_counter()
    paths = download(args.name, data_dir=args.data_dir, splits=args.split,
                     base_url=args.base_url, progress=not args.no_progress,
                     force=args.force, verify=not args.no_verify)
    for p in paths:
        print(f"{p}  ({p.stat().st_size / 1e6:.1f} MB)")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


def _stats_line(label: str, v: np.ndarray, fmt: str) -> str:
    if v.size == 0:
        return f"  {label:<18} -"
    q = np.percentile(v, [0, 50, 100])
    return (f"  {label:<18} min {q[0]:{fmt}}  mean {v.mean():{fmt}}  median {q[1]:{fmt}}  "
            f"max {q[2]:{fmt}}")


def _count_table(title: str, keys: np.ndarray, names=None, per_row: int = 5) -> List[str]:
    vals, counts = np.unique(keys, return_counts=True)
    cells = []
    for v, c in zip(vals, counts):
        if names is not None:
            name = f" {names[v]}" if 0 <= v < len(names) else ""
            cells.append(f"{v:>3}{name:<9} {c:>6}")
        else:
            cells.append(f"{v:>3} {c:>6}")
    lines = [f"{title} ({len(vals)}):"]
    for k in range(0, len(cells), per_row):
        lines.append("  " + "   ".join(cells[k:k + per_row]))
    if len(vals):
        lines.append(f"  (min {counts.min()}, max {counts.max()} per {title.split()[-1]})")
    return lines


def describe(stats) -> str:
    """The text that ``delayprop data info`` prints for one file."""
    n = stats.labels.size
    lines = [
        f"{stats.path}",
        f"  samples {n}, classes {len(stats.class_names)}, spikes {int(stats.spikes.sum())}, "
        f"units used {stats.units_used} of 700",
        _stats_line("spikes/sample", stats.spikes.astype(float), ".0f"),
        _stats_line("duration [s]", stats.duration, ".3f"),
        _stats_line("first spike [s]", stats.first_spike, ".3f"),
        f"  samples with spikes after 1.0 s: {int((stats.duration >= 1.0).sum())}, "
        f"after 1.4 s: {int((stats.duration >= 1.4).sum())}",
    ]
    lines += _count_table("per class", stats.labels, stats.class_names)
    if (stats.speaker >= 0).any():
        lines += _count_table("per speaker", stats.speaker, per_row=6)
    else:
        lines.append("per speaker: no speaker ids in this file")
    return "\n".join(lines)


def cmd_info(args) -> int:
    from delayprop.data.shd import file_stats

    for _label, path, _name, _split in _sources(args):
        stats = file_stats(path, progress=_bars(args))
        print(describe(stats))
    return 0


def cmd_prepare(args) -> int:
    from delayprop.data.shd import load_dataset, load_file

    progress = _bars(args)
    t_all = time.perf_counter()
    for label, path, name, split in _sources(args):
        t0 = time.perf_counter()
        if name:
            ds = load_dataset(name, split, data_dir=args.data_dir, dt=args.dt,
                              max_time=args.max_time, channels=args.channels,
                              binary=args.binary, cache_dir=args.cache_dir,
                              download=args.download, progress=progress, rebuild=args.rebuild)
        else:
            ds = load_file(path, dt=args.dt, max_time=args.max_time, channels=args.channels,
                           binary=args.binary, cache_dir=args.cache_dir, progress=progress,
                           rebuild=args.rebuild)
        secs = time.perf_counter() - t0
        how = "loaded from cache" if ds.from_cache else "parsed and binned"
        mb = ds.x.numel() / 1e6
        print(f"{label}: {len(ds)} samples -> x {tuple(ds.x.shape)} uint8 ({mb:.0f} MB), "
              f"{how} in {secs:.2f} s")
        if ds.dropped_spikes:
            print(f"  {ds.dropped_spikes} spikes at t >= {ds.max_time:g} s dropped")
        print(f"  cache: {ds.cache_path or 'none (not cached)'}")
    print(f"total {time.perf_counter() - t_all:.2f} s")
    sys.stdout.flush()
    return 0


def cmd_pack(args) -> int:
    from delayprop.data.packed import packed_name, save_packed
    from delayprop.data.shd import load_dataset

    out = Path(args.out).expanduser()
    for label, _path, name, split in _sources(args):
        ds = load_dataset(name, split, data_dir=args.data_dir, dt=args.dt,
                          max_time=args.max_time, channels=args.channels, binary=args.binary,
                          progress=not args.no_progress)
        dest = save_packed(ds, out / packed_name(name, split, args.dt, args.max_time,
                                                 args.channels, args.binary))
        print(f"{label}: {len(ds)} samples -> {dest} ({dest.stat().st_size / 1e6:.1f} MB)")
    return 0
