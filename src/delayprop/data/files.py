"""Which files hold a dataset: names, splits and where to look for them.

Every loader resolves its files here before reading them (:mod:`delayprop.data.reader`) and
caching the tensors (:mod:`delayprop.data.cache`):

* ``shd`` / ``ssc`` (:data:`SPLITS`): ``<name>_<split>.h5[.gz|.zip]`` in the data directory
  or its ``<name>/`` folder (:func:`find_file`); the published download is
  ``<name>_<split>.h5.gz`` (:func:`file_name`); a packed split (``delayprop data pack``) is
  ``<name>_<split>-<tag>.npz`` (:func:`packed_name`).
* your own SHD-format files: one ``*train.h5`` and at most one ``*test.h5`` in a folder
  (:func:`split_files`), or a training file and the test file named like it
  (:func:`matching_test_file`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from delayprop.errors import ConfigError, DataError

from .paths import PathLike
from .reader import num_steps_for

#: Splits per named dataset and their file stems.
SPLITS: Dict[str, Sequence[str]] = {"shd": ("train", "test"), "ssc": ("train", "valid", "test")}
#: Classes of the named datasets (a file with fewer labels is padded to these).
NUM_CLASSES = {"shd": 20, "ssc": 35}
#: The extensions of SHD-format files.
EXTENSIONS = (".h5", ".h5.gz", ".h5.zip")


def check_split(name: str, split: str) -> str:
    """Normalise and validate a dataset name / split pair; returns the split."""
    if name not in SPLITS:
        raise ConfigError(f"unknown dataset {name!r}; choose from {', '.join(SPLITS)}")
    split = {"val": "valid", "validation": "valid"}.get(split, split)
    if split not in SPLITS[name]:
        raise ConfigError(
            f"dataset {name!r} has no split {split!r}; choose from {', '.join(SPLITS[name])}"
        )
    return split


def find_file(name: str, split: str, data_dir: Path) -> Optional[Path]:
    """``<data_dir>/<name>_<split>.h5``, ``.h5.gz`` or ``.h5.zip`` (first that exists), or None.

    Also looks in ``<data_dir>/<name>/``, a common layout.
    """
    for folder in (data_dir, data_dir / name):
        for ext in EXTENSIONS:
            cand = folder / f"{name}_{split}{ext}"
            if cand.is_file():
                return cand
    return None


def file_name(name: str, split: str) -> str:
    """The published file name, e.g. ``shd_train.h5.gz``."""
    return f"{name}_{split}.h5.gz"


# --------------------------------------------------------------------------------------------
# Packed splits (`delayprop data pack`)


def pack_tag(dt: float, max_time: float, channels: int, binary: bool) -> str:
    """``dt10ms-T100-C140`` (``-bin`` appended for binary spikes)."""
    steps = num_steps_for(dt, max_time)
    return f"dt{float(dt) * 1000:g}ms-T{steps}-C{int(channels)}" + ("-bin" if binary else "")


def packed_name(name: str, split: str, dt: float, max_time: float, channels: int,
                binary: bool) -> str:
    """The packed file of one split with these binning settings, e.g.
    ``shd_train-dt10ms-T100-C140.npz``."""
    return f"{name}_{split}-{pack_tag(dt, max_time, channels, binary)}.npz"


def packed_files(name: str, split: str, data_dir: PathLike) -> List[Path]:
    """The packed files of one split in ``data_dir`` (any settings), sorted."""
    return sorted(Path(data_dir).glob(f"{name}_{split}-*.npz"))


# --------------------------------------------------------------------------------------------
# Your own SHD-format files


def strip_extension(name: str) -> str:
    """A file name without its SHD-format extension (``x_train.h5.gz`` -> ``x_train``)."""
    low = name.lower()
    for ext in EXTENSIONS:
        if low.endswith(ext):
            return name[: -len(ext)]
    return name


def names_split(stem: str, split: str) -> bool:
    """``train``, ``x_train``, ``x-train`` or ``x.train`` (any case) for split ``train``."""
    s = stem.lower()
    return s == split or s.endswith(("_" + split, "-" + split, "." + split))


def _candidates(folder: Path, split: str) -> List[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.name.lower().endswith(EXTENSIONS)
                  and names_split(strip_extension(p.name), split))


def matching_test_file(train: Path) -> Optional[Path]:
    """``x_train.h5.gz`` -> ``x_test.h5.gz`` (or .h5 / .h5.zip), if present."""
    stem = strip_extension(train.name)
    i = stem.lower().rfind("train")
    if i < 0:
        return None
    test_stem = stem[:i] + "test" + stem[i + len("train"):]
    ext = train.name[len(stem):]
    for e in (ext,) + tuple(x for x in EXTENSIONS if x != ext.lower()):
        cand = train.with_name(test_stem + e)
        if cand.is_file():
            return cand
    return None


def split_files(folder: Path) -> Tuple[Path, Optional[Path]]:
    """(training file, test file or None) of a folder of SHD-format files: exactly one
    ``*train.h5`` (``.gz`` / ``.zip`` too) and at most one ``*test.h5``, or the test file named
    like the training file. DataError otherwise."""
    train = _candidates(folder, "train")
    if not train:
        raise DataError(f"{folder}: no SHD-format training file (*train.h5, .h5.gz or .h5.zip) "
                        "here")
    if len(train) > 1:
        raise DataError(f"{folder}: several training files ({', '.join(p.name for p in train)});"
                        f" name one: --dataset {train[0]}")
    test = _candidates(folder, "test")
    if len(test) > 1:
        t = matching_test_file(train[0])
        if t is None:
            raise DataError(f"{folder}: several test files "
                            f"({', '.join(p.name for p in test)}) and none matches {train[0].name}")
        return train[0], t
    return train[0], (test[0] if test else None)


__all__ = [
    "EXTENSIONS", "NUM_CLASSES", "SPLITS", "check_split", "file_name", "find_file",
    "names_split", "pack_tag", "packed_files", "packed_name", "split_files", "strip_extension",
    "matching_test_file",
]
