"""Protocol v1 messages as typed values, and their JSON form on the wire.

Requests travel client -> server, events server -> client; ``ping``, ``pong`` and ``bye``
go both ways. ``decode_request()`` and ``decode_event()`` turn one frame's payload into a
frozen dataclass or raise a :class:`ProtocolError` naming the problem; ``encode()`` turns a
value back into a payload. Unknown fields are ignored so that later versions can add
fields; a known field with the wrong type is an error. docs/protocol.md is the prose form.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Callable
from typing import Any, ClassVar, TypeGuard

from securechat.errors import MalformedMessage, UnknownMessageType
from securechat.protocol.names import NAME_RULE, normalize_name

PROTOCOL_VERSION = 1  # in hello; a client refuses a server that speaks another
MAX_REF = 64
MAX_TEXT = 1024  # user names at login, passwords, tokens, reasons: far above any real value
MAX_DEPTH = 16  # protocol objects nest 3 levels; the json module would recurse ~1000 deep

# Field names that are Python keywords on the wire.
_WIRE_NAMES = {"sender": "from", "peer": "with"}


_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}  # filled once per class, any thread


def _wire_fields(cls: type) -> tuple[tuple[str, str], ...]:
    """(attribute, wire name) of each field; ``dataclasses.fields()`` is slow per call."""
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = tuple((f.name, _WIRE_NAMES.get(f.name, f.name)) for f in dataclasses.fields(cls))
        _FIELDS[cls] = fields
    return fields


def _wire_dict(value: object) -> dict[str, Any]:
    kind = getattr(value, "TYPE", None)  # nested values (RoomInfo) have no type of their own
    out: dict[str, Any] = {} if kind is None else {"type": kind}
    for name, wire_name in _wire_fields(type(value)):
        item = getattr(value, name)
        if item is None:
            continue
        if isinstance(item, tuple):
            item = [_wire_dict(x) if dataclasses.is_dataclass(x) else x for x in item]
        out[wire_name] = item
    return out


class _Message:
    TYPE: ClassVar[str]

    def to_wire(self) -> dict[str, Any]:
        """The JSON object for this message (None fields are left out)."""
        return _wire_dict(self)


# --- both directions ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Ping(_Message):
    TYPE: ClassVar[str] = "ping"
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Pong(_Message):
    TYPE: ClassVar[str] = "pong"
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Bye(_Message):
    TYPE: ClassVar[str] = "bye"
    reason: str | None = None
    ref: str | None = None


# --- requests (client -> server) -------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Auth(_Message):
    """A login with exactly one of ``password`` or a resume ``token`` from an earlier welcome."""

    TYPE: ClassVar[str] = "auth"
    user: str
    password: str | None = dataclasses.field(default=None, repr=False)
    token: str | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Join(_Message):
    TYPE: ClassVar[str] = "join"
    room: str
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Leave(_Message):
    TYPE: ClassVar[str] = "leave"
    room: str
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ListRooms(_Message):
    """The rooms named after ``after`` (the last name of the previous page), in name order."""

    TYPE: ClassVar[str] = "rooms"
    after: str | None = None
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Send(_Message):
    """A chat message to exactly one of ``room`` or ``to``."""

    TYPE: ClassVar[str] = "send"
    body: str
    room: str | None = None
    to: str | None = None
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class History(_Message):
    """The newest ``limit`` messages before id ``before`` in a room or a direct conversation,
    or with ``after`` the oldest ``limit`` after that id (reading forward from a marker)."""

    TYPE: ClassVar[str] = "history"
    room: str | None = None
    peer: str | None = None
    before: int | None = None
    limit: int | None = None
    after: int | None = None
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Sync(_Message):
    TYPE: ClassVar[str] = "sync"
    since: int
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Who(_Message):
    TYPE: ClassVar[str] = "who"
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class GetCA(_Message):
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
class Create(_Message):
    """Create a room owned by the sender: public (listed, anyone joins) or private."""

    TYPE: ClassVar[str] = "create"
    room: str
    private: bool = False
    topic: str | None = None
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Moderate(_Message):
    """One moderation ``action`` in ``room``: on ``user`` (USER_ACTIONS) or on the room."""

    TYPE: ClassVar[str] = "moderate"
    room: str
    action: str
    user: str | None = None
    topic: str | None = None
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Edit(_Message):
    """Replace the body of one's own message ``id``."""

    TYPE: ClassVar[str] = "edit"
    id: int
    body: str
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Delete(_Message):
    """Delete message ``id``: one's own, or any in a room one moderates."""

    TYPE: ClassVar[str] = "delete"
    id: int
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class MarkRead(_Message):
    """Everything up to id ``id`` in a room or a direct conversation has been read."""

    TYPE: ClassVar[str] = "read"
    id: int
    room: str | None = None
    peer: str | None = None
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class GetUnread(_Message):
    """Every conversation with something unread; ``after`` pages on (a ``key``)."""

    TYPE: ClassVar[str] = "unread"
    after: str | None = None
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Search(_Message):
    """Messages the user may read whose text holds ``query``, newest first."""

    TYPE: ClassVar[str] = "search"
    query: str
    before: int | None = None
    limit: int | None = None
    ref: str | None = None


