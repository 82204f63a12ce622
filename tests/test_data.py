"""delayprop.data: reading, binning, pooling, caching, bad input, splits, batches, download.

Every file is a tiny SHD-format file built in tmp_path; nothing touches the network.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from shd_files import write_shd_file

import delayprop.data.reader as reader_mod
import delayprop.data.remote as dl
import delayprop.data.tensors as tensors_mod
from delayprop.data import (
    Augment,
    SpikeTensorDataset,
    batches,
    bin_spikes,
    default_data_dir,
    download,
    load_dataset,
    load_file,
    train_val_split,
)
from delayprop.data.paths import MARKER, default_cache_dir, is_writable_dir, mark_data_dir
from delayprop.errors import ConfigError, DataError

KEYS = [f"c{i}".encode() for i in range(4)]


def write_shd(path, times, units, labels, speakers=None, keys=KEYS, **kw) -> Path:
    """An SHD-format file (``.h5``, ``.h5.gz`` or ``.h5.zip`` by the name's ending)."""
    return write_shd_file(path, times, units, labels, speakers, keys, **kw)


def random_spikes(n, seed=0, max_t=1.2, classes=4, speakers=3, min_spikes=1, max_spikes=80):
    rng = np.random.default_rng(seed)
    times, units = [], []
    for _ in range(n):
        k = int(rng.integers(min_spikes, max_spikes))
        times.append(np.sort(rng.uniform(0, max_t, k)))
        units.append(rng.integers(0, 700, k))
    labels = np.arange(n) % classes
    spk = rng.integers(0, speakers, n)
    return times, units, labels, spk


def naive_bin(times, units, dt, steps, channels, binary=False):
    """Reference: one spike at a time."""
    x = np.zeros((len(times), steps, channels), dtype=np.int64)
    g = 700 // channels
    for i, (ts, us) in enumerate(zip(times, units)):
        for t, u in zip(ts, us):
            s = int(np.floor(float(t) / dt + 1e-6))
            if s < steps:
                x[i, s, int(u) // g] += 1
    return np.minimum(x, 1 if binary else 255).astype(np.uint8)


def snapshot(*dirs):
    """{path: bytes} of every file under ``dirs`` (to check nothing was written)."""
    out = {}
    for d in dirs:
        d = Path(d)
        if d.exists():
            for p in sorted(d.rglob("*")):
                if p.is_file():
                    out[str(p)] = p.read_bytes()
    return out


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    """Keep defaults away from the real home directory."""
    monkeypatch.setenv("DELAYPROP_DATA", str(tmp_path / "default-data"))
    monkeypatch.setenv("DELAYPROP_CACHE", str(tmp_path / "default-cache"))
    monkeypatch.delenv("DELAYPROP_DATA_URL", raising=False)


# --------------------------------------------------------------------------- binning


HAND_TIMES = [[0.0, 0.004, 0.015, 0.015, 0.03, 0.049, 0.06], [0.011]]
HAND_UNITS = [[0, 1, 2, 3, 10, 699, 5], [698]]


def test_binning_hand_computed_700(tmp_path):
    p = write_shd(tmp_path / "a.h5", HAND_TIMES, HAND_UNITS, [1, 3], tdtype=np.float64)
    ds = load_file(p, dt=0.01, max_time=0.05, channels=700, cache_dir=tmp_path / "c",
                   progress=False)
    assert ds.x.dtype == torch.uint8 and ds.x.shape == (2, 5, 700)
    expected = torch.zeros(2, 5, 700, dtype=torch.uint8)
    for s, c in [(0, 0), (0, 1), (1, 2), (1, 3), (3, 10), (4, 699)]:  # t=0.06 is dropped
        expected[0, s, c] += 1
    expected[1, 1, 698] = 1
    assert torch.equal(ds.x, expected)
    assert ds.dropped_spikes == 1
    assert ds.y.tolist() == [1, 3] and ds.y.dtype == torch.int64
    assert ds.speaker.tolist() == [-1, -1]
    assert ds.class_names == ["c0", "c1", "c2", "c3"] and ds.num_classes == 4
    assert ds.dt == 0.01 and ds.num_steps == 5 and ds.channels == 700 and len(ds) == 2


def test_pooling_sums_groups_and_binary_clips(tmp_path):
    p = write_shd(tmp_path / "a.h5", HAND_TIMES, HAND_UNITS, [1, 3], tdtype=np.float64)
    ds = load_file(p, dt=0.01, max_time=0.05, channels=350, cache=False, progress=False)
    assert ds.x.shape == (2, 5, 350)
    assert ds.x[0, 0, 0] == 2 and ds.x[0, 1, 1] == 2 and ds.x[0, 3, 5] == 1
    assert ds.x[0, 4, 349] == 1 and ds.x[1, 1, 349] == 1 and int(ds.x.sum()) == 7
    db = load_file(p, dt=0.01, max_time=0.05, channels=350, binary=True, cache=False,
                   progress=False)
    assert db.binary and int(db.x.max()) == 1
    assert torch.equal(db.x, ds.x.clamp(max=1))
    d140 = load_file(p, dt=0.01, max_time=0.05, channels=140, cache=False, progress=False)
    assert d140.x[0, 0, 0] == 2 and d140.x[0, 1, 0] == 2 and d140.x[0, 3, 2] == 1
    assert d140.x[0, 4, 139] == 1


def test_counts_saturate_at_255():
    times = np.full(300, 0.001)
    units = np.full(300, 7)
    x, dropped = bin_spikes(times, units, np.array([300]), 0.01, 2, 700)
    assert x[0, 0, 7] == 255 and dropped == 0 and x.dtype == np.uint8


def test_random_files_match_naive_binning_all_formats(tmp_path):
    times, units, labels, spk = random_spikes(30, seed=1)
    ref = naive_bin([np.asarray(t, np.float16).astype(np.float64) for t in times], units,
                    0.01, 100, 140)
    for name in ("r.h5", "r.h5.gz", "r.h5.zip"):
        p = write_shd(tmp_path / name, times, units, labels, spk, tdtype=np.float16)
        ds = load_file(p, dt=0.01, max_time=1.0, channels=140, cache=False, progress=False)
        assert np.array_equal(ds.x.numpy(), ref), name
        assert ds.speaker.tolist() == list(spk)


def test_chunked_binning_matches(tmp_path, monkeypatch):
    times, units, labels, spk = random_spikes(25, seed=2)
    p = write_shd(tmp_path / "r.h5", times, units, labels, spk)
    full = load_file(p, dt=0.005, max_time=1.3, channels=70, cache=False, progress=False)
    monkeypatch.setattr(tensors_mod, "_BLOCK_BYTES", 1)  # one sample per block
    small = load_file(p, dt=0.005, max_time=1.3, channels=70, cache=False, progress=False)
    assert torch.equal(full.x, small.x) and full.x.shape == (25, 260, 70)


def test_time_steps_and_settings():
    assert reader_mod.num_steps_for(0.01, 1.4) == 140
    assert reader_mod.num_steps_for(0.1, 1.1) == 11
    assert reader_mod.num_steps_for(0.01, 1.405) == 141
    for bad in [dict(channels=300), dict(channels=0), dict(channels=1400), dict(dt=0),
                dict(dt=-1), dict(max_time=float("nan")), dict(channels=140.0)]:
        kw = dict(dt=0.01, max_time=1.4, channels=140)
        kw.update(bad)
        with pytest.raises(ConfigError):
            reader_mod.check_settings(**kw)


def test_subset_and_getitem(tmp_path):
    times, units, labels, spk = random_spikes(10, seed=3)
    p = write_shd(tmp_path / "r.h5", times, units, labels, spk)
    ds = load_file(p, cache=False, progress=False)
    sub = ds.subset([3, 1])
    assert isinstance(sub, SpikeTensorDataset) and len(sub) == 2
    assert torch.equal(sub.x[0], ds.x[3]) and sub.y.tolist() == [ds.y[3], ds.y[1]]
    assert sub.speaker.tolist() == [ds.speaker[3], ds.speaker[1]]
    assert len(ds.subset(torch.tensor([0, 2]))) == 2 and len(ds.subset(np.array([5]))) == 1
    assert len(ds.subset(ds.y == 0)) == int((ds.y == 0).sum())
    x0, y0 = ds[0]
    assert x0.shape == (140, 140) and int(y0) == labels[0]


# --------------------------------------------------------------------------- cache


def test_second_load_uses_cache_without_hdf5(tmp_path, monkeypatch):
    times, units, labels, spk = random_spikes(12, seed=4)
    p = write_shd(tmp_path / "d" / "shd_train.h5.gz", times, units, labels, spk)
    cdir = tmp_path / "cache"
    first = load_file(p, cache_dir=cdir, progress=False)
    assert not first.from_cache and first.cache_path and Path(first.cache_path).is_file()
    # no temp left (beside the entry: the memo of the file's sha256, data/cache.py)
    assert [q.name for q in cdir.iterdir() if not q.name.endswith(".sha256.json")] == [
        Path(first.cache_path).name]

    def boom(*a, **k):
        raise AssertionError("HDF5/gzip opened on a cached load")

    monkeypatch.setattr(h5py, "File", boom)
    monkeypatch.setattr(gzip, "open", boom)
    second = load_file(p, cache_dir=cdir, progress=False)
    assert second.from_cache
    assert torch.equal(first.x, second.x) and torch.equal(first.y, second.y)
    assert torch.equal(first.speaker, second.speaker)
    assert second.class_names == first.class_names and second.source == str(p)
    # different settings -> a different entry (would need HDF5 -> boom)
    with pytest.raises(AssertionError):
        load_file(p, cache_dir=cdir, channels=70, progress=False)


def test_cache_key_tracks_settings_and_file(tmp_path):
    times, units, labels, spk = random_spikes(5, seed=5)
    p = write_shd(tmp_path / "f.h5", times, units, labels, spk)
    cdir = tmp_path / "c"
    load_file(p, cache_dir=cdir, progress=False)
    load_file(p, cache_dir=cdir, binary=True, progress=False)
    load_file(p, cache_dir=cdir, dt=0.02, progress=False)
    assert len(list(cdir.glob("*.pt"))) == 3
    # the file changes -> not served from the stale cache
    times2, units2, labels2, spk2 = random_spikes(5, seed=6)
    write_shd(p, times2, units2, labels2, spk2)
    os.utime(p, ns=(1, 1))
    ds = load_file(p, cache_dir=cdir, progress=False)
    assert not ds.from_cache
    assert np.array_equal(ds.x.numpy(), naive_bin(times2, units2, 0.01, 140, 140))
    assert load_file(p, cache_dir=cdir, progress=False, rebuild=True).from_cache is False


def test_corrupt_cache_is_rebuilt(tmp_path, capsys):
    times, units, labels, spk = random_spikes(5, seed=7)
    p = write_shd(tmp_path / "f.h5", times, units, labels, spk)
    first = load_file(p, cache_dir=tmp_path / "c", progress=False)
    Path(first.cache_path).write_bytes(b"garbage")
    again = load_file(p, cache_dir=tmp_path / "c", progress=False)
    assert not again.from_cache and torch.equal(again.x, first.x)
    assert "unreadable cache" in capsys.readouterr().err
    assert load_file(p, cache_dir=tmp_path / "c", progress=False).from_cache


def test_default_cache_next_to_data_and_readonly_fallback(tmp_path, monkeypatch):
    times, units, labels, spk = random_spikes(6, seed=8)
    d = tmp_path / "data"
    write_shd(d / "shd_train.h5.gz", times, units, labels, spk)
    # a writable data directory delayprop did not download into is never written to (root
    # can write anything): the cache goes to the default cache directory
    before = snapshot(d)
    ds = load_dataset("shd", "train", data_dir=d, progress=False)
    assert Path(ds.cache_path).parent == default_cache_dir()
    assert snapshot(d) == before and not (d / "cache").exists()
    # one it downloaded into (the marker of `delayprop data download`) keeps it next to the data
    mark_data_dir(d)
    ds = load_dataset("shd", "train", data_dir=d, progress=False)
    assert Path(ds.cache_path).parent == d / "cache"
    # a read-only data directory: the cache goes to the default cache directory
    ro = tmp_path / "ro"
    write_shd(ro / "shd_train.h5.gz", times, units, labels, spk)
    write_shd(ro / "shd_test.h5", times, units, labels, spk)
    os.chmod(ro, 0o555)
    try:
        assert not is_writable_dir(ro / "cache")
        before = snapshot(ro)
        for split in ("train", "test"):
            ds = load_dataset("shd", split, data_dir=ro, progress=False)
            assert Path(ds.cache_path).parent == default_cache_dir() == tmp_path / "default-cache"
            assert load_dataset("shd", split, data_dir=ro, progress=False).from_cache
        assert snapshot(ro) == before and not (ro / "cache").exists()
        assert load_file(ro / "shd_test.h5", progress=False).from_cache  # same cache as above
    finally:
        os.chmod(ro, 0o755)


def test_default_data_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DELAYPROP_DATA", str(tmp_path / "x"))
    assert default_data_dir() == tmp_path / "x"
    monkeypatch.delenv("DELAYPROP_DATA")
    assert default_data_dir() == Path.home() / ".cache" / "delayprop" / "data"
    times, units, labels, spk = random_spikes(4, seed=9)
    monkeypatch.setenv("DELAYPROP_DATA", str(tmp_path / "env"))
    write_shd(tmp_path / "env" / "ssc_valid.h5", times, units, labels, spk, keys=None)
    ds = load_dataset("ssc", "valid", progress=False)
    assert ds.num_classes == 35 and len(ds.class_names) == 35
    with pytest.raises(DataError, match="ssc_test"):
        load_dataset("ssc", "test", progress=False)
    with pytest.raises(ConfigError):
        load_dataset("shd", "valid", progress=False)
    with pytest.raises(ConfigError):
        load_dataset("mnist", "train", progress=False)


# --------------------------------------------------------------------------- bad input


def _good(tmp_path, name="good.h5", **kw):
    times, units, labels, spk = random_spikes(6, seed=10)
    return write_shd(tmp_path / name, times, units, labels, spk, **kw), (times, units, labels)


def _expect_error(path, match, tmp_path, sample=None):
    cdir = tmp_path / "cache"
    cdir.mkdir(exist_ok=True)
    (cdir / "keep.pt").write_bytes(b"precious")
    before = snapshot(cdir, Path(path).parent)
    with pytest.raises(DataError) as ei:
        load_file(path, cache_dir=cdir, progress=False)
    msg = str(ei.value)
    assert str(path) in msg and "\n" not in msg
    assert match in msg, msg
    if sample is not None:
        assert f"sample {sample}" in msg, msg
    assert snapshot(cdir, Path(path).parent) == before
    return msg


def test_truncated_and_corrupt_gzip(tmp_path):
    p, _ = _good(tmp_path, "t.h5.gz")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    _expect_error(p, "gzip", tmp_path)
    q = tmp_path / "garbage.h5.gz"
    q.write_bytes(b"this is not gzip at all" * 10)
    _expect_error(q, "gzip", tmp_path)
    r = tmp_path / "flip.h5.gz"
    bad = bytearray(data)
    for i in range(len(bad) // 3, len(bad) // 3 + 64):
        bad[i] ^= 0xFF
    r.write_bytes(bytes(bad))
    with pytest.raises(DataError, match="flip.h5.gz"):
        load_file(r, cache_dir=tmp_path / "cache2", progress=False)
    assert not (tmp_path / "cache2").exists()


def test_truncated_hdf5_and_zip(tmp_path):
    p, _ = _good(tmp_path, "t.h5")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    _expect_error(p, "HDF5", tmp_path)
    z, _ = _good(tmp_path, "z.h5.zip")
    zd = z.read_bytes()
    z.write_bytes(zd[: len(zd) // 2])
    _expect_error(z, "zip", tmp_path)
    # gz around a broken HDF5
    g = tmp_path / "inner.h5.gz"
    g.write_bytes(gzip.compress(data[: len(data) // 2]))
    _expect_error(g, "HDF5", tmp_path)


def test_zip_with_two_members(tmp_path):
    z = tmp_path / "two.h5.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("a.h5", b"x")
        zf.writestr("b.h5", b"y")
    _expect_error(z, "exactly one .h5", tmp_path)


@pytest.mark.parametrize("key", ["spikes/times", "spikes/units", "labels"])
def test_missing_keys(tmp_path, key):
    times, units, labels, spk = random_spikes(4, seed=11)
    p = write_shd(tmp_path / "m.h5.gz", times, units, labels, spk, omit=(key,))
    _expect_error(p, f"missing key '{key}'", tmp_path)


def test_unit_out_of_range(tmp_path):
    times, units, labels, spk = random_spikes(5, seed=12)
    units[3] = units[3].copy()
    units[3][-1] = 700
    p = write_shd(tmp_path / "u.h5.gz", times, units, labels, spk)
    _expect_error(p, "unit index 700", tmp_path, sample=3)


@pytest.mark.parametrize("value,sample", [(-0.01, 2), (float("nan"), 4), (float("inf"), 0)])
def test_bad_times(tmp_path, value, sample):
    times, units, labels, spk = random_spikes(5, seed=13)
    times[sample] = times[sample].copy()
    times[sample][0] = value
    p = write_shd(tmp_path / "t.h5", times, units, labels, spk, tdtype=np.float16)
    _expect_error(p, "invalid spike time", tmp_path, sample=sample)


def test_bad_sample_in_a_later_block(tmp_path, monkeypatch):
    monkeypatch.setattr(tensors_mod, "_BLOCK_BYTES", 1)
    times, units, labels, spk = random_spikes(9, seed=14)
    units[7] = units[7].copy()
    units[7][0] = 999
    p = write_shd(tmp_path / "late.h5", times, units, labels, spk)
    _expect_error(p, "unit index 999", tmp_path, sample=7)


def test_empty_sample(tmp_path):
    times, units, labels, spk = random_spikes(5, seed=15)
    times[1], units[1] = np.zeros(0), np.zeros(0)
    p = write_shd(tmp_path / "e.h5.zip", times, units, labels, spk)
    _expect_error(p, "empty sample", tmp_path, sample=1)


def test_inconsistent_lengths_and_labels(tmp_path):
    times, units, labels, spk = random_spikes(5, seed=16)
    units[2] = units[2][:-1]
    p = write_shd(tmp_path / "len.h5", times, units, labels, spk)
    _expect_error(p, "spike units", tmp_path, sample=2)
    times, units, labels, spk = random_spikes(5, seed=16)
    p = write_shd(tmp_path / "lab.h5", times, units, labels[:4], spk[:4])
    _expect_error(p, "'labels'", tmp_path)
    p = write_shd(tmp_path / "cls.h5", times, units, [0, 1, 2, 3, 9], spk)
    _expect_error(p, "label 9", tmp_path, sample=4)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_file(tmp_path / "nope.h5", progress=False)
    with pytest.raises(DataError, match="delayprop data download shd"):
        load_dataset("shd", "train", data_dir=tmp_path / "empty", progress=False)


# --------------------------------------------------------------------------- split


def test_stratified_split():
    rng = np.random.default_rng(0)
    y = np.concatenate([np.full(n, c) for c, n in enumerate([40, 37, 51, 12, 60])])
    rng.shuffle(y)
    tr, va = train_val_split(torch.from_numpy(y), None, val_fraction=0.1, seed=3)
    assert tr.dtype == torch.int64 and va.dtype == torch.int64
    assert len(set(tr.tolist()) & set(va.tolist())) == 0
    assert sorted(tr.tolist() + va.tolist()) == list(range(len(y)))
    assert len(va) == round(0.1 * len(y))
    for c, n in enumerate([40, 37, 51, 12, 60]):
        assert abs(int((torch.from_numpy(y)[va] == c).sum()) - 0.1 * n) < 1
    tr2, va2 = train_val_split(y, None, val_fraction=0.1, seed=3)
    assert torch.equal(va, va2) and torch.equal(tr, tr2)
    _, va3 = train_val_split(y, None, val_fraction=0.1, seed=4)
    assert not torch.equal(va, va3)
    tr0, va0 = train_val_split(y, None, val_fraction=0.0)
    assert len(va0) == 0 and len(tr0) == len(y)
    for bad in (1.0, -0.1, "x"):
        with pytest.raises(ConfigError):
            train_val_split(y, None, val_fraction=bad)


def test_speaker_holdout():
    rng = np.random.default_rng(1)
    spk = rng.integers(0, 8, 400)
    y = rng.integers(0, 20, 400)
    tr, va = train_val_split(y, spk, val_fraction=0.2, seed=0, by_speaker=True)
    s_tr, s_va = set(spk[tr.numpy()]), set(spk[va.numpy()])
    assert s_tr and s_va and not (s_tr & s_va)
    assert len(va) >= 0.2 * 400 and len(tr) + len(va) == 400
    tr2, va2 = train_val_split(y, torch.from_numpy(spk), 0.2, seed=0, by_speaker=True)
    assert torch.equal(va, va2)
    _, va3 = train_val_split(y, spk, val_fraction=0.2, seed=0, val_speakers=[2, 5])
    assert set(spk[va3.numpy()]) == {2, 5} and len(va3) == int(np.isin(spk, [2, 5]).sum())
    with pytest.raises(ConfigError):
        train_val_split(y, np.full(400, -1), 0.1, by_speaker=True)
    with pytest.raises(ConfigError):
        train_val_split(y, spk, 0.1, val_speakers=[99])
    with pytest.raises(ConfigError):
        train_val_split(y, spk, 0.1, val_speakers=list(range(8)))


# --------------------------------------------------------------------------- batches


def _index_dataset(n=23, t=6, c=10, binary=False):
    x = torch.zeros(n, t, c, dtype=torch.uint8)
    x[:, 0, 0] = torch.arange(n, dtype=torch.uint8)  # sample id in x
    return SpikeTensorDataset(x=x, y=torch.arange(n) % 3, speaker=torch.zeros(n, dtype=torch.long),
                              dt=0.01, num_classes=3, class_names=["a", "b", "c"], source="mem",
                              binary=binary)


def test_batches_cover_and_are_seeded():
    ds = _index_dataset()
    out = list(batches(ds, batch_size=5, shuffle=True, seed=7, dtype=torch.float64))
    assert [len(yb) for _, yb in out] == [5, 5, 5, 5, 3]
    ids = torch.cat([xb[:, 0, 0] for xb, _ in out]).long()
    assert sorted(ids.tolist()) == list(range(23)) and ids.tolist() != list(range(23))
    assert out[0][0].dtype == torch.float64 and out[0][0].shape == (5, 6, 10)
    for xb, yb in out:
        assert torch.equal(yb, ds.y[xb[:, 0, 0].long()])
    again = torch.cat([xb[:, 0, 0] for xb, _ in batches(ds, 5, True, 7)]).long()
    assert torch.equal(again, ids)
    other = torch.cat([xb[:, 0, 0] for xb, _ in batches(ds, 5, True, 8)]).long()
    assert not torch.equal(other, ids)
    plain = torch.cat([xb[:, 0, 0] for xb, _ in batches(ds, 5, shuffle=False)]).long()
    assert plain.tolist() == list(range(23))
    assert len(list(batches(ds, 5, drop_last=True, seed=0))) == 4
    with pytest.raises(ConfigError):
        list(batches(ds, 0))


def test_augment_channel_and_time_shift():
    ds = _index_dataset(n=4, t=8, c=12)
    ds.x.zero_()
    ds.x[:, 3, 5] = 2
    aug = Augment(channel_shift=3)
    (xb, _), = list(batches(ds, 4, shuffle=False, seed=1, augment=aug))
    assert xb.sum() == 8  # no spike leaves the 12 channels with |shift| <= 3
    pos = xb[:, 3, :].argmax(dim=1)
    assert ((pos - 5).abs() <= 3).all() and (xb[:, 3].amax(dim=1) == 2).all()
    (xb2, _), = list(batches(ds, 4, shuffle=False, seed=1, augment=aug))
    assert torch.equal(xb, xb2)  # seeded
    (xt, _), = list(batches(ds, 4, shuffle=False, seed=2, augment=Augment(time_shift=2)))
    assert ((xt[:, :, 5].argmax(dim=1) - 3).abs() <= 2).all() and xt.sum() == 8
    (xn, _), = list(batches(ds, 4, shuffle=False, seed=2, augment=Augment()))
    assert torch.equal(xn, ds.x.float())
    with pytest.raises(ConfigError):
        Augment(channel_shift=-1)


def test_augment_time_jitter_moves_spikes_and_respects_binary():
    ds = _index_dataset(n=6, t=40, c=5)
    ds.x.zero_()
    ds.x[:, 20, :] = 3
    (xb, _), = list(batches(ds, 6, shuffle=False, seed=0, augment=Augment(time_jitter=2.0)))
    assert xb.sum() == ds.x.sum()  # far from the edges: nothing dropped
    assert xb[:, 20, :].sum() < ds.x.sum()  # some moved
    steps = torch.arange(40, dtype=torch.float32)
    mean_t = (xb.sum(dim=2) * steps).sum() / xb.sum()
    assert abs(float(mean_t) - 20) < 1.0
    dsb = _index_dataset(n=6, t=40, c=5, binary=True)
    dsb.x.zero_()
    dsb.x[:, 18:23, :] = 1
    (xbb, _), = list(batches(dsb, 6, shuffle=False, seed=0, augment=Augment(time_jitter=3.0)))
    assert float(xbb.max()) == 1.0


# --------------------------------------------------------------------------- download


def _mirror(tmp_path, payload=b"spike data " * 5000, listed_md5=None):
    m = tmp_path / "mirror"
    m.mkdir()
    (m / "shd_train.h5.gz").write_bytes(payload)
    (m / "shd_test.h5.gz").write_bytes(payload[::-1])
    md5 = listed_md5 or hashlib.md5(payload).hexdigest()
    (m / "md5sums.txt").write_text(
        f"{md5}  shd_train.h5.gz\n{hashlib.md5(payload[::-1]).hexdigest()}  shd_test.h5.gz\n"
    )
    return m


def test_download_via_file_url(tmp_path):
    m = _mirror(tmp_path)
    d = tmp_path / "data"
    paths = download("shd", data_dir=d, base_url=m.as_uri(), progress=False)
    assert [p.name for p in paths] == ["shd_train.h5.gz", "shd_test.h5.gz"]
    assert paths[0].read_bytes() == (m / "shd_train.h5.gz").read_bytes()
    assert sorted(p.name for p in d.iterdir()) == [MARKER, "shd_test.h5.gz", "shd_train.h5.gz"]
    # present and valid: kept without downloading
    (m / "shd_train.h5.gz").unlink()
    assert download("shd", data_dir=d, base_url=m.as_uri(), progress=False)[0] == paths[0]


def test_download_checksum_mismatch_leaves_nothing(tmp_path):
    m = _mirror(tmp_path, listed_md5="0" * 32)
    d = tmp_path / "data"
    with pytest.raises(DataError, match="checksum mismatch"):
        download("shd", data_dir=d, splits=["train"], base_url=m.as_uri(), progress=False)
    assert list(d.iterdir()) == []
    # an existing file is not replaced by a bad download
    (d / "shd_train.h5.gz").write_bytes(b"old")
    with pytest.raises(DataError, match="shd_train.h5.gz"):
        download("shd", data_dir=d, splits=["train"], base_url=m.as_uri(), progress=False)
    assert (d / "shd_train.h5.gz").read_bytes() == b"old" and len(list(d.iterdir())) == 1


class _FakeResponse:
    def __init__(self, chunks, length=None, fail_after=None):
        self.chunks = list(chunks)
        self.headers = {"Content-Length": str(length)} if length is not None else {}
        self.fail_after = fail_after
        self.calls = 0

    def read(self, n=-1):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        return self.chunks.pop(0) if self.chunks else b""

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


@pytest.mark.parametrize("mode", ["reset", "short"])
def test_download_interrupted_leaves_nothing(tmp_path, monkeypatch, mode):
    def opener(url, timeout):
        if url.endswith("md5sums.txt"):
            raise OSError("no checksums here")
        if mode == "reset":
            return _FakeResponse([b"a" * 100, b"b" * 100], length=1000, fail_after=1)
        return _FakeResponse([b"a" * 100], length=1000)

    monkeypatch.setattr(dl, "_urlopen", opener)
    d = tmp_path / "data"
    with pytest.raises(DataError, match="interrupted") as ei:
        download("shd", data_dir=d, splits=["test"], progress=False)
    assert "shd_test.h5.gz" in str(ei.value)
    assert list(d.iterdir()) == []


def test_download_unverified_when_no_checksums(tmp_path, monkeypatch, capsys):
    def opener(url, timeout):
        if url.endswith("md5sums.txt"):
            raise OSError("offline")
        return _FakeResponse([b"x" * 10, b"y" * 5], length=15)

    monkeypatch.setattr(dl, "_urlopen", opener)
    p = download("shd", data_dir=tmp_path / "d", splits=["train"], progress=False)[0]
    assert p.read_bytes() == b"x" * 10 + b"y" * 5
    assert "not be verified" in capsys.readouterr().err


def test_load_dataset_download_from_mirror(tmp_path, monkeypatch):
    times, units, labels, spk = random_spikes(5, seed=17)
    src = write_shd(tmp_path / "src" / "shd_test.h5.gz", times, units, labels, spk)
    m = tmp_path / "mirror"
    m.mkdir()
    (m / "shd_test.h5.gz").write_bytes(src.read_bytes())
    (m / "md5sums.txt").write_text(f"{hashlib.md5(src.read_bytes()).hexdigest()} *shd_test.h5.gz")
    monkeypatch.setenv("DELAYPROP_DATA_URL", m.as_uri())
    d = tmp_path / "data"
    with pytest.raises(DataError):
        load_dataset("shd", "test", data_dir=d, progress=False)
    ds = load_dataset("shd", "test", data_dir=d, download=True, progress=False)
    assert len(ds) == 5 and (d / "shd_test.h5.gz").is_file()


def test_parse_md5sums():
    text = "d41d8cd98f00b204e9800998ecf8427e  ./a.h5.gz\nbad line\nXYZ  b\n" \
           "D41D8CD98F00B204E9800998ECF8427E *b.h5.gz\n"
    assert dl.parse_md5sums(text) == {"a.h5.gz": "d41d8cd98f00b204e9800998ecf8427e",
                                      "b.h5.gz": "d41d8cd98f00b204e9800998ecf8427e"}
