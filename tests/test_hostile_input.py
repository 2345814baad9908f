"""Hostile bytes and hostile connections against a running server, over real TLS on loopback.

Every test checks three things: the peer gets the documented error code (or none, where
the documented answer is to close), the connection is closed exactly where framing is
lost, and the server goes on serving everyone else. Memory under the same abuse is measured
in ``test_memory.py``, against a ``securechat serve`` subprocess.
"""

from __future__ import annotations

import contextlib
import functools
import json
import socket
import ssl
import struct
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from securechat.accounts import Account
from securechat.errors import TooManySessions
from tests.conftest import PASSWORD, TIMEOUT, RunningServer, ServerFactory
from tests.eventually import eventually
from tests.peer import Peer

MAX_FRAME = 65536


def _conn_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("conn "))


def _wait_for_threads(at_most: int) -> int:
    eventually(
        lambda: _conn_threads() <= at_most,
        lambda: f"at most {at_most} connection threads ({_conn_threads()} now)",
    )
    return _conn_threads()


def _frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def _assert_serving(running: RunningServer, witness: Peer) -> None:
    """A logged-in bystander still chats, and a brand-new login still works."""
    witness.send(type="send", room="general", body="still here", ref=f"w{time.monotonic_ns()}")
    witness.expect("ack")
    newcomer = running.login("dave")
    newcomer.send(type="ping", ref="alive")
    assert newcomer.expect("pong") == {"type": "pong", "ref": "alive"}
    newcomer.send(type="bye")
    newcomer.expect_closed()


@pytest.fixture
def chat(running_server: RunningServer) -> tuple[RunningServer, Peer]:
    """A running server with a logged-in bystander, bob, who must never notice the abuse."""
    return running_server, running_server.login("bob")


# --- frames that break the framing: the documented error, then close -------------------


@pytest.mark.parametrize("length", [0, MAX_FRAME + 1, 2**32 - 1], ids=["zero", "max+1", "4GiB"])
def test_out_of_range_length_before_login_is_answered_and_closed(
    chat: tuple[RunningServer, Peer], length: int
) -> None:
    running, bob = chat
    peer = running.peer()
    peer.expect("hello")
    peer.sock.sendall(struct.pack(">I", length) + b"x" * 1000)
    events = peer.expect_closed()
    assert [(e["type"], e["code"]) for e in events] == [("error", "frame_too_large")]
    _assert_serving(running, bob)


def test_header_announcing_10_mb_is_refused_before_the_body_arrives(
    chat: tuple[RunningServer, Peer],
) -> None:
    running, bob = chat
    peer = running.login("alice")
    peer.sock.sendall(struct.pack(">I", 10 * 1024 * 1024))
    sent = 0
    with contextlib.suppress(OSError):  # the server hangs up part-way: that is the point
        for _ in range(160):  # 10 MiB in 64 KiB pieces
            peer.sock.sendall(b"{" * 65536)
            sent += 65536
    events = peer.expect_closed()
    # Other events (bob's presence, say) may come first on a slow machine; one error only.
    assert [e.get("code") for e in events if e["type"] == "error"] == ["frame_too_large"]
    _assert_serving(running, bob)


