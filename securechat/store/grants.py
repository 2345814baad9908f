"""Room memberships that follow directory groups: one team operation, :func:`place`.

It runs like ``rooms.moderate`` (a :class:`Tx` of the committer or the command line), so a
live server applies it the same way: the journal row is the room event a moderator's
action writes (``invite`` when the directory adds someone, ``kick`` when it takes them
out, ``op``/``deop`` for the moderator role), with its audit entry by ``directory``. A
mapped room that does not exist yet is made private and ownerless. A ban stands: the
directory does not put back someone a moderator banned.
"""

from __future__ import annotations

from securechat.errors import NoSuchUser
from securechat.store.journal import Actor, Tx
from securechat.store.message_rows import StoredMessage
from securechat.store.moderation import set_membership
from securechat.store.rooms import (
    Outcome,
    _add_member,
    _find_room,
    _make_room,
    _membership,
    is_banned,
    record_event,
    remove_member,
    room_meta,
    user_id,
)

__all__ = ["place"]


def place(tx: Tx, actor: Actor, room: str, user: str, role: str | None) -> Outcome:
    """Make ``user`` a ``role`` ("member" or "moderator") of ``room``, or (None) no member.

    Raises:
        NoSuchUser: no such user.
    """
    conn = tx.conn
    uid = user_id(conn, user)
    if uid is None:
        raise NoSuchUser(f"no user {user!r}")
    found = _find_room(conn, room)
    entries: list[StoredMessage] = []
    if found is None:
        if role is None:
            return Outcome(room, None, changed=False)
        found = _make_room(tx, room, private=True, topic=None, owner_id=None)
        entries.append(record_event(tx, actor, found, "create"))
    current = _membership(conn, found.id, uid)
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    if role is None:
        if current is not None:
            remove_member(tx, found, uid)
            entries.append(record_event(tx, actor, found, "kick", subject=user))
            removed = (user,)
    elif current is None:
        if not is_banned(conn, found.id, uid):
            _add_member(tx, found.id, uid, role=role)
            entries.append(record_event(tx, actor, found, "invite", subject=user))
            added = (user,)
    elif current[0] != role and found.owner_id != uid and set_membership(tx, found, uid, role=role):
        entries.append(
            record_event(tx, actor, found, "op" if role == "moderator" else "deop", subject=user)
        )
    if not entries:
        return Outcome(room, room_meta(conn, room), changed=False)
    return Outcome(room, room_meta(conn, room), tuple(entries), added, removed)
