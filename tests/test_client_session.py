"""ClientSession against a server in memory: login, routing, reconnects, errors; no network."""

from __future__ import annotations

import inspect
import json
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from securechat.errors import ErrorCode
from securechat.protocol.client import (
    TRANSITIONS,
    ClientSession,
    ConnectionEnded,
    Delivered,
    Greeted,
    LoggedIn,
    LoginRefused,
    Reply,
    SendFailed,
    SessionEvent,
    State,
)
from securechat.protocol.frames import HEADER, encode_frame
from securechat.protocol.heartbeat import PONG_TIMEOUT
from securechat.protocol.messages import (
    Auth,
    CACertificate,
    Deleted,
    Edited,
    Error,
    Event,
    GetCA,
    History,
    HistoryPage,
    Join,
    Joined,
    Leave,
    Left,
    Message,
    Ping,
    Presence,
    RoomEvent,
    Send,
    Sync,
    Synced,
    Who,
    encode,
)
from tests.memory_server import (
    CA_PEM,
    PASSWORD,
    MemoryConnection,
    MemoryServer,
    connect,
    drop,
    exchange,
)

T = TypeVar("T")


def logged_in(server: MemoryServer, user: str = "alice") -> tuple[ClientSession, MemoryConnection]:
    client = ClientSession(user, password=PASSWORD, send_prefix="t")
    connection, events = connect(client, server)
    assert any(isinstance(e, LoggedIn) for e in events), events
    return client, connection


def of_type(events: list[SessionEvent | Event], kind: type[T]) -> list[T]:
    return [e for e in events if isinstance(e, kind)]


# --- login --------------------------------------------------------------------------


def test_session_logs_in_with_the_password_then_keeps_only_the_token() -> None:
    server = MemoryServer()
    client = ClientSession("alice", password=PASSWORD)
    _, events = connect(client, server)
    greeted, login = of_type(events, Greeted), of_type(events, LoggedIn)
    assert greeted[0].hello.server == "memory"
    assert login[0].resumed is False
    assert login[0].welcome.rooms == ("general",)
    assert client.state is State.READY
    assert client.token == "token-1"
    assert PASSWORD not in repr(vars(client))
    assert PASSWORD not in repr(vars(client._credentials))
    assert not client.holds_password


def test_session_reports_a_refused_password_and_ends_the_connection() -> None:
    client = ClientSession("alice", password="wrong password")
    _, events = connect(client, MemoryServer())
    refused = of_type(events, LoginRefused)
    assert refused[0].error.code == ErrorCode.AUTH_FAILED
    assert refused[0].with_token is False
    assert of_type(events, ConnectionEnded)
    assert client.state is State.DISCONNECTED


def test_session_reports_a_refused_token_as_such() -> None:
    client = ClientSession("alice", token="token-from-another-server")
    _, events = connect(client, MemoryServer())
    assert of_type(events, LoginRefused)[0].with_token is True


def test_session_refuses_another_protocol_version() -> None:
    client = ClientSession("alice", password=PASSWORD)
    connection, events = connect(client, MemoryServer(protocol=2))
    assert of_type(events, LoginRefused)[0].error.code == ErrorCode.UNSUPPORTED_PROTOCOL
    assert of_type(events, ConnectionEnded)
    assert not [r for r in connection.server.received]  # no password went out


def test_probe_session_asks_for_the_ca_without_logging_in() -> None:
    server = MemoryServer()
    probe = ClientSession(None)
    connection, events = connect(probe, server)
    assert of_type(events, Greeted)
    assert probe.state is State.GREETED
    ref = probe.request(GetCA())
    reply = of_type(exchange(probe, connection), Reply)[0]
    assert reply.ref == ref
    assert isinstance(reply.event, CACertificate)
    assert reply.event.pem == CA_PEM
    probe.close()
    exchange(probe, connection)
    assert connection.closed


# --- requests and pushed events -------------------------------------------------------


