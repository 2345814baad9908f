"""What a client's ``sync`` reads: the journal rows a user may see, after an id, in id order.

A user sees the journal rows of a few sources, each one index range: direct messages
received, direct messages sent, and each room the user is in now (:func:`_sources`).
:func:`sync_page` merges those ranges from an id on; :func:`newest_visible_id` probes each
one's newest end, which is what ``welcome`` and ``synced`` say. Both run in the caller's
transaction (``ChatStore.sync``, ``ChatStore.newest_visible_id``).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, and_, bindparam, func, select, union_all

from securechat.store.message_rows import MESSAGES, StoredMessage, stored
from securechat.store.models import ChatMessage, Membership

__all__ = ["newest_visible_id", "sync_page"]

_MEMBER_ROOMS = select(Membership.room_id).where(
    Membership.user_id == bindparam("user"), Membership.left_at_id.is_(None)
)
_BY_IDS = MESSAGES.where(ChatMessage.id.in_(bindparam("ids", expanding=True))).order_by(
    ChatMessage.id
)
# SQLite allows 500 terms in one compound SELECT (SQLITE_MAX_COMPOUND_SELECT): a user in
# more rooms than this costs one more query per this many.
_ARMS_PER_QUERY = 400


def sync_page(
    conn: Connection, user_id: int, *, since: int, limit: int, max_chars: int
) -> tuple[list[StoredMessage], bool]:
    """Messages after ``since`` in the user's rooms and direct conversations, in id order.

    At most ``limit`` messages, and no more once their bodies add up to ``max_chars``
    characters; True with them if more may follow.
    """
    ids = _sync_ids(conn, user_id, since, limit + 1)
    more = len(ids) > limit
    page: list[StoredMessage] = []
    chars = 0
    for row in conn.execute(_BY_IDS, {"ids": ids[:limit]}) if ids else ():
        if chars >= max_chars:
            return page, True
        entry = stored(row)
        if entry.kind == "edit" and entry.deleted:
            continue  # its text is gone: the message was edited again, or deleted
        page.append(entry)
        chars += len(row[2])
    return page, more


def newest_visible_id(conn: Connection, user_id: int) -> int:
    """The newest journal id ``user_id`` may see (what :func:`sync_page` brings), 0 if none.

    What ``welcome`` and ``synced`` say, rather than the newest id of all: that would
    show anyone when private rooms and others' conversations are busy. A sync after it
    misses nothing the user may see, as ids commit in order (``commit_order.py``). One
    probe of each source's index, from its newest end.
    """
    arms = [
        select(func.max(ChatMessage.id).label("id")).where(source)
        for source in _sources(conn, user_id)
    ]
    newest = 0
    for start in range(0, len(arms), _ARMS_PER_QUERY):
        merged = union_all(*arms[start : start + _ARMS_PER_QUERY]).subquery()
        found = conn.execute(select(func.max(merged.c.id))).scalar()
        newest = max(newest, found or 0)
    return newest


def _sync_ids(conn: Connection, user_id: int, since: int, limit: int) -> list[int]:
    """The first ``limit`` ids after ``since`` that ``user_id`` may see, in order.

    One index range per source (:func:`_sources`), in id order. SQLite merges the
    ranges (MERGE UNION ALL) and stops after ``limit`` ids, so the cost is ``limit``
    plus one probe per room, however long the history. PostgreSQL reads at most
    ``limit`` ids of each range and sorts those.
    """
    after = ChatMessage.id > since
    arms = [select(ChatMessage.id).where(source, after) for source in _sources(conn, user_id)]
    if conn.dialect.name == "postgresql":
        # PostgreSQL appends the ranges and sorts them rather than merging: each range
        # is cut at ``limit`` first, so it never reads the whole history after ``since``.
        arms = [arm.order_by(ChatMessage.id).limit(limit) for arm in arms]
    ids: list[int] = []
    for start in range(0, len(arms), _ARMS_PER_QUERY):
        merged = union_all(*arms[start : start + _ARMS_PER_QUERY])
        query = merged.order_by(merged.selected_columns.id).limit(limit)
        ids += conn.execute(query).scalars()
    return sorted(ids)[:limit]


def _sources(conn: Connection, user_id: int) -> list[ColumnElement[bool]]:
    """Where the journal rows ``user_id`` may see are, one index range each: direct
    messages received, direct messages sent (to someone else: one to oneself is received
    too), and each room the user is in now."""
    sources = [
        ChatMessage.recipient_id == user_id,
        and_(
            ChatMessage.sender_id == user_id,
            ChatMessage.room_id.is_(None),
            ChatMessage.recipient_id.is_distinct_from(user_id),
            ChatMessage.recipient.is_not(None),  # not a deleted room's last event
        ),
    ]
    room_ids = conn.execute(_MEMBER_ROOMS, {"user": user_id}).scalars()
    return sources + [ChatMessage.room_id == room for room in room_ids]
