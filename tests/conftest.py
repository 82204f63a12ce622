import pytest
import torch
from shd_files import write_shd

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A data directory with small 3-class shd_train.h5 / shd_test.h5 (private cache)."""
    monkeypatch.setenv("DELAYPROP_CACHE", str(tmp_path / "cache"))
    d = tmp_path / "data"
    write_shd(d / "shd_train.h5", 60, seed=0)
    write_shd(d / "shd_test.h5", 24, seed=1)
    return d


@pytest.fixture(autouse=True)
def _private_delayprop_dirs(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's ~/.cache/delayprop: $DELAYPROP_CACHE and
    $DELAYPROP_DATA point into a fresh folder per test (tests that need others set their
    own)."""
    base = tmp_path_factory.mktemp("delayprop-home")
    monkeypatch.setenv("DELAYPROP_CACHE", str(base / "cache"))
    monkeypatch.setenv("DELAYPROP_DATA", str(base / "data"))
