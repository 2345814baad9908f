"""The events (server -> client) of protocol v1.

Each is a frozen dataclass named after what it tells; its ``TYPE`` is the wire name.
docs/protocol.md is the prose form; ``codec`` reads and writes them.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from securechat.protocol.devices import DeviceEvent
from securechat.protocol.files import Attachment, FileTicket
from securechat.protocol.membership import MembershipEvent
from securechat.protocol.requests import Bye, Ping, Pong
from securechat.protocol.wire import WireMessage

PROTOCOL_VERSION = 1  # in hello; a client refuses a server that speaks another

# --- events (server -> client) ---------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Hello(WireMessage):
    """The server's greeting; ``max_body``: the longest ``send`` body it takes, in
    characters (absent from servers before it: a client then checks ``max_frame`` only).
    ``max_file_size`` and ``max_files_per_message``: only from a server with files on, so
    that a client refuses an over-size file before asking for a ticket."""

    TYPE: ClassVar[str] = "hello"
    protocol: int
    server: str
    max_frame: int
    heartbeat: int
    max_body: int | None = None
    max_file_size: int | None = None
    max_files_per_message: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Welcome(WireMessage):
    """Login succeeded. ``token`` logs the same user in again without the password;
    ``last_id`` is the newest id this user may see (a ``sync`` after it misses nothing)."""

    TYPE: ClassVar[str] = "welcome"
    user: str
    rooms: tuple[str, ...]
    last_id: int
    token: str | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Error(WireMessage):
    TYPE: ClassVar[str] = "error"
    code: str
    message: str
    ref: str | None = None
    retry_after: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Joined(WireMessage):
    """A room joined: ``role`` is the user's (owner, moderator, member)."""

    TYPE: ClassVar[str] = "joined"
    room: str
    members: tuple[str, ...]
    online: tuple[str, ...]
    ref: str | None = None
    private: bool | None = None
    topic: str | None = None
    role: str | None = None
    muted: bool | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class MemberJoined(WireMessage):
    TYPE: ClassVar[str] = "member_joined"
    room: str
    user: str


@dataclasses.dataclass(frozen=True, slots=True)
class Left(WireMessage):
    TYPE: ClassVar[str] = "left"
    room: str
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class MemberLeft(WireMessage):
    TYPE: ClassVar[str] = "member_left"
    room: str
    user: str


@dataclasses.dataclass(frozen=True, slots=True)
class RoomInfo:
    name: str
    members: int
    joined: bool
    private: bool | None = None
    topic: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RoomList(WireMessage):
    """One page of rooms; ``more`` means ask again with ``after`` set to the last name."""

    TYPE: ClassVar[str] = "rooms"
    rooms: tuple[RoomInfo, ...]
    more: bool = False
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Ack(WireMessage):
    TYPE: ClassVar[str] = "ack"
    id: int
    ts: str
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Message(WireMessage):
    """A stored chat message; ``room`` for a room, ``to`` for a direct message.

    In history, sync and search it is shown as it is now: ``edited`` holds the time of
    the last edit; a deleted one has ``deleted`` true and an empty body (a tombstone).
    """

    TYPE: ClassVar[str] = "message"
    id: int
    sender: str
    body: str
    ts: str
    room: str | None = None
    to: str | None = None
    edited: str | None = None
    deleted: bool | None = None
    files: tuple[Attachment, ...] | None = None  # #27: its body ends with a line for each


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryPage(WireMessage):
    """One page of a conversation, oldest first: its messages and, when asked for, the
    room events among them (``events``; merge the two by id for the timeline)."""

    TYPE: ClassVar[str] = "history"
    messages: tuple[Message, ...]
    more: bool
    ref: str | None = None
    events: tuple[RoomEvent, ...] | None = None

    def timeline(self) -> list[Message | RoomEvent]:
        """Messages and room events together, in id order."""
        return sorted((*self.messages, *(self.events or ())), key=lambda item: item.id)


@dataclasses.dataclass(frozen=True, slots=True)
class Synced(WireMessage):
    """End of a ``sync`` reply; ``more`` means the page was capped: sync again from last_id."""

    TYPE: ClassVar[str] = "synced"
    last_id: int
    more: bool = False
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Online(WireMessage):
    TYPE: ClassVar[str] = "who"
    online: tuple[str, ...]
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Presence(WireMessage):
    """One user's change, as servers before #30 announced presence (still understood)."""

    TYPE: ClassVar[str] = "presence"
    user: str
    online: bool


