"""Full-text search over the messages one user may read.

Theory of operation: the index holds the current text of every chat message (``kind``
'message', not deleted) and nothing else, so edits, deletions (tombstones) and room
deletions take a message's old text out of it in the same transaction. Revisions 0007 and
0008 build it and keep it:

- SQLite: an FTS5 table, ``messages_fts``, with the trigram tokenizer (any substring of 3
  or more characters matches, in any script, case-insensitively), whose content is
  ``messages`` itself (external content: the text is not stored twice). The user's text is
  one FTS5 string, so it is matched literally: ``"a OR b"`` finds that text, not either word.
  Indexing a message costs about 60 µs of CPU (its ~100 trigrams), a third of what its
  fan-out to fifty members costs, so new messages are indexed by :func:`index_pending`, which
  the group commit calls when it is not busy, not by a trigger on every insert: a burst is
  stored and delivered first and indexed after it. ``messages_fts_state.indexed_through`` is
  the id up to which the index is complete; SQLite commits ids in order and never reuses
  one (AUTOINCREMENT), so the rows above it are exactly the ones not yet indexed. Triggers
  follow edits and deletions of indexed rows; a row above the mark is indexed as it is when
  its turn comes. :func:`find` reads the rows above the mark (the backlog, bounded by the
  server's ``Limits.search_index_lag``) by scanning them, then the index below it: every
  stored message is found, indexed yet or not.
- PostgreSQL: a pg_trgm GIN index on ``messages.body`` (partial, on the same rows), kept
  by PostgreSQL in each transaction, used by ``ILIKE`` with the user's text escaped.

Visibility is decided in the same query, row by row, newest first: rooms the user is a
member of, rooms they left up to ``left_at_id`` (the newest id when they left), and
direct messages they sent or received. A message of a room left that was edited after
the leaving (an ``edit`` row above ``left_at_id``) is no result at all: the row holds only
its current text, which the former member must not read, and the text they saw is gone
(the edit row before it holds the earlier text only when there was an earlier edit). Any other room (private or not) and other
people's direct messages never match. Pages are cut by ``before`` (an id) and a count.

Each query has a budget: it examines at most ``scan`` messages holding the text (readable
or not), newest first; the SQL says ``LIMIT`` and the reader stops at a full page. A text
found mostly where the user may not read thus costs at most ``scan`` rows, and the page it
returns says where it stopped (:class:`SearchPage` ``resume``, ``cut``).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

from sqlalchemy import Connection, Result, text

#: The FTS5 table (SQLite) and the trigram index (PostgreSQL) that revision 0007 creates.
FTS_TABLE = "messages_fts"
TRIGRAM_INDEX = "ix_messages_body_trgm"
#: SQLite: the one row saying up to which id ``messages_fts`` is complete (revision 0008).
STATE_TABLE = "messages_fts_state"
#: The SQL function (registered on every SQLite connection of ours) that matches the
#: backlog's rows as the trigram index would: a case-insensitive substring.
CONTAINS_FUNCTION = "securechat_contains"

#: No message id is this large: "before" when no cursor is given.
_NO_CURSOR = 2**63 - 1

# What a candidate must be (the index holds nothing else): a live chat message.
_LIVE = "m.kind = 'message' AND NOT m.deleted"
# One row: whether the user may read candidate ``m`` (the files of a message too: attachments.py). A column, not a filter: the rows the
# user may not read count against the query's budget too (see :func:`find`).
READABLE = """
    CASE WHEN (m.room_id IS NULL AND (m.sender_id = :user OR m.recipient_id = :user))
        OR EXISTS (
            SELECT 1 FROM memberships AS ms
            WHERE ms.room_id = m.room_id AND ms.user_id = :user
              AND (ms.left_at_id IS NULL OR (
                  m.id <= ms.left_at_id AND NOT EXISTS (
                      SELECT 1 FROM messages AS e
                      WHERE e.target_id = m.id AND e.kind = 'edit' AND e.id > ms.left_at_id
                  )
              ))
        )
    THEN 1 ELSE 0 END
