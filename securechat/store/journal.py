"""The journal's shared parts: one transaction's writer (:class:`Tx`), mentions, the audit.

The journal is the ``messages`` table: one id sequence for every row that fans out
(messages, edits, deletions, room events; see ``models.ChatMessage``). Ids are allocated
in commit order because every row is written under the database's one write lock (the
group commit's, or the command line's transaction), which is what lets a server tail the
rows others wrote (``server/bus.py``). A :class:`Tx` is handed to each team operation
(``rooms.py``, ``moderation.py``, ``edits.py``, ``reads.py``): it appends journal rows
stamped with the writer's ``origin`` and the transaction's time, and audit entries.
Mentions are in ``mentions.py``, which the group commit's hot path shares.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import Connection, func, insert, select

from securechat.store.message_rows import StoredMessage
from securechat.store.models import AuditEntry, ChatMessage, utcnow

_INSERT_ROW = insert(ChatMessage).returning(ChatMessage.id)


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a logged-in user, or the console (an admin without an account)."""

    id: int | None
    name: str
    is_admin: bool


#: The admin at the server's console: ``securechat room ...``.
CONSOLE = Actor(None, "console", is_admin=True)


@dataclasses.dataclass(frozen=True, slots=True)
class Place:
    """Where a journal row goes: a room (by id and name) or a direct conversation."""

    room_id: int | None = None
    room: str | None = None
    recipient_id: int | None = None
    recipient: str | None = None


class Tx:
    """One team operation's transaction: the connection, who writes, and when."""

    def __init__(self, conn: Connection, *, origin: str | None, now_ms: int) -> None:
        self.conn = conn
        self.origin = origin
        self.now_ms = now_ms

    def last_id(self) -> int:
        """The newest journal id (inside this transaction)."""
        return int(self.conn.execute(select(func.max(ChatMessage.id))).scalar_one() or 0)

    def append(
        self,
        place: Place,
        actor: Actor,
        *,
        kind: str,
        body: str = "",
        target_id: int | None = None,
        action: str | None = None,
        subject: str | None = None,
    ) -> StoredMessage:
        """Add one journal row; returns it as stored."""
        row_id = self.conn.execute(
            _INSERT_ROW,
            {
                "room_id": place.room_id, "recipient_id": place.recipient_id,
                "recipient": place.recipient, "sender_id": actor.id, "sender": actor.name,
                "body": body, "ts_ms": self.now_ms, "ref": None, "kind": kind,
                "target_id": target_id, "deleted": False, "action": action,
                "subject": subject, "origin": self.origin,
            },
        ).scalar_one()  # fmt: skip
        room = place.room if place.room is not None or place.recipient is not None else body
        return StoredMessage(
            row_id, actor.name, body, self.now_ms, room, place.recipient, kind, target_id,
            None, False, action, subject,
        )  # fmt: skip

    def audit(
        self,
        actor: Actor,
        action: str,
        *,
        room: str | None,
        target: str | None = None,
        message_id: int | None = None,
        detail: str | None = None,
    ) -> None:
        self.conn.execute(
            insert(AuditEntry).values(
                at=utcnow(), actor=actor.name, action=action, room=room, target=target,
                message_id=message_id, detail=detail,
            )
        )  # fmt: skip
