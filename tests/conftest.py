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
