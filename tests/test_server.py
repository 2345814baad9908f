"""The server over real TLS on 127.0.0.1 with a real SQLite file, speaking raw protocol."""

from __future__ import annotations

import json
import logging
import socket
import struct
import time
from collections.abc import Mapping

import pytest

from securechat.accounts import Accounts
from securechat.config import HashParams, Limits
from securechat.store.database import open_database
from tests.conftest import PASSWORD, TIMEOUT, RunningServer, ServerFactory
from tests.eventually import eventually
from tests.peer import Event, Peer
from tests.sql import execute, value


def _count_messages(db_url: str) -> int:
    return int(value(db_url, "SELECT count(*) FROM messages WHERE kind = 'message'"))


# --- login ---------------------------------------------------------------------------


def test_server_greets_with_hello(running_server: RunningServer) -> None:
    hello = running_server.peer().recv()
    assert hello["type"] == "hello"
    assert hello["protocol"] == 1
    assert hello["server"].startswith("securechat ")
    assert hello["max_frame"] == 65536
    assert hello["heartbeat"] == 30


def test_server_welcomes_a_new_user_into_general(running_server: RunningServer) -> None:
    peer = running_server.peer()
    welcome = peer.login("alice", PASSWORD)
    token = welcome.pop("token")
    # last_id: her join of #general, the first room event of the journal
    assert welcome == {"type": "welcome", "user": "alice", "rooms": ["general"], "last_id": 1}
    assert isinstance(token, str)
    assert len(token) >= 43  # 256 random bits, URL-safe base64


def test_server_rejects_request_before_auth(running_server: RunningServer) -> None:
    peer = running_server.peer()
    peer.expect("hello")
    peer.send(type="join", room="general")
    events = peer.expect_closed()
    assert [e["code"] for e in events] == ["auth_required"]


@pytest.mark.parametrize(
    ("user", "password"),
    [("alice", "wrong password"), ("nobody", PASSWORD), ("carol", PASSWORD), ("BAD NAME!", "x")],
    ids=["wrong-password", "unknown-user", "disabled", "invalid-name"],
)
def test_server_auth_failures_look_identical(
    running_server: RunningServer, user: str, password: str
) -> None:
    database = open_database(running_server.db_url)
    Accounts(database, hash_params=HashParams.for_tests()).set_disabled("carol", True)
    database.dispose()
    peer = running_server.peer()
    peer.expect("hello")
    peer.send(type="auth", user=user, password=password)
    events = peer.expect_closed()
    assert events == [
        {"type": "error", "code": "auth_failed", "message": "invalid user name or password"}
    ]


def test_server_closes_connection_that_never_logs_in(server_factory: ServerFactory) -> None:
    running = server_factory(auth_timeout=0.5)
    peer = running.peer()
    # Closed by the 0.5 s login deadline: well before the default's 10 s, with room for a
    # loaded machine (the expect_closed bound is the only clock).
    events = peer.expect_closed(timeout=7)
    assert [e["type"] for e in events] == ["hello", "error"]
    assert events[1]["code"] == "auth_required"


def test_server_closes_socket_that_never_starts_tls(server_factory: ServerFactory) -> None:
    running = server_factory(auth_timeout=0.5)
    with socket.create_connection(running.address, timeout=7) as raw:  # < the 10 s default
        assert raw.recv(100) == b""  # closed by the server, nothing sent


def test_silent_connections_do_not_block_a_real_login(running_server: RunningServer) -> None:
    silent = [socket.create_connection(running_server.address) for _ in range(30)]
    try:
        started = time.monotonic()
        peer = running_server.login("alice")
        # Blocked behind them, it would wait for their 10 s handshake deadline.
        assert time.monotonic() - started < 7
        peer.send(type="ping", ref="p")
        assert peer.expect("pong")["ref"] == "p"
    finally:
        for sock in silent:
            sock.close()