Request = (
    Auth | Join | Leave | ListRooms | Send | History | Sync | Who | Ping | Pong | Bye | GetCA
    | Create | Moderate | Edit | Delete | MarkRead | GetUnread | Search
)  # fmt: skip

# --- events (server -> client) ---------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Hello(_Message):
    TYPE: ClassVar[str] = "hello"
    protocol: int
    server: str
    max_frame: int
    heartbeat: int


@dataclasses.dataclass(frozen=True, slots=True)
class Welcome(_Message):
    """Login succeeded. ``token`` logs the same user in again without the password;
    ``last_id`` is the newest id this user may see (a ``sync`` after it misses nothing)."""

    TYPE: ClassVar[str] = "welcome"
    user: str
    rooms: tuple[str, ...]
    last_id: int
    token: str | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Error(_Message):
    TYPE: ClassVar[str] = "error"
    code: str
    message: str
    ref: str | None = None
    retry_after: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Joined(_Message):
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
class MemberJoined(_Message):
    TYPE: ClassVar[str] = "member_joined"
    room: str
    user: str


@dataclasses.dataclass(frozen=True, slots=True)
class Left(_Message):
    TYPE: ClassVar[str] = "left"
    room: str
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class MemberLeft(_Message):
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
class RoomList(_Message):
    """One page of rooms; ``more`` means ask again with ``after`` set to the last name."""

    TYPE: ClassVar[str] = "rooms"
    rooms: tuple[RoomInfo, ...]
    more: bool = False
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Ack(_Message):
    TYPE: ClassVar[str] = "ack"
    id: int
    ts: str
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Message(_Message):
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


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryPage(_Message):
    TYPE: ClassVar[str] = "history"
    messages: tuple[Message, ...]
    more: bool
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Synced(_Message):
    """End of a ``sync`` reply; ``more`` means the page was capped: sync again from last_id."""

    TYPE: ClassVar[str] = "synced"
    last_id: int
    more: bool = False
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Online(_Message):
    TYPE: ClassVar[str] = "who"
    online: tuple[str, ...]
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Presence(_Message):
    TYPE: ClassVar[str] = "presence"
    user: str
    online: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Done(_Message):
    """The request with this ``ref`` was carried out (and has nothing else to return)."""

    TYPE: ClassVar[str] = "done"
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RoomEvent(_Message):
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
class Edited(_Message):
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
class Deleted(_Message):
    """Message ``target`` was deleted, by its author or a moderator (``by``)."""

    TYPE: ClassVar[str] = "deleted"
    id: int
    target: int
    by: str
    ts: str
    room: str | None = None
    to: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ReadMarker(_Message):
    """Read up to ``id`` in a conversation (the reply to ``read``, and news to one's other
    sessions)."""

    TYPE: ClassVar[str] = "read"
    id: int
    room: str | None = None
    peer: str | None = None
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Conversation:
    """One conversation's unread state: ``key`` orders them (and pages ``unread``)."""

    key: str
    count: int
    mentions: int
    last_read: int
    room: str | None = None
    peer: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class UnreadList(_Message):
    TYPE: ClassVar[str] = "unread"
    conversations: tuple[Conversation, ...]
    more: bool = False
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SearchResults(_Message):
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
class CACertificate(_Message):
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
    | Ping
    | Pong
    | Bye
    | Done
    | RoomEvent
    | Edited
    | Deleted
    | ReadMarker
    | UnreadList
    | SearchResults
)