"""
_COLUMNS = (
    f"m.id, {READABLE} AS readable, m.sender, m.body, m.ts_ms, r.name, m.recipient, m.edited_ms"
)

_FROM = "messages AS m LEFT JOIN rooms AS r ON r.id = m.room_id"

# CROSS JOIN keeps the FTS5 table the outer loop: its rowid order is the reply's order,
# so SQLite reads the matches newest first, one at a time, and the caller stops reading
# after a page of readable ones; LIMIT :scan ends it at the budget in any case.
_SQLITE = text(
    f"SELECT {_COLUMNS} FROM {FTS_TABLE}"
    f" CROSS JOIN messages AS m ON m.id = {FTS_TABLE}.rowid"
    " LEFT JOIN rooms AS r ON r.id = m.room_id"
    f" WHERE {FTS_TABLE} MATCH :match AND {FTS_TABLE}.rowid < :before"
    f" ORDER BY {FTS_TABLE}.rowid DESC LIMIT :scan"
)
# The backlog: the rows above the mark, newest first, matched one by one.
_SQLITE_BACKLOG = text(
    f"SELECT {_COLUMNS} FROM {_FROM}"
    f" WHERE m.id > :after AND m.id < :before AND {CONTAINS_FUNCTION}(m.body, :needle)"
    f" AND {_LIVE} ORDER BY m.id DESC LIMIT :scan"
)
# PostgreSQL sends a whole result at once: the rows the user may not read are dropped in
# the database, all but the last one examined (``examined`` = :scan), which says where the
# budget ended; :page is one more than a page, and that boundary row.
_PORTABLE = text(
    "SELECT c.* FROM ("
    f" SELECT {_COLUMNS}, row_number() OVER (ORDER BY m.id DESC) AS examined FROM {_FROM}"
    " WHERE m.body ILIKE :pattern ESCAPE '\\' AND m.id < :before AND " + _LIVE
    + " ORDER BY m.id DESC LIMIT :scan"
    ") AS c WHERE c.readable = 1 OR c.examined = :scan ORDER BY c.id DESC LIMIT :page"
)  # fmt: skip

_HAS_STATE = text(f"SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{STATE_TABLE}'")
_INDEXED_THROUGH = text(f"SELECT indexed_through FROM {STATE_TABLE}")
_NEWEST = text("SELECT coalesce(max(id), 0) FROM messages")
# An index pass is two statements through the driver's cursor: it runs in the group
# commit's transactions, where SQLAlchemy's per-statement cost would be most of it.
_INDEX_NEXT = (
    f"INSERT INTO {FTS_TABLE} (rowid, body) SELECT id, body FROM messages"
    f" WHERE id > (SELECT indexed_through FROM {STATE_TABLE})"
    f" AND id <= (SELECT indexed_through FROM {STATE_TABLE}) + ?"
    " AND kind = 'message' AND NOT deleted"
)
_MOVE_MARK = (
    f"UPDATE {STATE_TABLE}"
    " SET indexed_through = min(indexed_through + ?, (SELECT coalesce(max(id), 0) FROM messages))"
    " RETURNING (SELECT coalesce(max(id), 0) FROM messages) - indexed_through"
)


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


@dataclasses.dataclass(frozen=True, slots=True)
class SearchPage:
    """One reply's worth: ``matches`` newest first; ``more`` if older ones may exist, then
    ``resume`` is the ``before`` to ask again with. ``cut``: the page ended because the
    query had examined its budget of candidates, not because it was full."""

    matches: list[Match]
    more: bool = False
    resume: int | None = None
    cut: bool = False


@dataclasses.dataclass(slots=True)
class _Walk:
    """Candidates read newest first until a page of readable ones, or the budget, is spent."""

    limit: int
    left: int  # candidates the query may still examine
    lowest: int  # the oldest id examined yet (exclusive: where a next page would start)
    matches: list[Match] = dataclasses.field(default_factory=list)
    full: bool = False

    @property
    def done(self) -> bool:
        return self.full or self.left <= 0

    def read(self, result: Result[Any], *, counted: bool = False) -> None:
        """Take ``result``'s rows (id, readable, the match's fields); ``counted``: each ends
        with how many candidates were examined up to it, and unreadable ones may be left out."""
        budget = self.left
        with result:  # stop reading (SQLite stops working) at a full page or the budget
            for row in result:
                values: tuple[Any, ...] = tuple(row)
                fields = values[2:-1] if counted else values[2:]
                message_id = int(values[0])
                if values[1]:  # readable
                    if len(self.matches) == self.limit:
                        self.full = True
                        return
                    self.matches.append(Match(message_id, *fields))
                left = budget - int(values[-1]) if counted else self.left - 1
                self.left, self.lowest = left, message_id
                if self.left <= 0:
                    return

    def page(self) -> SearchPage:
        if self.full:
            return SearchPage(self.matches, more=True, resume=self.matches[-1].id)
        if self.left <= 0:
            return SearchPage(self.matches, more=True, resume=self.lowest, cut=True)
        return SearchPage(self.matches)


def is_search_object(name: str | None) -> bool:
    """Whether ``name`` is the index's (Alembic's autogenerate must not see it as drift)."""
    return name is not None and (name == TRIGRAM_INDEX or name.startswith(FTS_TABLE))


@dataclasses.dataclass(slots=True)
class IndexPass:
    """Index up to ``limit`` ids of the backlog in a save's own transaction; the store
    sets ``backlog`` to the ids left after it (see :func:`index_pending`)."""

    limit: int
    backlog: int = 0


def contains(body: str | None, needle: str) -> bool:
    """:data:`CONTAINS_FUNCTION`: whether ``body`` holds ``needle`` (already lowercased)."""
    return body is not None and needle in body.lower()


def backlog(conn: Connection) -> int | None:
    """How many ids the SQLite index trails the journal by; None where nothing is indexed
    here: PostgreSQL (its index is kept in each transaction), or no index (the bench's
    ``--no-search-index``)."""
    if conn.dialect.name != "sqlite" or not conn.execute(_HAS_STATE).first():
        return None
    return int(conn.execute(_NEWEST).scalar_one()) - int(
        conn.execute(_INDEXED_THROUGH).scalar_one()
    )


def index_pending(conn: Connection, limit: int) -> int:
    """Index the next ``limit`` ids above the mark (in ``conn``'s transaction), move the
    mark, and return how many ids are left above it. Nothing to do off SQLite: 0."""
    if conn.dialect.name != "sqlite":
        return 0
    driver = conn.connection.driver_connection
    assert driver is not None, "a connection in a transaction is open"
    cursor = driver.cursor()
    cursor.execute(_INDEX_NEXT, (limit,))
    (left,) = cursor.execute(_MOVE_MARK, (limit,)).fetchone()
    return int(left)


def fts5_string(query: str) -> str:
    """``query`` as one FTS5 string: matched as literal text, whatever it holds."""
    return '"' + query.replace('"', '""') + '"'


def like_pattern(query: str) -> str:
    """``query`` as a LIKE pattern for "contains", with ``\\`` as the escape character."""
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def find(
    conn: Connection, user_id: int, query: str, *, before: int | None, limit: int, scan: int
) -> SearchPage:
    """The newest ``limit`` messages with id < ``before`` that hold ``query`` and that
    ``user_id`` may read, newest first, examining at most ``scan`` messages that hold it:
    a text frequent only where the user may not read costs ``scan`` rows, not every match.
    """
    cursor = _NO_CURSOR if before is None else before
    walk = _Walk(limit=limit, left=scan, lowest=cursor)
    if conn.dialect.name != "sqlite":
        params = {"user": user_id, "pattern": like_pattern(query), "before": cursor}
        walk.read(
            conn.execute(_PORTABLE, {**params, "scan": scan, "page": limit + 2}), counted=True
        )
        return walk.page()
    # One read transaction: the mark and both halves belong to the same snapshot.
    mark = int(conn.execute(_INDEXED_THROUGH).scalar_one())
    backlog = {"user": user_id, "needle": query.lower(), "after": mark, "before": cursor}
    walk.read(conn.execute(_SQLITE_BACKLOG, {**backlog, "scan": scan}))
    if not walk.done:
        indexed = {"user": user_id, "match": fts5_string(query), "before": min(cursor, mark + 1)}
        walk.read(conn.execute(_SQLITE, {**indexed, "scan": walk.left}))
    return walk.page()


# --- index maintenance: deleted text leaves the segments -----------------------------

#: SQLite 3.42 added FTS5's ``secure-delete`` option: a deleted row's entries are removed
#: from the segments by the delete itself, not left behind a tombstone until a merge.
SECURE_DELETE = sqlite3.sqlite_version_info >= (3, 42, 0)
_SECURE_DELETE_ON = text(f"SELECT v FROM {FTS_TABLE}_config WHERE k = 'secure-delete'")
_SET_SECURE_DELETE = text(
    f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('secure-delete', 1)"
)
_OPTIMIZE = text(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('optimize')")


def purge_deleted(conn: Connection) -> None:
    """Rewrite the SQLite index without the text of rows this transaction took out of it (a
    deleted message, a deleted room's messages); nothing to do off SQLite or without an index.

    FTS5 marks a removed row with a tombstone and keeps its entries, the text's trigrams, in
    the segments until a merge rewrites them: they survived VACUUM and went into backups.
    Where SQLite has ``secure-delete`` (3.42+) it is switched on, once (it is stored with the
    table), and later deletions remove their entries at once. Elsewhere the index is merged
    into one segment ('optimize'), which costs a rewrite of the index: deletions are rare.
    """
    if conn.dialect.name != "sqlite" or not conn.execute(_HAS_STATE).first():
        return
    if SECURE_DELETE:
        if conn.execute(_SECURE_DELETE_ON).scalar() == 1:
            return
        conn.execute(_SET_SECURE_DELETE)
    conn.execute(_OPTIMIZE)  # the tombstones left so far
