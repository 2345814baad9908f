"""The first admin owns #general (#26).

``#general`` is made by the first user's first login (``join``, as before rooms had
owners), so it has no owner, and a team had nobody to set its topic but admins acting as
owners. Now the first admin owns it: :func:`first_admin_owns_general` runs when an admin
is added (``securechat adduser --admin``) and, if nobody else is an admin yet, makes them
its owner: a new ``#general`` made for them, or the ownerless one handed over (joined if
they are not in it), recorded as the console's ``create`` or ``transfer`` with its audit
entry. A ``#general`` someone owns already is left alone. Databases from before get the
same through migration 0014.
"""

from __future__ import annotations

from sqlalchemy import exists, select, update

from securechat.store.journal import CONSOLE, Tx
from securechat.store.models import Room, User
from securechat.store.rooms import (
    Outcome,
    _add_member,
    _find_room,
    _membership,
    create,
    outcome,
    record_event,
    user_id,
)

__all__ = ["GENERAL", "first_admin_owns_general"]

GENERAL = "general"


def first_admin_owns_general(tx: Tx, admin: str, room: str = GENERAL) -> Outcome:
    """Make ``admin`` (just made an admin) the owner of ``room`` if they are the only admin
    and nobody owns it; ``changed=False`` otherwise."""
    conn = tx.conn
    uid = user_id(conn, admin)
    others = conn.execute(select(exists().where(User.is_admin, User.name != admin))).scalar()
    if uid is None or others:
        return Outcome(room, None, changed=False)
    found = _find_room(conn, room)
    if found is None:
        return create(tx, CONSOLE, room, owner=admin)
    if found.owner_id is not None:
        return outcome(tx, room, changed=False)
    joins = _membership(conn, found.id, uid) is None
    if joins:
        _add_member(tx, found.id, uid)
    conn.execute(update(Room).where(Room.id == found.id).values(owner_id=uid))
    entry = record_event(tx, CONSOLE, found, "transfer", subject=admin)
    return outcome(tx, room, entry, added=(admin,) if joins else ())