def test_10_mb_as_many_max_size_frames_is_answered_frame_by_frame(
    server_factory: ServerFactory,
) -> None:
    running = server_factory(rate_per_second=10_000)
    bob = running.login("bob")
    peer = running.login("alice")
    junk = b'{"type":"send","room":"general","body":' + b"9" * (MAX_FRAME - 40)
    junk = junk[:MAX_FRAME]
    frames, batch = 160, 8  # 160 x 64 KiB = 10 MiB, in batches (an SSLSocket has one owner)
    codes: list[str] = []
    for _ in range(frames // batch):
        peer.sock.sendall(_frame(junk) * batch)
        codes += [peer.expect("error")["code"] for _ in range(batch)]
    assert codes == ["bad_request"] * frames
    peer.send(type="ping", ref="after")
    assert peer.expect("pong")["ref"] == "after"
    _assert_serving(running, bob)


@pytest.mark.parametrize(
    "cut",
    [b"\x00\x00", _frame(b'{"type":"ping","ref":"cut-here"}')[:20]],
    ids=["header-cut-short", "body-cut-short"],
)
@pytest.mark.parametrize("logged_in", [False, True], ids=["before-login", "after-login"])
def test_frame_cut_short_then_close_ends_only_that_connection(
    chat: tuple[RunningServer, Peer], cut: bytes, logged_in: bool
) -> None:
    running, bob = chat
    baseline = _conn_threads()
    peer = running.login("alice") if logged_in else running.peer()
    if not logged_in:
        peer.expect("hello")
    peer.sock.sendall(cut)
    peer.close()
    assert _wait_for_threads(baseline) == baseline
    _assert_serving(running, bob)


# --- payloads that are not valid requests: bad_request, connection kept after login -----

NOT_REQUESTS: dict[str, bytes] = {
    "not-utf8": b'{"type":"ping","ref":"\xff\xfe"}',
    "lone-continuation-byte": b"\x80",
    "not-json": b"{type: ping}",
    "json-array": b'["ping"]',
    "json-string": b'"ping"',
    "json-number": b"42",
    "json-null": b"null",
    "empty-object": b"{}",
    "type-not-a-string": b'{"type":7}',
    "nan": b'{"type":"history","room":"general","before":NaN}',
    "infinity-literal": b'{"type":"sync","since":Infinity}',
    "float-overflow": b'{"type":"sync","since":1e999}',
    "5000-digit-int": b'{"type":"sync","since":' + b"9" * 5000 + b"}",
    "int-2^63": b'{"type":"sync","since":9223372036854775808}',
    "negative-int": b'{"type":"sync","since":-1}',
    "float-for-int": b'{"type":"sync","since":1.0}',
    "bool-for-int": b'{"type":"sync","since":true}',
    "dup-type": b'{"type":"ping","type":"bye"}',
    "dup-body": b'{"type":"send","room":"general","body":"a","body":"b"}',
    "dup-nested": b'{"type":"ping","x":{"a":1,"a":2}}',
    "body-wrong-type": b'{"type":"send","room":"general","body":123}',
    "room-wrong-type": b'{"type":"join","room":["general"]}',
    "room-bad-name": b'{"type":"join","room":"no spaces allowed"}',
    "ref-wrong-type": b'{"type":"ping","ref":5}',
    "ref-too-long": b'{"type":"ping","ref":"' + b"r" * 65 + b'"}',
    "missing-body": b'{"type":"send","room":"general"}',
    "missing-room": b'{"type":"join"}',
    "room-and-to": b'{"type":"send","room":"general","to":"bob","body":"x"}',
    "missing-since": b'{"type":"sync"}',
    "lone-surrogate": b'{"type":"send","room":"general","body":"\\ud800"}',
    "nested-17": b'{"type":"ping","x":' + b"[" * 16 + b"]" * 16 + b"}",
    # #16's requests
    "topic-301-chars": b'{"type":"moderate","room":"general","action":"topic","topic":"'
    + b"t" * 301
    + b'"}',
    "create-topic-301": b'{"type":"create","room":"ops","topic":"' + b"t" * 301 + b'"}',
    "moderate-unknown-action": b'{"type":"moderate","room":"general","action":"nuke"}',
    "kick-without-user": b'{"type":"moderate","room":"general","action":"kick"}',
    "private-with-user": b'{"type":"moderate","room":"general","action":"private","user":"bob"}',
    "topic-without-topic": b'{"type":"moderate","room":"general","action":"topic"}',
    "action-wrong-type": b'{"type":"moderate","room":"general","action":["kick"],"user":"bob"}',
    "create-private-string": b'{"type":"create","room":"ops","private":"yes"}',
    "edit-empty-body": b'{"type":"edit","id":1,"body":""}',
    "edit-id-zero": b'{"type":"edit","id":0,"body":"x"}',
    "edit-id-string": b'{"type":"edit","id":"1","body":"x"}',
    "delete-id-2^63": b'{"type":"delete","id":9223372036854775808}',
    "read-room-and-with": b'{"type":"read","id":1,"room":"general","with":"bob"}',
    "read-without-id": b'{"type":"read","room":"general"}',
    "unread-after-81-chars": b'{"type":"unread","after":"' + b"k" * 81 + b'"}',
    "history-before-and-after": b'{"type":"history","room":"general","before":5,"after":1}',
}


@pytest.mark.parametrize("payload", list(NOT_REQUESTS.values()), ids=list(NOT_REQUESTS))
def test_invalid_payload_after_login_is_bad_request_and_keeps_the_connection(
    running_server: RunningServer, payload: bytes
) -> None:
    peer = running_server.login("alice")
    peer.send_raw(payload)
    error = peer.expect("error")
    assert error["code"] == "bad_request", error
    peer.send(type="ping", ref="next")
    assert peer.expect("pong") == {"type": "pong", "ref": "next"}
    assert not [e for e in peer.seen if e["type"] in ("ack", "bye")]  # nothing half-done


@pytest.mark.parametrize(
    "payload",
    [NOT_REQUESTS["not-utf8"], NOT_REQUESTS["json-array"], NOT_REQUESTS["dup-type"]],
    ids=["not-utf8", "json-array", "dup-type"],
)
def test_invalid_payload_before_login_is_bad_request_and_closes(
    chat: tuple[RunningServer, Peer], payload: bytes
) -> None:
    running, bob = chat
    peer = running.peer()
    peer.expect("hello")
    peer.send_raw(payload)
    assert [e["code"] for e in peer.expect_closed()] == ["bad_request"]
    _assert_serving(running, bob)


def test_error_echoes_a_valid_ref_when_another_field_is_wrong(
    running_server: RunningServer,
) -> None:
    peer = running_server.login("alice")
    peer.send(type="send", room="general", body=123, ref="m-1")
    assert peer.expect("error")["ref"] == "m-1"
    peer.send(type="history", room="general", before=0, ref="h-1")
    error = peer.expect("error")
    assert (error["code"], error["ref"]) == ("bad_request", "h-1")


def test_json_nested_100000_levels_is_bad_request(
    server_factory: ServerFactory,
) -> None:
    running = server_factory(max_frame=1024 * 1024)  # so the frame itself is allowed
    bob = running.login("bob")
    peer = running.login("alice")
    for opener, closer in ((b"[", b"]"), (b'{"a":', b"}")):
        body = opener * 100_000 + b"1" + closer * 100_000
        peer.send_raw(b'{"type":"ping","deep":' + body + b"}")
        assert peer.expect("error")["code"] == "bad_request"
    peer.send(type="ping", ref="alive")
    assert peer.expect("pong")["ref"] == "alive"
    _assert_serving(running, bob)


def test_unknown_type_and_extra_fields(running_server: RunningServer) -> None:
    peer = running_server.login("alice")
    peer.send(type="PING", ref="case")
    assert peer.expect("error")["code"] == "unknown_type"
    extra: dict[str, Any] = {"future": {"nested": [1, 2, {"x": None}]}, "n": 2**70, "f": 1.5}
    peer.send(type="ping", ref="p", **extra)
    assert peer.expect("pong") == {"type": "pong", "ref": "p"}
    peer.send(type="send", room="general", body="with extras", ref="s", **extra)
    assert peer.expect("ack")["ref"] == "s"
    peer.send(type="history", room="general", limit=1, sender="mallory")
    [message] = peer.expect("history")["messages"]
    assert (message["from"], message["body"]) == ("alice", "with extras")


def test_sender_name_comes_from_the_login_not_the_json(running_server: RunningServer) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    alice.send_raw(
        json.dumps(
            {"type": "send", "room": "general", "body": "spoof?", "from": "bob", "user": "bob"}
        ).encode()
    )
    assert bob.expect("message", body="spoof?")["from"] == "alice"


# --- hostile connections ----------------------------------------------------------------


def test_plaintext_on_the_tls_port_is_closed_without_a_hello(
    chat: tuple[RunningServer, Peer],
) -> None:
    running, bob = chat
    with socket.create_connection(running.address, timeout=TIMEOUT) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        received = b""
        deadline = time.monotonic() + 5
        with contextlib.suppress(ConnectionResetError):
            while time.monotonic() < deadline and (data := raw.recv(4096)):
                received += data
    assert time.monotonic() < deadline, "the server kept a plaintext client open"
    assert b"hello" not in received
    assert received == b"" or received[0] == 0x15  # nothing, or one TLS alert record
    _assert_serving(running, bob)


def test_tls12_only_client_is_refused_and_others_are_unaffected(
    chat: tuple[RunningServer, Peer],
) -> None:
    running, bob = chat
    context = ssl.create_default_context(cafile=str(running.ca_file))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(running.address, timeout=TIMEOUT) as raw,
        pytest.raises(ssl.SSLError, match=r"(?i)protocol version|unsupported protocol"),
    ):
        context.wrap_socket(raw, server_hostname="localhost")
    _assert_serving(running, bob)


