"""write_atomic: the mode asked for whatever the umask, and nothing half-written left behind."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from securechat.files import write_atomic, write_files_atomic


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


@pytest.fixture
def disk_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Path]]:
    """Record os.replace (its target) and os.fsync (what was synced), then do the real call.

    A power cut cannot be staged in a test, so the order of these calls is the evidence.
    """
    calls: list[tuple[str, Path]] = []
    real_replace, real_fsync = os.replace, os.fsync

    def replace(source: str | Path, target: str | Path) -> None:
        calls.append(("replace", Path(target)))
        real_replace(source, target)

    def fsync(fd: int) -> None:
        kind = "fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file"
        calls.append((kind, Path(os.readlink(f"/proc/self/fd/{fd}"))))
        real_fsync(fd)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def test_the_directory_is_synced_after_the_rename(
    tmp_path: Path, disk_calls: list[tuple[str, Path]]
) -> None:
    write_atomic(tmp_path / "file", b"new", mode=0o600)
    kinds = [kind for kind, _ in disk_calls]
    assert kinds == ["fsync file", "replace", "fsync dir"]
    assert disk_calls[-1][1] == tmp_path  # so the rename itself survives a power cut


def test_a_group_is_written_whole_before_any_file_is_renamed(
    tmp_path: Path, disk_calls: list[tuple[str, Path]]
) -> None:
    key, cert = tmp_path / "server.key", tmp_path / "server.pem"
    write_files_atomic([(key, b"new key", 0o600), (cert, b"new cert", 0o644)])
    assert [kind for kind, _ in disk_calls] == [
        "fsync file", "fsync file", "replace", "replace", "fsync dir"
    ]  # fmt: skip
    assert [path for kind, path in disk_calls if kind == "replace"] == [key, cert]
    assert (key.read_bytes(), cert.read_bytes()) == (b"new key", b"new cert")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_a_group_that_cannot_be_written_replaces_nothing(tmp_path: Path) -> None:
    first = tmp_path / "first"
    first.write_bytes(b"old")
    with pytest.raises(FileNotFoundError):
        write_files_atomic([(first, b"new", 0o600), (tmp_path / "no" / "second", b"new", 0o600)])
    assert first.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["first"]
