"""The order message ids commit in, across every process that writes to one database.

Ids are committed in the order they are allocated, which is what lets a reader that has
seen id n take every later message as ``id > n`` (a client's ``sync``, a server node
tailing the table). SQLite's single write lock gives that order. A PostgreSQL sequence does
not: ``nextval()`` hands out ids when rows are inserted, so a transaction that drew 11 may
commit before the one that drew 10, and a reader already past 11 would never see 10. So on
PostgreSQL every transaction that adds messages first locks the empty table
``commit_order`` (:func:`lock_commit_order`) and keeps the lock until its COMMIT: ids are
drawn and committed one transaction at a time, across every process sharing the database.
The cost is SQLite's: writers take turns, each holding the lock for one batch's inserts and
its COMMIT (the WAL flush); the group commit makes each turn carry many messages. The wait
for the lock is bounded by the ``lock_timeout`` (``database.py``).

The lock is a table lock, not an advisory lock, because taking it needs a privilege on the
table: any role that may connect can take any advisory lock (and read its key in
``pg_locks``, so even a secret key would leak), and one holding the commit-order key made
every write on every node fail after the lock timeout. Only the database's owner (or a role
granted UPDATE on ``commit_order``) can hold this one.

The same transaction NOTIFYs :data:`JOURNAL_CHANNEL` at its COMMIT, which wakes the other
nodes' buses (``server/bus.py``) to read the tables.
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, func, select, text

from securechat.store.models import CommitOrder

__all__ = ["CONSOLE_ORIGIN", "JOURNAL_CHANNEL", "LOCK_COMMIT_ORDER", "lock_commit_order"]

#: The statement that orders message commits on PostgreSQL: any transaction that adds rows
#: to ``messages`` runs it first, through :func:`lock_commit_order`. EXCLUSIVE mode conflicts
#: with itself and not with the ACCESS SHARE of a plain read (``pg_dump``).
LOCK_COMMIT_ORDER = text(f"LOCK TABLE {CommitOrder.__tablename__} IN EXCLUSIVE MODE")
#: The channel a PostgreSQL transaction that takes the lock NOTIFYs at its COMMIT, with the
#: writer's origin as the payload: a hint to read the tables now, and nothing more. Any role
#: that may connect can LISTEN and NOTIFY, so the payload names no user, room or message,
#: and a listener trusts nothing in it (``server/bus.py``).
JOURNAL_CHANNEL = "securechat_journal"
#: The payload of the command line's transactions, which have no origin.
CONSOLE_ORIGIN = "-"
_NOTIFY_WRITER = select(func.pg_notify(JOURNAL_CHANNEL, bindparam("origin")))


def lock_commit_order(conn: Connection, origin: str | None = None) -> None:
    """On PostgreSQL, lock ``commit_order`` until this transaction ends, and have its
    COMMIT notify :data:`JOURNAL_CHANNEL` that ``origin`` wrote.

    Call it in the transaction before its first insert into ``messages``, so ids are
    committed in allocation order (see this module's docstring). SQLite needs nothing.

    Raises:
        sqlalchemy.exc.OperationalError: waited longer than the lock timeout.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(LOCK_COMMIT_ORDER)
        conn.execute(_NOTIFY_WRITER, {"origin": origin or CONSOLE_ORIGIN})