def test_session_routes_replies_to_their_requests_by_ref() -> None:
    client, connection = logged_in(MemoryServer())
    join = client.request(Join(room="ops"))
    who = client.request(Who())
    replies = {r.ref: r.event for r in of_type(exchange(client, connection), Reply)}
    joined = replies[join]
    assert isinstance(joined, Joined)
    assert joined.room == "ops"
    assert replies[who].TYPE == "who"
    assert client.rooms == ("general", "ops")


def test_session_passes_error_replies_to_the_request() -> None:
    client, connection = logged_in(MemoryServer())
    ref = client.request(Leave(room="nowhere"))
    reply = of_type(exchange(client, connection), Reply)[0]
    assert reply.ref == ref
    assert isinstance(reply.event, Error)
    assert reply.event.code == ErrorCode.NOT_MEMBER


def test_session_reports_unmatched_errors_and_pushed_events() -> None:
    client, connection = logged_in(MemoryServer())
    connection.push(Presence(user="bob", online=True))
    connection.push(Error(code=ErrorCode.SLOW_CONSUMER, message="read faster"))
    events = exchange(client, connection)
    assert of_type(events, Presence) == [Presence(user="bob", online=True)]
    assert of_type(events, Error)[0].code == ErrorCode.SLOW_CONSUMER


def test_session_ignores_event_types_it_does_not_know() -> None:
    client, connection = logged_in(MemoryServer())
    connection.push_raw(json.dumps({"type": "from_the_future", "x": 1}).encode())
    connection.push(Presence(user="bob", online=False))
    events = exchange(client, connection)
    assert of_type(events, Presence)
    assert not of_type(events, ConnectionEnded)
    assert client.state is State.READY


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b'{"type": "message", "id": "one"}', "invalid message"),
        (b"not json", "invalid message"),
    ],
)
def test_session_ends_the_connection_on_an_invalid_event(payload: bytes, why: str) -> None:
    client, connection = logged_in(MemoryServer())
    connection.push(Presence(user="bob", online=True))
    connection.push_raw(payload)
    events = exchange(client, connection)
    assert of_type(events, Presence), "what came before the bad frame is still reported"
    assert why in of_type(events, ConnectionEnded)[0].reason
    assert client.state is State.DISCONNECTED


def test_session_ends_the_connection_on_a_frame_that_breaks_framing() -> None:
    client, _ = logged_in(MemoryServer())
    client.receive_data(HEADER.pack(2**31), now=1.0)
    assert "oversized" in of_type(client.events_received(), ConnectionEnded)[0].reason


def test_session_ends_on_the_servers_bye_with_its_reason() -> None:
    client, connection = logged_in(MemoryServer())
    connection.push_raw(b'{"type":"bye","reason":"shutting_down"}')
    ended = of_type(exchange(client, connection), ConnectionEnded)
    assert ended[0].reason == "the server is restarting"


def test_collecting_sync_returns_messages_in_its_reply_not_as_events() -> None:
    server = MemoryServer()
    client, connection = logged_in(server)
    for n in range(3):
        server.store("bob", f"m{n}", room="general")
    ref = client.request(Sync(since=0), collect=True)
    events = exchange(client, connection)
    reply = of_type(events, Reply)[0]
    assert reply.ref == ref
    assert isinstance(reply.event, Synced)
    assert [m.body for m in reply.messages if isinstance(m, Message)] == ["m0", "m1", "m2"]
    assert not of_type(events, Message)


def test_history_reply_carries_its_page() -> None:
    server = MemoryServer()
    client, connection = logged_in(server)
    server.store("bob", "old", room="general")
    client.request(History(room="general", limit=5))
    reply = of_type(exchange(client, connection), Reply)[0]
    assert isinstance(reply.event, HistoryPage)
    assert reply.event.messages[0].body == "old"


# --- sends -------------------------------------------------------------------------------


