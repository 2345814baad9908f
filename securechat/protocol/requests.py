"""The requests (client -> server) of protocol v1, and the messages that go both ways.

Each is a frozen dataclass named after what it asks; its ``TYPE`` is the wire name.
docs/protocol.md is the prose form; ``codec`` reads and writes them.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from securechat.protocol.devices import DeviceRequest
from securechat.protocol.files import AskFileTicket
from securechat.protocol.membership import MembershipRequest
from securechat.protocol.wire import WireMessage

# --- both directions ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Ping(WireMessage):
    TYPE: ClassVar[str] = "ping"
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Pong(WireMessage):
    TYPE: ClassVar[str] = "pong"
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Bye(WireMessage):
    TYPE: ClassVar[str] = "bye"
    reason: str | None = None
    ref: str | None = None


# --- requests (client -> server) -------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Auth(WireMessage):
    """A login with exactly one of ``password``, a resume ``token`` from an earlier welcome,
    or ``device`` (the cookie the WebSocket upgrade carried, #26); ``remember`` with a
    password asks for a ``device_grant``."""

    TYPE: ClassVar[str] = "auth"
    user: str
    password: str | None = dataclasses.field(default=None, repr=False)
    token: str | None = dataclasses.field(default=None, repr=False)
    device: bool | None = None
    remember: bool | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Join(WireMessage):
    """Join ``room``; ``create=False``: only if it exists (else ``no_such_room``), so a
    client can ask before making a room (which ``create`` does, with its maker as owner)."""

    TYPE: ClassVar[str] = "join"
    room: str
    ref: str | None = None
    create: bool | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Leave(WireMessage):
    TYPE: ClassVar[str] = "leave"
    room: str
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ListRooms(WireMessage):
    """The rooms named after ``after`` (the last name of the previous page), in name order."""

    TYPE: ClassVar[str] = "rooms"
    after: str | None = None
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Send(WireMessage):
    """A chat message to exactly one of ``room`` or ``to``."""

    TYPE: ClassVar[str] = "send"
    body: str
    room: str | None = None
    to: str | None = None
    ref: str | None = None
    files: tuple[str, ...] | None = None  # ids of the sender's uploads (#27)


@dataclasses.dataclass(frozen=True, slots=True)
class History(WireMessage):
    """The newest ``limit`` messages before id ``before`` in a room or a direct conversation,
    or with ``after`` the oldest ``limit`` after that id (reading forward from a marker).
    ``events``: a room's page holds its room events too (joins, topics, moderation)."""

    TYPE: ClassVar[str] = "history"
    room: str | None = None
    peer: str | None = None
    before: int | None = None
    limit: int | None = None
    after: int | None = None
    ref: str | None = None
    events: bool | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Sync(WireMessage):
    TYPE: ClassVar[str] = "sync"
    since: int
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Who(WireMessage):
    TYPE: ClassVar[str] = "who"
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class GetCA(WireMessage):
    """Ask for the deployment's CA certificate (before login), for trust on first use."""

    TYPE: ClassVar[str] = "ca"
    ref: str | None = None


#: What a room's owner and moderators (and the server's admins) may do; see docs/protocol.md.
USER_ACTIONS = frozenset(
    {"invite", "kick", "ban", "unban", "mute", "unmute", "op", "deop", "transfer"}
)
ROOM_ACTIONS = frozenset({"private", "public", "topic", "delete"})
MAX_TOPIC = 300  # characters
MIN_QUERY, MAX_QUERY = 3, 200  # search text, in characters after trimming


@dataclasses.dataclass(frozen=True, slots=True)
class Create(WireMessage):
    """Create a room owned by the sender: public (listed, anyone joins) or private."""

    TYPE: ClassVar[str] = "create"
    room: str
    private: bool = False
    topic: str | None = None
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Moderate(WireMessage):
    """One moderation ``action`` in ``room``: on ``user`` (USER_ACTIONS) or on the room."""

    TYPE: ClassVar[str] = "moderate"
    room: str
    action: str
    user: str | None = None
    topic: str | None = None
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Edit(WireMessage):
    """Replace the body of one's own message ``id``."""

    TYPE: ClassVar[str] = "edit"
    id: int
    body: str
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Delete(WireMessage):
    """Delete message ``id``: one's own, or any in a room one moderates."""

    TYPE: ClassVar[str] = "delete"
    id: int
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class MarkRead(WireMessage):
    """Everything up to id ``id`` in a room or a direct conversation has been read."""

    TYPE: ClassVar[str] = "read"
    id: int
    room: str | None = None
    peer: str | None = None
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class GetUnread(WireMessage):
    """Every conversation with something unread; ``after`` pages on (a ``key``)."""

    TYPE: ClassVar[str] = "unread"
    after: str | None = None
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class GetConversations(WireMessage):
    """Every conversation the user has, read or not: the list a client shows on any
    device; ``after`` pages on (a ``key``)."""

    TYPE: ClassVar[str] = "conversations"
    after: str | None = None
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class GetPeople(WireMessage):
    """Every active user, with presence and when each was last seen; ``after`` pages on
    (a name)."""

    TYPE: ClassVar[str] = "people"
    after: str | None = None
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Search(WireMessage):
    """Messages the user may read whose text holds ``query``, newest first."""

    TYPE: ClassVar[str] = "search"
    query: str
    before: int | None = None
    limit: int | None = None
    ref: str | None = None


#: Requests that get a ``ref`` and one reply to it (a client's session asks these; sends
#: have their own path, acknowledged or refused, and resent until one or the other).
Asked = (
    Join | Leave | ListRooms | History | Sync | Who | Ping | GetCA
    | Create | Moderate | Edit | Delete | MarkRead | GetUnread | Search
    | GetConversations | GetPeople | AskFileTicket | MembershipRequest
)  # fmt: skip
#: Every request: the asked ones, the login, sends, and the heartbeat's and farewell's.
Request = Asked | Auth | Send | Pong | Bye | DeviceRequest