def _closed_by_server(sock: socket.socket) -> bool:
    """Wait for the server to close ``sock``; True once it has (False: still open)."""
    sock.settimeout(TIMEOUT)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_full_per_address_waiting_cap_closes_the_oldest_not_the_newcomer(
    server_factory: ServerFactory,
) -> None:
    """32 silent sockets (the cap) behind one NAT address do not keep the 33rd out."""
    running = server_factory(handshake_timeout=120, auth_timeout=120)
    nat = "127.0.0.6"
    silent = [socket.create_connection(running.address, source_address=(nat, 0)) for _ in range(32)]
    try:
        alice = running.login("alice", source=nat)
        alice.send(type="ping", ref="p")
        alice.expect("pong", ref="p")
        assert _closed_by_server(silent[0])  # the one that waited longest made room
        assert running.server.parts.admission.waiting_by_address() == {nat: 31}
        held = running.peer(nat)  # the 32nd place again, then the next newcomer ...
        held.expect("hello")
        running.login("bob", source=nat)
        assert _closed_by_server(silent[1])  # ... closes the next oldest, not one held since
        held.send(type="auth", user="carol", password=PASSWORD)
        held.expect("welcome")
    finally:
        for sock in silent:
            sock.close()


# --- framing errors ------------------------------------------------------------------


def test_server_answers_bad_json_and_keeps_the_connection(running_server: RunningServer) -> None:
    peer = running_server.login("alice")
    peer.send_raw(b"{not json")
    assert peer.expect("error")["code"] == "bad_request"
    peer.send(type="frobnicate", ref="x")
    assert peer.expect("error") == {
        "type": "error",
        "code": "unknown_type",
        "message": "unknown message type 'frobnicate'",
        "ref": "x",
    }
    peer.send(type="ping", ref="still-here")
    assert peer.expect("pong")["ref"] == "still-here"


@pytest.mark.parametrize("length", [0, 65537, 2**32 - 1])
def test_server_closes_on_frame_length_out_of_range(
    running_server: RunningServer, length: int
) -> None:
    peer = running_server.login("alice")
    peer.sock.sendall(struct.pack(">I", length) + b"x" * 100)
    events = peer.expect_closed()
    assert [e.get("code") for e in events] == ["frame_too_large"]
    running_server.login("bob")  # the server still serves everyone else


def test_server_refuses_body_over_max_body(server_factory: ServerFactory) -> None:
    running = server_factory(max_body=10)
    peer = running.login("alice")
    peer.send(type="send", room="general", body="x" * 11, ref="big")
    error = peer.expect("error")
    assert (error["code"], error["ref"]) == ("too_large", "big")


def test_server_rate_limits_without_disconnecting(server_factory: ServerFactory) -> None:
    # A token every 2 s: the eight frames are counted long before one more comes, even on a
    # loaded machine; the exact split below depends on that.
    running = server_factory(rate_per_second=0.5, rate_burst=5)
    peer = running.login("alice")
    for n in range(8):
        peer.send(type="who", ref=str(n))
    codes = []
    for _ in range(8):
        event = peer.recv()
        codes.append(event["type"] if event["type"] != "error" else event["code"])
    assert codes.count("who") == 4  # every frame costs a token: auth took the first
    assert codes.count("rate_limited") == 4
    time.sleep(2.1)
    peer.send(type="who", ref="later")
    assert peer.expect("who")["ref"] == "later"


# --- rooms ---------------------------------------------------------------------------


@pytest.mark.postgresql
def test_join_creates_room_and_tells_the_members(running_server: RunningServer) -> None:
    alice, bob, carol = (running_server.login(u) for u in ("alice", "bob", "carol"))
    alice.send(type="join", room="Dev", ref="j1")
    joined = alice.expect("joined")
    assert joined == {
        "type": "joined", "room": "dev", "members": ["alice"], "online": ["alice"], "ref": "j1",
        "role": "member",  # #16: a room made by join has no owner (create makes one)
    }  # fmt: skip
    bob.send(type="join", room="dev")
    assert bob.expect("joined")["members"] == ["alice", "bob"]
    # Others hear of a join from the delivery thread, so carol's join of general at her
    # login may reach alice after alice's own reply: look for the one in dev.
    assert alice.expect("member_joined", room="dev") == {
        "type": "member_joined", "room": "dev", "user": "bob",
    }  # fmt: skip
    carol.send(type="rooms", ref="r")
    rooms = carol.expect("rooms")["rooms"]
    assert {"name": "dev", "members": 2, "joined": False} in rooms
    assert {"name": "general", "members": 3, "joined": True} in rooms