def test_send_is_delivered_and_reaches_the_other_member() -> None:
    server = MemoryServer()
    alice, to_alice = logged_in(server, "alice")
    bob, to_bob = logged_in(server, "bob")
    send = alice.submit("hi", room="general")
    delivered = of_type(exchange(alice, to_alice), Delivered)
    assert delivered[0].ref == send.ref
    assert delivered[0].message.sender == "alice"
    received = of_type(exchange(bob, to_bob), Message)
    assert [m.body for m in received] == ["hi"]
    assert alice.unacknowledged == []


@pytest.mark.parametrize(
    "code", [ErrorCode.NO_SUCH_USER, ErrorCode.NOT_MEMBER, ErrorCode.TOO_LARGE]
)
def test_refused_send_is_dropped_and_reported(code: str) -> None:
    server = MemoryServer(refuse_sends=[code])
    client, connection = logged_in(server)
    send = client.submit("hi", to="bob")
    failed = of_type(exchange(client, connection), SendFailed)
    assert failed[0].ref == send.ref
    assert failed[0].code == code
    assert failed[0].body == "hi"
    assert client.unacknowledged == []


def test_rate_limited_send_is_resent_after_retry_after() -> None:
    server = MemoryServer(refuse_sends=[ErrorCode.RATE_LIMITED])
    client, connection = logged_in(server)
    client.submit("hi", room="general")
    events = exchange(client, connection, now=10.0)
    assert not of_type(events, Delivered)
    assert len(client.unacknowledged) == 1
    deadline = client.next_deadline()
    assert deadline == pytest.approx(10.5)
    client.tick(10.4)
    assert client.data_to_send() == b""
    client.tick(10.5)
    delivered = of_type(exchange(client, connection, now=10.5), Delivered)
    assert delivered
    assert len(server.messages) == 1


def test_send_refused_with_server_error_is_resent_with_growing_delays() -> None:
    server = MemoryServer(refuse_sends=[ErrorCode.SERVER_ERROR] * 2)
    client, connection = logged_in(server)
    send = client.submit("hi", room="general")
    exchange(client, connection, now=0.0)
    assert client.next_deadline() == pytest.approx(1.0)
    client.tick(1.0)
    exchange(client, connection, now=1.0)  # refused again
    assert client.next_deadline() == pytest.approx(3.0)
    client.tick(3.0)
    delivered = of_type(exchange(client, connection, now=3.0), Delivered)
    assert delivered[0].ref == send.ref
    refs = [r.ref for r in server.received if isinstance(r, Send)]
    assert refs == [send.ref] * 3, "every attempt under the same ref"
    assert len(server.messages) == 1


# --- reconnects ------------------------------------------------------------------------


def test_lost_connection_fails_requests_in_flight_and_keeps_sends() -> None:
    client, connection = logged_in(MemoryServer())
    ref = client.request(Who())
    send = client.submit("later", room="general")
    client.data_to_send()  # written, never answered
    events = drop(client, connection, "reset by peer")
    reply = of_type(events, Reply)[0]
    assert reply.ref == ref
    assert isinstance(reply.event, Error)
    assert reply.event.code == ErrorCode.SHUTTING_DOWN
    assert reply.event.message == "reset by peer"
    assert client.unacknowledged == [send]


def test_reconnect_resumes_with_the_token_catches_up_and_resends() -> None:
    server = MemoryServer()
    alice, to_alice = logged_in(server, "alice")
    bob, to_bob = logged_in(server, "bob")
    drop(alice, to_alice)
    pending = alice.submit("typed while offline", room="general")
    for n in range(3):
        bob.submit(f"missed {n}", room="general")
    exchange(bob, to_bob)
    to_alice, events = connect(alice, server)
    assert of_type(events, LoggedIn)[0].resumed is True
    auths = [r for r in server.received if r.TYPE == "auth"]
    assert isinstance(auths[-1], Auth)
    assert auths[-1].token == "token-1"
    assert auths[-1].password is None
    assert [m.body for m in of_type(events, Message)] == ["missed 0", "missed 1", "missed 2"]
    assert of_type(events, Delivered)[0].ref == pending.ref
    assert alice.last_id == 3  # the catch-up's synced; its own ack does not move it
    assert [m.body for m in of_type(exchange(bob, to_bob), Message)] == ["typed while offline"]


