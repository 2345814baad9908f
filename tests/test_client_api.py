"""The blocking Client against a real in-process server over TLS on 127.0.0.1."""

from __future__ import annotations

import contextlib
import gc
import logging
import select
import socket
import sqlite3
import ssl
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from securechat.client import (
    Backoff,
    Client,
    ClientEvent,
    Delivered,
    Disconnected,
    Reconnected,
    Reconnecting,
    SendFailed,
)
from securechat.errors import (
    AuthenticationError,
    CertificateError,
    ConnectionLost,
    NoSuchUser,
    NotMember,
    UnexpectedMessage,
)
from securechat.protocol.frames import encode_frame
from securechat.protocol.messages import Hello, MemberJoined, Message, RoomEvent, encode
from securechat.tls import server_context
from tests.conftest import PASSWORD, TIMEOUT, NewClient, RunningServer, ServerFactory
from tests.eventually import EVENTUALLY, eventually

FAST = Backoff(initial=0.05, cap=0.2)


def wait_for(client: Client, want: Callable[[ClientEvent], bool]) -> ClientEvent:
    """The first event matching ``want``; fails after TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while (remaining := deadline - time.monotonic()) > 0:
        event = client.next_event(remaining)
        if event is not None and want(event):
            return event
    raise AssertionError("no matching event in time")


def drain(client: Client, quiet: float = 0.5) -> list[ClientEvent]:
    return list(client.events(timeout=quiet))


def stored_bodies(db_url: str) -> list[str]:
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as db:
        return [body for (body,) in db.execute("SELECT body FROM messages ORDER BY id")]


# --- requests and events ---------------------------------------------------------------


def test_client_send_returns_id_and_peer_gets_typed_message(new_client: NewClient) -> None:
    alice, bob = new_client("alice"), new_client("bob")
    assert alice.user == "alice"
    assert alice.rooms == ("general",)
    message_id = alice.send("héllo ✓", room="general")
    got = wait_for(bob, lambda e: isinstance(e, Message))
    assert isinstance(got, Message)
    assert got == Message(
        id=message_id,
        sender="alice",
        body="héllo ✓",
        ts=got.ts,
        room="general",
    )
    delivered = wait_for(alice, lambda e: isinstance(e, Delivered))
    assert isinstance(delivered, Delivered)
    assert delivered.message.id == message_id
    assert delivered.message.sender == "alice"


@pytest.mark.parametrize("name", ["user", "rooms", "last_id", "is_connected", "server"])
def test_client_properties_wait_for_the_session_lock_the_io_thread_holds(
    new_client: NewClient, name: str
) -> None:
    alice = new_client("alice")
    connection = alice._connection
    assert connection is not None
    read: list[object] = []
    with connection._lock:  # as the I/O thread does while it feeds the session
        reader = threading.Thread(target=lambda: read.append(getattr(alice, name)))
        reader.start()
        reader.join(0.5)  # long enough for an unlocked read to finish; no bound on a locked one
        assert reader.is_alive(), f"Client.{name} read the session without its lock"
    reader.join(TIMEOUT)
    assert read == [getattr(alice, name)]


def test_client_direct_message_and_history(new_client: NewClient) -> None:
    alice, bob = new_client("alice"), new_client("bob")
    first = alice.send("psst", to="bob")
    second = bob.send("yes?", to="alice")
    psst = wait_for(bob, lambda e: isinstance(e, Message))
    assert isinstance(psst, Message)
    assert psst.body == "psst"
    page = alice.history(peer="bob")
    assert [(m.id, m.sender, m.body) for m in page.messages] == [
        (first, "alice", "psst"),
        (second, "bob", "yes?"),
    ]
    assert not page.more


def test_client_join_leave_rooms_and_who(new_client: NewClient) -> None:
    alice, bob = new_client("alice"), new_client("bob")
    joined = alice.join("Ops")
    assert (joined.room, joined.members) == ("ops", ("alice",))
    assert alice.rooms == ("general", "ops")
    bob.join("ops")
    assert wait_for(alice, lambda e: isinstance(e, MemberJoined) and e.room == "ops")
    rooms = {r.name: (r.members, r.joined) for r in bob.list_rooms()}
    assert rooms == {"general": (2, True), "ops": (2, True)}
    assert set(alice.who()) == {"alice", "bob"}
    alice.leave("ops")
    alice = alice  # leave() changed alice.rooms: forget what mypy narrowed it to above
    assert alice.rooms == ("general",)
    with pytest.raises(NotMember):
        alice.send("still here?", room="ops")


def test_client_list_rooms_follows_the_servers_pages(
    server_factory: ServerFactory,
) -> None:
    running = server_factory(rooms_page=2)
    with Client(
        "localhost", running.address[1], ca_file=running.ca_file, user="alice",
        password=PASSWORD, timeout=TIMEOUT,
    ) as client:  # fmt: skip
        for room in ("r1", "r2", "r3", "r4", "r5"):
            client.join(room)
        assert [r.name for r in client.list_rooms()] == ["general", "r1", "r2", "r3", "r4", "r5"]


def test_client_refusals_raise_and_emit_send_failed(new_client: NewClient) -> None:
    alice = new_client("alice")
    with pytest.raises(NoSuchUser):
        alice.send("hi", to="nobody")
    failed = wait_for(alice, lambda e: isinstance(e, SendFailed))
    assert isinstance(failed, SendFailed)
    assert (failed.code, failed.to, failed.body) == ("no_such_user", "nobody", "hi")
    assert alice.unacknowledged == []
    with pytest.raises(ValueError, match="exactly one"):
        alice.submit("hi")


def test_client_sync_returns_what_was_missed(new_client: NewClient) -> None:
    alice = new_client("alice")
    ids = [alice.send(f"m{i}", room="general") for i in range(3)]
    bob = new_client("bob")
    missed = bob.sync(since=ids[0])
    messages = [m for m in missed if isinstance(m, Message)]
    joined = [e for e in missed if not isinstance(e, Message)]  # bob's own, at his first login
    assert [(e.action, e.user) for e in joined if isinstance(e, RoomEvent)] == [("join", "bob")]
    assert [(m.id, m.body) for m in messages] == [(ids[1], "m1"), (ids[2], "m2")]
    assert bob.last_id == missed[-1].id
    assert not any(isinstance(e, Message) for e in drain(bob, 0.3))  # not repeated


# --- failures a user must understand ------------------------------------------------------


def test_client_wrong_password_is_authentication_error(running_server: RunningServer) -> None:
    client = Client(
        "localhost",
        running_server.address[1],
        ca_file=running_server.ca_file,
        user="alice",
        password="wrong",
    )
    with pytest.raises(AuthenticationError, match="wrong user name or password"):
        client.connect()


def test_client_unreachable_server_says_refused(tmp_path: Path, certs_dir: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: refused
        client = Client("127.0.0.1", port, ca_file=certs_dir / "ca.pem", user="a", password="p")
        with pytest.raises(ConnectionLost, match=r"connection refused.*firewall"):
            client.connect()


def test_client_certificate_problems_name_the_fix(
    running_server: RunningServer, tmp_path: Path
) -> None:
    from securechat.certs import init_certs

    port = running_server.address[1]
    wrong_host = Client(
        "127.0.0.1", port, ca_file=running_server.ca_file, user="alice", password=PASSWORD,
        server_name="chat.example",
    )  # fmt: skip
    with pytest.raises(
        CertificateError, match=r"add it with `securechat init-certs --renew --host chat\.example`"
    ):
        wrong_host.connect()
    init_certs(tmp_path / "other", hosts=["localhost"])
    wrong_ca = Client(
        "localhost", port, ca_file=tmp_path / "other" / "ca.pem", user="alice", password=PASSWORD
    )
    with pytest.raises(CertificateError, match=r"not signed by the CA in .*ca\.pem: get the right"):
        wrong_ca.connect()


@pytest.mark.parametrize("problem", ["two certificates", "another fingerprint"])
def test_client_trusts_only_exactly_one_ca_with_the_expected_fingerprint(
    running_server: RunningServer, tmp_path: Path, problem: str
) -> None:
    from securechat.certs import CertificateAuthority, fingerprint, read_certificate

    ca_file, expected = (
        running_server.ca_file,
        fingerprint(read_certificate(running_server.ca_file)),
    )
    if problem == "two certificates":
        ca_file = tmp_path / "bundle.pem"
        ca_file.write_bytes(
            running_server.ca_file.read_bytes() + CertificateAuthority.create().cert_pem()
        )
        message = "must hold exactly one certificate, the server's CA; it holds 2"
    else:
        expected = fingerprint(CertificateAuthority.create().cert)
        message = "holds the CA with fingerprint .*, not the expected"
    client = Client(
        "localhost", running_server.address[1], ca_file=ca_file, ca_fingerprint=expected,
        user="alice", password=PASSWORD,
    )  # fmt: skip
    with pytest.raises(CertificateError, match=message):
        client.connect()


def test_client_refuses_other_protocol_version(certs_dir: Path) -> None:
    context = server_context(certs_dir / "server.pem", certs_dir / "server.key")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve_once() -> None:
            conn, _ = listener.accept()
            with context.wrap_socket(conn, server_side=True) as tls:
                hello = Hello(protocol=2, server="future 9", max_frame=65536, heartbeat=30)
                tls.sendall(encode_frame(encode(hello)))
                with contextlib.suppress(OSError, ssl.SSLError):
                    tls.recv(100)

        thread = threading.Thread(target=serve_once)
        thread.start()
        try:
            client = Client("localhost", port, ca_file=certs_dir / "ca.pem", user="a", password="p")
            with pytest.raises(UnexpectedMessage, match=r"protocol version 2.*upgrade"):
                client.connect()
        finally:
            thread.join(TIMEOUT)


# --- reconnect ---------------------------------------------------------------------------


class Gate:
    """A TCP relay to the server that the test can cut and close, like a flaky network."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.is_open = True
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._stop = False
        self._threads = [threading.Thread(target=self._accept)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop:
            if not select.select([self.listener], [], [], 0.05)[0]:
                continue
            conn, _ = self.listener.accept()
            if not self.is_open:
                conn.close()
                continue
            pair = (conn, socket.create_connection(self.upstream))
            self._pairs.append(pair)
            thread = threading.Thread(target=self._relay, args=pair)
            self._threads.append(thread)
            thread.start()

    def _relay(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while not self._stop:
                for sock in select.select([a, b], [], [], 0.05)[0]:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (b if sock is a else a).sendall(data)
        except OSError:
            return  # cut
        finally:
            a.close()
            b.close()

    def cut(self) -> None:
        """Drop every relayed connection and refuse new ones until ``is_open`` again."""
        self.is_open = False
        for a, b in self._pairs:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._pairs.clear()

    def close(self) -> None:
        self.cut()
        self._stop = True
        for thread in self._threads:
            thread.join(TIMEOUT)
        self.listener.close()


@pytest.fixture
def gate(running_server: RunningServer) -> Iterator[Gate]:
    relay = Gate(running_server.address)
    yield relay
    relay.close()


def test_client_catches_up_and_resends_after_an_outage(
    new_client: NewClient, gate: Gate, running_server: RunningServer
) -> None:
    alice = new_client("alice", port=gate.port, reconnect=True, backoff=FAST)
    bob = new_client("bob")
    before = bob.send("before", room="general")
    first = wait_for(alice, lambda e: isinstance(e, Message))
    assert isinstance(first, Message)
    assert first.id == before
    gate.cut()
    assert isinstance(wait_for(alice, lambda e: isinstance(e, Reconnecting)), Reconnecting)
    missed = [bob.send(f"missed {i}", room="general") for i in range(3)]
    pending = alice.submit("typed while offline", room="general")
    assert not pending.is_done
    with pytest.raises(ConnectionLost):
        alice.who()  # other requests fail fast while disconnected
    gate.is_open = True
    wait_for(alice, lambda e: isinstance(e, Reconnected))
    stored = pending.wait(TIMEOUT)
    seen = [e for e in drain(alice) if isinstance(e, Message)]
    assert [m.id for m in seen] == missed  # each once, in order, nothing from before
    assert bob.history("general").messages[-1] == stored
    assert stored_bodies(running_server.db_url).count("typed while offline") == 1


def test_client_logged_in_beside_busy_private_rooms_misses_nothing_after_an_outage(
    new_client: NewClient, gate: Gate
) -> None:
    """``welcome.last_id`` is the newest id the user may see, below the ids of others'
    private rooms and direct messages: a client that catches up after it misses nothing."""
    carol, bob = new_client("carol"), new_client("bob")
    new_client("alice")  # her first login joins #general: that event comes before the rest
    carol.create("hush", private=True)
    seen = bob.send("before", room="general")
    hidden = [carol.send("private", room="hush"), carol.send("carol to bob? no", to="dave")]
    alice = new_client("alice", port=gate.port, reconnect=True, backoff=FAST)
    assert alice.last_id == seen < hidden[-1]
    gate.cut()
    assert isinstance(wait_for(alice, lambda e: isinstance(e, Reconnecting)), Reconnecting)
    missed = [bob.send("missed 0", room="general")]
    carol.send("private 2", room="hush")
    missed.append(bob.send("missed 1", to="alice"))
    carol.send("private 3", room="hush")
    gate.is_open = True
    wait_for(alice, lambda e: isinstance(e, Reconnected))
    shown = [e for e in drain(alice) if isinstance(e, Message)]
    assert [m.id for m in shown] == missed
    assert alice.last_id == missed[-1]


def test_client_survives_a_server_restart_with_a_pending_message(
    server_factory: ServerFactory,
) -> None:
    first = server_factory()
    port = first.address[1]
    alice = Client(
        "localhost", port, ca_file=first.ca_file, user="alice", password=PASSWORD,
        reconnect=True, backoff=FAST, timeout=TIMEOUT,
    ).connect()  # fmt: skip
    try:
        alice.send("before restart", room="general")
        first.server.shutdown()
        reconnecting = wait_for(alice, lambda e: isinstance(e, Reconnecting))
        assert isinstance(reconnecting, Reconnecting)
        assert "restarting" in reconnecting.reason
        pending = alice.submit("during restart", room="general")
        second = server_factory(port=port)
        bob = second.login("bob")
        bob.send(type="send", room="general", body="bob after restart", ref="b1")
        bob_id = bob.expect("ack")["id"]
        stored = pending.wait(TIMEOUT)
        shown = [e for e in drain(alice) if isinstance(e, Message)]
        assert [m.id for m in shown] == [bob_id]
        assert stored.id != bob_id
        bodies = stored_bodies(second.db_url)
        assert bodies.count("during restart") == 1
        assert bodies.count("before restart") == 1
    finally:
        alice.close()


def test_client_close_ends_event_iteration(new_client: NewClient) -> None:
    alice = new_client("alice")
    threading.Timer(0.2, alice.close).start()
    started = time.monotonic()
    assert list(alice.events()) == []
    assert time.monotonic() - started < TIMEOUT
    assert not alice.is_connected
    with pytest.raises(ConnectionLost):
        alice.submit("late", room="general")


def test_client_reconnects_with_its_resume_token_not_the_password(
    server_factory: ServerFactory,
) -> None:
    running = server_factory(port=0)
    port = running.address[1]
    with Client(
        "localhost", port, ca_file=running.ca_file, user="alice", password=PASSWORD,
        reconnect=True, backoff=FAST,
    ) as client:  # fmt: skip
        running.server.shutdown()
        again = server_factory(port=port)
        eventually(lambda: client.is_connected, "the client reconnected after the restart")
        assert client.send("after the restart", room="general") > 0
    peer = again.login("bob")
    peer.send(type="history", room="general")
    assert [m["body"] for m in peer.expect("history")["messages"]] == ["after the restart"]


# --- the password is not kept after login ------------------------------------------------


def _holders(secret: str) -> list[object]:
    """Everything but stack frames that refers to this very string object."""
    gc.collect()
    return [r for r in gc.get_referrers(secret) if not isinstance(r, types.FrameType)]


def test_client_keeps_no_reference_to_the_password_after_login(
    running_server: RunningServer,
) -> None:
    password = "".join(PASSWORD)  # a string object of our own, so referrers are ours
    assert password is not PASSWORD
    with Client(
        "localhost", running_server.address[1], ca_file=running_server.ca_file, user="alice",
        password=password, reconnect=True,
    ) as client:  # fmt: skip
        assert client.send("logged in", room="general") > 0
        assert _holders(password) == []


def test_client_drops_the_password_even_when_the_server_gives_no_resume_token(
    certs_dir: Path,
) -> None:
    from tests.test_trust import FakeServer

    context = server_context(certs_dir / "server.pem", certs_dir / "server.key")
    server = FakeServer(context, (certs_dir / "ca.pem").read_text())
    server.auth_reply = {"type": "welcome", "user": "alice", "rooms": [], "last_id": 0}
    password = "".join(PASSWORD)
    try:
        client = Client(
            "localhost", server.port, ca_file=certs_dir / "ca.pem", user="alice",
            password=password, reconnect=True, backoff=FAST,
        )  # fmt: skip
        with client:
            assert _holders(password) == []
            # The fake server hangs up after the welcome: without a token there is no way back.
            ended = wait_for(client, lambda e: isinstance(e, Disconnected))
            assert isinstance(ended, Disconnected)
            assert "gave no resume token" in ended.reason
        assert server.received == ["auth"]  # never a login without credentials
    finally:
        server.close()


# --- a send the server could not store ---------------------------------------------------


def test_client_resends_a_send_refused_with_server_error_and_it_is_stored_once(
    running_server: RunningServer,
    new_client: NewClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from securechat.store.database import SQLITE_BUSY_TIMEOUT_MS

    caplog.set_level(logging.ERROR, logger="securechat.server")
    path = running_server.db_url.removeprefix("sqlite:///")
    alice = new_client("alice", backoff=FAST)
    locker = sqlite3.connect(path, isolation_level=None)  # as tests/test_faults.py does
    try:
        locker.execute("BEGIN EXCLUSIVE")
        pending = alice.submit("while locked", room="general")
        # Hold the lock until the server has given up on the first commit (busy timeout).
        eventually(
            lambda: any(r.name.startswith("securechat.server") for r in caplog.records),
            "the server failed the commit",
            timeout=SQLITE_BUSY_TIMEOUT_MS / 1000 + EVENTUALLY,
        )
        locker.execute("ROLLBACK")
    finally:
        locker.close()
    stored = pending.wait(SQLITE_BUSY_TIMEOUT_MS / 1000 + TIMEOUT)
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id, body FROM messages WHERE ref = ?", (pending.ref,)).fetchall()
    assert rows == [(stored.id, "while locked")]
    assert not [e for e in drain(alice) if isinstance(e, SendFailed)]
    assert alice.unacknowledged == []