#: Events that take a place in the one id sequence of stored things (sync returns them).
Journal = Message | RoomEvent | Edited | Deleted

# --- encoding --------------------------------------------------------------------------

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def encode(message: Request | Event) -> bytes:
    """The frame payload for ``message``: compact UTF-8 JSON."""
    return _dumps(message.to_wire()).encode()


def encode_object(obj: dict[str, Any]) -> bytes:
    """The payload for a pre-built JSON object (used on the broadcast fast path)."""
    return _dumps(obj).encode()


# --- decoding --------------------------------------------------------------------------


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise MalformedMessage("duplicate key in JSON object")
    return obj


def _reject_constant(name: str) -> None:
    raise MalformedMessage(f"{name} is not valid JSON")


# A JSON string, or an unterminated one up to the end: linear time on any input.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)', re.DOTALL)
# Byte -> 1 + change in nesting depth: "[" and "{" open, "]" and "}" close.
_DEPTH_TABLE = bytes(2 if c in b"[{" else 0 if c in b"]}" else 1 for c in range(256))
_SURROGATE = re.compile("[\ud800-\udfff]")


def _nesting_depth(payload: bytes) -> int:
    if payload.count(b"[") + payload.count(b"{") <= MAX_DEPTH:
        return 0  # cannot be deeper than the number of openers
    unquoted = _JSON_STRING.sub(b"", payload).translate(_DEPTH_TABLE)
    return max(itertools.accumulate(step - 1 for step in unquoted), default=0)


def _is_text(value: object) -> TypeGuard[str]:
    """A str that UTF-8 can carry (JSON's \\ud800 escapes can produce lone surrogates)."""
    return isinstance(value, str) and not _SURROGATE.search(value)