def test_leave_tells_the_others_and_stops_delivery(running_server: RunningServer) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    bob.send(type="leave", room="general", ref="l")
    assert bob.expect("left") == {"type": "left", "room": "general", "ref": "l"}
    assert alice.expect("member_left") == {"type": "member_left", "room": "general", "user": "bob"}
    bob.send(type="send", room="general", body="hello?", ref="s")
    assert bob.expect("error")["code"] == "not_member"
    bob.send(type="leave", room="general", ref="again")
    assert bob.expect("error")["code"] == "not_member"


def test_send_to_unknown_room_is_no_such_room(running_server: RunningServer) -> None:
    alice = running_server.login("alice")
    alice.send(type="send", room="nowhere", body="hi", ref="s")
    assert alice.expect("error")["code"] == "no_such_room"


# --- messages ------------------------------------------------------------------------


def test_send_fans_out_to_every_session_but_the_sending_one(running_server: RunningServer) -> None:
    alice1, alice2 = running_server.login("alice"), running_server.login("alice")
    bob, carol = running_server.login("bob"), running_server.login("carol")
    alice1.send(type="send", room="general", body="hello all", ref="c-1")
    ack = alice1.expect("ack")
    assert ack["ref"] == "c-1"
    assert ack["id"] >= 1
    assert ack["ts"].endswith("Z")
    for peer in (alice2, bob, carol):
        message = peer.expect("message")
        assert message == {
            "type": "message", "id": ack["id"], "room": "general", "from": "alice",
            "body": "hello all", "ts": ack["ts"],
        }  # fmt: skip
    alice1.send(type="ping", ref="after")
    assert alice1.expect("pong")["ref"] == "after"
    assert not [e for e in alice1.seen if e["type"] == "message"]


def test_direct_message_reaches_recipient_and_senders_other_sessions(
    running_server: RunningServer,
) -> None:
    alice1, alice2 = running_server.login("alice"), running_server.login("alice")
    bob, carol = running_server.login("bob"), running_server.login("carol")
    alice1.send(type="send", to="bob", body="psst", ref="d")
    ack = alice1.expect("ack")
    for peer in (bob, alice2):
        message = peer.expect("message")
        assert (message["id"], message["to"], message["from"]) == (ack["id"], "bob", "alice")
        assert "room" not in message
    carol.send(type="ping", ref="p")
    carol.expect("pong")
    assert not [e for e in carol.seen if e["type"] == "message"]
    alice1.send(type="send", to="nobody", body="hello?", ref="x")
    assert alice1.expect("error")["code"] == "no_such_user"


@pytest.mark.postgresql
def test_resend_with_the_same_ref_stores_one_message(running_server: RunningServer) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    for _ in range(3):
        alice.send(type="send", room="general", body="once", ref="same")
    ids = {alice.expect("ack")["id"] for _ in range(3)}
    assert len(ids) == 1
    assert bob.expect("message")["body"] == "once"
    assert _count_messages(running_server.db_url) == 1
    bob.send(type="ping", ref="p")
    bob.expect("pong")
    assert not [e for e in bob.seen if e["type"] == "message"]


@pytest.mark.postgresql
def test_a_ref_reused_after_the_window_is_a_new_message(running_server: RunningServer) -> None:
    """A ref dedupes resends for ``send_ref_window``; reused later, it is a new message."""
    alice, bob = running_server.login("alice"), running_server.login("bob")
    first = _send(alice, "same", room="general", body="monday")
    assert bob.expect("message")["id"] == first
    assert _send(alice, "same", room="general", body="monday") == first  # a resend
    window_ms = int(Limits().send_ref_window * 1000)
    execute(running_server.db_url, "UPDATE messages SET ts_ms = ts_ms - :age", age=window_ms + 1)
    later = _send(alice, "same", room="general", body="a week later")
    assert later > first
    assert bob.expect("message")["body"] == "a week later"
    assert _send(alice, "same", room="general", body="a week later") == later  # its resend
    assert _count_messages(running_server.db_url) == 2


