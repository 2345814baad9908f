"""A test's own look at its database, behind the server's back, on SQLite or PostgreSQL.

Each call opens its own connection (no pool is left behind to keep a PostgreSQL test
database busy) and speaks SQL both databases understand, with ``:name`` parameters.
"""

from __future__ import annotations

from typing import Any, Self

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

from securechat.store.database import Database


def rows(db_url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """The rows ``sql`` selects, as tuples."""
    engine = create_engine(db_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]
    finally:
        engine.dispose()


def value(db_url: str, sql: str, **params: Any) -> Any:
    """The one value ``sql`` selects (e.g. a count)."""
    ((result,),) = rows(db_url, sql, **params)
    return result


def execute(db_url: str, sql: str, **params: Any) -> None:
    """Run ``sql`` in a transaction of its own and commit it."""
    engine = create_engine(db_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(text(sql), params)
    finally:
        engine.dispose()


class WriteLock:
    """Another connection that takes the database's write lock and keeps it until released.

    SQLite: ``BEGIN EXCLUSIVE`` (every writer waits out its busy timeout). PostgreSQL:
    ``LOCK TABLE ... IN ACCESS EXCLUSIVE MODE`` on ``tables`` (every statement touching
    them waits out its lock timeout).
    """

    def __init__(self, db_url: str, tables: tuple[str, ...] = ("messages",)) -> None:
        self._engine = create_engine(db_url, poolclass=NullPool)
        self._tables = tables
        self._connection: Connection | None = None

    def hold(self) -> None:
        connection = self._engine.connect()
        if connection.dialect.name == "sqlite":
            driver = connection.connection.driver_connection
            assert driver is not None
            driver.isolation_level = None  # autocommit: BEGIN is ours to say
            driver.execute("BEGIN EXCLUSIVE")
        else:
            connection.begin()
            connection.execute(
                text(f"LOCK TABLE {', '.join(self._tables)} IN ACCESS EXCLUSIVE MODE")
            )
        self._connection = connection

    def release(self) -> None:
        """Roll the locking transaction back: nothing it did stays. Idempotent."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if connection.dialect.name == "sqlite":
            driver = connection.connection.driver_connection
            assert driver is not None
            if driver.in_transaction:
                driver.execute("ROLLBACK")
        else:
            connection.rollback()
        connection.close()

    def close(self) -> None:
        self.release()
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def add_users(db: Database, *names: str) -> list[int]:
    """Rows for ``names`` (no usable password), straight into the table; their ids. Plain
    SQL on the columns every revision has, so it also fills a database at an old one."""
    insert = text(
        "INSERT INTO users (name, password_hash, is_admin, is_disabled, created_at)"
        " VALUES (:name, 'x', false, false, CURRENT_TIMESTAMP) RETURNING id"
    )
    with db.engine.begin() as conn:
        return [int(conn.execute(insert, {"name": name}).scalar_one()) for name in names]
