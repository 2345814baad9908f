"""Editing and deleting a stored message: the original changes in place, and a journal row
says so, so everyone who has the message hears of it and ``sync`` brings it later.

An edit rewrites the original's body and stamps ``edited_ms``; its row carries the new
text. A deletion empties the original's body (a tombstone: ``deleted``), and the bodies of
its edit rows too, so its text is gone from the database, not only from view. Mentions
follow: an edit counts them again, a deletion drops them. The author edits and deletes;
moderators of a room (and admins) also delete others' messages there, which is audited.
A message the actor may not see, or an id that is not a message, is ``no_such_message``.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import Connection, select, update

from securechat.errors import Forbidden, NoSuchMessage
from securechat.permissions import Role, check
from securechat.store.journal import Actor, Place, Tx
from securechat.store.mentions import add_mentions, drop_mentions
from securechat.store.messages import StoredMessage
from securechat.store.models import ChatMessage, Membership, Room
from securechat.store.search import purge_deleted


@dataclasses.dataclass(frozen=True, slots=True)
class _Original:
    id: int
    room_id: int | None
    room: str | None
    owner_id: int | None
    recipient_id: int | None
    recipient: str | None
    sender_id: int | None
    sender: str


def _original(conn: Connection, actor: Actor, message_id: int) -> tuple[_Original, Role]:
    """The live message ``message_id`` and the actor's role in its room (NONE for a DM).

    Raises:
        NoSuchMessage: no such message, not a message, deleted, or one the actor may not
            see (a room they are not in, unless admin; someone else's conversation).
    """
    row = conn.execute(
        select(
            ChatMessage.room_id, Room.name, Room.owner_id, ChatMessage.recipient_id,
            ChatMessage.recipient, ChatMessage.sender_id, ChatMessage.sender,
        )
        .outerjoin(Room, Room.id == ChatMessage.room_id)
        .where(
            ChatMessage.id == message_id, ChatMessage.kind == "message",
            ChatMessage.deleted.is_(False),
        )
    ).first()  # fmt: skip
    missing = NoSuchMessage(f"no message {message_id}")
    if row is None:
        raise missing
    original = _Original(message_id, *row)
    if original.room_id is None:
        if actor.id is None or actor.id not in (original.sender_id, original.recipient_id):
            raise missing
        return original, Role.NONE
    membership = None
    if actor.id is not None:
        membership = conn.execute(
            select(Membership.role).where(
                Membership.room_id == original.room_id,
                Membership.user_id == actor.id,
                Membership.left_at_id.is_(None),
            )
        ).scalar()
    if membership is None and not actor.is_admin:
        raise missing
    role = (
        Role.NONE if membership is None
        else Role.OWNER if actor.id == original.owner_id
        else Role.MODERATOR if membership == "moderator"
        else Role.MEMBER
    )  # fmt: skip
    return original, role


def _place(original: _Original) -> Place:
    return Place(original.room_id, original.room, original.recipient_id, original.recipient)


def edit(tx: Tx, actor: Actor, message_id: int, body: str) -> StoredMessage:
    """Replace the text of the actor's own message; returns the ``edit`` row.

    Raises:
        NoSuchMessage: see :func:`_original`. Forbidden: someone else's message.
    """
    original, _ = _original(tx.conn, actor, message_id)
    if original.sender_id is None or original.sender_id != actor.id:
        raise Forbidden("you can edit only your own messages")
    tx.conn.execute(
        update(ChatMessage)
        .where(ChatMessage.id == message_id)
        .values(body=body, edited_ms=tx.now_ms)
    )
    entry = tx.append(_place(original), actor, kind="edit", body=body, target_id=message_id)
    drop_mentions(tx.conn, message_id)
    add_mentions(
        tx.conn,
        [(message_id, body, original.room_id, original.recipient_id, original.sender_id)],
    )
    return entry


def delete(tx: Tx, actor: Actor, message_id: int) -> StoredMessage:
    """Delete a message: one's own, or another's in a room one moderates (audited).

    Raises:
        NoSuchMessage: see :func:`_original`. Forbidden: another's message, without the role.
    """
    original, role = _original(tx.conn, actor, message_id)
    own = original.sender_id is not None and original.sender_id == actor.id
    if not own:
        if original.room is None:
            raise Forbidden("you can delete only your own messages in a conversation")
        check("delete_others", original.room, role=role, is_admin=actor.is_admin)
    conn = tx.conn
    conn.execute(
        update(ChatMessage).where(ChatMessage.id == message_id).values(body="", deleted=True)
    )
    conn.execute(  # the edits' texts go too
        update(ChatMessage)
        .where(ChatMessage.target_id == message_id, ChatMessage.kind == "edit")
        .values(body="", deleted=True)
    )
    drop_mentions(conn, message_id)
    purge_deleted(conn)  # and from the search index's segments
    entry = tx.append(_place(original), actor, kind="delete", target_id=message_id)
    if not own:
        tx.audit(
            actor, "delete_message", room=original.room, target=original.sender,
            message_id=message_id,
        )  # fmt: skip
    return entry
