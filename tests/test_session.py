"""The per-connection state machine: login gate, pipelining, fatal and non-fatal errors."""

from __future__ import annotations

import itertools
import json
import typing
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securechat.errors import (
    ErrorCode,
    FrameTooLarge,
    MalformedMessage,
    ProtocolError,
    UnexpectedMessage,
    UnknownMessageType,
)
from securechat.protocol.devices import ListDevices, SignOutDevice, SignOutEverywhere
from securechat.protocol.files import AskFileTicket
from securechat.protocol.frames import encode_frame
from securechat.protocol.membership import GetInvitations, GetMembers
from securechat.protocol.messages import (
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
from securechat.protocol.session import ALLOWED, ServerSession, State

MAX_FRAME = 4096
PROPERTY = settings(max_examples=250, deadline=None, derandomize=True, database=None)

AUTH = {"type": "auth", "user": "alice", "password": "correct horse"}


def frame(obj: Mapping[str, object]) -> bytes:
    return encode_frame(json.dumps(obj).encode())


def session_with(*chunks: bytes) -> ServerSession:
    session = ServerSession(max_frame=MAX_FRAME)
    for chunk in chunks:
        session.receive_data(chunk)
    return session


def logged_in(*chunks: bytes) -> ServerSession:
    session = session_with(frame(AUTH), *chunks)
    assert isinstance(session.next_request(), Auth)
    session.login_succeeded("alice")
    return session


def drain(session: ServerSession) -> list[Request | ProtocolError]:
    items = []
    while (item := session.next_request()) is not None:
        items.append(item)
    return items


def test_session_starts_awaiting_auth() -> None:
    session = ServerSession(max_frame=MAX_FRAME)
    assert session.state is State.AWAITING_AUTH
    assert session.user is None
    assert not session.is_authenticated
    assert session.next_request() is None


# --- before login ----------------------------------------------------------------------

PRE_AUTH_REQUESTS: list[dict[str, Any]] = [
    {"type": "join", "room": "general", "ref": "r1"},
    {"type": "leave", "room": "general", "ref": "r1"},
    {"type": "rooms", "ref": "r1"},
    {"type": "send", "room": "general", "body": "hi", "ref": "r1"},
    {"type": "history", "room": "general", "ref": "r1"},
    {"type": "sync", "since": 0, "ref": "r1"},
    {"type": "who", "ref": "r1"},
    {"type": "ping", "ref": "r1"},
    {"type": "pong", "ref": "r1"},
]


@pytest.mark.parametrize("obj", PRE_AUTH_REQUESTS, ids=lambda o: o["type"])
def test_session_refuses_request_before_auth_and_closes(obj: dict[str, Any]) -> None:
    session = session_with(frame(obj), frame(AUTH))
    error = session.next_request()
    assert isinstance(error, UnexpectedMessage)
    assert error.code is ErrorCode.AUTH_REQUIRED
    assert error.is_fatal
    assert error.ref == "r1"
    assert session.state is State.CLOSED
    assert session.next_request() is None


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b"not json", MalformedMessage),
        (b'{"type":"auth","user":"alice"}', MalformedMessage),
        (b'{"type":"dance"}', UnknownMessageType),
    ],
)
def test_session_closes_on_bad_frame_before_auth(payload: bytes, kind: type[ProtocolError]) -> None:
    session = session_with(encode_frame(payload), frame(AUTH))
    error = session.next_request()
    assert isinstance(error, kind)
    assert session.state is State.CLOSED
    assert session.next_request() is None


@pytest.mark.parametrize("logged_in_first", [False, True])
def test_session_closes_on_frame_too_large(logged_in_first: bool) -> None:
    oversized = (MAX_FRAME + 1).to_bytes(4, "big") + b"x" * 10
    session = logged_in(oversized) if logged_in_first else session_with(oversized)
    assert isinstance(session.next_request(), FrameTooLarge)
    assert session.state is State.CLOSED
    assert session.next_request() is None


def test_session_reports_string_payload_full_of_brackets_as_error() -> None:
    session = session_with(encode_frame(b'"' + b"{" * 20 + b'"'))
    assert isinstance(session.next_request(), MalformedMessage)
    assert session.state is State.CLOSED