@pytest.mark.postgresql
def test_history_pages_backwards_oldest_first(running_server: RunningServer) -> None:
    alice = running_server.login("alice")
    for n in range(25):
        alice.send(type="send", room="general", body=f"m{n}", ref=f"r{n}")
    ids = [alice.expect("ack", ref=f"r{n}")["id"] for n in range(25)]
    alice.send(type="history", room="general", limit=10, ref="h1")
    page = alice.expect("history")
    assert [m["body"] for m in page["messages"]] == [f"m{n}" for n in range(15, 25)]
    assert page["more"] is True
    assert page["ref"] == "h1"
    assert all(m["type"] == "message" for m in page["messages"])
    alice.send(type="history", room="general", limit=10, before=ids[15])
    assert [m["body"] for m in alice.expect("history")["messages"]] == [
        f"m{n}" for n in range(5, 15)
    ]
    alice.send(type="history", room="general", limit=10, before=ids[5])
    last = alice.expect("history")
    assert [m["body"] for m in last["messages"]] == [f"m{n}" for n in range(5)]
    assert last["more"] is False


def test_history_reply_never_exceeds_max_frame(server_factory: ServerFactory) -> None:
    running = server_factory(max_frame=8192, max_body=4000)
    alice = running.login("alice")
    for n in range(6):
        alice.send(type="send", room="general", body=str(n) * 3000, ref=f"r{n}")
        alice.expect("ack", ref=f"r{n}")
    alice.send(type="history", room="general", limit=50)
    page = alice.expect("history")
    assert page["more"] is True
    assert [m["body"][0] for m in page["messages"]] == ["4", "5"]


@pytest.mark.postgresql
def test_history_of_a_direct_conversation_and_permissions(running_server: RunningServer) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    alice.send(type="send", to="bob", body="one", ref="1")
    alice.expect("ack")
    bob.send(type="send", to="alice", body="two", ref="2")
    bob.expect("ack")
    bob.send(type="history", **{"with": "alice"})
    assert [m["body"] for m in bob.expect("history")["messages"]] == ["one", "two"]
    carol = running_server.login("carol")
    carol.send(type="history", **{"with": "alice"})
    assert carol.expect("history")["messages"] == []
    carol.send(type="leave", room="general")
    carol.expect("left")
    carol.send(type="history", room="general", ref="h")
    assert carol.expect("error")["code"] == "not_member"


@pytest.mark.postgresql
def test_offline_user_catches_up_with_sync(running_server: RunningServer) -> None:
    bob = running_server.peer()
    last_id = bob.login("bob", PASSWORD)["last_id"]
    bob.close()
    alice = running_server.login("alice")
    for n in range(3):
        alice.send(type="send", room="general", body=f"while away {n}", ref=f"w{n}")
        alice.expect("ack")
    direct = _send(alice, "d", to="bob", body="direct")
    _send(alice, "c", to="carol", body="not for bob")
    bob = running_server.login("bob")
    found, synced = _synced(bob, last_id)  # alice's join to #general is a room event
    assert [m["body"] for m in found] == ["while away 0", "while away 1", "while away 2", "direct"]
    assert synced["last_id"] == direct  # the newest bob may see: the next is carol's
    assert synced["more"] is False


def _send(peer: Peer, ref: str, **fields: object) -> int:
    peer.send(type="send", ref=ref, **fields)
    return int(peer.expect("ack", ref=ref)["id"])


def _synced(peer: Peer, since: int) -> tuple[list[Event], Event]:
    """A sync after ``since``: the messages it brought, and its ``synced``."""
    peer.send(type="sync", since=since, ref="sync")
    found = []
    while (event := peer.recv())["type"] != "synced":
        if event["type"] == "message":
            found.append(event)
    return found, event


@pytest.mark.postgresql
def test_last_id_is_the_newest_id_the_user_may_see(running_server: RunningServer) -> None:
    """Not the server's newest id, which would show when private rooms and others' direct
    conversations are busy; and a sync after it still brings everything the user may see."""
    running_server.login("bob").close()  # his first login's join to #general comes first
    alice = running_server.login("alice")
    alice.send(type="create", room="hush", private=True, ref="c")
    alice.expect("joined")
    seen = _send(alice, "g", room="general", body="hello all")
    _send(alice, "p", room="hush", body="private")
    _send(alice, "d", to="carol", body="carol's")
    bob = running_server.peer()
    since = bob.login("bob", PASSWORD)["last_id"]
    assert since == seen
    assert _synced(bob, 0)[1]["last_id"] == seen
    bob.close()
    # While bob is away: some of it his, some not, interleaved.
    _send(alice, "p2", room="hush", body="private 2")
    mine = [_send(alice, "g2", room="general", body="for all")]
    _send(alice, "d2", to="carol", body="carol's 2")
    mine.append(_send(alice, "d3", to="bob", body="bob's"))
    _send(alice, "p3", room="hush", body="private 3")
    bob = running_server.peer()
    assert bob.login("bob", PASSWORD)["last_id"] == mine[-1]
    found, synced = _synced(bob, since)
    assert [m["id"] for m in found] == mine
    assert (synced["last_id"], synced["more"]) == (mine[-1], False)


