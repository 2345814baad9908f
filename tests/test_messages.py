"""Requests and events <-> JSON: valid forms, every way a frame can be invalid, round trips."""

from __future__ import annotations

import json
import time
import typing
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from securechat.errors import ErrorCode, MalformedMessage, ProtocolError, UnknownMessageType
from securechat.protocol.messages import (
    MAX_DEPTH,
    MAX_REF,
    Ack,
    Auth,
    Bye,
    Conversation,
    ConversationList,
    Create,
    Delete,
    Deleted,
    Done,
    Edit,
    Edited,
    Error,
    Event,
    GetConversations,
    GetPeople,
    GetUnread,
    Hello,
    History,
    HistoryPage,
    Join,
    Joined,
    Leave,
    Left,
    ListRooms,
    MarkRead,
    MemberJoined,
    MemberLeft,
    Message,
    Moderate,
    Online,
    PeopleList,
    Person,
    Ping,
    Pong,
    Presence,
    PresenceBatch,
    ReadMarker,
    Request,
    RoomEvent,
    RoomInfo,
    RoomList,
    Search,
    SearchResults,
    Send,
    Sync,
    Synced,
    UnreadList,
    Welcome,
    Who,
    decode_event,
    decode_request,
    encode,
    request_ref,
)
from securechat.protocol.wire import _wire_fields

PROPERTY = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def wire(obj: object) -> bytes:
    return json.dumps(obj).encode()


def nested(depth: int) -> bytes:
    """A ping whose object nests ``depth`` levels deep in total."""
    inner = b"[" * (depth - 1) + b"]" * (depth - 1)
    return b'{"type":"ping","x":' + inner + b"}"


# --- valid requests --------------------------------------------------------------------

VALID_REQUESTS: list[tuple[dict[str, Any], Request]] = [
    ({"type": "auth", "user": "alice", "password": "s3cret pass"}, Auth("alice", "s3cret pass")),
    ({"type": "join", "room": "General", "ref": "r1"}, Join(room="general", ref="r1")),
    ({"type": "join", "room": " dev-ops.2_x "}, Join(room="dev-ops.2_x")),
    ({"type": "leave", "room": "GENERAL"}, Leave(room="general")),
    ({"type": "rooms", "ref": "r"}, ListRooms(ref="r")),
    (
        {"type": "send", "room": "General", "body": "hi", "ref": "m1"},
        Send(body="hi", room="general", ref="m1"),
    ),
    ({"type": "send", "to": "Bob", "body": " "}, Send(body=" ", to="bob")),
    (
        {"type": "history", "room": "general", "before": 10, "limit": 500, "ref": "h"},
        History(room="general", before=10, limit=500, ref="h"),
    ),
    ({"type": "history", "with": "Bob"}, History(peer="bob")),
    ({"type": "sync", "since": 0}, Sync(since=0)),
    ({"type": "sync", "since": 2**63 - 1, "ref": "s"}, Sync(since=2**63 - 1, ref="s")),
    ({"type": "who"}, Who()),
    ({"type": "ping", "ref": "x" * MAX_REF}, Ping(ref="x" * MAX_REF)),
    ({"type": "pong"}, Pong()),
    ({"type": "bye"}, Bye()),
    ({"type": "bye", "reason": "done for today"}, Bye(reason="done for today")),
    ({"type": "history", "room": "ops", "after": 0}, History(room="ops", after=0)),
    ({"type": "history", "room": "ops", "events": True}, History(room="ops", events=True)),
    ({"type": "history", "room": "ops", "events": False}, History(room="ops")),
    ({"type": "create", "room": "Ops", "ref": "c"}, Create(room="ops", ref="c")),
    (
        {"type": "create", "room": "hr", "private": True, "topic": "people"},
        Create(room="hr", private=True, topic="people"),
    ),
    (
        {"type": "moderate", "room": "ops", "action": "kick", "user": "Bob", "ref": "k"},
        Moderate(room="ops", action="kick", user="bob", ref="k"),
    ),
    (
        {"type": "moderate", "room": "ops", "action": "topic", "topic": ""},
        Moderate(room="ops", action="topic", topic=""),
    ),
    (
        {"type": "moderate", "room": "ops", "action": "delete"},
        Moderate(room="ops", action="delete"),
    ),
    ({"type": "edit", "id": 7, "body": "fixed"}, Edit(id=7, body="fixed")),
    ({"type": "delete", "id": 7, "ref": "d"}, Delete(id=7, ref="d")),
    ({"type": "read", "room": "ops", "id": 9}, MarkRead(id=9, room="ops")),
    ({"type": "read", "with": "Carol", "id": 0}, MarkRead(id=0, peer="carol")),
    ({"type": "unread", "ref": "u"}, GetUnread(ref="u")),
    ({"type": "unread", "after": "r:ops"}, GetUnread(after="r:ops")),
    ({"type": "conversations", "ref": "c"}, GetConversations(ref="c")),
    ({"type": "conversations", "after": "u:bob"}, GetConversations(after="u:bob")),
    ({"type": "people"}, GetPeople()),
    ({"type": "people", "after": "Bob", "ref": "p"}, GetPeople(after="bob", ref="p")),
    ({"type": "search", "query": "  deploy "}, Search(query="deploy")),
    ({"type": "search", "query": "ünï", "before": 9, "limit": 5}, Search("ünï", 9, 5)),
]


