"""``securechat backup`` / ``restore`` carry the shared files with the database (real CLIs)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from securechat.attachments import layout
from securechat.attachments.backup import FilesCopy, files_beside
from securechat.store.lock import ServerLock, sqlite_file
from tests.conftest import CliRunner


def add_file(root: Path, data: bytes, *, thumbnail: bytes | None = None) -> str:
    """A file as the server stores it (and its thumbnail); its id."""
    file_id = layout.new_file_id()
    path = layout.file_path(root, file_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_bytes(data)
    if thumbnail is not None:
        layout.thumbnail_path(root, file_id).write_bytes(thumbnail)
    return file_id


def contents(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` by its relative path."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def stored(root: Path) -> dict[str, bytes]:
    """What of :func:`contents` is the server's: files and thumbnails under their ids."""
    return {
        path: data
        for path, data in contents(root).items()
        if layout.is_file_id(Path(path).name.removesuffix(".thumb"))
    }


def modes(root: Path) -> set[tuple[str, int]]:
    """(kind, mode) of ``root`` and everything under it."""
    return {
        ("dir" if path.is_dir() else "file", stat.S_IMODE(path.stat().st_mode))
        for path in (root, *root.rglob("*"))
    }


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def files_dir(db_url: str) -> Path:
    """The files folder beside the test database, with two files, one with a thumbnail, and
    what a backup must leave out: an upload in progress, a link, a stray name."""
    folder = layout.default_files_dir(db_url)
    assert folder is not None
    folder.mkdir(mode=0o700)
    add_file(folder, b"%PDF-1.7 a report\n")
    photo = add_file(folder, b"\xff\xd8\xff photo bytes", thumbnail=b"\xff\xd8\xff thumb")
    shard = layout.file_path(folder, photo).parent
    (shard / f".{photo}.upload").write_bytes(b"half an upload")
    (shard / "notes.txt").write_bytes(b"not ours")
    os.symlink("/etc/passwd", shard / layout.new_file_id())
    return folder