def _source(index: int) -> str:
    return f"127.0.0.{2 + index}"


def _hold_silent_tls(address: tuple[str, int], ca_file: Path, source: str) -> ssl.SSLSocket | None:
    """Complete TLS and read ``hello``, then say nothing; None if the server refused us."""
    context = ssl.create_default_context(cafile=str(ca_file))
    raw = socket.create_connection(address, timeout=TIMEOUT, source_address=(source, 0))
    try:
        sock = context.wrap_socket(raw, server_hostname="localhost")
    except OSError:  # refused: closed before or during the handshake
        raw.close()
        return None
    data = b""
    with contextlib.suppress(OSError):
        while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    complete = len(data) >= 4 and len(data) == 4 + struct.unpack(">I", data[:4])[0]
    if not complete or json.loads(data[4:])["type"] != "hello":
        sock.close()
        return None
    return sock


def _open_silent(
    running: RunningServer, count: int, sources: int
) -> tuple[list[ssl.SSLSocket], dict[str, int]]:
    held: list[ssl.SSLSocket] = []
    per_source: dict[str, int] = {}
    for n in range(count):
        source = _source(n % sources)
        sock = _hold_silent_tls(running.address, running.ca_file, source)
        if sock is not None:
            held.append(sock)
            per_source[source] = per_source.get(source, 0) + 1
    return held, per_source


