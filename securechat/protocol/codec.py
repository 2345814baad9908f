"""Protocol v1 messages to and from frame payloads.

``decode_request()`` and ``decode_event()`` turn one frame's payload into a message of
the catalogue (``requests``, ``events``) or raise a :class:`ProtocolError` naming the
problem; ``encode()`` turns a message back into a payload. Unknown fields are ignored so
that later versions can add fields; a known field with the wrong type is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from securechat.errors import MalformedMessage, UnknownMessageType
from securechat.protocol import membership
from securechat.protocol.devices import (
    DeviceEntry,
    DeviceGrant,
    DeviceList,
    ListDevices,
    SignOutDevice,
    SignOutEverywhere,
)
from securechat.protocol.events import (
    Ack,
    CACertificate,
    Conversation,
    ConversationList,
    Deleted,
    Done,
    Edited,
    Error,
    Event,
    Hello,
    HistoryPage,
    Joined,
    Left,
    MemberJoined,
    MemberLeft,
    Message,
    Online,
    PeopleList,
    Person,
    Presence,
    PresenceBatch,
    ReadMarker,
    RoomEvent,
    RoomInfo,
    RoomList,
    SearchResults,
    Synced,
    UnreadList,
    Welcome,
)
from securechat.protocol.files import ask_file_ticket, attachments, file_ids, file_ticket
from securechat.protocol.requests import (
    MAX_QUERY,
    MAX_TOPIC,
    MIN_QUERY,
    ROOM_ACTIONS,
    USER_ACTIONS,
    Auth,
    Bye,
    Create,
    Delete,
    Edit,
    GetCA,
    GetConversations,
    GetPeople,
    GetUnread,
    History,
    Join,
    Leave,
    ListRooms,
    MarkRead,
    Moderate,
    Ping,
    Pong,
    Request,
    Search,
    Send,
    Sync,
    Who,
)
from securechat.protocol.wire import MAX_TEXT, Fields, dumps, parse_object


def encode(message: Request | Event) -> bytes:
    """The frame payload for ``message``: compact UTF-8 JSON."""
    return dumps(message.to_wire()).encode()


def encode_object(obj: dict[str, Any]) -> bytes:
    """The payload for a pre-built JSON object (used on the broadcast fast path)."""
    return dumps(obj).encode()


def _send(f: Fields) -> Send:
    room, to = f.opt_name("room"), f.opt_name("to")
    f.one_of(room, to, "'room' or 'to'")
    # The body's upper limit is a server setting; the server checks it (too_large).
    body, files = f.text("body", max_len=2**31), file_ids(f)
    if not body and not files:
        raise f.fail("'body' must not be empty")
    return Send(body=body, room=room, to=to, ref=f.ref, files=files)


def _history(f: Fields) -> History:
    room, peer = f.opt_name("room"), f.opt_name("with")
    f.one_of(room, peer, "'room' or 'with'")
    before, after = f.opt_int("before", minimum=1), f.opt_int("after")
    if before is not None and after is not None:
        raise f.fail("give 'before' or 'after', not both")
    return History(
        room=room, peer=peer, before=before, limit=f.opt_int("limit", minimum=1),
        after=after, ref=f.ref, events=f.opt_boolean("events") or None,
    )  # fmt: skip


def _moderate(f: Fields) -> Moderate:
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


def _conversation_target(f: Fields) -> tuple[str | None, str | None]:
    room, peer = f.opt_name("room"), f.opt_name("with")
    f.one_of(room, peer, "'room' or 'with'")
    return room, peer


def _edit(f: Fields) -> Edit:
    # The body's upper limit is a server setting, as for send.
    body = f.text("body", max_len=2**31)
    if not body:
        raise f.fail("'body' must not be empty")
    return Edit(id=f.int("id", minimum=1), body=body, ref=f.ref)


def _search(f: Fields) -> Search:
    query = f.text("query", MAX_QUERY * 4).strip()
    if not MIN_QUERY <= len(query) <= MAX_QUERY:
        raise f.fail(f"'query' must be {MIN_QUERY} to {MAX_QUERY} characters")
    return Search(
        query=query, before=f.opt_int("before", minimum=1), limit=f.opt_int("limit", minimum=1),
        ref=f.ref,
    )  # fmt: skip


def _read(f: Fields) -> MarkRead:
    room, peer = _conversation_target(f)
    return MarkRead(id=f.int("id"), room=room, peer=peer, ref=f.ref)


def _auth(f: Fields) -> Auth:
    password, token = f.opt_text("password", 2**31), f.opt_text("token", MAX_TEXT)
    device = f.opt_boolean("device") or None
    given = [x for x in (password, token, device) if x is not None]
    if len(given) != 1:
        raise f.fail("exactly one of 'password', 'token' or 'device' is required")
    remember = f.opt_boolean("remember") or None
    if remember and password is None:
        raise f.fail("'remember' goes with a password")
    return Auth(
        user=f.text("user", 64), password=password, token=token, device=device, remember=remember
    )


def _device_entry(o: dict[str, Any]) -> DeviceEntry:
    f = Fields({"type": "device", **o})
    return DeviceEntry(
        id=f.int("id"), name=f.text("name"), created=f.text("created"),
        last_used=f.text("last_used"), current=f.boolean("current"),
    )  # fmt: skip


_REQUESTS: dict[str, Callable[[Fields], Request]] = {
    "auth": _auth,
    "join": lambda f: Join(room=f.name("room"), ref=f.ref, create=f.opt_boolean("create")),
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
    "conversations": lambda f: GetConversations(after=f.opt_text("after", 80), ref=f.ref),
    "people": lambda f: GetPeople(after=f.opt_name("after"), ref=f.ref),
    "search": _search,
    "devices": lambda f: ListDevices(ref=f.ref),
    "device_signout": lambda f: SignOutDevice(id=f.int("id", minimum=1), ref=f.ref),
    "signout_everywhere": lambda f: SignOutEverywhere(ref=f.ref),
    "file_ticket": ask_file_ticket,
    **membership.REQUESTS,
}


def _message(f: Fields) -> Message:
    room, to = f.opt_text("room"), f.opt_text("to")
    f.one_of(room, to, "'room' or 'to'")
    return Message(
        id=f.int("id"), sender=f.text("from"), body=f.text("body", 2**31), ts=f.text("ts"),
        room=room, to=to, edited=f.opt_text("edited"), deleted=f.opt_boolean("deleted"),
        files=attachments(f),
    )  # fmt: skip


def _where(f: Fields) -> tuple[str | None, str | None]:
    room, to = f.opt_text("room"), f.opt_text("to")
    f.one_of(room, to, "'room' or 'to'")
    return room, to


def _edited(f: Fields) -> Edited:
    room, to = _where(f)
    return Edited(
        id=f.int("id"), target=f.int("target"), sender=f.text("from"),
        body=f.text("body", 2**31), ts=f.text("ts"), room=room, to=to,
    )  # fmt: skip


def _deleted(f: Fields) -> Deleted:
    room, to = _where(f)
    return Deleted(
        id=f.int("id"), target=f.int("target"), by=f.text("by"), ts=f.text("ts"),
        room=room, to=to,
    )  # fmt: skip


def _conversation(o: dict[str, Any]) -> Conversation:
    f = Fields({"type": "conversation", **o})
    room, peer = f.opt_text("room"), f.opt_text("with")
    f.one_of(room, peer, "'room' or 'with'")
    return Conversation(
        key=f.text("key"), count=f.int("count"), mentions=f.int("mentions"),
        last_read=f.int("last_read"), room=room, peer=peer, last_id=f.opt_int("last_id"),
        last_ts=f.opt_text("last_ts"),
    )  # fmt: skip


def _person(o: dict[str, Any]) -> Person:
    f = Fields({"type": "person", **o})
    return Person(
        name=f.text("name"), online=f.boolean("online"), last_seen=f.opt_text("last_seen")
    )


def _room_event(f: Fields) -> RoomEvent:
    return RoomEvent(
        id=f.int("id"), room=f.text("room"), action=f.text("action"), actor=f.text("actor"),
        ts=f.text("ts"), user=f.opt_text("user"), topic=f.opt_text("topic", 2**31),
    )  # fmt: skip


def _opt_events(f: Fields) -> tuple[RoomEvent, ...] | None:
    found = f.opt_objects("events")
    if found is None:
        return None
    return tuple(_room_event(_fields_of(o, "room_event")) for o in found)


def _fields_of(obj: dict[str, Any], expected: str) -> Fields:
    if obj.get("type") != expected:
        raise MalformedMessage(f"expected a {expected!r} object")
    return Fields(obj)


_EVENTS: dict[str, Callable[[Fields], Event]] = {
    "hello": lambda f: Hello(
        protocol=f.int("protocol"),
        server=f.text("server"),
        max_frame=f.int("max_frame"),
        heartbeat=f.int("heartbeat"),
        max_body=f.opt_int("max_body", minimum=1),
        max_file_size=f.opt_int("max_file_size", minimum=1),
        max_files_per_message=f.opt_int("max_files_per_message", minimum=1),
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
            for r in (Fields({"type": "room", **o}) for o in f.objects("rooms"))
        ),
        more=f.opt_boolean("more") or False,  # absent from servers before paging
        ref=f.ref,
    ),
    "ack": lambda f: Ack(id=f.int("id"), ts=f.text("ts"), ref=f.ref),
    "message": _message,
    "history": lambda f: HistoryPage(
        messages=tuple(_message(_fields_of(o, "message")) for o in f.objects("messages")),
        events=_opt_events(f),
        more=f.boolean("more"),
        ref=f.ref,
    ),
    "synced": lambda f: Synced(last_id=f.int("last_id"), more=f.boolean("more"), ref=f.ref),
    "who": lambda f: Online(online=f.names("online"), ref=f.ref),
    "presence": lambda f: Presence(user=f.text("user"), online=f.boolean("online")),
    "presence_batch": lambda f: PresenceBatch(online=f.names("online"), offline=f.names("offline")),
    "ping": lambda f: Ping(ref=f.ref),
    "pong": lambda f: Pong(ref=f.ref),
    "bye": lambda f: Bye(reason=f.opt_text("reason", 2**31), ref=f.ref),
    "ca": lambda f: CACertificate(pem=f.text("pem", 65536), ref=f.ref),
    "done": lambda f: Done(ref=f.ref),
    "device_grant": lambda f: DeviceGrant(
        grant=f.text("grant"), expires_in=f.int("expires_in", minimum=1)
    ),
    "devices": lambda f: DeviceList(
        devices=tuple(_device_entry(o) for o in f.objects("devices")), ref=f.ref
    ),
    "room_event": _room_event,
    "file_ticket": file_ticket,
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
    "conversations": lambda f: ConversationList(
        conversations=tuple(_conversation(o) for o in f.objects("conversations")),
        more=f.boolean("more"),
        ref=f.ref,
    ),
    "people": lambda f: PeopleList(
        people=tuple(_person(o) for o in f.objects("people")),
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
    **membership.EVENTS,
}


def _decode(payload: bytes, table: dict[str, Callable[[Fields], Any]]) -> Any:
    obj = parse_object(payload)
    fields = Fields(obj)
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
