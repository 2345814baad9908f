"""Bulk writes for tools that fill a throwaway database (the bench): no checks, few commits.

Rows go in through Core ``executemany`` in one transaction per call, which also indexes
them for search, as the server's group commit does when it is not busy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import insert, select

from securechat.store import search
from securechat.store.database import Database
from securechat.store.models import ChatMessage, Membership, Room, User, utcnow


def user_ids(database: Database, names: Sequence[str]) -> list[int]:
    """The ids of ``names``, in their order (each must exist)."""
    with database.transaction() as conn:
        found = dict(conn.execute(select(User.name, User.id).where(User.name.in_(names))).all())
    return [found[name] for name in names]


def add_rooms(database: Database, members: Mapping[str, Sequence[int]]) -> dict[str, int]:
    """Create each room of ``members`` with those user ids as members; their ids by name."""
    now = utcnow()
    with database.transaction() as conn:
        conn.execute(insert(Room), [{"name": name, "created_at": now} for name in members])
        ids = dict(
            conn.execute(select(Room.name, Room.id).where(Room.name.in_(list(members)))).all()
        )
        conn.execute(insert(Membership), [
            {"room_id": ids[room], "user_id": user, "joined_at": now}
            for room, users in members.items() for user in users
        ])  # fmt: skip
    return ids


def add_messages(database: Database, rows: Sequence[Mapping[str, object]]) -> None:
    """Insert chat messages (``messages`` columns by name) in one transaction, indexed."""
    with database.transaction() as conn:
        conn.execute(insert(ChatMessage), list(rows))
        search.index_pending(conn, len(rows))


def drop_search_index(database: Database) -> None:
    """No search index at all (SQLite), to measure what indexing costs: drop the index,
    its mark and its triggers; the server then indexes nothing (``search.backlog``)."""
    with database.transaction() as conn:
        for trigger in ("messages_fts_update", "messages_fts_delete"):
            conn.exec_driver_sql(f"DROP TRIGGER {trigger}")
        conn.exec_driver_sql(f"DROP TABLE {search.STATE_TABLE}")
        conn.exec_driver_sql(f"DROP TABLE {search.FTS_TABLE}")
