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

from tests.conftest import PASSWORD, TIMEOUT
from tests.peer import Peer
from tests.serve_process import ServeProcess

MiB = 1024 * 1024
#: RSS growth allowed after a few thousand junk connections and frames.
JUNK_BOUND = 20 * MiB
#: RSS growth allowed after streams that open with a header claiming 4 GiB.
HUGE_HEADER_BOUND = 4 * MiB

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
    deadline = time.monotonic() + timeout
    while _status(pid, "Threads") > threads:
        assert time.monotonic() < deadline, f"{_status(pid, 'Threads')} threads, not {threads}"
        time.sleep(0.05)
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
