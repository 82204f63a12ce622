"""Packed datasets (``delayprop data pack``): round trip, checksum, settings, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from shd_files import write_shd_file

from delayprop.cli import main
from delayprop.data import load_dataset
from delayprop.data.packed import load_packed, packed_name, save_packed
from delayprop.errors import DataError


def _raw(tmp_path, n=12):
    rng = np.random.default_rng(0)
    times = [np.sort(rng.uniform(0, 0.5, 40)) for _ in range(n)]
    units = [rng.integers(0, 700, 40) for _ in range(n)]
    d = tmp_path / "raw"
    d.mkdir()
    write_shd_file(d / "shd_train.h5", times, units, np.arange(n) % 5, np.arange(n) % 3)
    write_shd_file(d / "shd_test.h5", times[:4], units[:4], np.arange(4), np.zeros(4))
    return d


SET = dict(dt=0.01, max_time=0.4, channels=140)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Never the user's cache (~/.cache/delayprop): loading raw files writes tensor caches."""
    monkeypatch.setenv("DELAYPROP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DELAYPROP_DATA", str(tmp_path / "default-data"))


def test_pack_cli_round_trip_and_loading_without_raw_files(tmp_path):
    raw = _raw(tmp_path)
    out = tmp_path / "packed"
    assert main(["data", "pack", "shd", "--data-dir", str(raw), "--out", str(out),
                 "--max-time", "0.4", "--no-progress"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["shd_test-dt10ms-T40-C140.npz", "shd_train-dt10ms-T40-C140.npz"]
    for split in ("train", "test"):
        a = load_dataset("shd", split, data_dir=out, progress=False, **SET)
        b = load_dataset("shd", split, data_dir=raw, progress=False, cache=False, **SET)
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
        assert torch.equal(a.speaker, b.speaker)
        assert a.num_classes == b.num_classes == 20  # SHD keeps its 20 classes
        assert a.dropped_spikes == b.dropped_spikes > 0  # spikes past 0.4 s
    # other settings than the packed ones: not silently used
    with pytest.raises(DataError, match="other settings than dt10ms-T50-C140"):
        load_dataset("shd", "train", data_dir=out, dt=0.01, max_time=0.5, channels=140)


def test_damaged_or_mismatched_packed_file_is_an_error(tmp_path):
    ds = load_dataset("shd", "train", data_dir=_raw(tmp_path), progress=False, cache=False, **SET)
    path = save_packed(ds, tmp_path / packed_name("shd", "train", **SET, binary=False))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    with pytest.raises(DataError, match="max_time"):
        load_packed(path, max_time=0.5)
    # flip the spike tensor inside the archive: the checksum catches it
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["x"] = arrays["x"].copy()
    arrays["x"][0, 0, 0] ^= 1
    np.savez_compressed(path, **arrays)
    with pytest.raises(DataError, match="checksum"):
        load_packed(path)
    path.write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="not a readable packed dataset"):
        load_packed(path)


def test_training_runs_from_packed_files_without_downloading(tmp_path):
    raw = _raw(tmp_path, n=24)
    out = tmp_path / "packed"
    assert main(["data", "pack", "shd", "--data-dir", str(raw), "--out", str(out),
                 "--max-time", "0.4", "--no-progress"]) == 0
    run = tmp_path / "run"
    assert main(["train", "--dataset", "shd", "--data-dir", str(out), "--max-time", "0.4",
                 "--n-hidden", "4", "--epochs", "1", "--val-fraction", "0.25",
                 "--run-dir", str(run), "--quiet", "--no-plots", "--no-download"]) == 0
    assert (run / "final.json").exists()
