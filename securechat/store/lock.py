"""One server per database: an exclusive ``flock`` on ``<database file>.lock``.

Two servers on one SQLite file would each think they own the rooms and the message ids, and
``securechat restore`` must never swap the file under a running server. The lock is an
advisory ``flock`` on a side file rather than on the database itself, because SQLite uses
POSIX locks on the database and closing any descriptor of that file would drop them. The
kernel releases a ``flock`` when its process dies, even by ``kill -9``, so a crash never
leaves a stale lock behind; the side file itself is never deleted (deleting a lock file
races with a process that has just opened it). Other databases have their own ways to keep
writers apart, so for non-SQLite URLs the lock does nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Self

from sqlalchemy import exc, make_url

from securechat.errors import StoreError


def sqlite_file(db_url: str) -> Path | None:
    """The database file of a SQLite URL (relative to the working directory, as SQLite does).

    None for other databases and for in-memory SQLite. Raises:
        StoreError: ``db_url`` is not a URL at all.
    """
    try:
        url = make_url(db_url)
    except exc.ArgumentError as error:
        raise StoreError(f"invalid database URL {db_url!r}: {error}") from error
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).absolute()


class ServerLock:
    """Held by ``securechat serve`` for as long as it uses the database at ``db_url``."""

    def __init__(self, db_url: str) -> None:
        database = sqlite_file(db_url)
        self.database = database
        self.path = None if database is None else database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or fail at once if another process holds it.

        Raises:
            StoreError: another securechat server uses the database, or the lock file cannot
                be created.
        """
        if self.path is None or self._fd is not None:
            return
        fd = self._open()
        try:
            _lock_now(fd)
        except BlockingIOError as error:
            os.close(fd)
            raise StoreError(
                f"another securechat server is already using {self.database}; "
                "stop it first, or give this one its own --db"
            ) from error
        except OSError as error:
            os.close(fd)
            raise StoreError(f"cannot lock {self.path}: {error.strerror or error}") from error
        except StoreError:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Let go of the lock (closing the descriptor drops the ``flock``). Idempotent."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def is_held_elsewhere(self) -> bool:
        """Whether another process (or another ``ServerLock`` in this one) holds the lock.

        Raises:
            StoreError: the lock file exists but cannot be opened.
        """
        if self.path is None or self._fd is not None or not self.path.exists():
            return False
        fd = self._open()
        try:
            _lock_now(fd)
        except BlockingIOError:
            return True
        except OSError as error:
            raise StoreError(f"cannot lock {self.path}: {error.strerror or error}") from error
        finally:
            os.close(fd)  # also drops the lock if we just took it
        return False

    def _open(self) -> int:
        assert self.path is not None
        try:
            # Read-only is enough for flock, so a lock file made by root (mode 0644) still
            # works for the service user; it holds nothing secret.
            return os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise StoreError(
                f"cannot open the lock file {self.path}: {error.strerror or error}"
            ) from error

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def _lock_now(fd: int) -> None:
    """Take an exclusive ``flock`` on ``fd`` without waiting.

    Raises:
        BlockingIOError: another descriptor holds it.
        StoreError: this system has no ``flock`` (the server runs on Linux or macOS).
    """
    try:
        import fcntl  # POSIX only: the client side of securechat runs on Windows too
    except ImportError as error:
        raise StoreError(
            "the server's database lock needs Linux or macOS; run `securechat serve` there"
        ) from error
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