def test_who_and_presence(running_server: RunningServer) -> None:
    alice = running_server.login("alice")
    bob = running_server.login("bob")
    assert alice.expect("presence_batch") == {
        "type": "presence_batch", "online": ["bob"], "offline": [],
    }  # fmt: skip
    alice.send(type="who", ref="w")
    assert alice.expect("who") == {"type": "who", "online": ["alice", "bob"], "ref": "w"}
    second_bob = running_server.login("bob")
    second_bob.close()
    bob.send(type="bye")
    # alice came online within the presence interval before bob: bob may hear of it too.
    closing = [e for e in bob.expect_closed() if e["type"] != "presence_batch"]
    assert closing == [{"type": "bye", "reason": "bye"}]
    assert alice.expect("presence_batch") == {
        "type": "presence_batch", "online": [], "offline": ["bob"],
    }  # fmt: skip
    assert not [e for e in alice.seen if e["type"].startswith("presence")]


def test_presence_is_batched_and_a_visit_within_one_interval_is_not_announced(
    server_factory: ServerFactory,
) -> None:
    # bob's visit must fall between two ticks of the announcer: with 4 s between them a tick
    # inside it stays unlikely when a login is slow on a loaded machine (1 s once split it).
    running: RunningServer = server_factory(presence_interval=4.0)
    alice = running.login("alice")
    bob = running.login("bob")
    bob.send(type="bye")
    bob.expect_closed()
    carol = running.login("carol")
    dave = running.login("dave")
    # One flush, one frame: carol and dave, in name order, and nothing about bob, who came
    # and went.
    assert alice.expect("presence_batch", timeout=TIMEOUT) == {
        "type": "presence_batch", "online": ["carol", "dave"], "offline": [],
    }  # fmt: skip
    carol.expect_presence("dave", online=True)
    alice.send(type="ping", ref="p")
    assert alice.expect("pong", timeout=TIMEOUT)["ref"] == "p"
    assert [e for e in alice.seen if e["type"].startswith("presence")] == []
    dave.close()
    assert alice.expect("presence_batch", timeout=TIMEOUT) == {
        "type": "presence_batch", "online": [], "offline": ["dave"],
    }  # fmt: skip


def test_ping_pong_and_idle_timeout(server_factory: ServerFactory) -> None:
    running = server_factory(heartbeat=1, idle_timeout=2.5)
    alice = running.login("alice")
    alice.send(type="ping", ref="p")
    assert alice.expect("pong") == {"type": "pong", "ref": "p"}
    assert alice.recv(timeout=TIMEOUT) == {"type": "ping"}
    # Closed for idleness 2.5 s after the pong (the default would wait 90 s).
    assert alice.expect_closed(timeout=TIMEOUT) == [{"type": "bye", "reason": "idle"}]


def test_answering_pings_keeps_a_connection_alive(server_factory: ServerFactory) -> None:
    # A ping a second, and 6 s without a word ends a session: answering every ping for
    # longer than that keeps it, with seconds of room for a slow answer on a loaded machine.
    running = server_factory(heartbeat=1, idle_timeout=6)
    alice = running.login("alice")
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        assert alice.expect("ping", timeout=TIMEOUT) == {"type": "ping"}
        alice.send(type="pong")
    alice.send(type="who", ref="alive")
    assert alice.expect("who")["ref"] == "alive"


