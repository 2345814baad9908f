"""The message values the store hands out and takes in, and the query they are read with.

:class:`NewMessage` is what the group commit writes; :class:`StoredMessage` is one journal
row as every reader sees it (a message, an edit, a deletion, a room event). Every query of
stored messages starts from :data:`MESSAGES` and reads its rows with :func:`stored`, so a
column added to the journal is added here once.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import Row, select

from securechat.errors import ErrorCode
from securechat.store.models import ChatMessage, Room

__all__ = ["MESSAGES", "NewMessage", "SaveResult", "StoredMessage", "stored"]


@dataclasses.dataclass(frozen=True, slots=True)
class NewMessage:
    """A message accepted for the group commit to write; ``ref`` de-duplicates resends."""

    sender_id: int
    sender: str
    body: str
    ref: str | None
    room: str | None = None
    to: str | None = None
    # Whom a granted @room or @here reaches besides the names in the body (the server
    # decides at the send: protocol/mentions.py); mentions.py keeps those still members.
    notify: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class StoredMessage:
    """One journal row (models.ChatMessage says what each kind means)."""

    id: int
    sender: str
    body: str
    ts_ms: int
    room: str | None
    to: str | None
    kind: str = "message"
    target_id: int | None = None
    edited_ms: int | None = None
    deleted: bool = False
    action: str | None = None
    subject: str | None = None
    files: str | None = None  # the JSON of its files (#27), as ``messages.files`` holds it


SaveResult = tuple[StoredMessage, bool] | ErrorCode  # (message, is_new) or the refusal

#: Every query of stored messages starts from this one (select statements are immutable);
#: :func:`stored` reads its rows.
MESSAGES = select(
    ChatMessage.id,
    ChatMessage.sender,
    ChatMessage.body,
    ChatMessage.ts_ms,
    Room.name,
    ChatMessage.recipient,
    ChatMessage.kind,
    ChatMessage.target_id,
    ChatMessage.edited_ms,
    ChatMessage.deleted,
    ChatMessage.action,
    ChatMessage.subject,
    ChatMessage.files,
).outerjoin(Room, ChatMessage.room_id == Room.id)


def stored(row: Row[*tuple[Any, ...]]) -> StoredMessage:
    room = row[4]
    if room is None and row[5] is None:  # a room's deletion outlives the room: its name
        room = row[2]
    return StoredMessage(
        row[0], row[1], row[2], row[3], room, row[5], row[6], row[7], row[8], bool(row[9]),
        row[10], row[11], row[12],
    )  # fmt: skip
