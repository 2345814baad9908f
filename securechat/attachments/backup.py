"""``backup`` and ``restore`` with the files folder, consistent with the database.

A backup ``B.db`` has its files in ``B-files/`` beside it (the same rule as a database and
its files folder, ``layout.default_files_dir``). Stored files never change once written:
the server writes a file before it commits the message that names it, and deletes it only
after committing the message's deletion. So the files are copied twice, once before the
database snapshot and once after (only those not yet copied): every file the snapshot names
was on disk at the first pass or at the second, unless its message was deleted in between.

A file that the newest earlier backup in the same folder holds already is hard-linked from
it rather than copied (rsnapshot's way): nightly backups kept for two weeks cost the files
once, plus what was shared each day. Deleting an old backup deletes only its own links.

Every copy is made in a hidden folder beside its destination, then renamed into place: a
backup or a restored folder is whole or absent. A restore stages its copy first, then puts
the database and the folder in place under the server lock, one after the other. Only
entries shaped like the layout (``ab/<id>``, ``ab/<id>.thumb``) are copied: no symbolic
link, upload in progress or stray file. Folders are 0700, files 0600.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import stat
from pathlib import Path
from types import TracebackType
from typing import Self

from securechat.attachments import layout
from securechat.errors import StoreError
from securechat.files import sync_to_disk
from securechat.store.backup import (
    DatabaseSummary,
    RestoreReport,
    backup_database,
    backup_destination,
    database_file,
    restore_database,
)

FOLDER_MODE = 0o700
FILE_MODE = 0o600
_THUMBNAIL = ".thumb"


@dataclasses.dataclass(frozen=True, slots=True)
class FilesSummary:
    """What a files folder copy holds: stored files (thumbnails aside) and all their bytes."""

    path: Path
    files: int
    size: int
    reused: int = 0  # entries hard-linked from the previous backup rather than copied


def files_beside(database: Path) -> Path:
    """The files folder that goes with the SQLite file ``database`` (``b.db`` -> ``b-files``)."""
    folder = layout.default_files_dir(f"sqlite:///{database.absolute()}")
    assert folder is not None, "a SQLite file always has a folder beside it"
    return folder


def backup_with_files(
    db_url: str, where: str, files_dir: Path, *, force: bool = False
) -> tuple[DatabaseSummary, FilesSummary]:
    """Back up the database (``store.backup.backup_database``) and ``files_dir`` beside it.

    Raises:
        StoreError: see ``backup_database``; or the files folder of the backup exists and
            ``force`` is false, or a file cannot be read or written.
    """
    database_file(db_url, "backup", Path(where))  # on PostgreSQL: the command to use instead
    dest = backup_destination(where)
    dest_files = files_beside(dest)
    for path in (dest, dest_files):
        if path.exists() and not force:
            raise StoreError(f"{path} already exists; choose another name or pass --force")
    previous = _latest_backup_beside(dest_files, files_dir)
    with FilesCopy(files_dir, dest_files, previous=previous) as files:
        files.copy_new()
        summary = backup_database(db_url, str(dest), force=force)
        try:
            files.copy_new()
            files.commit()
        except BaseException:
            dest.unlink(missing_ok=True)  # a database without its files is no backup
            raise
    return summary, files.summary()


def restore_with_files(
    source: Path, db_url: str, files_dir: Path
) -> tuple[RestoreReport, FilesSummary | None]:
    """Restore the backup ``source`` (``store.backup.restore_database``) and its files folder
    into ``files_dir``. A backup without a files folder leaves ``files_dir`` as it is (None).

    Raises:
        StoreError: see ``restore_database``; or a file cannot be read or written.
    """
    backup_files = files_beside(source)
    if not backup_files.is_dir():
        return restore_database(source, db_url), None
    if not files_dir.parent.is_dir():
        raise StoreError(f"{files_dir.parent} does not exist; create it or check --files")
    owner = _owner(files_dir, database_file(db_url, "restore", source))
    with FilesCopy(backup_files, files_dir, owner=owner) as files:
        files.copy_new()

        def put_in_place() -> None:
            try:
                files.commit()
            except StoreError as error:
                raise StoreError(
                    f"the database was restored, but not its files: {error.message}"
                ) from error

        report = restore_database(source, db_url, then=put_in_place)
    return report, files.summary()


class FilesCopy:
    """A copy of the files folder ``source`` being made beside ``dest``; :meth:`commit` puts
    it in place (replacing ``dest``), leaving the context without it removes the copy.

    ``owner`` (uid, gid) is given to every copied entry when running as root, so the
    service user can still use a folder restored by root.
    """

    def __init__(
        self,
        source: Path,
        dest: Path,
        *,
        owner: tuple[int, int] | None = None,
        previous: Path | None = None,
    ) -> None:
        self._source = source
        self._dest = dest
        self._previous = previous
        self._reused = 0
        self._owner = owner if os.geteuid() == 0 else None
        self._staging = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.tmp")
        self._copied: set[str] = set()
        self._files = 0
        self._size = 0
        self._committed = False

    def __enter__(self) -> Self:
        self._make_folder(self._staging)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._committed:
            _remove_tree(self._staging)

    def copy_new(self) -> int:
        """Copy the files not copied yet; how many. A missing source holds no files."""
        copied = 0
        for relative in _stored_entries(self._source):
            if relative not in self._copied:
                self._copy(relative)
                copied += 1
        return copied

    def commit(self) -> None:
        """Put the copy in place of ``dest`` (whose old content is then removed)."""
        old = self._dest.with_name(f".{self._dest.name}.{secrets.token_hex(4)}.old")
        try:
            for folder in (*self._staging.iterdir(), self._staging):
                sync_to_disk(folder)  # the names in each folder, as each file's bytes were
            if self._dest.exists():
                os.replace(self._dest, old)
            os.replace(self._staging, self._dest)
            sync_to_disk(self._dest.parent)
        except OSError as error:
            raise StoreError(
                f"cannot put {self._dest} in place: {error.strerror or error}"
            ) from error
        self._committed = True
        _remove_tree(old)

    def summary(self) -> FilesSummary:
        return FilesSummary(self._dest, self._files, self._size, self._reused)

    def _copy(self, relative: str) -> None:
        target = self._staging / relative
        try:
            if not target.parent.is_dir():
                self._make_folder(target.parent)
            if self._link_from_previous(relative, target):
                self._reused += 1
            else:
                shutil.copyfile(self._source / relative, target, follow_symlinks=False)
                os.chmod(target, FILE_MODE)
                if self._owner is not None:
                    os.chown(target, *self._owner)
                sync_to_disk(target)
            size = target.stat().st_size
        except OSError as error:
            raise StoreError(
                f"cannot copy {self._source / relative}: {error.strerror or error}"
            ) from error
        self._copied.add(relative)
        self._size += size
        self._files += not relative.endswith(_THUMBNAIL)

    def _link_from_previous(self, relative: str, target: Path) -> bool:
        """Hard-link ``relative`` from the previous copy when it holds it: a stored file never
        changes, so each backup costs only the files shared since the one before."""
        if self._previous is None:
            return False
        earlier = self._previous / relative
        try:
            same = earlier.lstat()
            if (
                not stat.S_ISREG(same.st_mode)
                or stat.S_IMODE(same.st_mode) != FILE_MODE
                or same.st_size != (self._source / relative).stat().st_size
            ):
                return False
            os.link(earlier, target, follow_symlinks=False)
        except OSError:  # not there, or on another file system: copy it instead
            return False
        return True

    def _make_folder(self, folder: Path) -> None:
        try:
            folder.mkdir(mode=FOLDER_MODE)
            os.chmod(folder, FOLDER_MODE)  # whatever the umask
            if self._owner is not None:
                os.chown(folder, *self._owner)
        except OSError as error:
            raise StoreError(f"cannot create {folder}: {error.strerror or error}") from error


def _stored_entries(root: Path) -> list[str]:
    """``ab/<id>`` and ``ab/<id>.thumb`` under ``root``: regular files, no links, sorted."""
    entries = []
    try:
        shards = [
            s.name for s in _listing(root) if len(s.name) == 2 and s.is_dir(follow_symlinks=False)
        ]
        for shard in shards:
            for entry in _listing(root / shard):
                file_id = entry.name.removesuffix(_THUMBNAIL)
                if (
                    layout.is_file_id(file_id)
                    and file_id.startswith(shard)
                    and entry.is_file(follow_symlinks=False)
                ):
                    entries.append(f"{shard}/{entry.name}")
    except FileNotFoundError:
        return entries  # no folder: no file shared yet
    except OSError as error:
        raise StoreError(f"cannot read {root}: {error.strerror or error}") from error
    return entries


def _listing(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda entry: entry.name)


def _latest_backup_beside(dest_files: Path, source: Path) -> Path | None:
    """The files folder of the newest other backup beside ``dest_files`` (a ``B-files``
    folder with its ``B.db``), if any; never the live folder ``source`` itself."""
    try:
        with os.scandir(dest_files.parent) as entries:
            folders = [
                (entry.stat().st_mtime, Path(entry.path))
                for entry in entries
                if entry.name.endswith("-files")
                and entry.name != dest_files.name
                and entry.is_dir(follow_symlinks=False)
            ]
        backups = [
            (mtime, folder)
            for mtime, folder in folders
            if folder.with_name(folder.name.removesuffix("-files") + ".db").is_file()
            and not (source.exists() and folder.samefile(source))
        ]
    except OSError:
        return None  # nothing to share links with: every file is copied
    return max(backups)[1] if backups else None


def _owner(files_dir: Path, database: Path) -> tuple[int, int] | None:
    """Who should own a restored files folder: its present owner, else the database's."""
    for reference in (files_dir, database):
        try:
            info = reference.stat()
        except FileNotFoundError:
            continue
        return info.st_uid, info.st_gid
    return None


def _remove_tree(path: Path) -> None:
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        return
    except OSError as error:
        raise StoreError(f"cannot remove {path}: {error.strerror or error}") from error