def test_session_accepts_bye_before_auth_and_closes() -> None:
    session = session_with(frame({"type": "bye"}), frame(AUTH))
    assert session.next_request() == Bye()
    assert session.state is State.CLOSED
    assert session.next_request() is None


# --- login -----------------------------------------------------------------------------


def test_session_pauses_after_auth_with_pipelined_frames_buffered() -> None:
    session = session_with(frame(AUTH) + frame({"type": "join", "room": "general"}))
    assert session.next_request() == Auth(user="alice", password="correct horse")
    assert session.state is State.AUTHENTICATING
    assert session.next_request() is None
    assert session.next_request() is None
    assert session.buffered > 0
    assert not session.is_authenticated


def test_session_releases_pipelined_frames_in_order_after_login() -> None:
    pipelined: list[dict[str, Any]] = [
        {"type": "join", "room": "General", "ref": "1"},
        {"type": "send", "room": "general", "body": "hi", "ref": "2"},
        {"type": "sync", "since": 5, "ref": "3"},
    ]
    session = session_with(frame(AUTH) + b"".join(frame(o) for o in pipelined))
    assert isinstance(session.next_request(), Auth)
    assert session.next_request() is None
    session.login_succeeded("alice")
    assert session.state is State.AUTHENTICATED
    assert session.is_authenticated
    assert session.user == "alice"
    assert drain(session) == [
        Join(room="general", ref="1"),
        Send(body="hi", room="general", ref="2"),
        Sync(since=5, ref="3"),
    ]
    assert session.buffered == 0


def test_session_releases_nothing_after_login_failed() -> None:
    session = session_with(frame(AUTH) + frame({"type": "who"}))
    assert isinstance(session.next_request(), Auth)
    session.login_failed()
    assert session.state is State.CLOSED
    assert session.user is None
    assert session.next_request() is None
    session.receive_data(frame({"type": "ping"}))
    assert session.next_request() is None


# --- after login -----------------------------------------------------------------------


def test_session_refuses_second_auth_without_closing() -> None:
    session = logged_in(frame({**AUTH, "ref": "again"}), frame({"type": "ping"}))
    error = session.next_request()
    assert isinstance(error, UnexpectedMessage)
    assert error.code is ErrorCode.BAD_REQUEST
    assert not error.is_fatal
    assert session.state is State.AUTHENTICATED
    assert session.user == "alice"
    assert session.next_request() == Ping()


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b"not json", MalformedMessage),
        (b'{"type":"join","ref":"r"}', MalformedMessage),
        (b'{"type":"dance","ref":"r"}', UnknownMessageType),
    ],
)
def test_session_continues_after_non_fatal_error(payload: bytes, kind: type[ProtocolError]) -> None:
    session = logged_in(encode_frame(payload), frame({"type": "who", "ref": "w"}))
    error = session.next_request()
    assert isinstance(error, kind)
    assert not error.is_fatal
    assert session.state is State.AUTHENTICATED
    assert session.next_request() == Who(ref="w")


def test_session_closes_after_bye_and_ignores_later_frames() -> None:
    session = logged_in(frame({"type": "bye", "ref": "b"}), frame({"type": "ping"}))
    assert session.next_request() == Bye(ref="b")
    assert session.state is State.CLOSED
    assert session.next_request() is None


def test_session_close_stops_output() -> None:
    session = logged_in(frame({"type": "ping"}))
    session.close()
    assert session.state is State.CLOSED
    assert session.next_request() is None


# --- the table -------------------------------------------------------------------------


