"""Back up a live SQLite database and put a backup back in place.

A backup is taken with SQLite's online backup API in a single step: it reads one consistent
snapshot under a read transaction, which in WAL mode never blocks the server's writer, so
every message committed (and acked) before the backup began is in the copy. The copy is
switched to rollback-journal mode, checked with ``PRAGMA integrity_check`` and only then
renamed into place, so a backup file is always whole and standalone (no ``-wal`` beside it).

A restore first proves the file is a securechat database this version knows, then, holding
the :class:`ServerLock` so no server can start meanwhile, copies it beside the target,
deletes the target's ``-wal``, ``-shm`` and ``-journal`` files (SQLite would otherwise
replay the old database's log into the new one) and renames the copy over the target.
Finally the schema is migrated to head, as every command does. Backups and databases hold
password hashes and private messages, so every file written here is mode 0600.

On PostgreSQL both commands refuse and print the ``pg_dump`` or ``pg_restore`` command
that does the job for that URL (without its password: libpq asks for it, or reads
``~/.pgpass`` or ``PGPASSWORD``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import secrets
import shlex
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import URL, make_url

from securechat.errors import StoreError
from securechat.files import sync_to_disk
from securechat.store.database import SQLITE_BUSY_TIMEOUT_MS, open_database, safe_url
from securechat.store.lock import ServerLock, sqlite_file
from securechat.store.migrate import alembic_config, current_revision

#: Side files SQLite keeps next to a database; a stale one must never meet a new database.
SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclasses.dataclass(frozen=True, slots=True)
class DatabaseSummary:
    """What a backup file holds, for the CLI to print."""

    path: Path
    size: int
    revision: str
    users: int
    messages: int


@dataclasses.dataclass(frozen=True, slots=True)
class RestoreReport:
    source: DatabaseSummary
    target: Path
    revision: str


def database_file(db_url: str, command: str, file: Path | None = None) -> Path:
    """The SQLite file behind ``db_url``, for ``securechat COMMAND`` with the backup ``file``.

    Raises:
        StoreError: not SQLite (on PostgreSQL, naming the command to use instead) or an
            in-memory database.
    """
    path = sqlite_file(db_url)
    if path is None:
        only = f"`securechat {command}` works on SQLite databases only"
        if make_url(db_url).get_backend_name() == "postgresql":
            first = "stop the server, then " if command == "restore" else ""
            tool = postgresql_command(db_url, command, file)
            raise StoreError(f"{only}; on PostgreSQL {first}run: {tool}")
        raise StoreError(f"{only}; for {safe_url(db_url)} use the database's own tools")
    return path


def postgresql_command(db_url: str, command: str, file: Path | None) -> str:
    """The ``pg_dump`` (backup) or ``pg_restore`` (restore) command line for ``db_url``.

    The URL loses its SQLAlchemy driver name and its password.
    """
    url = make_url(db_url)
    libpq = URL.create(
        "postgresql", url.username, None, url.host, url.port, url.database, url.query
    )
    target = shlex.quote(libpq.render_as_string(hide_password=False))
    if command == "backup":
        if file is None or file.is_dir():
            stamp = f"securechat-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}.dump"
            file = Path(stamp) if file is None else file / stamp
        return f"pg_dump --format=custom --file={shlex.quote(str(file))} {target}"
    source = shlex.quote(str(file or "FILE"))
    return (
        f"pg_restore --clean --if-exists --no-owner --single-transaction --dbname={target} {source}"
    )


def backup_database(db_url: str, where: str, *, force: bool = False) -> DatabaseSummary:
    """Copy the database at ``db_url`` to ``where``: a file, or a folder to put a dated file
    in when ``where`` is an existing folder or ends in a slash (the folder is then created,
    mode 0700, if missing; a file named like the folder would surprise the admin).

    Safe while a server runs. Raises:
        StoreError: the database is missing or not a securechat database, ``dest`` exists
            and ``force`` is false, or a file cannot be read or written.
    """
    source = database_file(db_url, "backup", Path(where))
    if not source.is_file():
        raise StoreError(f"no database at {source}; check --db")
    dest = backup_destination(where)
    if _same_file(dest, source):
        raise StoreError(f"{dest} is the database itself; choose another destination")
    if dest.exists() and not force:
        raise StoreError(f"{dest} already exists; choose another name or pass --force")
    with _connect(source, "rw") as connection, _temporary_copy(connection, dest) as tmp:
        summary = summarize(tmp)
        if dest.exists() and not force:  # someone wrote it while we were copying
            raise StoreError(f"{dest} already exists; choose another name or pass --force")
        _replace(tmp, dest)
    return dataclasses.replace(summary, path=dest)


def backup_destination(where: str) -> Path:
    """The backup file ``where`` names (see :func:`backup_database`), absolute; a folder it
    names is created.

    Raises:
        StoreError: the folder cannot be created.
    """
    dest = Path(where)
    if where.endswith(("/", os.sep)) or dest.is_dir():
        _make_folder(dest)
        dest = dest / f"securechat-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}.db"
    return dest.absolute()


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(f"cannot create the folder {folder}: {error.strerror}") from error


def summarize(path: Path) -> DatabaseSummary:
    """Check that ``path`` is a sound securechat database at a revision this version knows.

    Raises:
        StoreError: missing, unreadable, corrupt, not SQLite or not a securechat database.
    """
    if not path.is_file():
        raise StoreError(f"{path} not found")
    with _connect(path, "ro") as connection:
        try:
            problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise StoreError(f"{path} is damaged: {problems[0]}")
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
            if "alembic_version" not in tables or "users" not in tables:
                raise StoreError(f"{path} is not a securechat database (no schema revision)")
            (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            users = _count(connection, "users")
            messages = _count(connection, "messages") if "messages" in tables else 0
        except sqlite3.DatabaseError as error:  # "file is not a database" comes only now
            raise StoreError(f"{path} is not a securechat database: {error}") from error
    if revision not in known_revisions():
        raise StoreError(
            f"{path} is at schema revision {revision}, which this version of securechat does "
            "not know; restore it with the securechat version that made it"
        )
    return DatabaseSummary(path, path.stat().st_size, revision, users, messages)


def existing_users(db_url: str) -> int:
    """How many users the SQLite database at ``db_url`` holds, read without creating or
    migrating it: 0 for no file, another kind of database or one without a users table.

    Raises:
        StoreError: the file exists but cannot be read as a database.
    """
    path = sqlite_file(db_url)
    if path is None or not path.is_file():
        return 0
    with _connect(path, "ro") as connection:
        try:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
            return _count(connection, "users") if "users" in tables else 0
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{path} is not a securechat database: {error}") from error


def check_not_in_use(db_url: str, source: Path | None = None) -> Path:
    """The database file behind ``db_url``, provided no securechat server is using it.

    ``source`` is the backup to restore, for the message on other databases. Raises:
        StoreError: not SQLite, or a server holds the database's lock.
    """
    target = database_file(db_url, "restore", source)
    if ServerLock(db_url).is_held_elsewhere():
        raise StoreError(
            f"a securechat server is running on {target}; stop it first "
            "(e.g. `systemctl stop securechat`), then restore"
        )
    return target


def restore_database(
    source: Path, db_url: str, *, then: Callable[[], None] | None = None
) -> RestoreReport:
    """Replace the database at ``db_url`` with the backup ``source``, then migrate it to head.

    ``then`` runs once the database is in place, still under the server lock (to put the
    files folder that goes with it in place too).

    Raises:
        StoreError: ``source`` is not a usable backup, a server is running on the target, or
            a file cannot be read or written.
    """
    source = source.absolute()
    summary = summarize(source)
    target = check_not_in_use(db_url, source)
    if _same_file(source, target):
        raise StoreError(f"{source} is the database itself; nothing to restore")
    if not target.parent.is_dir():
        raise StoreError(f"{target.parent} does not exist; create it or check --db")
    with ServerLock(db_url), _connect(source, "ro") as connection:
        with _temporary_copy(connection, target) as tmp:
            _copy_ownership(target, tmp)
            for suffix in SIDE_FILES:
                _unlink(target.with_name(target.name + suffix))
            _replace(tmp, target)
        if then is not None:
            then()
        database = open_database(db_url)  # brings an older backup up to head
        try:
            revision = current_revision(database.engine)
        finally:
            database.dispose()
    assert revision is not None, "open_database migrates to head"
    return RestoreReport(summary, target, revision)


@contextmanager
def _connect(path: Path, mode: str) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection; ``mode=rw``/``ro`` never creates a missing file."""
    try:
        connection = sqlite3.connect(
            f"{path.absolute().as_uri()}?mode={mode}",
            uri=True,
            timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
        )
    except sqlite3.Error as error:
        raise StoreError(f"cannot open {path}: {error}") from error
    with closing(connection):
        yield connection


