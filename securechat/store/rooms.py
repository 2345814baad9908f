"""Rooms as a team runs them: create, join, leave and every moderation action.

Each operation takes a :class:`Tx` (one transaction, the group commit's or the command
line's), so the server and ``securechat room`` run the very same code. It judges the
request against the database (the truth) and ``securechat.permissions`` (the rules),
raising a :class:`RequestError` before it writes anything; then it changes the room,
appends its event to the journal, records it in the audit log, and returns an
:class:`Outcome`: the room as it is now and who came or went, for the hub. An action that
changes nothing (muting the muted) writes nothing and returns ``changed=False``.
Moderation (``moderate``) is moderation.py's, on the helpers here.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import Connection, delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from securechat.errors import Forbidden, NoSuchUser, RoomExists, TooManyRooms
from securechat.permissions import (
    Role,
    check,
    may_see,
    no_such_room,
)
from securechat.store.journal import Actor, Place, Tx
from securechat.store.message_rows import StoredMessage
from securechat.store.models import Membership, Room, RoomBan, RoomInvite, User, utcnow

#: Another row of ``memberships``, for "is anyone in that room" beside the user's own row.
_Others = aliased(Membership)


@dataclasses.dataclass(frozen=True, slots=True)
class RoomMeta:
    """A room's settings and its members' roles, as the hub keeps them."""

    name: str
    private: bool = False
    topic: str | None = None
    owner: str | None = None
    moderators: frozenset[str] = frozenset()
    muted: frozenset[str] = frozenset()

    def role_of(self, user: str, *, is_member: bool) -> Role:
        if not is_member:
            return Role.NONE
        if user == self.owner:
            return Role.OWNER
        return Role.MODERATOR if user in self.moderators else Role.MEMBER


@dataclasses.dataclass(frozen=True, slots=True)
class RoomState:
    """A room's settings and every member: what a server loads, or re-reads after a row
    written elsewhere."""

    meta: RoomMeta
    members: frozenset[str]


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """What an operation did: ``meta`` None once the room is deleted."""

    room: str
    meta: RoomMeta | None
    entries: tuple[StoredMessage, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: bool = True
    # Every member after it, when other nodes may have changed the room meanwhile (#17).
    members: frozenset[str] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RoomRow:
    id: int
    name: str
    private: bool
    owner_id: int | None


# --- reading --------------------------------------------------------------------------


def _find_room(conn: Connection, name: str) -> RoomRow | None:
    row = conn.execute(
        select(Room.id, Room.is_private, Room.owner_id).where(Room.name == name)
    ).first()
    return None if row is None else RoomRow(row[0], name, bool(row[1]), row[2])


def user_id(conn: Connection, name: str) -> int | None:
    return conn.execute(select(User.id).where(User.name == name)).scalar()


def _membership(conn: Connection, room_id: int, user_id: int | None) -> tuple[str, bool] | None:
    """(role, muted) of a current member, None for anyone else."""
    if user_id is None:
        return None
    row = conn.execute(
        select(Membership.role, Membership.muted).where(
            Membership.room_id == room_id,
            Membership.user_id == user_id,
            Membership.left_at_id.is_(None),
        )
    ).first()
    return None if row is None else (row[0], bool(row[1]))


def role_in(conn: Connection, room: RoomRow, user_id: int | None) -> Role:
    membership = _membership(conn, room.id, user_id)
    if membership is None:
        return Role.NONE
    if user_id == room.owner_id:
        return Role.OWNER
    return Role.MODERATOR if membership[0] == "moderator" else Role.MEMBER


def is_banned(conn: Connection, room_id: int, user_id: int) -> bool:
    return bool(
        conn.execute(
            select(exists().where(RoomBan.room_id == room_id, RoomBan.user_id == user_id))
        ).scalar()
    )


def rooms_held(conn: Connection, user_id: int, *, up_to: int) -> int:
    """How many rooms ``user_id`` holds, counted up to ``up_to``: the rooms they are in, and
    the rooms they left that nobody is in now (left empty: a loop of create and leave)."""
    anyone_in = exists().where(Membership.room_id == _Others.room_id, _Others.left_at_id.is_(None))
    held = (
        select(Membership.room_id)
        .where(Membership.user_id == user_id, Membership.left_at_id.is_(None) | ~anyone_in)
        .limit(up_to)
        .subquery()
    )
    return int(conn.execute(select(func.count()).select_from(held)).scalar_one())


def _check_room_cap(conn: Connection, actor: Actor, max_rooms: int | None) -> None:
    """Raises TooManyRooms: the actor holds ``max_rooms`` rooms already (None: no cap)."""
    if max_rooms is None or actor.id is None:
        return
    if rooms_held(conn, actor.id, up_to=max_rooms) >= max_rooms:
        raise TooManyRooms(
            f"you hold {max_rooms} rooms, the most allowed (rooms you left empty count"
            " until an admin deletes them): leave one first"
        )


def room_meta(conn: Connection, room: str) -> RoomMeta | None:
    """A room's settings, owner, moderators and muted members; None if there is no room."""
    row = conn.execute(
        select(Room.id, Room.is_private, Room.topic, User.name)
        .outerjoin(User, User.id == Room.owner_id)
        .where(Room.name == room)
    ).first()
    if row is None:
        return None
    special = conn.execute(
        select(User.name, Membership.role, Membership.muted)
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.room_id == row[0],
            Membership.left_at_id.is_(None),
            (Membership.role == "moderator") | Membership.muted,
        )
    ).all()
    return RoomMeta(
        name=room, private=bool(row[1]), topic=row[2], owner=row[3],
        moderators=frozenset(name for name, role, _ in special if role == "moderator"),
        muted=frozenset(name for name, _, muted in special if muted),
    )  # fmt: skip