def test_allowed_table_matches_documented_behaviour() -> None:
    """docs/protocol.md: only auth, ca or bye before login; all but auth and ca after it."""
    documented = {
        State.AWAITING_AUTH: {Auth, Bye, GetCA},
        State.AUTHENTICATING: set(),
        State.AUTHENTICATED: {Join, Leave, ListRooms, Send, History, Sync, Who, Ping, Pong, Bye}
        | {Create, Moderate, Edit, Delete, MarkRead, GetUnread, Search}
        | {GetConversations, GetPeople}
        | {ListDevices, SignOutDevice, SignOutEverywhere}
        | {AskFileTicket}
        | {GetInvitations, GetMembers},
        State.CLOSED: set(),
    }
    assert documented == ALLOWED
    every_request = set(typing.get_args(Request))
    not_yet_served: set[type[Request]] = set()  # every request of the catalogue is served
    assert ALLOWED[State.AUTHENTICATED] == every_request - {Auth, GetCA} - not_yet_served


# --- property --------------------------------------------------------------------------

valid_frames = st.sampled_from(
    [frame(AUTH)] + [frame(o) for o in PRE_AUTH_REQUESTS] + [frame({"type": "bye"})]
)
streams = st.lists(st.one_of(valid_frames, st.binary(max_size=24)), max_size=12).map(b"".join)


@PROPERTY
@given(stream=streams, cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=12))
def test_session_on_arbitrary_bytes_yields_requests_or_protocol_errors(
    stream: bytes, cuts: list[int]
) -> None:
    session = ServerSession(max_frame=MAX_FRAME)
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    for start, end in itertools.pairwise(bounds):
        session.receive_data(stream[start:end])
        for item in drain(session):
            if isinstance(item, ProtocolError):
                if item.is_fatal:
                    assert session.state is State.CLOSED
            else:
                assert isinstance(item, typing.get_args(Request))
                if isinstance(item, Auth):
                    session.login_succeeded(item.user)
                    assert session.state is State.AUTHENTICATED
        if session.state is State.CLOSED:
            assert session.next_request() is None


def test_next_frame_hands_out_the_payload_undecoded_and_decode_applies_the_table() -> None:
    """The two steps a metering caller takes: nothing is parsed until it decodes."""
    session = logged_in(encode_frame(b"not json"), frame({"type": "ca"}), frame({"type": "bye"}))
    assert session.next_frame() == b"not json"
    assert session.state is State.AUTHENTICATED  # a frame dropped unread changes nothing
    ca = session.next_frame()
    assert isinstance(ca, bytes)
    assert isinstance(session.decode(ca), UnexpectedMessage)  # ca is for before login only
    bye = session.next_frame()
    assert isinstance(bye, bytes)
    assert session.decode(bye) == Bye()
    session = session  # decode() changed session.state: forget what mypy narrowed it to above
    assert session.state is State.CLOSED
    assert session.next_frame() is None
    too_large = session_with(b"\xff\xff\xff\xff").next_frame()
    assert isinstance(too_large, FrameTooLarge)


# --- whole payloads (the WebSocket transport) ---------------------------------------------


def test_session_message_payloads_follow_the_same_table_and_pipelining() -> None:
    session = ServerSession(max_frame=MAX_FRAME)
    session.receive_message(json.dumps(AUTH).encode())
    session.receive_message(json.dumps({"type": "who", "ref": "w"}).encode())
    assert isinstance(session.next_request(), Auth)
    assert session.next_request() is None  # held until the login's outcome
    session.login_succeeded("alice")
    assert session.next_request() == Who(ref="w")
    session.receive_message(b'{"type":"auth","user":"bob","password":"x"}')
    refused = session.next_request()
    assert isinstance(refused, UnexpectedMessage)
    assert session.state is State.AUTHENTICATED


def test_session_message_before_auth_that_is_not_auth_closes() -> None:
    session = ServerSession(max_frame=MAX_FRAME)
    session.receive_message(b'{"type":"join","room":"general"}')
    error = session.next_request()
    assert isinstance(error, UnexpectedMessage)
    assert error.code is ErrorCode.AUTH_REQUIRED
    assert session.state is State.CLOSED


@pytest.mark.parametrize("size", [0, MAX_FRAME + 1])
def test_session_message_outside_max_frame_is_frame_too_large(size: int) -> None:
    session = logged_in()
    session.receive_message(b" " * size)
    session.receive_message(b'{"type":"who"}')
    error = session.next_request()
    assert isinstance(error, FrameTooLarge)
    assert session.state is State.CLOSED
    assert session.next_request() is None
