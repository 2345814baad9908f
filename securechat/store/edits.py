"""Editing and deleting a stored message: the original changes in place, and a journal row
says so, so everyone who has the message hears of it and ``sync`` brings it later.

An edit rewrites the original's body and stamps ``edited_ms``; its row carries the new
text, and the rows of earlier edits are emptied (``deleted``): only the current text is
kept, so a text edited out is gone from the database and nobody who syncs later gets it.
A deletion empties the original's body (a tombstone: ``deleted``), and the bodies of its
edit rows too, so its text is gone from the database, not only from view. Mentions
follow: an edit counts them again, a deletion drops them.

The author edits, under the rules of a send: in a room, only a member who is not muted
there (an edit speaks to the room as a send does). The author deletes, muted or not;
moderators of a room (and admins) also delete others' messages there, which is audited,
except the owner's, which only the owner and admins may delete. A message the actor may
not see, or an id that is not a message, is ``no_such_message``.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import Connection, select, update

from securechat.errors import Forbidden, NoSuchMessage
from securechat.permissions import Role, check, check_target, not_member
from securechat.protocol.mentions import broadcast
from securechat.store.attachments import with_file_lines
from securechat.store.journal import Actor, Place, Tx
from securechat.store.mentions import add_mentions, drop_mentions
from securechat.store.message_rows import StoredMessage
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


@dataclasses.dataclass(frozen=True, slots=True)
class _Standing:
    """The actor's place in the message's room: NONE for a direct message or an admin
    who is not a member."""

    role: Role
    muted: bool = False


def _original(conn: Connection, actor: Actor, message_id: int) -> tuple[_Original, _Standing]:
    """The live message ``message_id`` and the actor's standing in its room.

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
        return original, _Standing(Role.NONE)
    membership = None
    if actor.id is not None:
        membership = conn.execute(
            select(Membership.role, Membership.muted).where(
                Membership.room_id == original.room_id,
                Membership.user_id == actor.id,
                Membership.left_at_id.is_(None),
            )
        ).first()
    if membership is None:
        if not actor.is_admin:
            raise missing
        return original, _Standing(Role.NONE)
    role = (
        Role.OWNER if actor.id == original.owner_id
        else Role.MODERATOR if membership.role == "moderator"
        else Role.MEMBER
    )  # fmt: skip
    return original, _Standing(role, membership.muted)


def _place(original: _Original) -> Place:
    return Place(original.room_id, original.room, original.recipient_id, original.recipient)


def _erase_edits(conn: Connection, message_id: int) -> None:
    """Empty the text of every edit of ``message_id`` so far (``sync`` skips them)."""
    conn.execute(
        update(ChatMessage)
        .where(ChatMessage.target_id == message_id, ChatMessage.kind == "edit")
        .values(body="", deleted=True)
    )


def edit(tx: Tx, actor: Actor, message_id: int, body: str) -> StoredMessage:
    """Replace the text of the actor's own message; returns the ``edit`` row.

    Raises:
        NoSuchMessage: see :func:`_original`. Forbidden: someone else's message, or one
            in a room where the actor is muted. NotMember: in a room the actor (an admin)
            has left.
    """
    original, standing = _original(tx.conn, actor, message_id)
    if original.sender_id is None or original.sender_id != actor.id:
        raise Forbidden("you can edit only your own messages")
    if original.room is not None:  # what a send to the room needs
        if standing.role is Role.NONE:
            raise not_member(original.room)
        if standing.muted:
            raise Forbidden(f"you are muted in #{original.room}")
        if broadcast(body) is not None:
            check("mention_all", original.room, role=standing.role, is_admin=actor.is_admin)
    was = tx.conn.execute(select(ChatMessage.body).where(ChatMessage.id == message_id)).scalar()
    files = tx.conn.execute(select(ChatMessage.files).where(ChatMessage.id == message_id))
    files_json = files.scalar()
    if files_json:  # the caption changes; the lines naming its files stay (#27)
        body = with_file_lines(body, files_json)
    tx.conn.execute(
        update(ChatMessage)
        .where(ChatMessage.id == message_id)
        .values(body=body, edited_ms=tx.now_ms)
    )
    _erase_edits(tx.conn, message_id)
    entry = tx.append(_place(original), actor, kind="edit", body=body, target_id=message_id)
    if broadcast(body) is not None and broadcast(body) == broadcast(was or ""):
        return entry  # whom its @room/@here reached stays so; an edit never widens it
    drop_mentions(tx.conn, message_id)
    add_mentions(
        tx.conn,
        [(message_id, body, original.room_id, original.recipient_id, original.sender_id, ())],
    )
    return entry


def delete(tx: Tx, actor: Actor, message_id: int) -> StoredMessage:
    """Delete a message: one's own, or another's in a room one moderates (audited).

    Raises:
        NoSuchMessage: see :func:`_original`. Forbidden: another's message, without the
            role, or the owner's, by a moderator.
    """
    original, standing = _original(tx.conn, actor, message_id)
    own = original.sender_id is not None and original.sender_id == actor.id
    if not own:
        if original.room is None:
            raise Forbidden("you can delete only your own messages in a conversation")
        role = standing.role
        check("delete_others", original.room, role=role, is_admin=actor.is_admin)
        by_owner = original.sender_id is not None and original.sender_id == original.owner_id
        check_target(
            "delete_others", original.room, actor=actor.name, target=original.sender,
            actor_role=role, target_role=Role.OWNER if by_owner else Role.MEMBER,
            is_admin=actor.is_admin,
        )  # fmt: skip
    conn = tx.conn
    conn.execute(
        update(ChatMessage)
        .where(ChatMessage.id == message_id)
        .values(body="", deleted=True, files=None)  # its files are collected (attachments.py)
    )
    _erase_edits(conn, message_id)  # the edits' texts go too
    drop_mentions(conn, message_id)
    purge_deleted(conn)  # and from the search index's segments
    entry = tx.append(_place(original), actor, kind="delete", target_id=message_id)
    if not own:
        tx.audit(
            actor, "delete_message", room=original.room, target=original.sender,
            message_id=message_id,
        )  # fmt: skip
    return entry