def test_client_that_never_reads_is_dropped_while_others_keep_receiving(
    server_factory: ServerFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    running = server_factory(outbox_frames=1000, outbox_bytes=1024 * 1024, rate_per_second=10_000)
    sleeper = running.login("bob")
    alice, carol = running.login("alice"), running.login("carol")
    body = "x" * 4000
    count = 4000  # 16 MB: more than the kernel's socket buffers, the write queue and the outbox
    for n in range(count):
        alice.send(type="send", room="general", body=body, ref=f"r{n}")
        if n % 50 == 49:
            acked = time.monotonic()
            alice.expect("ack", ref=f"r{n}")
            # Never held up by the sleeper: that would last its 20 s stuck-writer timeout.
            assert time.monotonic() - acked < 8
            for _ in range(50):
                received = time.monotonic()
                carol.expect("message", body=body)
                assert time.monotonic() - received < 8
    # The sleeper's connection was closed as a slow consumer. The error frame goes out after
    # what the socket already holds, within the final flush's second: it reaches a client
    # that never reads only if the kernel's buffers had room left (they usually do, not
    # always under load), so the log is the witness and the frame is checked when it came.
    events = sleeper.expect_closed(timeout=10)
    assert len(events) < count
    assert any("slow consumer bob" in record.getMessage() for record in caplog.records)
    assert events[-1]["type"] == "message" or events[-1]["code"] == "slow_consumer"


@pytest.mark.postgresql
def test_restart_keeps_rooms_memberships_and_messages(server_factory: ServerFactory) -> None:
    first = server_factory()
    alice = first.login("alice")
    alice.send(type="join", room="ops")
    alice.expect("joined")
    alice.send(type="send", room="ops", body="remember me", ref="r")
    ack = alice.expect("ack")
    first.server.shutdown()
    assert alice.expect_closed()[-1] == {"type": "bye", "reason": "shutting_down"}
    second = server_factory()
    alice = second.peer()
    welcome = alice.login("alice", PASSWORD)
    assert welcome["rooms"] == ["general", "ops"]
    assert welcome["last_id"] == ack["id"]
    alice.send(type="history", room="ops")
    assert [m["body"] for m in alice.expect("history")["messages"]] == ["remember me"]


@pytest.mark.postgresql
def test_sync_pages_when_more_messages_wait(server_factory: ServerFactory) -> None:
    running = server_factory(sync_page=3)
    alice = running.login("alice")
    for n in range(7):
        alice.send(type="send", room="general", body=f"m{n}", ref=f"r{n}")
        alice.expect("ack", ref=f"r{n}")
    bob = running.login("bob")
    since, bodies, pages = 0, [], 0
    while True:
        bob.send(type="sync", since=since)
        while (event := bob.recv())["type"] != "synced":
            if event["type"] == "message":  # not presence: alice came online just before
                bodies.append(event["body"])
        pages += 1
        since = event["last_id"]
        if not event["more"]:
            break
    assert bodies == [f"m{n}" for n in range(7)]
    # Nine rows in pages of three: alice's join to #general, her seven messages, bob's join.
    assert (pages, since) == (3, 9)


def test_server_offers_its_ca_certificate_before_login(running_server: RunningServer) -> None:
    peer = running_server.peer()
    peer.expect("hello")
    peer.send(type="ca", ref="c")
    reply = peer.expect("ca")
    assert reply["ref"] == "c"
    assert reply["pem"] == running_server.ca_file.read_text()
    assert "PRIVATE" not in reply["pem"]
    peer.send(type="auth", user="alice", password=PASSWORD)
    assert peer.expect("welcome")["user"] == "alice"
    peer.send(type="ca")
    assert peer.expect("error")["code"] == "bad_request"  # only before login


def test_full_login_places_evict_the_longest_waiting_connection(
    server_factory: ServerFactory,
) -> None:
    running = server_factory(max_unauthenticated=3)
    silent = [
        socket.create_connection(running.address, source_address=(f"127.0.0.{n}", 0))
        for n in (2, 3, 4)
    ]
    try:
        time.sleep(0.2)  # all three are waiting in the TLS handshake
        started = time.monotonic()
        running.login("alice", source="127.0.0.5")
        assert time.monotonic() - started < 7  # not after the silent ones' 10 s deadline
        silent[0].settimeout(5)
        assert silent[0].recv(100) == b""  # the oldest was closed to make room
        silent[1].settimeout(0.3)
        with pytest.raises(TimeoutError):
            silent[1].recv(100)  # the others still wait
    finally:
        for sock in silent:
            sock.close()


def _wire_size(event: Mapping[str, object]) -> int:
    """The frame's size as the server sent it: compact UTF-8 JSON after a 4-byte header."""
    return 4 + len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode())


