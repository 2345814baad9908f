"""What :meth:`Client.events` yields: the server's pushed events plus the client's own.

Server events (``Message``, ``MemberJoined``, ``MemberLeft``, ``PresenceBatch``, unmatched
``Error``, and whatever a newer server pushes) are the typed values from
:mod:`securechat.protocol.messages`. ``Delivered`` and ``SendFailed`` come from the
session (:mod:`securechat.protocol.client`): what happened to this client's sends. The
classes here report what happened to its connection, so a user interface can show a
reconnect countdown without polling.
"""

from __future__ import annotations

import dataclasses
import math

from securechat.errors import SecureChatError
from securechat.protocol.client import Delivered, SendFailed
from securechat.protocol.messages import Event

__all__ = [
    "Backoff",
    "ClientEvent",
    "Delivered",
    "Disconnected",
    "Reconnected",
    "Reconnecting",
    "SendFailed",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Reconnecting:
    """The connection dropped; the next attempt starts in ``delay`` seconds."""

    delay: float
    attempt: int
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Reconnected:
    """Logged in again; missed messages follow, then unacknowledged sends are resent."""

    rooms: tuple[str, ...]
    last_id: int


@dataclasses.dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection is gone for good (no reconnect, or a failure retrying cannot fix)."""

    reason: str
    error: SecureChatError | None = None


ClientEvent = Event | Delivered | SendFailed | Reconnecting | Reconnected | Disconnected


@dataclasses.dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: full jitter over ``initial * 2**attempt``, capped at ``cap`` seconds."""

    initial: float = 0.5
    cap: float = 30.0

    def ceiling(self, attempt: int) -> float:
        return min(self.cap, math.ldexp(self.initial, min(attempt, 32)))