def room_state(conn: Connection, room: str) -> RoomState | None:
    """A room's settings and every member's name; None if there is no room."""
    meta = room_meta(conn, room)
    if meta is None:
        return None
    members = conn.execute(
        select(User.name)
        .join(Membership, Membership.user_id == User.id)
        .join(Room, Room.id == Membership.room_id)
        .where(Room.name == room, Membership.left_at_id.is_(None))
    ).scalars()
    return RoomState(meta, frozenset(members))


def visible(conn: Connection, actor: Actor, room: str) -> tuple[RoomRow, Role]:
    """The room and the actor's role in it, if the actor may see it.

    Raises:
        NoSuchRoom: no such room, or a private one the actor may not see.
    """
    found = _find_room(conn, room)
    if found is None:
        raise no_such_room(room)
    role = role_in(conn, found, actor.id)
    if not may_see(private=found.private, role=role, is_admin=actor.is_admin):
        raise no_such_room(room)
    return found, role


# --- writing --------------------------------------------------------------------------


def outcome(
    tx: Tx, room: str, entry: StoredMessage | None = None, *, added: tuple[str, ...] = (),
    removed: tuple[str, ...] = (), changed: bool = True,
) -> Outcome:  # fmt: skip
    entries = () if entry is None else (entry,)
    return Outcome(room, room_meta(tx.conn, room), entries, added, removed, changed)


def record_event(
    tx: Tx,
    actor: Actor,
    room: RoomRow,
    action: str,
    *,
    audited: bool = True,
    **fields: str | None,
) -> StoredMessage:
    """Append a room event and (unless not ``audited``: a member's own join or leave,
    which moderates nothing) its audit entry."""
    subject, body = fields.get("subject"), fields.get("body") or ""
    entry = tx.append(
        Place(room_id=room.id, room=room.name), actor, kind="event", action=action,
        subject=subject, body=body,
    )  # fmt: skip
    if not audited:
        return entry
    tx.audit(
        actor, action, room=room.name, target=subject, message_id=entry.id, detail=body or None
    )
    return entry


def _add_member(tx: Tx, room_id: int, user_id: int, *, role: str = "member") -> None:
    """Make ``user_id`` a member: a new row, or a former member's kept row (mute kept)."""
    conn, last = tx.conn, tx.last_id()
    updated = conn.execute(
        update(Membership)
        .where(Membership.room_id == room_id, Membership.user_id == user_id)
        .values(left_at_id=None, role=role, joined_at=utcnow(), last_read_id=last)
    )
    if not updated.rowcount:
        conn.execute(
            insert(Membership).values(
                room_id=room_id, user_id=user_id, role=role, joined_at=utcnow(),
                muted=False, last_read_id=last,
            )
        )  # fmt: skip
    conn.execute(
        delete(RoomInvite).where(RoomInvite.room_id == room_id, RoomInvite.user_id == user_id)
    )


def remove_member(tx: Tx, room: RoomRow, user_id: int) -> None:
    """End a membership, keeping its row (left_at_id); an owner leaves the room ownerless."""
    tx.conn.execute(
        update(Membership)
        .where(Membership.room_id == room.id, Membership.user_id == user_id)
        .values(left_at_id=tx.last_id(), role="member")
    )
    if room.owner_id == user_id:
        tx.conn.execute(update(Room).where(Room.id == room.id).values(owner_id=None))


def _make_room(
    tx: Tx, room: str, *, private: bool, topic: str | None, owner_id: int | None
) -> RoomRow:
    """Insert a new room.

    Raises:
        RoomExists: the name is taken (by a room the actor may not even see).
    """
    if _find_room(tx.conn, room) is not None:
        raise RoomExists(f"a room named {room!r} exists already")
    try:
        room_id = tx.conn.execute(
            insert(Room)
            .values(name=room, created_at=utcnow(), is_private=private, topic=topic,
                    owner_id=owner_id)
            .returning(Room.id)
        ).scalar_one()  # fmt: skip
    except IntegrityError as exc:  # created by another writer meanwhile: the caller rolls back
        raise RoomExists(f"a room named {room!r} exists already") from exc
    return RoomRow(room_id, room, private, owner_id)


