"""The server's memory stays bounded under junk: measured on a ``securechat serve`` process.

Each test starts the real server as a subprocess, warms it up with the same abuse it is
about to measure (so thread stacks, allocator arenas, TLS and argon2 buffers exist before
the first reading), reads ``VmRSS`` from /proc, drives the junk, waits until every junk
connection's thread has ended, and reads ``VmRSS`` again. The bounds are stated here and in
the "Limits and resource bounds" section of docs/security.md.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import struct
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from securechat.accounts import Accounts
from securechat.config import HashParams, Limits
from securechat.store.chat import ChatStore
from securechat.store.database import open_database
from securechat.store.message_rows import NewMessage
from tests.conftest import PASSWORD, TIMEOUT
from tests.eventually import eventually
from tests.peer import Peer
from tests.serve_process import ServeProcess

MiB = 1024 * 1024
#: RSS growth allowed after a few thousand junk connections and frames.
JUNK_BOUND = 20 * MiB
#: RSS growth allowed after streams that open with a header claiming 4 GiB.
HUGE_HEADER_BOUND = 4 * MiB
#: Slow readers that each ask for ``sync since=0`` and then never read.
SLOW_READERS = 200
#: Messages of SYNC_BODY characters they can all see: 2 MiB in one reply before replies
#: were cut by bytes (sync_page is 1000), 256 KiB (sync_reply_bytes) after.
SYNC_MESSAGES, SYNC_BODY = 1000, 2000
#: RSS growth allowed while they wait: one reply each, as docs/security.md states, plus
#: the same allowance for allocator slack as after the junk.
SLOW_READERS_BOUND = SLOW_READERS * Limits().sync_reply_bytes + JUNK_BOUND

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc (Linux only)"
)


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def rss_bytes(pid: int) -> int:
    return _status(pid, "VmRSS") * 1024


def _settle(pid: int, threads: int, timeout: float = 30.0) -> None:
    """Wait until the server is back to ``threads`` threads: every junk connection has ended."""
    eventually(
        lambda: _status(pid, "Threads") <= threads,
        lambda: f"at most {threads} threads ({_status(pid, 'Threads')} now)",
        timeout=timeout,
    )
    time.sleep(0.3)  # let the allocator return what the last threads freed


@pytest.fixture
def server(certs_dir: Path, db_url: str) -> Iterator[ServeProcess]:
    # A rate limit far above what the junk reaches, so every junk frame is decoded and
    # answered: the most work and memory a frame can cost.
    process = ServeProcess(certs_dir, db_url, "--rate", "100000")
    try:
        yield process.start()
    finally:
        process.stop()


def _tls(server: ServeProcess, ca_file: Path) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(ca_file))
    raw = socket.create_connection(server.address, timeout=TIMEOUT)
    try:
        return context.wrap_socket(raw, server_hostname="localhost")
    except BaseException:
        raw.close()
        raise


def _drain_until_closed(sock: socket.socket, timeout: float = TIMEOUT) -> bytes:
    received = b""
    deadline = time.monotonic() + timeout
    with contextlib.suppress(OSError):
        while time.monotonic() < deadline:
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            data = sock.recv(65536)
            if not data:
                break
            received += data
    return received


Junk = Callable[[ServeProcess, Path, int], None]


def _frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


# --- kinds of junk, one connection each ----------------------------------------------------


def _plaintext(server: ServeProcess, _ca: Path, n: int) -> None:
    with socket.create_connection(server.address, timeout=TIMEOUT) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(os.urandom(512 + n % 1500))
        _drain_until_closed(sock)


def _half_handshake(server: ServeProcess, _ca: Path, n: int) -> None:
    with socket.create_connection(server.address, timeout=TIMEOUT) as sock:
        # A TLS record header for a ClientHello, then much less than it promises.
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(n % 64))


def _huge_header(server: ServeProcess, ca: Path, n: int) -> None:
    with _tls(server, ca) as sock:
        sock.sendall(b"\xff\xff\xff\xff")
        with contextlib.suppress(OSError):
            for _ in range(16):
                sock.sendall(os.urandom(16384))
        assert b"frame_too_large" in _drain_until_closed(sock)


JUNK_PAYLOADS = [b"\xff\xfe", b"[]", b"{" * 60000, b'{"type":"ping","type":"bye"}', b"null"]


def _bad_payload(server: ServeProcess, ca: Path, n: int) -> None:
    with _tls(server, ca) as sock:
        sock.sendall(_frame(JUNK_PAYLOADS[n % len(JUNK_PAYLOADS)]))
        assert b"bad_request" in _drain_until_closed(sock)


def _drive(server: ServeProcess, ca: Path, kinds: list[Junk], n: int) -> None:
    """``n`` junk connections of each kind, eight at a time."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(kind, server, ca, i) for i in range(n) for kind in kinds]
        for future in futures:
            future.result(timeout=60)