@pytest.mark.parametrize(("obj", "expected"), VALID_REQUESTS)
def test_decode_request_accepts_valid_form(obj: dict[str, Any], expected: Request) -> None:
    assert decode_request(wire(obj)) == expected


@pytest.mark.parametrize("expected", [request for _, request in VALID_REQUESTS])
def test_encoded_request_decodes_to_equal_request(expected: Request) -> None:
    assert decode_request(encode(expected)) == expected


def test_decode_request_ignores_unknown_fields() -> None:
    payload = wire({"type": "join", "room": "general", "ref": "r", "v": 2, "x": {"y": [1]}})
    assert decode_request(payload) == Join(room="general", ref="r")


def test_decode_request_accepts_nesting_at_the_limit() -> None:
    assert decode_request(nested(MAX_DEPTH)) == Ping()


def test_auth_repr_hides_password() -> None:
    auth = decode_request(wire({"type": "auth", "user": "alice", "password": "hunter2-xyz"}))
    assert "hunter2-xyz" not in repr(auth)
    assert "alice" in repr(auth)


def test_encode_uses_wire_names_and_omits_absent_fields() -> None:
    assert json.loads(encode(History(peer="bob"))) == {"type": "history", "with": "bob"}
    message = Message(id=7, sender="alice", body="hi", ts="2026-01-01T00:00:00Z", to="bob")
    assert json.loads(encode(message)) == {
        "type": "message",
        "id": 7,
        "from": "alice",
        "body": "hi",
        "ts": "2026-01-01T00:00:00Z",
        "to": "bob",
    }


def test_encode_writes_compact_utf8() -> None:
    assert encode(Send(body="héllo ✓", room="general")) == (
        '{"type":"send","body":"héllo ✓","room":"general"}'.encode()
    )


# --- invalid requests ------------------------------------------------------------------

BAD = ErrorCode.BAD_REQUEST
UNKNOWN = ErrorCode.UNKNOWN_TYPE

