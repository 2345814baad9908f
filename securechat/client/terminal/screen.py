"""What the slash commands need of the chat screen, and where plain text goes.

``Target`` is the current conversation; ``Screen`` is the part of the chat screen
(app.py's ``ChatTerminal``) the commands (commands.py, team_commands.py) may use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

from securechat.client.api import Client
from securechat.client.terminal.catchup import ReadState, key_of
from securechat.client.terminal.file_transfers import Transfers
from securechat.protocol.files import Attachment
from securechat.protocol.messages import Conversation, Deleted, Edited, Message, RoomEvent

__all__ = ["Screen", "Target"]


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """Where plain text goes: a room, or a direct conversation with ``peer``."""

    room: str | None = None
    peer: str | None = None

    @classmethod
    def first_of(cls, rooms: Sequence[str]) -> Target | None:
        """Where a new screen starts: #general, else the first room, else nowhere."""
        if "general" in rooms:
            return cls(room="general")
        return cls(room=rooms[0]) if rooms else None

    @property
    def label(self) -> str:
        return f"#{self.room}" if self.room else f"@{self.peer}"

    @property
    def prompt(self) -> str:
        return self.room or f"@{self.peer}"

    @property
    def key(self) -> str:
        """The conversation's key in ``unread`` (and in :class:`ReadState`)."""
        return key_of(self.room, self.peer)

    def address(self) -> dict[str, str]:
        return {"room": self.room} if self.room else {"to": self.peer or ""}

    def history_query(self) -> dict[str, Any]:
        return {"room": self.room, "events": True} if self.room else {"peer": self.peer}


class Screen(Protocol):
    """What the commands need of the chat screen."""

    client: Client
    target: Target | None
    known_users: set[str]
    known_rooms: set[str]
    reads: ReadState
    transfers: Transfers

    def say(self, text: str, style: str = ...) -> None: ...
    def fail(self, text: str) -> None: ...
    def show(self, message: Message) -> None: ...
    def show_page(self, items: Sequence[Message | RoomEvent], target: Target | None) -> None: ...
    def enter(self, target: Target, unread: Conversation | None = ...) -> bool: ...
    def submit(self, body: str, target: Target, files: tuple[Attachment, ...] = ...) -> None: ...
    def changed(self, event: Edited | Deleted) -> None: ...
    def expect_event(self, expected: tuple[str, str, str | None] | None) -> None: ...