def _junk_frames(peer: Peer, count: int) -> None:
    """``count`` invalid frames on a logged-in connection: each is answered, none is fatal."""
    big = b'{"type":"send","body":' + b"7" * 65000
    for start in range(0, count, 50):
        batch = [big if i % 10 == 0 else JUNK_PAYLOADS[i % 2] for i in range(start, start + 50)]
        peer.sock.sendall(b"".join(_frame(p) for p in batch))
        for _ in batch:
            assert peer.expect("error")["code"] == "bad_request"
    peer.send(type="ping", ref="alive")
    peer.expect("pong", ref="alive")


# --- the measurements -----------------------------------------------------------------------


def test_rss_stays_bounded_after_thousands_of_junk_connections_and_frames(
    server: ServeProcess, certs_dir: Path
) -> None:
    ca, pid = certs_dir / "ca.pem", server.proc.pid
    kinds: list[Junk] = [_plaintext, _half_handshake, _huge_header, _bad_payload]
    alice = Peer(server.address, ca)
    try:
        alice.login("alice", PASSWORD)  # the first login re-hashes with full argon2 costs
        _drive(server, ca, kinds, 150)  # warm-up: threads, arenas, TLS state
        _junk_frames(alice, 500)
        threads = _status(pid, "Threads")
        _settle(pid, threads)
        before = rss_bytes(pid)

        for _ in range(3):  # 3 x 4 x 250 = 3000 connections, 3 x 1000 frames (30 MiB)
            _drive(server, ca, kinds, 250)
            _junk_frames(alice, 1000)
        with Peer(server.address, ca) as bob:  # a full-cost login during the run, too
            bob.login("bob", PASSWORD)
        _settle(pid, threads)
        after = rss_bytes(pid)
        print(f"serve RSS {before / MiB:.1f} MiB -> {after / MiB:.1f} MiB")
        assert after - before < JUNK_BOUND, (before / MiB, after / MiB)

        alice.send(type="send", room="general", body="still fine", ref="ok")
        alice.expect("ack", ref="ok")
    finally:
        alice.close()


def test_rss_stays_flat_after_headers_claiming_4_gib(server: ServeProcess, certs_dir: Path) -> None:
    ca, pid = certs_dir / "ca.pem", server.proc.pid

    def claim_4_gib(logged_in: bool) -> None:
        peer = Peer(server.address, ca)
        try:
            if logged_in:
                peer.login("carol", PASSWORD)
            else:
                peer.expect("hello")
            peer.sock.sendall(b"\xff\xff\xff\xff")
            sent = 0
            with contextlib.suppress(OSError):  # the server hangs up: the junk has nowhere to go
                while sent < 8 * MiB:
                    peer.sock.sendall(os.urandom(65536))
                    sent += 65536
            assert b"frame_too_large" in _drain_until_closed(peer.sock)
        finally:
            peer.close()

    claim_4_gib(logged_in=True)  # warm-up, including carol's full-cost login
    for _ in range(100):  # RSS grows by 2-3 MiB over the first ~100, then stays flat
        claim_4_gib(logged_in=False)
    threads = _status(pid, "Threads")
    _settle(pid, threads)
    before = rss_bytes(pid)
    for _ in range(100):
        claim_4_gib(logged_in=False)
    _settle(pid, threads)
    after = rss_bytes(pid)
    print(f"serve RSS {before / MiB:.1f} MiB -> {after / MiB:.1f} MiB")
    assert after - before < HUGE_HEADER_BOUND, (before / MiB, after / MiB)


# --- slow readers asking for everything --------------------------------------------------------