INVALID_REQUESTS: list[tuple[str, bytes, ErrorCode, str | None]] = [
    ("not utf-8", b'{"type":"ping","ref":"r","x":"\xff"}', BAD, None),
    ("not json", b"hello", BAD, None),
    ("truncated json", b'{"type":"ping"', BAD, None),
    ("empty payload", b" ", BAD, None),
    ("utf-8 bom", '\ufeff{"type":"ping"}'.encode(), BAD, None),
    ("json array", b'[{"type":"ping"}]', BAD, None),
    ("json string", b'"ping"', BAD, None),
    ("json null", b"null", BAD, None),
    ("no type", b'{"ref":"r"}', BAD, "r"),
    ("type not a string", b'{"type":7,"ref":"r"}', BAD, "r"),
    ("type null", b'{"type":null}', BAD, None),
    ("unknown type", b'{"type":"dance","ref":"r"}', UNKNOWN, "r"),
    ("event type sent as request", b'{"type":"welcome","ref":"r"}', UNKNOWN, "r"),
    ("type is case-sensitive", b'{"type":"PING"}', UNKNOWN, None),
    ("deep nesting", nested(MAX_DEPTH + 1), BAD, None),
    ("100,000 levels", b"[" * 100_000 + b"]" * 100_000, BAD, None),
    ("100,000 levels, unclosed", b'{"type":"ping","x":' + b"[" * 100_000, BAD, None),
    ("5000-digit number", b'{"type":"sync","since":1' + b"0" * 5000 + b"}", BAD, None),
    ("since 2^63", wire({"type": "sync", "since": 2**63, "ref": "r"}), BAD, "r"),
    ("since negative", b'{"type":"sync","since":-1,"ref":"r"}', BAD, "r"),
    ("since fraction", b'{"type":"sync","since":1.5,"ref":"r"}', BAD, "r"),
    ("since overflows float", b'{"type":"sync","since":1e400,"ref":"r"}', BAD, "r"),
    ("NaN", b'{"type":"sync","since":NaN}', BAD, None),
    ("Infinity", b'{"type":"sync","since":Infinity}', BAD, None),
    ("-Infinity", b'{"type":"sync","since":-Infinity}', BAD, None),
    ("duplicate type", b'{"type":"ping","type":"ping"}', BAD, None),
    ("duplicate field", b'{"type":"join","room":"aa","room":"bb"}', BAD, None),
    ("duplicate in nested object", b'{"type":"ping","x":{"a":1,"a":2}}', BAD, None),
    ("bool for int", b'{"type":"sync","since":true,"ref":"r"}', BAD, "r"),
    ("string for int", b'{"type":"history","room":"aa","limit":"5","ref":"r"}', BAD, "r"),
    ("bool for before", b'{"type":"history","room":"aa","before":false}', BAD, None),
    ("int for name", b'{"type":"join","room":5,"ref":"r"}', BAD, "r"),
    ("list for name", b'{"type":"join","room":["general"],"ref":"r"}', BAD, "r"),
    ("int for body", b'{"type":"send","room":"aa","body":5,"ref":"r"}', BAD, "r"),
    ("int for password", b'{"type":"auth","user":"alice","password":5}', BAD, None),
    ("int for reason", b'{"type":"bye","reason":5}', BAD, None),
    ("join without room", b'{"type":"join","ref":"r"}', BAD, "r"),
    ("join with null room", b'{"type":"join","room":null,"ref":"r"}', BAD, "r"),
    ("leave without room", b'{"type":"leave"}', BAD, None),
    ("send without body", b'{"type":"send","room":"aa","ref":"r"}', BAD, "r"),
    ("sync without since", b'{"type":"sync","ref":"r"}', BAD, "r"),
    ("auth without password", b'{"type":"auth","user":"alice"}', BAD, None),
    ("auth without user", b'{"type":"auth","password":"pw"}', BAD, None),
    ("send to room and user", b'{"type":"send","room":"aa","to":"bb","body":"x"}', BAD, None),
    ("send to nobody", b'{"type":"send","body":"x","ref":"r"}', BAD, "r"),
    ("send empty body", b'{"type":"send","room":"aa","body":"","ref":"r"}', BAD, "r"),
    ("history room and with", b'{"type":"history","room":"aa","with":"bb"}', BAD, None),
    ("history of nothing", b'{"type":"history","ref":"r"}', BAD, "r"),
    ("history limit 0", b'{"type":"history","room":"aa","limit":0}', BAD, None),
    ("history before 0", b'{"type":"history","room":"aa","before":0}', BAD, None),
    ("name too short", b'{"type":"join","room":"a","ref":"r"}', BAD, "r"),
    ("name too long", wire({"type": "join", "room": "a" * 33, "ref": "r"}), BAD, "r"),
    ("name way too long", wire({"type": "join", "room": "a" * 5000}), BAD, None),
    ("name with space", b'{"type":"join","room":"my room"}', BAD, None),
    ("name with hash", b'{"type":"join","room":"#general"}', BAD, None),
    ("name with slash", b'{"type":"send","to":"../bob","body":"x"}', BAD, None),
    ("name non-ascii", wire({"type": "join", "room": "über"}), BAD, None),
    ("name empty", b'{"type":"join","room":""}', BAD, None),
    ("ref too long", wire({"type": "ping", "ref": "x" * (MAX_REF + 1)}), BAD, None),
    ("ref not a string", b'{"type":"ping","ref":5}', BAD, None),
    ("ref null", b'{"type":"ping","ref":null}', BAD, None),
    ("ref a list", b'{"type":"ping","ref":["r"]}', BAD, None),
    ("bad ref on unknown type", wire({"type": "dance", "ref": "x" * 65}), BAD, None),
    ("history before and after", b'{"type":"history","room":"aa","before":5,"after":1}', BAD, None),
    ("moderate unknown action", b'{"type":"moderate","room":"aa","action":"nuke"}', BAD, None),
    ("kick without user", b'{"type":"moderate","room":"aa","action":"kick","ref":"r"}', BAD, "r"),
    (
        "delete with user",
        b'{"type":"moderate","room":"aa","action":"delete","user":"bb"}',
        BAD,
        None,
    ),
    ("topic without text", b'{"type":"moderate","room":"aa","action":"topic"}', BAD, None),
    (
        "topic on kick",
        b'{"type":"moderate","room":"aa","action":"kick","user":"bb","topic":"x"}',
        BAD,
        None,
    ),
    ("topic too long", wire({"type": "create", "room": "aa", "topic": "x" * 301}), BAD, None),
    ("edit empty body", b'{"type":"edit","id":1,"body":""}', BAD, None),
    ("edit id 0", b'{"type":"edit","id":0,"body":"x"}', BAD, None),
    ("read without target", b'{"type":"read","id":1}', BAD, None),
    ("search too short", b'{"type":"search","query":" ab "}', BAD, None),
    ("search too long", wire({"type": "search", "query": "x" * 201}), BAD, None),
]


