"""A PostgreSQL connection that LISTENs on the journal's channel: a node's ear.

It is one plain psycopg connection in autocommit mode, outside SQLAlchemy's pool: a LISTEN
belongs to a session, and a pooled connection would be reset and handed to others. Its
socket can be waited on with ``select`` beside a waker, and :meth:`JournalListener.drain`
then reads what arrived without blocking. Every psycopg error becomes a
:class:`StoreError` here: to the bus, a dropped connection is the database being unusable,
and the cure is to open a new one and read the table again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import make_url

from securechat.errors import StoreError
from securechat.store.commit_order import JOURNAL_CHANNEL
from securechat.store.database import safe_url


class JournalListener:
    """LISTEN on :data:`JOURNAL_CHANNEL` of the PostgreSQL database at ``db_url``."""

    def __init__(self, db_url: str, *, name: str) -> None:
        """``name`` is shown as the connection's ``application_name`` (pg_stat_activity)."""
        url = make_url(db_url)
        self._url = db_url
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._name = name
        self._conn: Any = None  # a psycopg.Connection, once open

    def open(self) -> None:
        """Connect and LISTEN; notifications committed from now on are kept for :meth:`drain`.

        Raises:
            StoreError: the database cannot be reached.
        """
        import psycopg  # the postgres extra: only a server on PostgreSQL gets here

        self.close()
        try:
            self._conn = psycopg.connect(
                self._conninfo, autocommit=True, application_name=self._name
            )
            self._conn.execute(f"LISTEN {JOURNAL_CHANNEL}")
        except psycopg.Error as error:
            self.close()
            raise StoreError(f"cannot listen on {safe_url(self._url)}: {error}") from error

    def fileno(self) -> int:
        """The connection's socket: readable when a notification (or an error) arrived."""
        assert self._conn is not None, "not open"
        return int(self._conn.fileno())

    def drain(self) -> list[str]:
        """The payloads that arrived, without waiting (merged duplicates come once).

        Raises:
            StoreError: the connection was lost.
        """
        import psycopg

        assert self._conn is not None, "not open"
        try:
            return [notify.payload for notify in self._conn.notifies(timeout=0)]
        except psycopg.Error as error:
            raise StoreError(f"lost the listening connection: {error}") from error

    def close(self) -> None:
        """Close the connection, if open. Idempotent."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
