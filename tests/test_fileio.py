"""Atomic writes: all or nothing, and finished files get ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from bender.fileio import atomic_open, atomic_write_text


def test_atomic_write_replaces_and_uses_umask_permissions(tmp_path):
    path = tmp_path / "a" / "out.txt"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in path.parent.iterdir()] == ["out.txt"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    path = tmp_path / "keep.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_open(path, "wb") as f:
        f.write(b"new, half written")
        raise RuntimeError("crash")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.bin"]