@pytest.mark.parametrize(
    ("payload", "code", "ref"),
    [case[1:] for case in INVALID_REQUESTS],
    ids=[case[0] for case in INVALID_REQUESTS],
)
def test_decode_request_rejects_invalid_payload(
    payload: bytes, code: ErrorCode, ref: str | None
) -> None:
    expected = UnknownMessageType if code is UNKNOWN else MalformedMessage
    with pytest.raises(expected) as info:
        decode_request(payload)
    assert info.value.code == code
    assert info.value.ref == ref
    assert not info.value.is_fatal


def test_decode_request_does_not_echo_overlong_ref_when_type_is_missing() -> None:
    """An error reply may only echo a ref the client could have sent validly."""
    with pytest.raises(MalformedMessage) as info:
        decode_request(wire({"ref": "x" * (MAX_REF + 1)}))
    assert info.value.ref is None


@pytest.mark.parametrize(
    "payload",
    [
        b'"' + b"{" * (MAX_DEPTH + 1) + b'"',
        b'"' + b"[" * (MAX_DEPTH + 1) + b'""' + b"]" * (MAX_DEPTH + 1) + b'"',
    ],
    ids=["one string", "two strings"],
)
def test_decode_request_rejects_bare_string_full_of_brackets(payload: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode_request(payload)


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "send", "room": "general", "body": "\ud800"},
        {"type": "auth", "user": "alice", "password": "pw\udfff"},
        {"type": "ping", "ref": "\ud83d"},
        {"type": "bye", "reason": "\udc00"},
    ],
    ids=["body", "password", "ref", "reason"],
)
def test_decode_request_rejects_lone_surrogate_in_text(obj: dict[str, Any]) -> None:
    """UTF-8 cannot carry a lone surrogate, so encode() could never send it on."""
    with pytest.raises(MalformedMessage):
        decode_request(wire(obj))


def test_decode_request_time_is_linear_in_unterminated_escapes() -> None:
    payload = b'"' + b'\\"' * 12_000 + b"[" * (MAX_DEPTH + 1)  # 24 KiB, under max_frame
    start = time.process_time()  # CPU time: a loaded machine may pause us, never add work
    with pytest.raises(MalformedMessage):
        decode_request(payload)
    assert time.process_time() - start < 0.5