def test_sync_reply_never_exceeds_its_byte_budget_and_says_where_it_stopped(
    running_server: RunningServer,
) -> None:
    alice = running_server.login("alice")
    body = "é" * 4000  # max_body characters, two bytes each: about 8 KiB a message
    for n in range(100):
        alice.send(type="send", room="general", body=body, ref=f"r{n}")
    ids = [alice.expect("ack", ref=f"r{n}")["id"] for n in range(100)]
    bob = running_server.login("bob")
    since, received, pages = 0, [], 0
    while True:
        bob.send(type="sync", since=since, ref=f"s{pages}")
        size, page = 0, []
        while (event := bob.recv())["type"] != "synced":
            if event["type"] == "message":  # not presence
                size += _wire_size(event)
                page.append(event["id"])
        size += _wire_size(event)
        assert size <= Limits().sync_reply_bytes, (pages, size)
        assert page, "every page makes progress"
        received += page
        pages += 1
        if not event["more"]:
            break
        assert event["last_id"] == page[-1]  # where this page stopped: sync again from there
        since = event["last_id"]
    assert received == ids
    assert pages == 4  # 256 KiB hold 31 of these messages


@pytest.mark.postgresql
def test_rooms_reply_is_paged_to_fit_one_frame_and_resumes_after_a_name(
    server_factory: ServerFactory,
    db_url: str,
) -> None:
    from securechat.store.models import Room

    database = open_database(db_url)
    names = [f"project-{n:03}-with-a-long-name" for n in range(300)]  # 32 characters each
    with database.session() as s, s.begin():
        s.add_all(Room(name=name) for name in names)
    database.dispose()
    running = server_factory(max_frame=4096)
    alice = running.login("alice")
    listed, pages, after = [], 0, None
    while True:
        alice.send(type="rooms", ref=f"r{pages}", **({} if after is None else {"after": after}))
        reply = alice.expect("rooms", ref=f"r{pages}")
        assert _wire_size(reply) <= 4096, pages
        assert reply["rooms"], "every page makes progress"
        listed += [room["name"] for room in reply["rooms"]]
        pages += 1
        if not reply["more"]:
            break
        after = reply["rooms"][-1]["name"]
    assert listed == sorted([*names, "general"])
    assert pages > 5


def test_a_request_after_a_long_quiet_spell_is_answered(server_factory: ServerFactory) -> None:
    """The stuck-writer clock runs only while output waits: a reply queued after the server
    wrote nothing to this client for longer than stuck_writer_timeout is not a stuck
    writer (the terminal's read marker after a quiet spell once dropped two clients)."""
    running = server_factory(stuck_writer_timeout=0.5)
    alice = running.login("alice")
    time.sleep(1.0)  # nothing written to alice for twice the timeout
    alice.send(type="who", ref="w")
    assert alice.expect("who", ref="w")["online"] == ["alice"]
    alice.send(type="who", ref="w2")  # and the connection is still there
    alice.expect("who", ref="w2")


def test_a_client_that_stops_reading_its_replies_is_dropped_after_the_stuck_writer_timeout(
    server_factory: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="securechat.server")
    running = server_factory(stuck_writer_timeout=1.0, rate_per_second=10_000)
    alice, sleeper = running.login("alice"), running.login("bob")
    for n in range(100):
        alice.send(type="send", room="general", body="x" * 4000, ref=f"r{n}")
    alice.expect("ack", ref="r99")
    for n in range(100):  # ~40 MB of replies, far more than the sockets' buffers hold
        sleeper.send(type="history", room="general", limit=100, ref=f"h{n}")
    eventually(
        lambda: any("nothing written for 1 s" in r.getMessage() for r in caplog.records),
        "the stuck writer was dropped",
    )
    assert any("slow consumer" in r.getMessage() for r in caplog.records)
    alice.send(type="who", ref="w")  # the others are served as before
    assert "alice" in alice.expect("who", ref="w")["online"]
