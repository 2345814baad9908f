"""What :meth:`Client.events` yields: the server's pushed events plus the client's own.

Server events (``Message``, ``MemberJoined``, ``MemberLeft``, ``Presence``, unmatched
``Error``) are the typed values from :mod:`securechat.protocol.messages`. The classes here
are local: they report what happened to this client's sends and to its connection, so a
user interface can show pending messages and a reconnect countdown without polling.
"""

from __future__ import annotations

import dataclasses
import math

from securechat.errors import SecureChatError
from securechat.protocol.messages import Error, MemberJoined, MemberLeft, Message, Presence


@dataclasses.dataclass(frozen=True, slots=True)
class Delivered:
    """The server stored a message this client sent; ``message`` is it as stored.

    The same id may already have reached :meth:`Client.events` as a ``Message`` (a resend
    after reconnect whose first copy had been stored); displays de-duplicate by id.
    """

    ref: str
    message: Message


@dataclasses.dataclass(frozen=True, slots=True)
class SendFailed:
    """The server refused a message (``code`` is the protocol error code); it is dropped.

    Never for ``rate_limited`` or ``server_error``: those sends are resent by themselves.
    """

    ref: str
    body: str
    room: str | None
    to: str | None
    code: str
    reason: str


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


ClientEvent = (
    Message
    | MemberJoined
    | MemberLeft
    | Presence
    | Error
    | Delivered
    | SendFailed
    | Reconnecting
    | Reconnected
    | Disconnected
)


@dataclasses.dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: full jitter over ``initial * 2**attempt``, capped at ``cap`` seconds."""

    initial: float = 0.5
    cap: float = 30.0

    def ceiling(self, attempt: int) -> float:
        return min(self.cap, math.ldexp(self.initial, min(attempt, 32)))
