"""TlsStream on a real TLS connection over loopback: direct writes that back up, then drain."""

from __future__ import annotations

import select
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from securechat import certs, tls
from securechat.transport import TlsStream, Turn
from tests.conftest import TIMEOUT


def _connected(certs_dir: Path) -> tuple[ssl.SSLSocket, ssl.SSLSocket]:
    """(the server's TLS socket, the client's blocking one), handshake done."""
    server_ctx = tls.server_context(certs_dir / certs.SERVER_CERT, certs_dir / certs.SERVER_KEY)
    client_ctx = tls.client_context(certs_dir / certs.CA_CERT)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        raw_client = socket.create_connection(listener.getsockname(), timeout=TIMEOUT)
        raw_server, _ = listener.accept()
    accepted: list[ssl.SSLSocket] = []
    handshake = threading.Thread(
        target=lambda: accepted.append(server_ctx.wrap_socket(raw_server, server_side=True))
    )
    raw_server.settimeout(TIMEOUT)
    handshake.start()
    client = client_ctx.wrap_socket(raw_client, server_hostname="localhost")
    handshake.join(TIMEOUT)
    return accepted[0], client


@pytest.fixture
def pair(certs_dir: Path) -> Iterator[tuple[TlsStream, ssl.SSLSocket]]:
    """(the server's non-blocking stream, the client's blocking TLS socket)."""
    server, client = _connected(certs_dir)
    stream = TlsStream(server)
    yield stream, client
    client.close()
    stream.close()


def _read_exactly(sock: ssl.SSLSocket, size: int, into: bytearray) -> None:
    while len(into) < size:
        data = sock.recv(65536)
        if not data:
            return
        into += data


def test_a_direct_write_that_backs_up_is_finished_by_flush_in_order(
    pair: tuple[TlsStream, ssl.SSLSocket],
) -> None:
    stream, client = pair
    sent = bytearray()
    n = 0
    while True:  # the client reads nothing yet: the kernel buffers fill up
        data = n.to_bytes(4, "big") * 4096  # 16 KiB, recognisable
        n += 1
        sent += data
        if not stream.write(data):
            break
        assert n < 10_000, "the socket never backed up"
    assert stream.unsent > 0  # the rest of the refused or partial write is kept

    received = bytearray()
    reader = threading.Thread(target=_read_exactly, args=(client, len(sent), received))
    reader.start()
    poller = select.poll()
    poller.register(stream.fileno(), select.POLLOUT)
    while not stream.flush():
        assert poller.poll(TIMEOUT * 1000), "no progress while the client reads"
    reader.join(TIMEOUT)
    assert stream.unsent == 0
    assert stream.written == len(sent)
    assert received == sent
    assert stream.write(b"after") is True  # idle again: the next write goes straight out
    assert client.recv(5) == b"after"


def test_a_stream_with_a_turn_refuses_every_thread_but_the_holder(certs_dir: Path) -> None:
    server, client = _connected(certs_dir)
    turn = Turn()
    stream = TlsStream(server, turn)
    refused: list[str] = []

    def queue_from_another_thread() -> None:
        try:
            stream.queue(b"not mine")
        except AssertionError as exc:
            refused.append(str(exc))

    try:
        with pytest.raises(AssertionError, match="does not hold its turn"):
            stream.write(b"nobody holds the turn")
        with turn:
            assert stream.write(b"mine")
            other = threading.Thread(target=queue_from_another_thread)
            other.start()
            other.join(TIMEOUT)
        assert refused == ["a TlsStream used by a thread that does not hold its turn"]
        assert stream.unsent == 0
        assert client.recv(4) == b"mine"
    finally:
        client.close()
        with turn:
            stream.close()