@contextmanager
def _temporary_copy(source: sqlite3.Connection, dest: Path) -> Iterator[Path]:
    """A standalone, checked copy of ``source`` in a hidden file beside ``dest``.

    The caller renames it into place; if it does not, the copy is deleted.
    """
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.tmp")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    except OSError as error:
        raise StoreError(f"cannot write in {dest.parent}: {error.strerror or error}") from error
    try:
        with _connect(tmp, "rw") as copy:
            try:
                source.backup(copy)  # pages=-1: one step, one consistent snapshot
                copy.execute("PRAGMA journal_mode=DELETE")  # standalone: no -wal needed
            except sqlite3.Error as error:
                raise StoreError(f"cannot copy the database to {tmp}: {error}") from error
        _fsync(tmp)
        yield tmp
    finally:
        _unlink(tmp)


def _replace(tmp: Path, dest: Path) -> None:
    try:
        os.replace(tmp, dest)
    except OSError as error:
        raise StoreError(f"cannot write {dest}: {error.strerror or error}") from error
    _fsync(dest.parent)  # make the rename itself durable


def _copy_ownership(original: Path, copy: Path) -> None:
    """Give the copy the original's mode (and owner, as root), so the service can still use it.

    Without this, a restore run as root would leave a database the service user cannot write.
    """
    try:
        stat = original.stat()
    except FileNotFoundError:
        return  # a fresh path: the copy keeps 0600 and its creator
    try:
        if os.geteuid() == 0:
            os.chown(copy, stat.st_uid, stat.st_gid)
        os.chmod(copy, stat.st_mode & 0o777)
    except OSError as error:
        raise StoreError(f"cannot set the owner of {copy}: {error.strerror or error}") from error


def _fsync(path: Path) -> None:
    try:
        sync_to_disk(path)
    except OSError as error:
        raise StoreError(f"cannot sync {path} to disk: {error.strerror or error}") from error


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        raise StoreError(f"cannot remove {path}: {error.strerror or error}") from error


def _same_file(a: Path, b: Path) -> bool:
    return a.exists() and b.exists() and a.samefile(b)


def _count(connection: sqlite3.Connection, table: str) -> int:
    count: int = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return count


def known_revisions() -> set[str]:
    """Every schema revision this version of securechat can migrate from."""
    script = ScriptDirectory.from_config(alembic_config())
    return {revision.revision for revision in script.walk_revisions()}
