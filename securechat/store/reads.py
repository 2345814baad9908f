"""Read markers and unread counts, per user and per conversation (a room or a peer).

A marker is a journal id: everything up to it has been read. It only moves forward, and
never past the newest id. A room's marker is in the user's membership row (a joiner starts
read up to the join); a direct conversation's in ``dm_reads`` (none yet: nothing read, so
a message to someone who never logged in waits for them). Unread counts count messages
from others (not deleted) after the marker, up to ``cap``; mentions count the user's rows
in ``mentions`` after it.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import Connection, TextClause, insert, select, text, update

from securechat.errors import NoSuchUser
from securechat.permissions import check
from securechat.store.journal import Actor, Tx
from securechat.store.models import ChatMessage, DirectRead, Membership, User
from securechat.store.rooms import visible


@dataclasses.dataclass(frozen=True, slots=True)
class UnreadCount:
    """One conversation with something unread; ``key`` is ``r:ROOM`` or ``u:PEER``."""

    key: str
    count: int
    mentions: int
    last_read: int
    room: str | None = None
    peer: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ReadMark:
    """Where ``user``'s marker in a room or a conversation with ``peer`` is now."""

    user: str
    id: int
    room: str | None = None
    peer: str | None = None


def mark_read(
    tx: Tx, actor: Actor, message_id: int, *, room: str | None = None, peer: str | None = None
) -> ReadMark:
    """Move the actor's marker in a room or a conversation up to ``message_id``.

    Raises:
        NoSuchRoom, NotMember: not in that room. NoSuchUser: no such peer.
    """
    assert actor.id is not None
    conn = tx.conn
    target = min(message_id, tx.last_id())
    if room is not None:
        found, role = visible(conn, actor, room)
        check("read", room, role=role, is_admin=False)
        where = (Membership.room_id == found.id, Membership.user_id == actor.id)
        conn.execute(
            update(Membership)
            .where(*where, Membership.last_read_id < target)
            .values(last_read_id=target)
        )
        marker = conn.execute(select(Membership.last_read_id).where(*where)).scalar_one()
        return ReadMark(actor.name, int(marker), room=room)
    assert peer is not None
    peer_id = conn.execute(select(User.id).where(User.name == peer)).scalar()
    if peer_id is None:
        raise NoSuchUser(f"no user {peer!r}")
    where = (DirectRead.user_id == actor.id, DirectRead.peer_id == peer_id)
    current = conn.execute(select(DirectRead.last_read_id).where(*where)).scalar()
    if current is None:
        conn.execute(
            insert(DirectRead).values(user_id=actor.id, peer_id=peer_id, last_read_id=target)
        )
        return ReadMark(actor.name, target, peer=peer)
    if current < target:
        conn.execute(update(DirectRead).where(*where).values(last_read_id=target))
    return ReadMark(actor.name, max(current, target), peer=peer)


# "Unread" is the same test for a room and a conversation: a live message from another.
_UNREAD = "m.kind = 'message' AND NOT m.deleted AND (m.sender_id IS NULL OR m.sender_id <> :user)"

# Rooms: one statement. The inner query keeps the member's rooms with anything unread (one
# index probe each, on (room_id, id) from the marker), in name order, one page of them;
# only those are counted, each count a scan of at most :cap rows of the same index.
_ROOMS = f"""
SELECT p.name, p.marker,
  (SELECT count(*) FROM (
     SELECT 1 AS one FROM messages AS m
     WHERE m.room_id = p.room_id AND m.id > p.marker AND {_UNREAD} LIMIT :cap
   ) AS capped) AS unread,
  (SELECT count(*) FROM (
     SELECT 1 AS one FROM mentions AS n JOIN messages AS m ON m.id = n.message_id
     WHERE n.user_id = :user AND n.message_id > p.marker AND m.room_id = p.room_id LIMIT :cap
   ) AS capped) AS mentions
FROM (
  SELECT r.name AS name, ms.room_id AS room_id, ms.last_read_id AS marker
  FROM memberships AS ms JOIN rooms AS r ON r.id = ms.room_id
  WHERE ms.user_id = :user AND ms.left_at_id IS NULL AND r.name{{collate}} > :after
    AND EXISTS (
      SELECT 1 FROM messages AS m
      WHERE m.room_id = ms.room_id AND m.id > ms.last_read_id AND {_UNREAD}
    )
  ORDER BY r.name{{collate}} LIMIT :page
) AS p
ORDER BY p.name{{collate}}
"""