class _SlowReader:
    """A client that logs in, asks for ``sync since=0``, and never reads the reply.

    Its receive buffer is made small before it connects, so the kernel holds little of
    the reply for it: what the server queues stays in the server's own memory.
    """

    def __init__(self, server: ServeProcess, ca: Path) -> None:
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            raw.settimeout(TIMEOUT)
            raw.connect(server.address)
            context = ssl.create_default_context(cafile=str(ca))
            self.sock = context.wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise
        self._buffer = b""

    def send(self, payload: bytes) -> None:
        self.sock.sendall(_frame(payload))

    def receive(self, kind: bytes) -> bytes:
        """Read frames until one whose payload contains ``kind``; return that payload."""
        while True:
            while len(self._buffer) >= 4:
                (length,) = struct.unpack(">I", self._buffer[:4])
                if len(self._buffer) < 4 + length:
                    break
                payload, self._buffer = self._buffer[4 : 4 + length], self._buffer[4 + length :]
                if kind in payload:
                    return payload
            data = self.sock.recv(65536)
            assert data, "closed by the server"
            self._buffer += data

    def log_in(self, user: str, token: str) -> None:
        self.send(b'{"type":"auth","user":"%s","token":"%s"}' % (user.encode(), token.encode()))
        self.receive(b'"welcome"')

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@pytest.fixture
def history_server(certs_dir: Path, db_url: str) -> Iterator[tuple[ServeProcess, list[str]]]:
    """``securechat serve`` on a database where 8 readers see SYNC_MESSAGES long messages."""
    database = open_database(db_url)
    accounts = Accounts(database, hash_params=HashParams.for_tests())
    readers = [f"reader{n}" for n in range(8)]  # 25 sessions each: below 32 per user
    ids = {name: accounts.add(name, PASSWORD).id for name in readers}
    ids["alice"] = accounts.get("alice").id
    store = ChatStore(database)
    for user_id in ids.values():
        store.join(user_id, "general")
    body = "x" * SYNC_BODY
    for start in range(0, SYNC_MESSAGES, 250):
        store.save_messages([
            NewMessage(ids["alice"], "alice", body, f"h{n}", room="general")
            for n in range(start, start + 250)
        ])  # fmt: skip
    database.dispose()
    process = ServeProcess(certs_dir, db_url)  # default limits, the rate limit included
    try:
        yield process.start(), readers
    finally:
        process.stop()


def _steady_rss(pid: int, timeout: float = 30.0) -> int:
    """RSS once it has stopped growing (by less than 1 MiB over 1.5 s)."""
    deadline = time.monotonic() + timeout
    readings = [rss_bytes(pid)]
    while time.monotonic() < deadline:
        time.sleep(0.25)
        readings.append(rss_bytes(pid))
        recent = readings[-7:]
        if len(recent) == 7 and max(recent) - min(recent) < MiB:
            break
    return readings[-1]


@pytest.mark.slow
def test_rss_stays_within_one_sync_reply_per_slow_reader(
    history_server: tuple[ServeProcess, list[str]], certs_dir: Path
) -> None:
    server, readers = history_server
    ca, pid = certs_dir / "ca.pem", server.proc.pid
    tokens: dict[str, str] = {}
    for user in readers:  # the first login re-hashes with full argon2 costs
        with Peer(server.address, ca) as peer:
            tokens[user] = peer.login(user, PASSWORD)["token"]
    users = [readers[n % len(readers)] for n in range(SLOW_READERS)]

    def connect_all() -> list[_SlowReader]:
        connected: list[_SlowReader] = []
        for user in users:
            connected.append(_SlowReader(server, ca))
            connected[-1].log_in(user, tokens[user])
        return connected

    threads = _status(pid, "Threads")
    warm = connect_all()  # warm-up: threads, TLS state, arenas; an empty sync each
    try:
        for reader in warm:
            reader.send(b'{"type":"sync","since":%d}' % SYNC_MESSAGES)
            reader.receive(b'"synced"')
    finally:
        for reader in warm:
            reader.close()
    _settle(pid, threads)

    slow = connect_all()
    try:
        before = _steady_rss(pid)
        for reader in slow:
            reader.send(b'{"type":"sync","since":0}')
        after = _steady_rss(pid)
        print(f"serve RSS {before / MiB:.1f} MiB -> {after / MiB:.1f} MiB")
        assert after - before < SLOW_READERS_BOUND, (before / MiB, after / MiB)
        with Peer(server.address, ca) as alice:  # and the server still serves
            alice.expect("hello")
            alice.send(type="auth", user=readers[0], token=tokens[readers[0]])
            alice.expect("welcome")
            alice.send(type="send", room="general", body="still fine", ref="ok")
            alice.expect("ack", ref="ok")
    finally:
        for reader in slow:
            reader.close()
