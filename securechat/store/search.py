"""Full-text search over the messages one user may read.

Theory of operation: the index holds the current text of every chat message (``kind``
'message', not deleted) and nothing else, so edits, deletions (tombstones) and room
deletions take a message's old text out of it in the same transaction. Revision 0007
builds it and keeps it:

- SQLite: an FTS5 table, ``messages_fts``, with the trigram tokenizer (any substring of 3
  or more characters matches, in any script, case-insensitively), whose content is
  ``messages`` itself (external content: the text is not stored twice). Triggers on
  ``messages`` add, remove and replace rows. The user's text is one FTS5 string, so it is
  matched literally: ``"a OR b"`` finds that text, not either word.
- PostgreSQL: a pg_trgm GIN index on ``messages.body`` (partial, on the same rows), used by
  ``ILIKE`` with the user's text escaped.

Visibility is decided in the same query, row by row, newest first: rooms the user is a
member of, rooms they left up to ``left_at_id`` (the newest id when they left), and
direct messages they sent or received. Any other room (private or not) and other
people's direct messages never match. Pages are cut by ``before`` (an id) and a count.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import Connection, text

#: The FTS5 table (SQLite) and the trigram index (PostgreSQL) that revision 0007 creates.
FTS_TABLE = "messages_fts"
TRIGRAM_INDEX = "ix_messages_body_trgm"

#: No message id is this large: "before" when no cursor is given.
_NO_CURSOR = 2**63 - 1

# One row: what the user may read. ``m`` is the candidate message.
_VISIBLE = """
    m.kind = 'message' AND NOT m.deleted AND (
        (m.room_id IS NULL AND (m.sender_id = :user OR m.recipient_id = :user))
        OR EXISTS (
            SELECT 1 FROM memberships AS ms
            WHERE ms.room_id = m.room_id AND ms.user_id = :user
              AND (ms.left_at_id IS NULL OR m.id <= ms.left_at_id)
        )
    )
"""
_COLUMNS = "m.id, m.sender, m.body, m.ts_ms, r.name, m.recipient, m.edited_ms"

# CROSS JOIN keeps the FTS5 table the outer loop: its rowid order is the reply's order,
# so SQLite reads the matches newest first and stops after ``limit`` visible ones.
_SQLITE = text(
    f"SELECT {_COLUMNS} FROM {FTS_TABLE}"
    f" CROSS JOIN messages AS m ON m.id = {FTS_TABLE}.rowid"
    " LEFT JOIN rooms AS r ON r.id = m.room_id"
    f" WHERE {FTS_TABLE} MATCH :match AND {FTS_TABLE}.rowid < :before AND {_VISIBLE}"
    f" ORDER BY {FTS_TABLE}.rowid DESC LIMIT :limit"
)
_PORTABLE = text(
    f"SELECT {_COLUMNS} FROM messages AS m LEFT JOIN rooms AS r ON r.id = m.room_id"
    " WHERE m.body ILIKE :pattern ESCAPE '\\' AND m.id < :before AND " + _VISIBLE
    + " ORDER BY m.id DESC LIMIT :limit"
)  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class Match:
    """A message found, as it is now; ``room`` or ``to`` names its conversation."""

    id: int
    sender: str
    body: str
    ts_ms: int
    room: str | None
    to: str | None
    edited_ms: int | None


def is_search_object(name: str | None) -> bool:
    """Whether ``name`` is the index's (Alembic's autogenerate must not see it as drift)."""
    return name is not None and (name == TRIGRAM_INDEX or name.startswith(FTS_TABLE))


def fts5_string(query: str) -> str:
    """``query`` as one FTS5 string: matched as literal text, whatever it holds."""
    return '"' + query.replace('"', '""') + '"'


def like_pattern(query: str) -> str:
    """``query`` as a LIKE pattern for "contains", with ``\\`` as the escape character."""
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def find(
    conn: Connection, user_id: int, query: str, *, before: int | None, limit: int
) -> tuple[list[Match], bool]:
    """The newest ``limit`` messages with id < ``before`` that hold ``query`` and that
    ``user_id`` may read, newest first; True with them if more may follow."""
    params: dict[str, object] = {
        "user": user_id,
        "before": _NO_CURSOR if before is None else before,
        "limit": limit + 1,
    }
    if conn.dialect.name == "sqlite":
        rows = conn.execute(_SQLITE, {**params, "match": fts5_string(query)}).all()
    else:
        rows = conn.execute(_PORTABLE, {**params, "pattern": like_pattern(query)}).all()
    matches = [Match(*row) for row in rows[:limit]]
    return matches, len(rows) > limit
