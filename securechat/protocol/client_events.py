"""What a :class:`~securechat.protocol.client.ClientSession` reports, besides the server's events.

Each is a frozen value the driver hands on: a greeting, a login and whether it was a
resumption, a refusal, a reply to one request (by ``ref``), a send stored or refused for
good, and the end of a connection.
"""

from __future__ import annotations

import dataclasses

from securechat.protocol.messages import Error, Event, Hello, Journal, Message, Welcome

__all__ = [
    "ConnectionEnded",
    "Delivered",
    "Greeted",
    "LoggedIn",
    "LoginRefused",
    "Reply",
    "SendFailed",
    "SessionEvent",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Greeted:
    """The server said ``hello`` and speaks our protocol version."""

    hello: Hello


@dataclasses.dataclass(frozen=True, slots=True)
class LoggedIn:
    """Login succeeded; ``resumed``: on a later connection, so catch-up and resends follow."""

    welcome: Welcome
    resumed: bool


@dataclasses.dataclass(frozen=True, slots=True)
class LoginRefused:
    """The server refused the login (``auth_failed``, ``rate_limited``...) or our version.

    ``with_token``: the refused credential was a resume token, not the password.
    """

    error: Error
    with_token: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    """The answer to the request with this ``ref``; ``messages`` for a collecting sync."""

    ref: str
    event: Event
    messages: tuple[Journal, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Delivered:
    """The server stored a message this client sent; ``message`` is it as stored.

    The same id may already have been reported as a ``Message`` (a resend after reconnect
    whose first copy had been stored); displays de-duplicate by id.
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
class ConnectionEnded:
    """The connection must be closed now (a ``bye``, a broken frame, a silent server)."""

    reason: str


SessionEvent = Greeted | LoggedIn | LoginRefused | Reply | Delivered | SendFailed | ConnectionEnded