def parse_object(payload: bytes) -> dict[str, Any]:
    """Parse a payload into a JSON object that has a string ``type``.

    Raises:
        MalformedMessage: not UTF-8, not JSON, too deeply nested, not an object, no type.
    """
    if _nesting_depth(payload) > MAX_DEPTH:
        raise MalformedMessage(f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        obj = json.loads(
            payload.decode("utf-8"),
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
        )
    except UnicodeDecodeError as exc:
        raise MalformedMessage("frame is not valid UTF-8") from exc
    except RecursionError as exc:
        raise MalformedMessage("JSON nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, and int() beyond sys.get_int_max_str_digits()
        raise MalformedMessage(f"frame is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise MalformedMessage("frame must hold a JSON object")
    if not _is_text(obj.get("type")):
        ref = obj.get("ref")
        valid_ref = ref if _is_text(ref) and len(ref) <= MAX_REF else None
        raise MalformedMessage("message needs a string field 'type'", ref=valid_ref)
    return obj


def request_ref(payload: bytes) -> str | None:
    """The valid ``ref`` of a request payload, if it has one, whatever else is wrong in it.

    For answering a frame that is refused before it is decoded (rate limiting).
    """
    try:
        ref = parse_object(payload).get("ref")
    except MalformedMessage as exc:
        return exc.ref
    return ref if _is_text(ref) and len(ref) <= MAX_REF else None


class _Fields:
    """Typed access to one JSON object's fields, raising MalformedMessage on misuse."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self._obj = obj
        ref = obj.get("ref")
        self.ref: str | None = ref if _is_text(ref) and len(ref) <= MAX_REF else None
        if "ref" in obj and self.ref is None:
            raise MalformedMessage(f"'ref' must be a string of at most {MAX_REF} characters")

    def fail(self, text: str) -> MalformedMessage:
        return MalformedMessage(f"{self._obj['type']}: {text}", ref=self.ref)

    def _get(self, key: str, kind: type | tuple[type, ...], label: str) -> Any:
        value = self._obj.get(key)
        if value is None:
            return None
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise self.fail(f"'{key}' must be {label}")
        return value

    def _required(self, key: str, value: Any) -> Any:
        if value is None:
            raise self.fail(f"'{key}' is required")
        return value

    def opt_text(self, key: str, max_len: int = MAX_TEXT) -> str | None:
        value: str | None = self._get(key, str, "a string")
        if value is not None:
            if len(value) > max_len:
                raise self.fail(f"'{key}' is longer than {max_len} characters")
            if not _is_text(value):
                raise self.fail(f"'{key}' holds a lone UTF-16 surrogate")
        return value

    def text(self, key: str, max_len: int = MAX_TEXT) -> str:
        result: str = self._required(key, self.opt_text(key, max_len))
        return result

    def opt_name(self, key: str) -> str | None:
        raw = self.opt_text(key, max_len=64)
        if raw is None:
            return None
        name = normalize_name(raw)
        if name is None:
            raise self.fail(f"'{key}' must be {NAME_RULE}")
        return name

    def name(self, key: str) -> str:
        result: str = self._required(key, self.opt_name(key))
        return result

    def opt_int(self, key: str, minimum: int = 0) -> int | None:
        value: int | None = self._get(key, int, "an integer")
        if value is not None and not minimum <= value < 2**63:
            raise self.fail(f"'{key}' must be an integer from {minimum} to 2^63-1")
        return value

    def int(self, key: str, minimum: int = 0) -> int:
        result: int = self._required(key, self.opt_int(key, minimum))
        return result

    def opt_number(self, key: str) -> float | None:
        value: float | int | None = self._get(key, (int, float), "a number")
        return None if value is None else float(value)

    def opt_boolean(self, key: str) -> bool | None:
        value: bool | None = self._get(key, bool, "true or false")
        return value

    def boolean(self, key: str) -> bool:
        result: bool = self._required(key, self.opt_boolean(key))
        return result

    def names(self, key: str) -> tuple[str, ...]:
        value = self._required(key, self._get(key, list, "a list"))
        if not all(isinstance(item, str) for item in value):
            raise self.fail(f"'{key}' must be a list of strings")
        return tuple(value)

    def objects(self, key: str) -> list[dict[str, Any]]:
        value = self._required(key, self._get(key, list, "a list"))
        if not all(isinstance(item, dict) for item in value):
            raise self.fail(f"'{key}' must be a list of objects")
        return list(value)

    def one_of(self, first: str | None, second: str | None, keys: str) -> None:
        if (first is None) == (second is None):
            raise self.fail(f"exactly one of {keys} is required")


def _send(f: _Fields) -> Send:
    room, to = f.opt_name("room"), f.opt_name("to")
    f.one_of(room, to, "'room' or 'to'")
    # The body's upper limit is a server setting; the server checks it (too_large).
    body = f.text("body", max_len=2**31)
    if not body:
        raise f.fail("'body' must not be empty")
    return Send(body=body, room=room, to=to, ref=f.ref)


def _history(f: _Fields) -> History:
    room, peer = f.opt_name("room"), f.opt_name("with")
    f.one_of(room, peer, "'room' or 'with'")
    before, after = f.opt_int("before", minimum=1), f.opt_int("after")
    if before is not None and after is not None:
        raise f.fail("give 'before' or 'after', not both")
    return History(
        room=room, peer=peer, before=before, limit=f.opt_int("limit", minimum=1),
        after=after, ref=f.ref,
    )  # fmt: skip


def _moderate(f: _Fields) -> Moderate:
    action = f.text("action", 16)
    if action not in USER_ACTIONS | ROOM_ACTIONS:
        known = ", ".join(sorted(USER_ACTIONS | ROOM_ACTIONS))
        raise f.fail(f"'action' must be one of {known}")
    user = f.opt_name("user")
    if (action in USER_ACTIONS) != (user is not None):
        raise f.fail(f"'user' is {'required' if user is None else 'not taken'} with {action}")
    topic = f.opt_text("topic", MAX_TOPIC)
    if (action == "topic") != (topic is not None):
        raise f.fail("'topic' goes with the action topic, and only with it")
    return Moderate(room=f.name("room"), action=action, user=user, topic=topic, ref=f.ref)


def _conversation_target(f: _Fields) -> tuple[str | None, str | None]:
    room, peer = f.opt_name("room"), f.opt_name("with")
    f.one_of(room, peer, "'room' or 'with'")
    return room, peer


def _edit(f: _Fields) -> Edit:
    # The body's upper limit is a server setting, as for send.
    body = f.text("body", max_len=2**31)
    if not body:
        raise f.fail("'body' must not be empty")
    return Edit(id=f.int("id", minimum=1), body=body, ref=f.ref)


def _search(f: _Fields) -> Search:
    query = f.text("query", MAX_QUERY * 4).strip()
    if not MIN_QUERY <= len(query) <= MAX_QUERY:
        raise f.fail(f"'query' must be {MIN_QUERY} to {MAX_QUERY} characters")
    return Search(
        query=query, before=f.opt_int("before", minimum=1), limit=f.opt_int("limit", minimum=1),
        ref=f.ref,
    )  # fmt: skip


def _read(f: _Fields) -> MarkRead:
    room, peer = _conversation_target(f)
    return MarkRead(id=f.int("id"), room=room, peer=peer, ref=f.ref)


def _auth(f: _Fields) -> Auth:
    password, token = f.opt_text("password", 2**31), f.opt_text("token", MAX_TEXT)
    f.one_of(password, token, "'password' or 'token'")
    return Auth(user=f.text("user", 64), password=password, token=token)


_REQUESTS: dict[str, Callable[[_Fields], Request]] = {
    "auth": _auth,
    "join": lambda f: Join(room=f.name("room"), ref=f.ref),
    "leave": lambda f: Leave(room=f.name("room"), ref=f.ref),
    "rooms": lambda f: ListRooms(after=f.opt_name("after"), ref=f.ref),
    "send": _send,
    "history": _history,
    "sync": lambda f: Sync(since=f.int("since"), ref=f.ref),
    "who": lambda f: Who(ref=f.ref),
    "ping": lambda f: Ping(ref=f.ref),
    "pong": lambda f: Pong(ref=f.ref),
    "bye": lambda f: Bye(reason=f.opt_text("reason"), ref=f.ref),
    "ca": lambda f: GetCA(ref=f.ref),
    "create": lambda f: Create(
        room=f.name("room"),
        private=f.opt_boolean("private") or False,
        topic=f.opt_text("topic", MAX_TOPIC),
        ref=f.ref,
    ),
    "moderate": _moderate,
    "edit": _edit,
    "delete": lambda f: Delete(id=f.int("id", minimum=1), ref=f.ref),
    "read": _read,
    "unread": lambda f: GetUnread(after=f.opt_text("after", 80), ref=f.ref),
    "search": _search,
}


def _message(f: _Fields) -> Message:
    room, to = f.opt_text("room"), f.opt_text("to")
    f.one_of(room, to, "'room' or 'to'")
    return Message(
        id=f.int("id"), sender=f.text("from"), body=f.text("body", 2**31), ts=f.text("ts"),
        room=room, to=to, edited=f.opt_text("edited"), deleted=f.opt_boolean("deleted"),
    )  # fmt: skip


def _where(f: _Fields) -> tuple[str | None, str | None]:
    room, to = f.opt_text("room"), f.opt_text("to")
    f.one_of(room, to, "'room' or 'to'")
    return room, to


def _edited(f: _Fields) -> Edited:
    room, to = _where(f)
    return Edited(
        id=f.int("id"), target=f.int("target"), sender=f.text("from"),
        body=f.text("body", 2**31), ts=f.text("ts"), room=room, to=to,
    )  # fmt: skip


def _deleted(f: _Fields) -> Deleted:
    room, to = _where(f)
    return Deleted(
        id=f.int("id"), target=f.int("target"), by=f.text("by"), ts=f.text("ts"),
        room=room, to=to,
    )  # fmt: skip


def _conversation(o: dict[str, Any]) -> Conversation:
    f = _Fields({"type": "conversation", **o})
    room, peer = f.opt_text("room"), f.opt_text("with")
    f.one_of(room, peer, "'room' or 'with'")
    return Conversation(
        key=f.text("key"), count=f.int("count"), mentions=f.int("mentions"),
        last_read=f.int("last_read"), room=room, peer=peer,
    )  # fmt: skip


def _fields_of(obj: dict[str, Any], expected: str) -> _Fields:
    if obj.get("type") != expected:
        raise MalformedMessage(f"expected a {expected!r} object")
    return _Fields(obj)


_EVENTS: dict[str, Callable[[_Fields], Event]] = {
    "hello": lambda f: Hello(
        protocol=f.int("protocol"),
        server=f.text("server"),
        max_frame=f.int("max_frame"),
        heartbeat=f.int("heartbeat"),
    ),
    "welcome": lambda f: Welcome(
        user=f.text("user"),
        rooms=f.names("rooms"),
        last_id=f.int("last_id"),
        token=f.opt_text("token"),
    ),
    "error": lambda f: Error(
        code=f.text("code"),
        message=f.text("message", 2**31),
        ref=f.ref,
        retry_after=f.opt_number("retry_after"),
    ),
    "joined": lambda f: Joined(
        room=f.text("room"),
        members=f.names("members"),
        online=f.names("online"),
        ref=f.ref,
        private=f.opt_boolean("private"),
        topic=f.opt_text("topic"),
        role=f.opt_text("role"),
        muted=f.opt_boolean("muted"),
    ),
    "member_joined": lambda f: MemberJoined(room=f.text("room"), user=f.text("user")),
    "left": lambda f: Left(room=f.text("room"), ref=f.ref),
    "member_left": lambda f: MemberLeft(room=f.text("room"), user=f.text("user")),
    "rooms": lambda f: RoomList(
        rooms=tuple(
            RoomInfo(
                name=r.text("name"),
                members=r.int("members"),
                joined=r.boolean("joined"),
                private=r.opt_boolean("private"),
                topic=r.opt_text("topic"),
            )
            for r in (_Fields({"type": "room", **o}) for o in f.objects("rooms"))
        ),
        more=f.opt_boolean("more") or False,  # absent from servers before paging
        ref=f.ref,
    ),
    "ack": lambda f: Ack(id=f.int("id"), ts=f.text("ts"), ref=f.ref),
    "message": _message,
    "history": lambda f: HistoryPage(
        messages=tuple(_message(_fields_of(o, "message")) for o in f.objects("messages")),
        more=f.boolean("more"),
        ref=f.ref,
    ),
    "synced": lambda f: Synced(last_id=f.int("last_id"), more=f.boolean("more"), ref=f.ref),
    "who": lambda f: Online(online=f.names("online"), ref=f.ref),
    "presence": lambda f: Presence(user=f.text("user"), online=f.boolean("online")),
    "ping": lambda f: Ping(ref=f.ref),
    "pong": lambda f: Pong(ref=f.ref),
    "bye": lambda f: Bye(reason=f.opt_text("reason", 2**31), ref=f.ref),
    "ca": lambda f: CACertificate(pem=f.text("pem", 65536), ref=f.ref),
    "done": lambda f: Done(ref=f.ref),
    "room_event": lambda f: RoomEvent(
        id=f.int("id"),
        room=f.text("room"),
        action=f.text("action"),
        actor=f.text("actor"),
        ts=f.text("ts"),
        user=f.opt_text("user"),
        topic=f.opt_text("topic", 2**31),
    ),
    "edited": _edited,
    "deleted": _deleted,
    "read": lambda f: ReadMarker(
        id=f.int("id"), room=f.opt_text("room"), peer=f.opt_text("with"), ref=f.ref
    ),
    "unread": lambda f: UnreadList(
        conversations=tuple(_conversation(o) for o in f.objects("conversations")),
        more=f.boolean("more"),
        ref=f.ref,
    ),
    "search": lambda f: SearchResults(
        messages=tuple(_message(_fields_of(o, "message")) for o in f.objects("messages")),
        more=f.boolean("more"),
        ref=f.ref,
        next_before=f.opt_int("next_before", minimum=1),
        cut=f.opt_boolean("cut"),
    ),
}


def _decode(payload: bytes, table: dict[str, Callable[[_Fields], Any]]) -> Any:
    obj = parse_object(payload)
    fields = _Fields(obj)
    decoder = table.get(obj["type"])
    if decoder is None:
        raise UnknownMessageType(f"unknown message type {obj['type'][:40]!r}", ref=fields.ref)
    return decoder(fields)


def decode_request(payload: bytes) -> Request:
    """Validate one client frame.

    Raises:
        MalformedMessage, UnknownMessageType: the payload is not a valid request.
    """
    request: Request = _decode(payload, _REQUESTS)
    return request


def decode_event(payload: bytes) -> Event:
    """Validate one server frame.

    Raises:
        MalformedMessage, UnknownMessageType: the payload is not a valid event.
    """
    event: Event = _decode(payload, _EVENTS)
    return event