# The people who ever wrote to the user, found by skipping through the (recipient_id,
# sender_id, id) index one sender at a time (a loose index scan: one probe per sender,
# however many messages each sent). A recursive CTE, for _PEERS and _ALL_PEERS.
_SENDERS = """senders (id) AS (
  SELECT (SELECT m.sender_id FROM messages AS m
          WHERE m.recipient_id = :user AND m.sender_id IS NOT NULL
          ORDER BY m.sender_id LIMIT 1)
  UNION ALL
  SELECT (SELECT m.sender_id FROM messages AS m
          WHERE m.recipient_id = :user AND m.sender_id > s.id
          ORDER BY m.sender_id LIMIT 1)
  FROM senders AS s WHERE s.id IS NOT NULL
)"""

# Direct conversations: the people who ever wrote to the user (_SENDERS), counted as
# rooms are.
_PEERS = f"""
WITH RECURSIVE {_SENDERS}
SELECT p.name, p.marker,
  (SELECT count(*) FROM (
     SELECT 1 AS one FROM messages AS m
     WHERE m.recipient_id = :user AND m.sender_id = p.peer_id AND m.id > p.marker
       AND {_UNREAD} LIMIT :cap
   ) AS capped) AS unread,
  (SELECT count(*) FROM (
     SELECT 1 AS one FROM mentions AS n JOIN messages AS m ON m.id = n.message_id
     WHERE n.user_id = :user AND n.message_id > p.marker AND m.sender_id = p.peer_id
       AND m.recipient_id = :user LIMIT :cap
   ) AS capped) AS mentions
FROM (
  SELECT u.name AS name, u.id AS peer_id, coalesce(d.last_read_id, 0) AS marker
  FROM senders AS s JOIN users AS u ON u.id = s.id
  LEFT JOIN dm_reads AS d ON d.user_id = :user AND d.peer_id = s.id
  WHERE s.id <> :user AND u.name{{collate}} > :after
    AND EXISTS (
      SELECT 1 FROM messages AS m
      WHERE m.recipient_id = :user AND m.sender_id = s.id
        AND m.id > coalesce(d.last_read_id, 0) AND {_UNREAD}
    )
  ORDER BY u.name{{collate}} LIMIT :page
) AS p
ORDER BY p.name{{collate}}
"""


def _statement(conn: Connection, sql: str) -> TextClause:
    """``sql`` for this database: names compare byte by byte, as Python compares the keys
    (PostgreSQL's default collation follows the locale, which sorts '-' and '.' apart)."""
    return text(sql.format(collate=' COLLATE "C"' if conn.dialect.name == "postgresql" else ""))


def _after(prefix: str, after: str) -> str | None:
    """The names after which the keys ``prefix + name`` come after ``after``; None: none do."""
    if after.startswith(prefix):
        return after[len(prefix) :]
    return "" if after < prefix else None


def unread(
    conn: Connection, user_id: int, *, after: str | None, limit: int, cap: int
) -> tuple[list[UnreadCount], bool]:
    """The user's conversations with unread messages, in key order after ``after``: at most
    ``limit`` of them, and True if more may follow. Counts stop at ``cap``.

    Two statements, whatever the number of rooms: each reads one index probe per room (or
    per person who wrote to the user) and counts only the page's conversations, each up
    to ``cap`` rows: ``cap`` bounds the work inside the database, not after it.
    """
    found: list[UnreadCount] = []
    after = after or ""
    for prefix, sql in (("r:", _ROOMS), ("u:", _PEERS)):
        bound = _after(prefix, after)
        if bound is None:
            continue
        params = {"user": user_id, "after": bound, "cap": cap, "page": limit + 1 - len(found)}
        for name, marker, count, mentions in conn.execute(_statement(conn, sql), params):
            key, where = f"{prefix}{name}", {"room" if prefix == "r:" else "peer": name}
            found.append(UnreadCount(key, int(count), int(mentions), int(marker), **where))
        if len(found) > limit:
            return found[:limit], True
    return found, False


@dataclasses.dataclass(frozen=True, slots=True)
class ConversationState:
    """One conversation the user has: a room they are in, or a person they wrote to or
    heard from. ``last_id``/``last_ts_ms``: its newest message (None: none yet)."""

    key: str
    count: int
    mentions: int
    last_read: int
    last_id: int | None
    last_ts_ms: int | None
    room: str | None = None
    peer: str | None = None


# The newest message of a conversation: one backward probe of an (…, id) index each.
_LAST_IN_ROOM = (
    "SELECT m.id FROM messages AS m WHERE m.room_id = {room} AND m.kind = 'message'"
    " ORDER BY m.id DESC LIMIT 1"
)
_LAST_DIRECT = (
    "SELECT m.id FROM messages AS m WHERE m.recipient_id = {to} AND m.sender_id = {by}"
    " AND m.kind = 'message' ORDER BY m.id DESC LIMIT 1"
)

