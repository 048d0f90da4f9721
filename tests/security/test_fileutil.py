"""Atomic private writes: final mode, content, no temp files left behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kcore import fileutil
from kcore.fileutil import write_private_file


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_bytes_and_str_with_mode_0600(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "secret"
    write_private_file(target, b"\x00key")
    assert target.read_bytes() == b"\x00key"
    assert mode_of(target) == 0o600
    write_private_file(target, "text")
    assert target.read_text() == "text"
    assert mode_of(target) == 0o600


def test_replaces_world_readable_file_and_custom_mode(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("old")
    os.chmod(target, 0o666)
    write_private_file(target, "new")
    assert mode_of(target) == 0o600
    write_private_file(target, "pub", mode=0o644)
    assert mode_of(target) == 0o644
    assert target.read_text() == "pub"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_failure_leaves_old_content_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f"
    write_private_file(target, "old")

    def boom(src: str, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(fileutil.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_private_file(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