def test_500_silent_tls_clients_hit_the_per_address_cap_and_a_user_still_chats(
    chat: tuple[RunningServer, Peer],
) -> None:
    running, bob = chat
    held, per_source = _open_silent(running, 500, sources=5)
    try:
        # Each is let in, and 32 per address are held (max_unauthenticated_per_ip): each
        # newcomer past them closes the one from its address that has waited longest.
        assert per_source == {_source(n): 100 for n in range(5)}
        assert running.server.parts.admission.waiting_by_address() == {
            _source(n): 32 for n in range(5)
        }
        started = time.monotonic()
        alice = running.login("alice")
        alice.send(type="send", room="general", body="through the crowd", ref="c")
        alice.expect("ack", ref="c")
        assert bob.expect("message", body="through the crowd")["from"] == "alice"
        assert time.monotonic() - started < 2
    finally:
        for sock in held:
            sock.close()


def test_500_silent_tls_clients_from_many_addresses_never_lock_out_a_real_login(
    chat: tuple[RunningServer, Peer],
) -> None:
    running, bob = chat
    held, per_source = _open_silent(running, 500, sources=25)
    try:
        assert max(per_source.values()) <= 32
        waiting = running.server.parts.admission.waiting()  # the overall cap holds ...
        assert waiting <= 256, waiting
        # ... and a real login still gets in: the longest-waiting silent client makes room.
        started = time.monotonic()
        alice = running.login("alice", source="127.0.0.1")
        assert time.monotonic() - started < 2
        alice.send(type="send", room="general", body="through the crowd", ref="c")
        alice.expect("ack", ref="c")
        assert bob.expect("message", body="through the crowd")["from"] == "alice"
        assert running.server.parts.admission.waiting() <= 256
    finally:
        for sock in held:
            sock.close()
    _assert_serving(running, bob)


