"""Moderation as a team runs it: each action of ``permissions.PERMISSIONS`` in a room.

As for rooms.py's create, join and leave: each action takes a :class:`Tx`, judges the
request against the database and ``securechat.permissions`` before it writes anything,
then changes the room, appends its event to the journal, audits it, and returns an
:class:`Outcome` for the hub. One that changes nothing writes nothing (``changed=False``).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, exists, insert, or_, select, update

from securechat.errors import Forbidden, NoSuchUser, NotMember
from securechat.permissions import Role, check, check_target
from securechat.store.journal import Actor, Place, Tx
from securechat.store.models import Membership, Room, RoomBan, RoomInvite, utcnow
from securechat.store.rooms import (
    Outcome,
    RoomRow,
    is_banned,
    outcome,
    record_event,
    remove_member,
    role_in,
    room_state,
    user_id,
    visible,
)
from securechat.store.search import purge_deleted

__all__ = ["moderate"]


def moderate(
    tx: Tx, actor: Actor, room: str, action: str, *, user: str | None = None,
    topic: str | None = None,
) -> Outcome:  # fmt: skip
    """One moderation action (``permissions.PERMISSIONS``) by ``actor`` in ``room``.

    Raises:
        NoSuchRoom: no such room, or a private one the actor may not see.
        Forbidden: the actor's role is too low, or the target is protected.
        NoSuchUser: the target does not exist. NotMember: the target is not a member
            where it must be.
    """
    found, role = visible(tx.conn, actor, room)
    check(action, room, role=role, is_admin=actor.is_admin)
    if user is None:
        return _room_action(tx, actor, found, action, topic)
    target_id = user_id(tx.conn, user)
    if target_id is None:
        raise NoSuchUser(f"no user {user!r}")
    target_role = role_in(tx.conn, found, target_id)
    check_target(
        action, room, actor=actor.name, target=user, actor_role=role,
        target_role=target_role, is_admin=actor.is_admin,
    )  # fmt: skip
    return _USER_ACTIONS[action](tx, actor, found, user, target_id, target_role)


def _room_action(tx: Tx, actor: Actor, room: RoomRow, action: str, topic: str | None) -> Outcome:
    conn = tx.conn
    if action == "delete":
        members = room_state(conn, room.name)
        entry = tx.append(Place(), actor, kind="event", action="delete", body=room.name)
        tx.audit(actor, "delete", room=room.name, message_id=entry.id)
        conn.execute(delete(Room).where(Room.id == room.id))  # and, by cascade, its rows
        purge_deleted(conn)  # their text, from the search index's segments too
        removed = () if members is None else tuple(sorted(members.members))
        return Outcome(room.name, None, (entry,), removed=removed)
    if action in ("private", "public"):
        private = action == "private"
        if room.private == private:
            return outcome(tx, room.name, changed=False)
        conn.execute(update(Room).where(Room.id == room.id).values(is_private=private))
        return outcome(tx, room.name, record_event(tx, actor, room, action))
    assert action == "topic", action
    text = (topic or "").strip() or None
    current = conn.execute(select(Room.topic).where(Room.id == room.id)).scalar()
    if current == text:
        return outcome(tx, room.name, changed=False)
    conn.execute(update(Room).where(Room.id == room.id).values(topic=text))
    return outcome(tx, room.name, record_event(tx, actor, room, "topic", body=text))


def _require_member(room: RoomRow, user: str, target_role: Role) -> None:
    if target_role is Role.NONE:
        raise NotMember(f"{user} is not in #{room.name}")


def _invite(tx: Tx, actor: Actor, room: RoomRow, user: str, uid: int, target: Role) -> Outcome:
    if is_banned(tx.conn, room.id, uid):
        raise Forbidden(f"{user} is banned from #{room.name}; unban them first")
    pending = tx.conn.execute(
        select(exists().where(RoomInvite.room_id == room.id, RoomInvite.user_id == uid))
    ).scalar()
    if target is not Role.NONE or pending:
        return outcome(tx, room.name, changed=False)
    tx.conn.execute(
        insert(RoomInvite).values(
            room_id=room.id, user_id=uid, invited_at=utcnow(), invited_by=actor.name
        )
    )
    return outcome(tx, room.name, record_event(tx, actor, room, "invite", subject=user))


def _kick(tx: Tx, actor: Actor, room: RoomRow, user: str, uid: int, target: Role) -> Outcome:
    _require_member(room, user, target)
    remove_member(tx, room, uid)
    return outcome(
        tx, room.name, record_event(tx, actor, room, "kick", subject=user), removed=(user,)
    )


def _ban(tx: Tx, actor: Actor, room: RoomRow, user: str, uid: int, target: Role) -> Outcome:
    if is_banned(tx.conn, room.id, uid):
        return outcome(tx, room.name, changed=False)
    tx.conn.execute(
        insert(RoomBan).values(
            room_id=room.id, user_id=uid, banned_at=utcnow(), banned_by=actor.name
        )
    )
    tx.conn.execute(
        delete(RoomInvite).where(RoomInvite.room_id == room.id, RoomInvite.user_id == uid)
    )
    if target is not Role.NONE:
        remove_member(tx, room, uid)
    removed = () if target is Role.NONE else (user,)
    return outcome(
        tx, room.name, record_event(tx, actor, room, "ban", subject=user), removed=removed
    )


def _unban(tx: Tx, actor: Actor, room: RoomRow, user: str, uid: int, target: Role) -> Outcome:
    gone = tx.conn.execute(
        delete(RoomBan).where(RoomBan.room_id == room.id, RoomBan.user_id == uid)
    )
    if not gone.rowcount:
        return outcome(tx, room.name, changed=False)
    return outcome(tx, room.name, record_event(tx, actor, room, "unban", subject=user))


def set_membership(tx: Tx, room: RoomRow, uid: int, **values: object) -> bool:
    """Change a member's row where it differs; True if it did."""
    differs = [getattr(Membership, key) != value for key, value in values.items()]
    changed = tx.conn.execute(
        update(Membership)
        .where(Membership.room_id == room.id, Membership.user_id == uid, or_(*differs))
        .values(**values)
    )
    return bool(changed.rowcount)