def create(
    tx: Tx, actor: Actor, room: str, *, private: bool = False, topic: str | None = None,
    owner: str | None = None, max_rooms: int | None = None,
) -> Outcome:  # fmt: skip
    """Create ``room`` owned by ``owner`` (default: the actor; the console's is ownerless).
    ``max_rooms``: the rooms the actor may hold (the server's cap; the console has none).

    Raises:
        RoomExists: the name is taken. NoSuchUser: ``owner`` does not exist.
        TooManyRooms: the actor holds ``max_rooms`` rooms already.
    """
    _check_room_cap(tx.conn, actor, max_rooms)
    owner_name = owner or (actor.name if actor.id is not None else None)
    owner_id = None if owner_name is None else user_id(tx.conn, owner_name)
    if owner_name is not None and owner_id is None:
        raise NoSuchUser(f"no user {owner_name!r}")
    made = _make_room(tx, room, private=private, topic=topic or None, owner_id=owner_id)
    if owner_id is not None:
        _add_member(tx, made.id, owner_id)
    entry = record_event(tx, actor, made, "create", subject=owner_name, body=topic)
    return outcome(tx, room, entry, added=() if owner_name is None else (owner_name,))


def join(
    tx: Tx, actor: Actor, room: str, *, max_rooms: int | None = None, create: bool = True
) -> Outcome:
    """Join ``room``, creating it if new (unless not ``create``): public and ownerless, as
    before #16 (``create`` makes a room its creator owns), so a client that only joins
    never owns a room it could not leave. ``max_rooms``: the rooms the actor may hold
    (None: no cap).

    Raises:
        NoSuchRoom: a private room without an invitation (or one you are banned from), or
            no such room and not ``create``.
        Forbidden: banned from a public room.
        TooManyRooms: the actor holds ``max_rooms`` rooms already.
    """
    assert actor.id is not None, "the console joins no room"
    found = _find_room(tx.conn, room)
    if found is None and not create:
        raise no_such_room(room)
    if found is None:  # as before #16: a public room, ownerless; its first join shows
        _check_room_cap(tx.conn, actor, max_rooms)
        made = _make_room(tx, room, private=False, topic=None, owner_id=None)
        return outcome(tx, room, _joined(tx, actor, made), added=(actor.name,))
    if _membership(tx.conn, found.id, actor.id) is not None:
        return outcome(tx, room, changed=False)
    if is_banned(tx.conn, found.id, actor.id):
        if found.private:
            raise no_such_room(room)
        raise Forbidden(f"you are banned from #{room}")
    if found.private and not actor.is_admin:
        invited = tx.conn.execute(
            select(exists().where(RoomInvite.room_id == found.id, RoomInvite.user_id == actor.id))
        ).scalar()
        if not invited:
            raise no_such_room(room)
    _check_room_cap(tx.conn, actor, max_rooms)
    return outcome(tx, room, _joined(tx, actor, found), added=(actor.name,))


def _joined(tx: Tx, actor: Actor, room: RoomRow) -> StoredMessage:
    """A member's own join (an accepted invitation too) and its ``join`` event, first, so
    that the joiner's read marker starts at it ("at that moment")."""
    assert actor.id is not None
    entry = record_event(tx, actor, room, "join", audited=False, subject=actor.name)
    _add_member(tx, room.id, actor.id)
    return entry


def leave(tx: Tx, actor: Actor, room: str) -> Outcome:
    """Leave ``room``; its owner hands it over first, unless nobody else is left.

    Raises:
        NoSuchRoom, NotMember: not in that room. Forbidden: the owner, with others left.
    """
    found, role = visible(tx.conn, actor, room)
    check("leave", room, role=role, is_admin=False)
    assert actor.id is not None
    if role is Role.OWNER:
        others = tx.conn.execute(
            select(exists().where(
                Membership.room_id == found.id, Membership.user_id != actor.id,
                Membership.left_at_id.is_(None),
            ))
        ).scalar()  # fmt: skip
        if others:
            raise Forbidden(f"you own #{room}: transfer ownership first")
    entry = record_event(tx, actor, found, "leave", audited=False, subject=actor.name)
    remove_member(tx, found, actor.id)
    return outcome(tx, room, entry, removed=(actor.name,))


def room_states(conn: Connection) -> dict[str, RoomState]:
    """Every room's state, for a server starting up."""
    names = conn.execute(select(Room.name)).scalars().all()
    states = {}
    for name in names:
        state = room_state(conn, name)
        if state is not None:
            states[name] = state
    return states


__all__ = [
    "Outcome",
    "RoomMeta",
    "RoomRow",
    "RoomState",
    "create",
    "is_banned",
    "join",
    "leave",
    "outcome",
    "record_event",
    "remove_member",
    "role_in",
    "room_meta",
    "room_state",
    "room_states",
    "user_id",
    "visible",
]
