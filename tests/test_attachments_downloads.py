"""Downloads land in the user's downloads folder, under a safe name, never over a file."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securechat.attachments.downloads import (
    DOWNLOAD_MODE,
    MAX_NUMBERED,
    NUMBER_ROOM,
    downloads_dir,
    numbered,
    open_new,
)
from securechat.attachments.names import MAX_NAME_BYTES, safe_local_name


def saved(directory: Path, name: str, data: bytes = b"data") -> Path:
    path, file = open_new(directory, name)
    with file:
        file.write(data)
    return path


def test_the_downloads_folder_is_the_users_and_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert downloads_dir() == tmp_path / "Downloads"
    assert (tmp_path / "Downloads").is_dir()


def test_the_downloads_folder_follows_xdg_user_dirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config"
    config.mkdir(mode=0o700)
    (config / "user-dirs.dirs").write_text('XDG_DOWNLOAD_DIR="$HOME/Herunterladen"\n')
    (config / "user-dirs.dirs").chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    assert downloads_dir() == tmp_path / "Herunterladen"


def test_a_second_download_of_the_same_name_gets_a_number(tmp_path: Path) -> None:
    paths = [saved(tmp_path, "report.pdf", bytes([n])) for n in range(3)]
    assert [p.name for p in paths] == ["report.pdf", "report (1).pdf", "report (2).pdf"]
    assert [p.read_bytes() for p in paths] == [b"\x00", b"\x01", b"\x02"]
    assert stat.S_IMODE(paths[0].stat().st_mode) == DOWNLOAD_MODE


def test_a_hostile_name_stays_inside_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "downloads"
    folder.mkdir()
    for name in ("../../outside.txt", "/etc/passwd", "..", "CON", "a\x1b[2J\nb.txt", "x:y?.txt"):
        path = saved(folder, name)
        assert path.parent == folder
    assert sorted(p.name for p in folder.iterdir()) == [
        "_CON",
        "a[2Jb.txt",
        "file",
        "outside.txt",
        "passwd",
        "x_y_.txt",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads"]


def test_a_symbolic_link_or_folder_of_that_name_is_never_written_through(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"keep me")
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "report.pdf").symlink_to(secret)
    (folder / "report (1).pdf").mkdir()
    path = saved(folder, "report.pdf", b"new")
    assert path.name == "report (2).pdf"
    assert secret.read_bytes() == b"keep me"


def test_a_missing_folder_is_an_error_not_a_guess(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_new(tmp_path / "nowhere", "a.txt")


def test_when_every_numbered_name_is_taken_nothing_is_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("securechat.attachments.downloads.MAX_NUMBERED", 2)
    for name in ("a.txt", "a (1).txt", "a (2).txt"):
        (tmp_path / name).write_bytes(b"old")
    with pytest.raises(FileExistsError, match="all taken"):
        open_new(tmp_path, "a.txt")
    assert {p.read_bytes() for p in tmp_path.iterdir()} == {b"old"}


@pytest.mark.parametrize(
    ("name", "number", "result"),
    [
        ("report.pdf", 0, "report.pdf"),
        ("report.pdf", 1, "report (1).pdf"),
        ("logs.tar.gz", 2, "logs (2).tar.gz"),
        ("README", 3, "README (3)"),
        (".tar.gz", 1, ".tar (1).gz"),
    ],
)
def test_numbered_names(name: str, number: int, result: str) -> None:
    assert numbered(name, number) == result


@settings(max_examples=50)
@given(st.text(min_size=1))
def test_any_name_opens_a_new_file_in_the_folder_even_the_longest(name: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        first = saved(folder, name)
        second = saved(folder, name)
        assert first.parent == second.parent == folder
        assert first != second
        assert len(second.name.encode()) <= MAX_NAME_BYTES
        assert len(os.listdir(folder)) == 2


def test_the_largest_number_still_fits_the_name_limit() -> None:
    local = safe_local_name("x" * 300 + ".pdf", max_bytes=MAX_NAME_BYTES - NUMBER_ROOM)
    assert MAX_NAME_BYTES - 2 < len(numbered(local, MAX_NUMBERED).encode()) <= MAX_NAME_BYTES
