"""Where files sit on disk: ids are path-safe and random, the folder sits beside SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.attachments.layout import (
    default_files_dir,
    file_path,
    is_file_id,
    new_file_id,
    thumbnail_path,
)


def test_ids_are_fresh_and_path_safe(tmp_path: Path) -> None:
    ids = {new_file_id() for _ in range(1000)}
    assert len(ids) == 1000
    for file_id in ids:
        assert is_file_id(file_id)
        assert file_path(tmp_path, file_id) == tmp_path / file_id[:2] / file_id
        assert thumbnail_path(tmp_path, file_id).parent == file_path(tmp_path, file_id).parent


@pytest.mark.parametrize("bad", ["", "../../etc/passwd", "A" * 26, "a" * 25, "a" * 27, "a/" * 13])
def test_a_string_that_is_not_an_id_never_becomes_a_path(tmp_path: Path, bad: str) -> None:
    assert not is_file_id(bad)
    with pytest.raises(ValueError, match="not a file id"):
        file_path(tmp_path, bad)


def test_the_files_folder_sits_beside_a_sqlite_database(tmp_path: Path) -> None:
    assert default_files_dir(f"sqlite:///{tmp_path}/chat.db") == tmp_path / "chat-files"
    assert default_files_dir("sqlite:///:memory:") is None
    assert default_files_dir("postgresql+psycopg://u@127.0.0.1/db") is None
