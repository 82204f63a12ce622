"""``delayprop data download|info|prepare`` through ``delayprop.cli.main``: exit codes, output,
one-line errors without traceback. Tiny files in tmp_path; no network."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from shd_files import write_shd_file

from delayprop.cli import main


def write_shd(path, n=8, seed=0, bad_unit_at=None, speakers=True):
    """A small SHD-format file (gzip if the name ends in .gz) with 4 classes and 3 speakers."""
    rng = np.random.default_rng(seed)
    times, units = [], []
    for i in range(n):
        k = int(rng.integers(5, 50))
        times.append(np.sort(rng.uniform(0, 1.0, k)))
        u = rng.integers(0, 700, k)
        if i == bad_unit_at:
            u[0] = 700
        units.append(u)
    return write_shd_file(path, times, units, np.arange(n) % 4,
                          speakers=np.arange(n) % 3 if speakers else None,
                          keys=[b"null", b"eins", b"zwei", b"drei"], tdtype=np.float16)


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("DELAYPROP_DATA", str(tmp_path / "default-data"))
    monkeypatch.setenv("DELAYPROP_CACHE", str(tmp_path / "default-cache"))
    monkeypatch.delenv("DELAYPROP_DATA_URL", raising=False)


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("delayprop: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_info(tmp_path, capsys):
    p = write_shd(tmp_path / "shd_train.h5.gz", n=9)
    rc, out, _ = run(capsys, "data", "info", str(p), "--no-progress")
    assert rc == 0
    assert "samples 9, classes 4" in out and "per class (4)" in out and "per speaker (3)" in out
    assert "spikes/sample" in out and "duration" in out and "zwei" in out
    q = write_shd(tmp_path / "nospk.h5", n=4, speakers=False)
    rc, out, _ = run(capsys, "data", "info", str(q), "--no-progress")
    assert rc == 0 and "no speaker ids" in out
    rc, out, _ = run(capsys, "data", "info", "shd", "--data-dir", str(tmp_path), "--no-progress")
    assert rc == 0 and out.count("samples 9") == 1  # only the train file exists


def test_info_bad_file(tmp_path, capsys):
    p = write_shd(tmp_path / "bad.h5.gz", n=6, bad_unit_at=4)
    rc, _, err = run(capsys, "data", "info", str(p), "--no-progress")
    line = one_line_error(err)
    assert rc == 2 and str(p) in line and "sample 4" in line and "unit index 700" in line
    t = tmp_path / "trunc.h5.gz"
    t.write_bytes(p.read_bytes()[:100])
    rc, _, err = run(capsys, "data", "info", str(t))
    assert rc == 2 and str(t) in one_line_error(err)
    rc, _, err = run(capsys, "data", "info", str(tmp_path / "missing.h5"))
    assert rc == 2 and "no such file" in one_line_error(err)


def test_prepare_file_then_cached(tmp_path, capsys):
    p = write_shd(tmp_path / "d" / "x.h5.gz", n=7)
    c = tmp_path / "cache"
    args = ["data", "prepare", str(p), "--dt", "0.02", "--max-time", "1.0", "--channels", "70",
            "--cache-dir", str(c), "--no-progress"]
    rc, out, _ = run(capsys, *args)
    assert rc == 0 and "(7, 50, 70)" in out and "parsed and binned" in out
    assert len(list(c.glob("*.pt"))) == 1
    rc, out, _ = run(capsys, *args)
    assert rc == 0 and "loaded from cache" in out
    rc, out, _ = run(capsys, *args, "--rebuild")
    assert rc == 0 and "parsed and binned" in out
    rc, out, _ = run(capsys, *args, "--binary")
    assert rc == 0 and len(list(c.glob("*.pt"))) == 2


def test_prepare_dataset_by_name(tmp_path, capsys):
    d = tmp_path / "data"
    write_shd(d / "shd_train.h5.gz", n=8, seed=1)
    write_shd(d / "shd_test.h5", n=5, seed=2)
    rc, out, _ = run(capsys, "data", "prepare", "shd", "--data-dir", str(d), "--no-progress")
    assert rc == 0 and "shd/train: 8 samples" in out and "shd/test: 5 samples" in out
    # not downloaded by delayprop: the data directory is left alone, the cache is the default
    assert len(list((tmp_path / "default-cache").glob("*.pt"))) == 2
    assert not (d / "cache").exists()
    rc, out, _ = run(capsys, "data", "prepare", "shd", "--data-dir", str(d), "--split", "test",
                     "--no-progress")
    assert rc == 0 and "shd/test" in out and "shd/train" not in out and "from cache" in out


def test_prepare_errors(tmp_path, capsys):
    p = write_shd(tmp_path / "x.h5", n=4)
    c = tmp_path / "cache"
    rc, _, err = run(capsys, "data", "prepare", str(p), "--channels", "300", "--cache-dir", str(c))
    assert rc == 2 and "channels" in one_line_error(err) and not c.exists()
    b = write_shd(tmp_path / "b.h5", n=4, bad_unit_at=2)
    rc, _, err = run(capsys, "data", "prepare", str(b), "--cache-dir", str(c), "--no-progress")
    line = one_line_error(err)
    assert rc == 2 and str(b) in line and "sample 2" in line and not c.exists()
    rc, _, err = run(capsys, "data", "prepare", "shd", "--data-dir", str(tmp_path / "none"))
    assert rc == 2 and "delayprop data download shd" in one_line_error(err)
    rc, _, err = run(capsys, "data", "prepare", str(p), "--split", "train")
    assert rc == 2


def test_download_command(tmp_path, capsys):
    m = tmp_path / "mirror"
    m.mkdir()
    payload = b"0123456789" * 1000
    (m / "shd_train.h5.gz").write_bytes(payload)
    (m / "shd_test.h5.gz").write_bytes(payload * 2)
    (m / "md5sums.txt").write_text(
        f"{hashlib.md5(payload).hexdigest()}  shd_train.h5.gz\n"
        f"{'f' * 32}  shd_test.h5.gz\n"  # wrong on purpose
    )
    d = tmp_path / "data"
    rc, out, _ = run(capsys, "data", "download", "shd", "--data-dir", str(d), "--split", "train",
                     "--base-url", m.as_uri(), "--no-progress")
    assert rc == 0 and (d / "shd_train.h5.gz").read_bytes() == payload
    rc, _, err = run(capsys, "data", "download", "shd", "--data-dir", str(d), "--split", "test",
                     "--base-url", m.as_uri(), "--no-progress")
    line = one_line_error(err)
    assert rc == 2 and "checksum mismatch" in line and "shd_test.h5.gz" in line
    assert sorted(q.name for q in d.iterdir()) == [".delayprop-data", "shd_train.h5.gz"]
    rc, _, err = run(capsys, "data", "download", "shd", "--data-dir", str(d), "--split", "valid",
                     "--base-url", m.as_uri())
    assert rc == 2 and "valid" in one_line_error(err)


def test_data_without_action_prints_help(capsys):
    rc, out, _ = run(capsys, "data")
    assert rc == 2 and "download" in out and "prepare" in out
