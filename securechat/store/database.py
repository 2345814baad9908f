"""Engine and session set-up: the one place that knows how securechat talks to its database.

SQLite is the default and gets the settings a multi-threaded server needs on every new
connection: write-ahead logging (readers do not block the writer), enforced foreign keys,
a busy timeout instead of an immediate "database is locked", and ``synchronous=FULL`` so a
committed message survives a power cut; and the function search matches the messages not
yet indexed with (``store/search.py``). A new SQLite file is created 0600 before SQLite
opens it, whatever the umask; SQLite gives its -wal and -shm files the database's mode.

PostgreSQL (``postgresql+psycopg://``, the ``postgres`` extra) gets the same lock wait as a
``lock_timeout`` on every new connection, and pooled connections are pinged before use, so
a database restart costs a reconnect rather than an error. Durability is the server's own
setting there (``synchronous_commit``, on by default). Other URLs are passed to SQLAlchemy
unchanged.

SQLAlchemy errors that mean "the database is not usable" become :class:`StoreError` here,
with a one-line message naming the URL (password hidden).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias

from sqlalchemy import create_engine, event, exc, make_url, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from securechat.errors import StoreError
from securechat.store.lock import sqlite_file
from securechat.store.migrate import upgrade_to_head
from securechat.store.search import CONTAINS_FUNCTION, contains

#: How long a statement waits for a lock another connection holds before it fails (SQLite's
#: busy timeout, PostgreSQL's ``lock_timeout``): a write stuck behind someone else's long
#: transaction ends in a clear error, and a sender gets ``server_error`` to resend, instead
#: of hanging.
LOCK_TIMEOUT_MS = 5000
SQLITE_BUSY_TIMEOUT_MS = LOCK_TIMEOUT_MS

#: A connection one thread keeps for many transactions (:meth:`Database.connect`, the group
#: commit's), named so that the layers above hold one without naming SQLAlchemy.
CommitConnection: TypeAlias = Connection

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA foreign_keys=ON",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA synchronous=FULL",
)


def _apply_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.create_function(CONTAINS_FUNCTION, 2, contains, deterministic=True)
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


_DRIVER_HINTS = {
    "postgresql": "; use postgresql+psycopg://, after pip install 'securechat[postgres]'",
}


def _apply_postgresql_settings(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
    dbapi_connection.commit()  # a SET in a transaction rolled back later would be undone


def _reason(error: exc.DBAPIError | sqlite3.Error) -> str:
    """The driver's own message (e.g. "unable to open database file"), without SQL or URLs."""
    orig = error.orig if isinstance(error, exc.DBAPIError) else error
    return str(orig).strip() or type(orig).__name__


def safe_url(url: str) -> str:
    """``url`` with any password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return url


def create_database_engine(url: str) -> Engine:
    """Create an engine for ``url``; SQLite and PostgreSQL connections get the settings above.

    Raises:
        StoreError: the URL is malformed or names a dialect or driver that is not installed.
    """
    try:
        backend = make_url(url).get_backend_name()
        engine = create_engine(url, pool_pre_ping=backend == "postgresql")
    except (exc.ArgumentError, exc.NoSuchModuleError) as error:
        raise StoreError(f"invalid database URL {safe_url(url)}: {error}") from error
    except ImportError as error:
        hint = _DRIVER_HINTS.get(backend, "")
        raise StoreError(f"no driver for database URL {safe_url(url)}: {error}{hint}") from error
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _apply_sqlite_pragmas)
    elif engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _apply_postgresql_settings)
    return engine


_PUBLIC_CONNECT = text(
    "SELECT current_database(), has_database_privilege('public', current_database(), 'CONNECT')"
)


class Database:
    """An engine plus a session factory. Thread-safe; the sessions it hands out are not."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_database_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One session for one unit of work: ``with db.session() as s, s.begin(): ...``.

        Raises:
            StoreError: the database could not be reached, was locked too long or is read-only.
        """
        with self._store_errors(), self._sessions() as session:
            yield session

    @contextmanager
    def transaction(self, connection: Connection | None = None) -> Iterator[Connection]:
        """A Core connection in a transaction, for hot paths where the ORM costs too much.

        ``connection`` (from :meth:`connect`) is used instead of one from the pool.

        Raises:
            StoreError: as :meth:`session`; nothing of the transaction was committed.
        """
        with self._store_errors():
            if connection is None:
                with self.engine.begin() as pooled:
                    yield pooled
            else:
                with connection.begin():
                    yield connection

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection kept by one thread for many transactions (the group commit's).

        Raises:
            StoreError: as :meth:`session`.
        """
        with self._store_errors(), self.engine.connect() as connection:
            yield connection

    @contextmanager
    def _store_errors(self) -> Iterator[None]:
        """Turn "the database is not usable" errors into one-line :class:`StoreError`s."""
        try:
            yield
        # sqlite3's own: from the group commit's driver cursor, which SQLAlchemy does not wrap.
        except (exc.OperationalError, sqlite3.OperationalError) as error:
            raise StoreError(f"database error on {safe_url(self.url)}: {_reason(error)}") from error

    def check_connection(self) -> None:
        """Connect once, so a bad path or an unreachable server is reported early and clearly.

        Raises:
            StoreError: the database cannot be opened.
        """
        try:
            with self.engine.connect():
                pass
        except exc.DBAPIError as error:
            raise StoreError(
                f"cannot open database {safe_url(self.url)}: {_reason(error)}"
            ) from error

    def public_may_connect(self) -> tuple[str, bool]:
        """PostgreSQL: the database's name, and whether PUBLIC (every role) may connect to it.

        Raises:
            StoreError: the database cannot be read.
        """
        with self.transaction() as conn:
            name, public = conn.execute(_PUBLIC_CONNECT).one()
        return str(name), bool(public)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _create_private_file(url: str) -> None:
    """Create a SQLite database file that does not exist yet, empty and mode 0600.

    It holds every message and password hash: other local users must not read it, and the
    umask outside the systemd unit (often 022) would let them. An existing file keeps its
    mode (``securechat doctor`` reports one that others can read).
    """
    path = sqlite_file(url)
    if path is None:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # a missing folder, no permission: SQLite's own open reports it, in one line
    os.close(fd)


def open_database(url: str, *, migrate: bool = True) -> Database:
    """Open the database at ``url`` and, unless ``migrate`` is false, bring it to head.

    Raises:
        StoreError: the URL is bad, the database cannot be opened or cannot be migrated.
    """
    database = Database(url)
    try:
        _create_private_file(url)
        database.check_connection()
        if migrate:
            upgrade_to_head(database.engine)
    except BaseException:
        database.dispose()
        raise
    return database