# --- logged-in sessions: per user and per address ------------------------------------------


def _token_login(running: RunningServer, user: str, token: str) -> Peer:
    peer: Peer = running.peer()
    peer.expect("hello")
    peer.send(type="auth", user=user, token=token)
    return peer


def test_token_logins_beyond_the_sessions_per_user_cap_are_refused(
    chat: tuple[RunningServer, Peer],
) -> None:
    running, bob = chat
    first = running.peer()
    token = first.login("alice", PASSWORD)["token"]
    sessions = [first]
    for _ in range(31):  # Limits.max_sessions_per_user is 32, and a token login is cheap
        sessions.append(_token_login(running, "alice", token))
        sessions[-1].expect("welcome")
    refused = _token_login(running, "alice", token)
    assert [e.get("code") for e in refused.expect_closed()] == ["too_many_sessions"]
    _assert_serving(running, bob)  # other users are not affected
    sessions[0].close()  # no bye: that would revoke the token the others share

    def place_came_free() -> bool:  # once the server has seen the close
        reply = _token_login(running, "alice", token).recv()
        assert reply["type"] == "welcome" or reply.get("code") == "too_many_sessions", reply
        return bool(reply["type"] == "welcome")

    eventually(place_came_free, "the closed session's place came free")


def test_logins_beyond_the_sessions_per_address_cap_are_refused(
    server_factory: ServerFactory,
) -> None:
    running = server_factory(max_sessions_per_address=3)
    for user in ("alice", "bob", "alice"):
        running.login(user, source="127.0.0.2")
    refused = running.peer("127.0.0.2")
    refused.expect("hello")
    refused.send(type="auth", user="carol", password=PASSWORD)
    assert [e.get("code") for e in refused.expect_closed()] == ["too_many_sessions"]
    carol = running.login("carol", source="127.0.0.3")  # another address is not affected
    carol.send(type="ping", ref="p")
    carol.expect("pong", ref="p")


class _Unstarted:
    """A connection as the server's caps see it, never started: admit() bookkeeping only."""

    def __init__(self, host: str) -> None:
        self.peer_host = self.peer = host
        self.thread = threading.Thread(target=lambda: None)
        self.is_authenticated = False
        self.closed_because: str | None = None

    @property
    def account(self) -> Account:
        raise AssertionError("not logged in")

    @property
    def user(self) -> str:
        raise AssertionError("not logged in")

    def request_close(self, reason: str, final: object = None) -> None:
        self.closed_because = reason


