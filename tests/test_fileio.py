"""Atomic writes: complete file or the old one, never a half-written file or a stray temp."""

import pytest

from delayprop.fileio import atomic_open, atomic_torch_save, atomic_write_text


def test_atomic_write_replaces_only_on_success(tmp_path):
    p = tmp_path / "sub" / "f.txt"
    atomic_write_text(p, "one")
    assert p.read_text() == "one"
    with pytest.raises(RuntimeError):
        with atomic_open(p) as f:
            f.write(b"half")
            raise RuntimeError("interrupted")
    assert p.read_text() == "one"
    assert sorted(x.name for x in p.parent.iterdir()) == ["f.txt"]
    atomic_torch_save({"a": 1}, tmp_path / "x.pt")
    assert (tmp_path / "x.pt").stat().st_mode & 0o777 == 0o644