# Every room the user is in, one page in name order: read state and newest message.
_ALL_ROOMS = f"""
SELECT r.name, ms.last_read_id AS marker,
  ({_LAST_IN_ROOM.format(room="ms.room_id")}) AS last_in, NULL AS last_out,
  (SELECT count(*) FROM (
     SELECT 1 AS one FROM messages AS m
     WHERE m.room_id = ms.room_id AND m.id > ms.last_read_id AND {_UNREAD} LIMIT :cap
   ) AS capped) AS unread,
  (SELECT count(*) FROM (
     SELECT 1 AS one FROM mentions AS n JOIN messages AS m ON m.id = n.message_id
     WHERE n.user_id = :user AND n.message_id > ms.last_read_id AND m.room_id = ms.room_id
     LIMIT :cap
   ) AS capped) AS mentions
FROM memberships AS ms JOIN rooms AS r ON r.id = ms.room_id
WHERE ms.user_id = :user AND ms.left_at_id IS NULL AND r.name{{collate}} > :after
ORDER BY r.name{{collate}} LIMIT :page
"""

# Everyone the user heard from (_SENDERS) or wrote to (a scan of
# the user's own direct messages), one page in name order, as rooms are above.
_ALL_PEERS = f"""
WITH RECURSIVE {_SENDERS},
peers (id) AS (
  SELECT id FROM senders WHERE id IS NOT NULL
  UNION
  SELECT m.recipient_id FROM messages AS m
  WHERE m.sender_id = :user AND m.room_id IS NULL AND m.kind = 'message'
    AND m.recipient_id IS NOT NULL
)
SELECT u.name, coalesce(d.last_read_id, 0) AS marker,
  ({_LAST_DIRECT.format(to=":user", by="p.id")}) AS last_in,
  ({_LAST_DIRECT.format(to="p.id", by=":user")}) AS last_out,
  (SELECT count(*) FROM (
     SELECT 1 AS one FROM messages AS m
     WHERE m.recipient_id = :user AND m.sender_id = p.id
       AND m.id > coalesce(d.last_read_id, 0) AND {_UNREAD} LIMIT :cap
   ) AS capped) AS unread,
  (SELECT count(*) FROM (
     SELECT 1 AS one FROM mentions AS n JOIN messages AS m ON m.id = n.message_id
     WHERE n.user_id = :user AND n.message_id > coalesce(d.last_read_id, 0)
       AND m.sender_id = p.id AND m.recipient_id = :user LIMIT :cap
   ) AS capped) AS mentions
FROM peers AS p JOIN users AS u ON u.id = p.id
LEFT JOIN dm_reads AS d ON d.user_id = :user AND d.peer_id = p.id
WHERE u.name{{collate}} > :after
ORDER BY u.name{{collate}} LIMIT :page
"""


def conversations(
    conn: Connection, user_id: int, *, after: str | None, limit: int, cap: int
) -> tuple[list[ConversationState], bool]:
    """Every conversation the user has, read or not, in key order after ``after`` (as
    :func:`unread`): the list a client shows, the same on every device."""
    rows: list[tuple[str, str, int, int | None, int, int]] = []
    after = after or ""
    for prefix, sql in (("r:", _ALL_ROOMS), ("u:", _ALL_PEERS)):
        bound = _after(prefix, after)
        if bound is None:
            continue
        params = {"user": user_id, "after": bound, "cap": cap, "page": limit + 1 - len(rows)}
        for name, marker, last_in, last_out, count, mentions in conn.execute(
            _statement(conn, sql), params
        ):
            last_id = max((i for i in (last_in, last_out) if i is not None), default=None)
            rows.append((prefix, name, int(marker), last_id, int(count), int(mentions)))
        if len(rows) > limit:
            break
    more = len(rows) > limit
    rows = rows[:limit]
    newest = [row[3] for row in rows if row[3] is not None]
    times: dict[int, int] = {}
    if newest:
        query = select(ChatMessage.id, ChatMessage.ts_ms).where(ChatMessage.id.in_(newest))
        times = {int(i): int(ts) for i, ts in conn.execute(query)}
    found = []
    for prefix, name, marker, last_id, count, mentions in rows:
        where = {"room" if prefix == "r:" else "peer": name}
        last_ts = None if last_id is None else times.get(last_id)
        found.append(
            ConversationState(f"{prefix}{name}", count, mentions, marker, last_id, last_ts, **where)
        )
    return found, more