def test_per_address_caps_count_an_ipv6_64_and_a_mapped_ipv4_as_one_address(
    server_factory: ServerFactory,
) -> None:
    """The caps key addresses as the login throttle does: one /64 cannot walk around them."""
    running = server_factory(max_unauthenticated_per_ip=2, max_sessions_per_address=2)
    admission = running.server.parts.admission
    hosts = ["2001:db8:1:2::1", "2001:db8:1:2::ffff:2", "2001:db8:1:2:1::3", "2001:db8:1:3::1"]
    hosts += ["::ffff:127.0.0.9", "127.0.0.9", "127.0.0.9"]
    admitted: list[_Unstarted] = []
    try:
        for host in hosts:
            connection = admission.admit(host, functools.partial(_Unstarted, host))
            assert connection is not None  # a full cap closes the oldest, never the newcomer
            admitted.append(connection)
        # The third of one /64 closed the first; the next /64 is another address; the
        # second 127.0.0.9 closed its IPv4-mapped form.
        closed = [connection.closed_because is not None for connection in admitted]
        assert closed == [True, False, False, False, True, False, False]
        alice = running.server.parts.accounts.get("alice")
        admission.authenticated(admitted[1], alice)
        admission.authenticated(admitted[2], alice)
        with pytest.raises(TooManySessions):  # a third session from 2001:db8:1:2::/64
            admission.authenticated(admitted[0], alice)
        admission.authenticated(admitted[3], alice)  # 2001:db8:1:3::/64 has room
    finally:
        for connection in admitted:
            admission.closed(connection)


# --- every frame is metered before it is decoded ---------------------------------------------


def _answers(peer: Peer, quiet: float = 1.0) -> tuple[list[dict[str, Any]], bool]:
    """What the server sends until it closes (True) or has been quiet for ``quiet`` s."""
    events: list[dict[str, Any]] = []
    while True:
        try:
            events.append(peer.recv(timeout=quiet))
        except TimeoutError:
            return events, False
        except (ConnectionError, ssl.SSLError, OSError):
            return events, True


def _codes(events: list[dict[str, Any]]) -> list[str]:
    """Each reply's type, or its code for an error; presence is not a reply."""
    return [e.get("code", e["type"]) for e in events if not e["type"].startswith("presence")]


RATE_BURST = 400  # Limits.rate_burst: the frames a full bucket admits at once
#: What refills meanwhile: 3 s at Limits.rate_per_second (200/s), the time 2,000 frames may
#: take to read on a loaded machine. Unmetered, all 2,000 would be answered.
REFILLED = 600


def test_2000_ca_frames_before_login_are_not_all_answered(
    chat: tuple[RunningServer, Peer],
) -> None:
    running, bob = chat
    peer = running.peer()
    peer.expect("hello")
    peer.sock.sendall(_frame(b'{"type":"ca","ref":"c"}') * 2000)
    events, closed = _answers(peer)
    codes = _codes(events)
    assert closed  # refused before login: closed, like any error then
    # A full bucket, and what refills meanwhile. (Fewer may arrive: the close resets the
    # connection with the rest of the 2000 unread, and a reset can drop what was in flight.)
    assert codes.count("ca") < RATE_BURST + REFILLED
    assert set(codes) <= {"ca", "rate_limited"}
    _assert_serving(running, bob)


def test_2000_pongs_after_login_are_metered_like_requests(
    chat: tuple[RunningServer, Peer],
) -> None:
    running, bob = chat
    peer = running.login("alice")
    peer.sock.sendall(_frame(b'{"type":"pong"}') * 2000 + _frame(b'{"type":"who","ref":"w"}'))
    events, closed = _answers(peer)
    codes = _codes(events)
    assert "who" not in codes  # the pongs spent the bucket: the request behind them waits
    assert closed  # refused at twice the rate limit: closed
    assert set(codes) <= {"rate_limited"}
    assert len(codes) < RATE_BURST + REFILLED  # a refusal for some, then the close
    _assert_serving(running, bob)


def test_2000_malformed_frames_after_login_are_not_all_answered(
    chat: tuple[RunningServer, Peer],
) -> None:
    running, bob = chat
    peer = running.login("alice")
    peer.sock.sendall(_frame(b'[{"ref":"x"}]') * 2000)
    events, closed = _answers(peer)
    codes = _codes(events)
    assert closed
    assert codes.count("bad_request") < RATE_BURST + REFILLED
    assert codes.count("rate_limited") < RATE_BURST + REFILLED
    _assert_serving(running, bob)