def test_backup_then_restore_brings_the_files_back(
    run_cli: CliRunner, db_url: str, files_dir: Path, tmp_path: Path
) -> None:
    shared = stored(files_dir)
    assert len(shared) == 3  # two files, one thumbnail

    out = ok(run_cli("backup", "b.db", "--db", db_url))
    backup_files = tmp_path / "b-files"
    assert f"wrote {backup_files}: 2 files, " in out
    assert contents(backup_files) == shared  # no upload in progress, link or stray name
    assert modes(backup_files) == {("dir", 0o700), ("file", 0o600)}

    # Later: one file deleted, one added, the folder opened up by mistake.
    (files_dir / next(iter(shared))).unlink()
    add_file(files_dir, b"shared after the backup")
    files_dir.chmod(0o755)

    out = ok(run_cli("restore", "b.db", "--yes", "--db", db_url))
    assert f"restored {files_dir}: 2 files, " in out
    assert contents(files_dir) == shared
    assert modes(files_dir) == {("dir", 0o700), ("file", 0o600)}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_files_folder_can_live_elsewhere(
    run_cli: CliRunner, db_url: str, files_dir: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "srv" / "files"
    elsewhere.parent.mkdir()
    files_dir.rename(elsewhere)
    ok(run_cli("backup", "nightly/", "--db", db_url, "--files", str(elsewhere)))
    (backup,) = (tmp_path / "nightly").glob("*.db")
    assert contents(files_beside(backup)) == stored(elsewhere) != {}

    restored = tmp_path / "restored-files"
    target = f"sqlite:///{tmp_path / 'new.db'}"
    ok(run_cli("restore", str(backup), "--db", target, "--files", str(restored)))
    assert contents(restored) == contents(files_beside(backup))


def test_a_server_that_never_shared_a_file_backs_up_an_empty_folder(
    run_cli: CliRunner, db_url: str, tmp_path: Path
) -> None:
    out = ok(run_cli("backup", "b.db", "--db", db_url))
    assert f"wrote {tmp_path / 'b-files'}: 0 files, 0 bytes with thumbnails" in out
    assert list((tmp_path / "b-files").iterdir()) == []


def test_backup_refuses_to_replace_a_files_folder_unless_forced(
    run_cli: CliRunner, db_url: str, files_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "b-files").mkdir()
    (tmp_path / "b-files" / "keep").write_bytes(b"older backup")
    result = run_cli("backup", "b.db", "--db", db_url)
    assert result.returncode == 1
    assert result.stderr == (
        f"securechat: error: {tmp_path / 'b-files'} already exists; "
        "choose another name or pass --force\n"
    )
    assert not (tmp_path / "b.db").exists()
    ok(run_cli("backup", "b.db", "--force", "--db", db_url))
    assert not (tmp_path / "b-files" / "keep").exists()
    assert contents(tmp_path / "b-files") != {}


def test_restoring_an_old_backup_without_files_leaves_the_folder_alone(
    run_cli: CliRunner, db_url: str, files_dir: Path, tmp_path: Path
) -> None:
    before = contents(files_dir)
    ok(run_cli("backup", "b.db", "--db", db_url))
    (tmp_path / "b.db").rename(tmp_path / "old.db")  # as made before files were shared
    out = ok(run_cli("restore", "old.db", "--yes", "--db", db_url))
    assert f"the backup has no files folder beside it: left {files_dir} as it was" in out
    assert contents(files_dir) == before


def test_restore_is_refused_while_a_server_holds_the_database(
    run_cli: CliRunner, db_url: str, files_dir: Path, tmp_path: Path
) -> None:
    ok(run_cli("backup", "b.db", "--db", db_url))
    add_file(files_dir, b"new")
    before = contents(files_dir)
    with ServerLock(db_url):
        result = run_cli("restore", "b.db", "--yes", "--db", db_url)
    assert result.returncode == 1
    assert "a securechat server is running on" in result.stderr
    assert contents(files_dir) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_files_copied_twice_take_only_the_new_ones_the_second_time(tmp_path: Path) -> None:
    source = tmp_path / "files"
    first = add_file(source, b"one")
    dest = tmp_path / "copy"
    with FilesCopy(source, dest) as copy:
        assert copy.copy_new() == 1
        second = add_file(source, b"two", thumbnail=b"t")  # uploaded during the snapshot
        layout.file_path(source, first).write_bytes(b"changed")  # never happens; not recopied
        assert copy.copy_new() == 2
        copy.commit()
    assert contents(dest) == {
        f"{first[:2]}/{first}": b"one",
        f"{second[:2]}/{second}": b"two",
        f"{second[:2]}/{second}.thumb": b"t",
    }
    assert copy.summary().files == 2


def test_a_copy_not_committed_leaves_nothing_behind(tmp_path: Path) -> None:
    source = tmp_path / "files"
    add_file(source, b"one")
    with FilesCopy(source, tmp_path / "c") as copy:
        copy.copy_new()
        (staging,) = (p for p in tmp_path.iterdir() if p.name.startswith(".c."))
        assert contents(staging) != {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["files"]  # no copy, no "c"


def test_the_backups_files_folder_follows_the_database_rule(tmp_path: Path) -> None:
    backup = tmp_path / "securechat-20261207-120000.db"
    assert files_beside(backup) == tmp_path / "securechat-20261207-120000-files"
    assert files_beside(backup) == layout.default_files_dir(f"sqlite:///{backup}")
    assert sqlite_file(f"sqlite:///{backup}") == backup


def test_nightly_backups_share_the_files_they_have_in_common(
    run_cli: CliRunner, db_url: str, files_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "nightly").mkdir()
    (tmp_path / "nightly" / "stray-files").mkdir()  # no stray-files.db: not a backup
    ok(run_cli("backup", "nightly/monday.db", "--db", db_url))
    later = add_file(files_dir, b"shared on tuesday")
    out = ok(run_cli("backup", "nightly/tuesday.db", "--db", db_url))
    assert "(3 hard-linked from the previous backup)" in out
    monday, tuesday = tmp_path / "nightly" / "monday-files", tmp_path / "nightly" / "tuesday-files"
    assert contents(tuesday) == stored(files_dir)
    for relative in contents(monday):
        assert (monday / relative).stat().st_ino == (tuesday / relative).stat().st_ino
    new = tuesday / later[:2] / later
    assert new.stat().st_nlink == 1  # copied: monday's backup never had it
    shutil.rmtree(monday)  # pruning an old backup leaves the newer one whole
    assert contents(tuesday) == stored(files_dir)
