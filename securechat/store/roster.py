"""Reading who is in a room and who is asked in (#26): a room's members with their roles,
and a user's pending invitations. Functions on the caller's connection, like sync.py;
each returns one page in name order after a key, and whether more follow."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import Connection, select

from securechat.store.journal import Actor
from securechat.store.models import Membership, Room, RoomInvite, User
from securechat.store.rooms import visible

__all__ = ["PendingInvite", "RosterEntry", "invitations", "members"]


@dataclasses.dataclass(frozen=True, slots=True)
class RosterEntry:
    """A member of a room: ``role`` is owner, moderator or member."""

    name: str
    role: str
    muted: bool


@dataclasses.dataclass(frozen=True, slots=True)
class PendingInvite:
    room: str
    by: str
    at: dt.datetime
    private: bool
    topic: str | None


def members(
    conn: Connection, actor: Actor, room: str, *, after: str | None, limit: int
) -> tuple[list[RosterEntry], bool]:
    """``room``'s members after the name ``after``, at most ``limit``.

    Raises:
        NoSuchRoom: no such room, or a private one the actor may not see.
    """
    found, _ = visible(conn, actor, room)
    query = (
        select(User.id, User.name, Membership.role, Membership.muted)
        .join(Membership, Membership.user_id == User.id)
        .where(
            Membership.room_id == found.id, Membership.left_at_id.is_(None),
            User.name > (after or ""),
        )
        .order_by(User.name)
        .limit(limit + 1)
    )  # fmt: skip
    entries = [
        RosterEntry(name, "owner" if uid == found.owner_id else role, bool(muted))
        for uid, name, role, muted in conn.execute(query)
    ]
    return entries[:limit], len(entries) > limit


def invitations(
    conn: Connection, user_id: int, *, after: str | None, limit: int
) -> tuple[list[PendingInvite], bool]:
    """The pending invitations of ``user_id`` to rooms named after ``after`` (a join or a
    ban uses one up, the room's deletion drops it), at most ``limit``."""
    query = (
        select(Room.name, RoomInvite.invited_by, RoomInvite.invited_at, Room.is_private, Room.topic)
        .join(Room, Room.id == RoomInvite.room_id)
        .where(RoomInvite.user_id == user_id, Room.name > (after or ""))
        .order_by(Room.name)
        .limit(limit + 1)
    )
    found = [
        PendingInvite(name, by, at, bool(private), topic)
        for name, by, at, private, topic in conn.execute(query)
    ]
    return found[:limit], len(found) > limit