@dataclasses.dataclass(frozen=True, slots=True)
class PresenceBatch(WireMessage):
    """Who came online and who went offline since the server's last presence flush: at
    most one such frame per flush for each session (docs/protocol.md, "who")."""

    TYPE: ClassVar[str] = "presence_batch"
    online: tuple[str, ...]
    offline: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Done(WireMessage):
    """The request with this ``ref`` was carried out (and has nothing else to return)."""

    TYPE: ClassVar[str] = "done"
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RoomEvent(WireMessage):
    """What happened to a room (a moderation action, a topic), by ``actor``; ``id`` is in
    the same sequence as messages, so ``sync`` brings the ones missed."""

    TYPE: ClassVar[str] = "room_event"
    id: int
    room: str
    action: str
    actor: str
    ts: str
    user: str | None = None
    topic: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Edited(WireMessage):
    """Message ``target`` now reads ``body``; ``id`` is this change's place in the sequence."""

    TYPE: ClassVar[str] = "edited"
    id: int
    target: int
    sender: str
    body: str
    ts: str
    room: str | None = None
    to: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Deleted(WireMessage):
    """Message ``target`` was deleted, by its author or a moderator (``by``)."""

    TYPE: ClassVar[str] = "deleted"
    id: int
    target: int
    by: str
    ts: str
    room: str | None = None
    to: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ReadMarker(WireMessage):
    """Read up to ``id`` in a conversation (the reply to ``read``, and news to one's other
    sessions)."""

    TYPE: ClassVar[str] = "read"
    id: int
    room: str | None = None
    peer: str | None = None
    ref: str | None = None


#: An unread count stops here: a client shows 1000 as "1000+" (docs/protocol.md, unread).
UNREAD_CAP = 1000


@dataclasses.dataclass(frozen=True, slots=True)
class Conversation:
    """One conversation's unread state: ``key`` orders them (and pages ``unread`` and
    ``conversations``). ``last_id``/``last_ts``: its newest message, in a
    ``conversations`` reply (absent: none yet)."""

    key: str
    count: int
    mentions: int
    last_read: int
    room: str | None = None
    peer: str | None = None
    last_id: int | None = None
    last_ts: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class UnreadList(WireMessage):
    TYPE: ClassVar[str] = "unread"
    conversations: tuple[Conversation, ...]
    more: bool = False
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ConversationList(WireMessage):
    TYPE: ClassVar[str] = "conversations"
    conversations: tuple[Conversation, ...]
    more: bool = False
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Person:
    """Someone in the people list: ``last_seen`` (absent while online, or if never)."""

    name: str
    online: bool
    last_seen: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PeopleList(WireMessage):
    TYPE: ClassVar[str] = "people"
    people: tuple[Person, ...]
    more: bool = False
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SearchResults(WireMessage):
    """One page of matches, newest first; ``more``: ask again with ``before`` set to
    ``next_before`` (the last id, or older when ``cut``: the server's work budget for one
    query ended the page before it was full)."""

    TYPE: ClassVar[str] = "search"
    messages: tuple[Message, ...]
    more: bool
    ref: str | None = None
    next_before: int | None = None
    cut: bool | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CACertificate(WireMessage):
    """The CA certificate (PEM) that signed the server's certificate; public, never a key."""

    TYPE: ClassVar[str] = "ca"
    pem: str
    ref: str | None = None


Event = (
    CACertificate
    | Hello
    | Welcome
    | Error
    | Joined
    | MemberJoined
    | Left
    | MemberLeft
    | RoomList
    | Ack
    | Message
    | HistoryPage
    | Synced
    | Online
    | Presence
    | PresenceBatch
    | Ping
    | Pong
    | Bye
    | Done
    | RoomEvent
    | Edited
    | Deleted
    | ReadMarker
    | UnreadList
    | ConversationList
    | PeopleList
    | SearchResults
    | DeviceEvent
    | FileTicket
    | MembershipEvent
)

#: Events that take a place in the one id sequence of stored things (sync returns them).
Journal = Message | RoomEvent | Edited | Deleted