# --- events ----------------------------------------------------------------------------

TS = "2026-03-01T09:30:00.123Z"
ROOM_MESSAGE = Message(id=41, sender="alice", body="hi all", ts=TS, room="general")
DIRECT_MESSAGE = Message(id=42, sender="alice", body="psst ✓", ts=TS, to="bob")

EVENTS: list[Event] = [
    Hello(protocol=1, server="securechat 0.1.0", max_frame=65536, heartbeat=30),
    Hello(protocol=1, server="securechat 0.9", max_frame=65536, heartbeat=30, max_body=4000),
    Welcome(user="alice", rooms=("general", "dev"), last_id=42),
    Welcome(user="alice", rooms=(), last_id=0),
    Error(code="bad_request", message="join: 'room' is required", ref="r1"),
    Error(code="rate_limited", message="slow down", retry_after=0.25),
    Joined(room="general", members=("alice", "bob"), online=("alice",), ref="j"),
    MemberJoined(room="general", user="carol"),
    Left(room="general", ref="l"),
    MemberLeft(room="general", user="carol"),
    RoomList(rooms=(RoomInfo(name="general", members=12, joined=True),), ref="q"),
    RoomList(rooms=()),
    Ack(id=41, ts=TS, ref="m1"),
    ROOM_MESSAGE,
    DIRECT_MESSAGE,
    HistoryPage(messages=(ROOM_MESSAGE, DIRECT_MESSAGE), more=True, ref="h"),
    HistoryPage(messages=(), more=False),
    HistoryPage(
        messages=(ROOM_MESSAGE,),
        more=False,
        events=(RoomEvent(id=3, room="ops", action="topic", actor="alice", ts=TS, topic="t"),),
    ),
    HistoryPage(messages=(), more=False, events=()),
    Synced(last_id=42, more=True, ref="s"),
    Synced(last_id=0),
    Online(online=("alice", "bob"), ref="w"),
    Presence(user="bob", online=False),
    PresenceBatch(online=("alice", "carol"), offline=("bob",)),
    PresenceBatch(online=(), offline=()),
    Ping(ref="p"),
    Pong(),
    Bye(reason="shutting_down"),
    Bye(),
    Joined(
        room="hr", members=("alice",), online=(), private=True, topic="t", role="owner", muted=False
    ),
    RoomList(rooms=(RoomInfo(name="hr", members=2, joined=True, private=True, topic="people"),)),
    Message(id=5, sender="bob", body="fixed", ts=TS, room="ops", edited=TS),
    Message(id=6, sender="bob", body="", ts=TS, to="alice", deleted=True),
    Done(ref="d"),
    RoomEvent(id=7, room="ops", action="kick", actor="alice", ts=TS, user="bob"),
    RoomEvent(id=8, room="ops", action="topic", actor="alice", ts=TS, topic="deploys"),
    Edited(id=9, target=5, sender="bob", body="fixed", ts=TS, room="ops"),
    Deleted(id=10, target=6, by="bob", ts=TS, to="alice"),
    ReadMarker(id=9, room="ops", ref="r"),
    ReadMarker(id=3, peer="carol"),
    UnreadList(
        conversations=(
            Conversation(key="r:ops", count=3, mentions=1, last_read=2, room="ops"),
            Conversation(key="u:carol", count=1, mentions=0, last_read=0, peer="carol"),
        ),
        more=False,
        ref="u",
    ),
    ConversationList(
        conversations=(
            Conversation(
                key="r:ops", count=0, mentions=0, last_read=9, room="ops", last_id=9, last_ts=TS
            ),
            Conversation(key="u:dave", count=0, mentions=0, last_read=0, peer="dave"),
        ),
        more=True,
        ref="c",
    ),
    PeopleList(
        people=(Person("alice", True), Person("bob", False, TS), Person("erin", False)),
        ref="p",
    ),
    SearchResults(messages=(ROOM_MESSAGE,), more=True, ref="s"),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_encoded_event_decodes_to_equal_event(event: Event) -> None:
    assert decode_event(encode(event)) == event


def test_room_list_wire_form_matches_protocol_doc() -> None:
    event = RoomList(rooms=(RoomInfo(name="general", members=12, joined=True),))
    assert json.loads(encode(event)) == {
        "type": "rooms",
        "rooms": [{"name": "general", "members": 12, "joined": True}],
        "more": False,
    }


def test_rooms_paging_is_additive_both_ways() -> None:
    """``after`` and ``more`` are optional: old clients and old servers still understand."""
    assert decode_request(wire({"type": "rooms"})) == ListRooms()
    assert decode_request(wire({"type": "rooms", "after": " Dev "})) == ListRooms(after="dev")
    with pytest.raises(MalformedMessage):
        decode_request(wire({"type": "rooms", "after": 3}))
    old_server = decode_event(wire({"type": "rooms", "rooms": []}))
    assert old_server == RoomList(rooms=(), more=False)
    assert decode_event(wire({"type": "rooms", "rooms": [], "more": True})) == RoomList(
        rooms=(), more=True
    )


def test_history_page_messages_carry_type_message() -> None:
    page = json.loads(encode(HistoryPage(messages=(ROOM_MESSAGE,), more=False)))
    assert page["messages"][0]["type"] == "message"
    assert page["messages"][0]["from"] == "alice"


def test_decode_event_rejects_history_entry_that_is_not_a_message() -> None:
    payload = wire({"type": "history", "messages": [{"type": "ack", "id": 1}], "more": False})
    with pytest.raises(MalformedMessage):
        decode_event(payload)


def test_decode_event_rejects_request_type() -> None:
    with pytest.raises(UnknownMessageType):
        decode_event(wire({"type": "send", "room": "general", "body": "x"}))


# --- properties ------------------------------------------------------------------------

# Every request the protocol knows, and every field any of them has on the wire (read from
# the dataclasses, so a request added later is fuzzed too).
REQUEST_CLASSES = typing.get_args(Request)
REQUEST_TYPES = sorted(str(cls.TYPE) for cls in REQUEST_CLASSES)
FIELDS = sorted({wire for cls in REQUEST_CLASSES for _, wire in _wire_fields(cls)})

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
request_like = st.builds(
    lambda kind, fields: {**fields, "type": kind},
    st.sampled_from(REQUEST_TYPES) | json_values,
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), json_values, max_size=5),
)