def test_a_refused_request_is_told_its_ref_and_when_to_retry(
    server_factory: ServerFactory,
) -> None:
    running = server_factory(rate_per_second=2, rate_burst=3)
    peer = running.login("alice")  # auth took one token
    peer.sock.sendall(b"".join(_frame(b'{"type":"who","ref":"%d"}' % n) for n in range(3)))
    assert peer.expect("who")["ref"] == "0"
    assert peer.expect("who")["ref"] == "1"
    refused = peer.expect("error")
    assert (refused["code"], refused["ref"]) == ("rate_limited", "2")
    assert 0 < refused["retry_after"] <= 0.5
    time.sleep(refused["retry_after"])
    peer.send(type="who", ref="again")
    assert peer.expect("who")["ref"] == "again"


# --- #16: well-formed team requests that must be refused, never crash the server ------------


def _team_refusals(alice: Peer, bob: Peer) -> list[tuple[Peer, dict[str, Any], str]]:
    """(who, request, the code it must get), in a room alice owns and bob is in."""
    alice.send(type="create", room="ops", ref="c")
    alice.expect("joined", ref="c")
    bob.send(type="join", room="ops", ref="j")
    bob.expect("joined", ref="j")
    bob.send(type="send", room="ops", body="bob's", ref="s")
    bobs = bob.expect("ack", ref="s")["id"]
    alice.send(type="moderate", room="ops", action="topic", topic="x", ref="t")
    alice.expect("done", ref="t")
    bob.send(type="sync", since=bobs, ref="y")
    event_id = bob.expect("room_event", action="topic")["id"]
    huge = "x" * 4001
    return [
        (alice, {"type": "edit", "id": bobs, "body": "mine now"}, "forbidden"),
        (alice, {"type": "edit", "id": bobs, "body": huge}, "too_large"),
        (bob, {"type": "edit", "id": bobs, "body": huge}, "too_large"),
        (alice, {"type": "delete", "id": event_id}, "no_such_message"),
        (alice, {"type": "edit", "id": event_id, "body": "x"}, "no_such_message"),
        (alice, {"type": "delete", "id": 2**62}, "no_such_message"),
        (alice, {"type": "moderate", "room": "ops", "action": "ban", "user": "alice"}, "forbidden"),
        (alice, {"type": "moderate", "room": "ops", "action": "kick", "user": "alice"}, "forbidden"),
        (alice, {"type": "moderate", "room": "ops", "action": "transfer", "user": "carol"},
         "not_member"),
        (alice, {"type": "moderate", "room": "ops", "action": "transfer", "user": "nobody"},
         "no_such_user"),
        (alice, {"type": "moderate", "room": "ops", "action": "kick", "user": "carol"},
         "not_member"),
        (bob, {"type": "moderate", "room": "ops", "action": "deop", "user": "alice"}, "forbidden"),
        (bob, {"type": "moderate", "room": "ops", "action": "delete"}, "forbidden"),
        (bob, {"type": "moderate", "room": "nothere", "action": "delete"}, "no_such_room"),
        (bob, {"type": "create", "room": "ops"}, "room_exists"),
        (bob, {"type": "read", "id": 2**62, "with": "nobody"}, "no_such_user"),
        (alice, {"type": "leave", "room": "ops"}, "forbidden"),
    ]  # fmt: skip


def test_team_requests_that_must_be_refused_are_refused_and_nothing_breaks(
    chat: tuple[RunningServer, Peer],
) -> None:
    running, bob_general = chat
    alice, bob = running.login("alice"), running.login("bob")
    for number, (peer, request, code) in enumerate(_team_refusals(alice, bob)):
        peer.send(ref=f"r{number}", **request)
        error = peer.expect("error", ref=f"r{number}")
        assert error["code"] == code, (request, error)
    bob.send(type="read", room="ops", id=2**62, ref="far")  # capped at the newest id
    assert bob.expect("read", ref="far")["id"] < 2**62
    _assert_serving(running, bob_general)