def test_resend_after_a_lost_ack_is_stored_once_and_shown_once() -> None:
    server = MemoryServer(drop_acks=1)
    client, connection = logged_in(server)
    send = client.submit("once", room="general")
    exchange(client, connection)
    assert client.unacknowledged == [send]  # stored, but the ack never came
    drop(client, connection)
    _, events = connect(client, server)
    shown = [m.id for m in of_type(events, Message)] + [
        d.message.id for d in of_type(events, Delivered)
    ]
    assert len(server.messages) == 1
    assert of_type(events, Delivered)[0].message.id == server.messages[0].id
    assert len(set(shown)) == 1, "the catch-up copy and the ack name the same message"


def test_catch_up_follows_more_across_pages_without_duplicates() -> None:
    server = MemoryServer(sync_page=2)
    alice, to_alice = logged_in(server, "alice")
    bob, to_bob = logged_in(server, "bob")
    bob.submit("seen live", room="general")
    exchange(bob, to_bob)
    exchange(alice, to_alice)  # alice sees message 1 live
    drop(alice, to_alice)
    for n in range(5):
        bob.submit(f"missed {n}", room="general")
    exchange(bob, to_bob)
    alice_last_seen = alice.last_id
    _, events = connect(alice, server)
    bodies = [m.body for m in of_type(events, Message)]
    assert bodies == [f"missed {n}" for n in range(5)]
    syncs = [r for r in server.received if isinstance(r, Sync)]
    assert [s.since for s in syncs] == [alice_last_seen, 3, 5]
    assert alice.last_id == 6


def test_catch_up_does_not_repeat_messages_already_seen() -> None:
    server = MemoryServer()
    alice, to_alice = logged_in(server, "alice")
    server.store("bob", "first", room="general")
    server.deliver(server.messages[-1])
    assert len(of_type(exchange(alice, to_alice), Message)) == 1
    drop(alice, to_alice)
    alice.last_id = 0  # as if the id had not been noted: the catch-up repeats message 1
    _, events = connect(alice, server)
    assert of_type(events, Message) == []


# --- heartbeat -------------------------------------------------------------------------


def test_heartbeat_pings_a_quiet_server_and_ends_a_silent_one() -> None:
    server = MemoryServer(heartbeat=30)
    client, _connection = logged_in(server)
    assert client.next_deadline() == pytest.approx(30.0)
    client.tick(30.0)
    assert b'"ping"' in client.data_to_send()  # never answered
    assert client.next_deadline() == pytest.approx(30.0 + PONG_TIMEOUT)
    client.tick(30.0 + PONG_TIMEOUT + 0.1)
    assert "stopped answering" in of_type(client.events_received(), ConnectionEnded)[0].reason


def test_a_ping_request_gets_its_pong_as_a_reply() -> None:
    client, connection = logged_in(MemoryServer())
    ref = client.request(Ping())
    replies = of_type(exchange(client, connection), Reply)
    assert [(r.ref, r.event.TYPE) for r in replies] == [(ref, "pong")]


def test_any_data_from_the_server_counts_as_an_answer() -> None:
    client, _connection = logged_in(MemoryServer(heartbeat=30))
    client.tick(30.0)
    client.data_to_send()
    client.receive_data(encode_frame(b'{"type":"pong","ref":"hb"}'), now=31.0)
    assert client.next_deadline() == pytest.approx(61.0)


def test_close_says_bye_and_abandon_returns_unacknowledged_sends() -> None:
    client, _connection = logged_in(MemoryServer())
    send = client.submit("never", room="general")
    client.data_to_send()
    client.close()
    assert b'"bye"' in client.data_to_send()
    client.connection_lost("closed")
    assert client.state is State.CLOSED
    assert client.abandon() == [send]
    assert client.unacknowledged == []


