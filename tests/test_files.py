"""write_atomic: the mode asked for whatever the umask, and nothing half-written left behind."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from securechat.files import write_atomic


@pytest.fixture(params=[0o022, 0o077, 0o000])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_the_file_gets_exactly_the_mode_asked_for(tmp_path: Path, umask: int, mode: int) -> None:
    target = tmp_path / "file"
    write_atomic(target, b"new", mode=mode)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == mode


def test_an_existing_file_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"old content that is longer")
    write_atomic(target, b"new", mode=0o600)
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["file"]


def test_a_failed_replace_leaves_the_old_state_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()  # a directory cannot be replaced by a file
    with pytest.raises(IsADirectoryError):
        write_atomic(target, b"new", mode=0o600)
    assert target.is_dir()
    assert os.listdir(tmp_path) == ["taken"]