def check_request_or_protocol_error(payload: bytes) -> None:
    try:
        request = decode_request(payload)
    except ProtocolError:
        return
    assert decode_request(encode(request)) == request


@PROPERTY
@given(st.binary(max_size=256))
def test_decode_request_on_arbitrary_bytes_only_raises_protocol_error(payload: bytes) -> None:
    check_request_or_protocol_error(payload)


@PROPERTY
@given(st.text(alphabet='[]{}",:\\ 0a', max_size=60))
def test_decode_request_on_json_punctuation_only_raises_protocol_error(text: str) -> None:
    check_request_or_protocol_error(text.encode())


@PROPERTY
@given(json_values)
def test_decode_request_on_arbitrary_json_only_raises_protocol_error(value: object) -> None:
    check_request_or_protocol_error(wire(value))


@PROPERTY
@given(request_like)
def test_decode_request_on_request_like_objects_only_raises_protocol_error(
    obj: dict[str, Any],
) -> None:
    check_request_or_protocol_error(wire(obj))


@pytest.mark.parametrize(
    ("payload", "ref"),
    [
        (b'{"type":"who","ref":"w1"}', "w1"),
        (b'{"type":"nonsense","ref":"n1","x":[1,2]}', "n1"),
        (b'{"ref":"no-type"}', "no-type"),
        (b'{"type":"who","ref":5}', None),
        (b'{"type":"who","ref":"' + b"r" * 65 + b'"}', None),
        (b"[1,2]", None),
        (b"\xff", None),
    ],
)
def test_request_ref_finds_a_valid_ref_whatever_else_is_wrong(payload: bytes, ref: str) -> None:
    assert request_ref(payload) == ref