def test_closed_session_stays_closed_when_the_driver_reports_the_transport_lost() -> None:
    client = ClientSession("alice", password=PASSWORD)
    client.close()  # before any connection: closed for good
    client.connection_lost("closed")
    assert client.state is State.CLOSED


def test_session_state_changes_only_through_its_transition_table() -> None:
    assert set(TRANSITIONS) == set(State)
    source = inspect.getsource(ClientSession)
    # The constructor's first state, and _move()'s lookup in TRANSITIONS: nothing else.
    assert source.count("self.state = ") == 2
    reached = {State.DISCONNECTED} | {s for row in TRANSITIONS.values() for s in row.values()}
    assert reached == set(State)


# --- any bytes from a server ------------------------------------------------------------

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None)
EVENT_FRAMES = st.sampled_from(
    [
        encode_frame(encode(event))
        for event in (
            Message(id=9, sender="bob", body="hi", ts="t", room="general"),
            Presence(user="bob", online=True),
            Error(code=ErrorCode.SERVER_ERROR, message="disk", ref="t-1"),
            Synced(last_id=9, more=True, ref="c-1"),
            Ping(ref="p"),
        )
    ]
)
STREAMS = st.lists(st.one_of(EVENT_FRAMES, st.binary(max_size=40)), max_size=12).map(b"".join)


@PROPERTY
@given(stream=STREAMS, cuts=st.lists(st.integers(min_value=1, max_value=64), max_size=8))
def test_any_bytes_from_the_server_give_events_or_an_end_never_an_exception(
    stream: bytes, cuts: list[int]
) -> None:
    client, _ = logged_in(MemoryServer())
    client.submit("in flight", room="general")
    client.request(Who())
    client.data_to_send()
    client.events_received()
    pieces, start = [], 0
    for cut in [*cuts, len(stream)]:
        pieces.append(stream[start : start + cut])
        start += cut
    for n, piece in enumerate(pieces):
        client.receive_data(piece, now=float(n))
        client.tick(float(n))
        events = client.events_received()
        ended = [e for e in events if isinstance(e, ConnectionEnded)]
        if ended:
            assert events[-1] is ended[0]
            assert client.state is State.DISCONNECTED
            return
        assert client.state is State.READY


# --- the journal: edits, deletions and room events share the message ids ----------------


def test_edits_deletions_and_room_events_count_as_seen_ids() -> None:
    client, connection = logged_in(MemoryServer())
    for event in (
        Edited(id=11, target=3, sender="bob", body="fixed", ts="t", room="general"),
        Deleted(id=12, target=4, by="bob", ts="t", room="general"),
        RoomEvent(id=13, room="general", action="topic", actor="bob", ts="t", topic="x"),
        Edited(id=11, target=3, sender="bob", body="fixed", ts="t", room="general"),  # again
    ):
        connection.push(event)
    events = exchange(client, connection)
    assert [e.id for e in events if isinstance(e, Edited | Deleted | RoomEvent)] == [11, 12, 13]
    assert client.last_id == 13


def test_a_pushed_left_or_a_deleted_room_leaves_the_room_list() -> None:
    client, connection = logged_in(MemoryServer())
    client.request(Join(room="ops"))
    client.request(Join(room="hr"))
    exchange(client, connection)
    assert list(client.rooms) == ["general", "hr", "ops"]
    connection.push(RoomEvent(id=20, room="ops", action="kick", actor="bob", ts="t", user="alice"))
    connection.push(Left(room="ops"))
    connection.push(RoomEvent(id=21, room="hr", action="delete", actor="bob", ts="t"))
    events = exchange(client, connection)
    assert list(client.rooms) == ["general"]
    assert [type(e).__name__ for e in events] == ["RoomEvent", "Left", "RoomEvent"]
