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

from sqlalchemy import Connection, and_, func, insert, select, update

from securechat.errors import NoSuchUser
from securechat.permissions import check
from securechat.store.journal import Actor, Tx
from securechat.store.models import ChatMessage, DirectRead, Membership, Mention, Room, User
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


def _capped_count(conn: Connection, query: object, cap: int) -> int:
    inner = query.limit(cap).subquery()  # type: ignore[attr-defined]
    return int(conn.execute(select(func.count()).select_from(inner)).scalar_one())


def _room_counts(
    conn: Connection, user_id: int, room_id: int, marker: int, cap: int
) -> tuple[int, int]:
    unread = select(ChatMessage.id).where(
        ChatMessage.room_id == room_id, ChatMessage.id > marker, ChatMessage.kind == "message",
        ChatMessage.deleted.is_(False), ChatMessage.sender_id.is_distinct_from(user_id),
    )  # fmt: skip
    mentioned = (
        select(Mention.message_id)
        .join(ChatMessage, ChatMessage.id == Mention.message_id)
        .where(
            Mention.user_id == user_id, Mention.message_id > marker, ChatMessage.room_id == room_id
        )
    )
    return _capped_count(conn, unread, cap), _capped_count(conn, mentioned, cap)


def unread(
    conn: Connection, user_id: int, *, after: str | None, limit: int, cap: int
) -> tuple[list[UnreadCount], bool]:
    """The user's conversations with unread messages, in key order after ``after``: at most
    ``limit`` of them, and True if more may follow. Counts stop at ``cap``."""
    found: list[UnreadCount] = []
    after = after or ""
    rooms = conn.execute(
        select(Room.name, Room.id, Membership.last_read_id)
        .join(Membership, Membership.room_id == Room.id)
        .where(Membership.user_id == user_id, Membership.left_at_id.is_(None))
        .order_by(Room.name)
    ).all()
    for name, room_id, marker in rooms:
        if f"r:{name}" <= after:
            continue
        count, mentions = _room_counts(conn, user_id, room_id, marker, cap)
        if count:
            found.append(UnreadCount(f"r:{name}", count, mentions, marker, room=name))
            if len(found) > limit:
                return found[:limit], True
    dm_marker = func.coalesce(DirectRead.last_read_id, 0)
    peers = conn.execute(
        select(User.name, func.count(), func.min(dm_marker), User.id)
        .select_from(ChatMessage)
        .join(User, User.id == ChatMessage.sender_id)
        .outerjoin(
            DirectRead,
            and_(DirectRead.user_id == user_id, DirectRead.peer_id == ChatMessage.sender_id),
        )
        .where(
            ChatMessage.recipient_id == user_id, ChatMessage.kind == "message",
            ChatMessage.deleted.is_(False), ChatMessage.sender_id != user_id,
            ChatMessage.id > dm_marker,
        )
        .group_by(User.id, User.name)
        .order_by(User.name)
    ).all()  # fmt: skip
    for name, count, last_read, peer_id in peers:
        if f"u:{name}" <= after:
            continue
        mentions = conn.execute(
            select(func.count())
            .select_from(Mention)
            .join(ChatMessage, ChatMessage.id == Mention.message_id)
            .where(
                Mention.user_id == user_id, Mention.message_id > last_read,
                ChatMessage.sender_id == peer_id, ChatMessage.recipient_id == user_id,
            )
        ).scalar_one()  # fmt: skip
        found.append(UnreadCount(f"u:{name}", min(count, cap), mentions, last_read, peer=name))
        if len(found) > limit:
            return found[:limit], True
    return found, False