_UserAction = Callable[[Tx, Actor, RoomRow, str, int, Role], Outcome]


def _flag(action: str, **values: object) -> _UserAction:
    def act(tx: Tx, actor: Actor, room: RoomRow, user: str, uid: int, target: Role) -> Outcome:
        _require_member(room, user, target)
        if action == "op" and target is Role.OWNER:
            return outcome(tx, room.name, changed=False)
        if not set_membership(tx, room, uid, **values):
            return outcome(tx, room.name, changed=False)
        return outcome(tx, room.name, record_event(tx, actor, room, action, subject=user))

    return act


def _transfer(tx: Tx, actor: Actor, room: RoomRow, user: str, uid: int, target: Role) -> Outcome:
    _require_member(room, user, target)
    if target is Role.OWNER:
        return outcome(tx, room.name, changed=False)
    conn = tx.conn
    if room.owner_id is not None:  # the old owner stays on as a moderator
        set_membership(tx, room, room.owner_id, role="moderator")
    set_membership(tx, room, uid, role="moderator")
    conn.execute(update(Room).where(Room.id == room.id).values(owner_id=uid))
    return outcome(tx, room.name, record_event(tx, actor, room, "transfer", subject=user))


_USER_ACTIONS: dict[str, _UserAction] = {
    "invite": _invite,
    "kick": _kick,
    "ban": _ban,
    "unban": _unban,
    "mute": _flag("mute", muted=True),
    "unmute": _flag("unmute", muted=False),
    "op": _flag("op", role="moderator"),
    "deop": _flag("deop", role="member"),
    "transfer": _transfer,
}
