"""Bulk writes for tools that fill a throwaway database (the bench): no checks, few commits.

Rows go in through Core ``executemany`` in one transaction per call, so the index
triggers of revision 0007 see every row, as they do the server's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import insert, select

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
    """Insert chat messages (``messages`` columns by name) in one transaction."""
    with database.transaction() as conn:
        conn.execute(insert(ChatMessage), list(rows))


def drop_search_triggers(database: Database) -> None:
    """Stop indexing new messages for search: drop revision 0007's triggers (SQLite)."""
    with database.transaction() as conn:
        for trigger in ("messages_fts_insert", "messages_fts_update", "messages_fts_delete"):
            conn.exec_driver_sql(f"DROP TRIGGER {trigger}")
