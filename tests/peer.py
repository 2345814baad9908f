"""A deliberately plain test client: blocking TLS, raw JSON dicts, strict timeouts.

Server tests speak the wire protocol through this so that they assert exactly what goes
over the wire, independent of ``securechat.client``.
"""

from __future__ import annotations

import abc
import contextlib
import json
import socket
import ssl
import struct
import time
from pathlib import Path
from typing import Any, Self

from tests.conftest import TIMEOUT

Event = dict[str, Any]  # one decoded JSON frame, as the server sent it


class EventPeer(abc.ABC):
    """What Peer and tests/web_peer.py's WebPeer share: waiting for events, logging in."""

    #: What ``recv`` raises once the server has closed the connection.
    closed_errors: tuple[type[Exception], ...]

    def __init__(self) -> None:
        self.seen: list[Event] = []  # events skipped over by expect()
        self.last_payload = b""  # the last frame's payload, as the server sent it

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def send(self, **fields: object) -> None: ...

    @abc.abstractmethod
    def recv(self, timeout: float = TIMEOUT) -> Event:
        """The next event; raises TimeoutError, or one of ``closed_errors``."""

    def expect(self, type_: str, timeout: float = TIMEOUT, **match: object) -> Event:
        """Skip events until one of ``type_`` whose fields include ``match``."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.recv(max(deadline - time.monotonic(), 0.001))
            if event.get("type") == type_ and all(event.get(k) == v for k, v in match.items()):
                return event
            self.seen.append(event)

    def expect_presence(self, user: str, *, online: bool, timeout: float = TIMEOUT) -> Event:
        """Skip events until a ``presence_batch`` that has ``user`` come online (or go offline)."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.recv(max(deadline - time.monotonic(), 0.001))
            if (
                event.get("type") == "presence_batch"
                and user in event["online" if online else "offline"]
            ):
                return event
            self.seen.append(event)

    def expect_closed(self, timeout: float = TIMEOUT) -> list[Event]:
        """Read until the server closes; return what came before."""
        events: list[Event] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                events.append(self.recv(max(deadline - time.monotonic(), 0.001)))
            except TimeoutError:
                raise
            except self.closed_errors:
                return events

    def ask(self, ref: str, **request: object) -> Event:
        """Send a request and return the reply carrying ``ref`` (other events are kept)."""
        self.send(ref=ref, **request)
        while True:
            event = self.recv()
            if event.get("ref") == ref:
                return event
            self.seen.append(event)

    def login(self, user: str, password: str, timeout: float = TIMEOUT) -> Event:
        hello = self.expect("hello", timeout)
        assert hello["protocol"] == 1
        self.send(type="auth", user=user, password=password)
        return self.expect("welcome", timeout)


class Peer(EventPeer):
    closed_errors = (ConnectionError, ssl.SSLError, OSError)

    def __init__(
        self,
        address: tuple[str, int],
        ca_file: Path,
        *,
        server_name: str = "localhost",
        source: str | None = None,
        prefix: bytes = b"",
    ) -> None:
        super().__init__()
        context = ssl.create_default_context(cafile=str(ca_file))
        bind = None if source is None else (source, 0)
        raw = socket.create_connection(address, timeout=TIMEOUT, source_address=bind)
        self.sock = tls_socket(context, raw, server_name, prefix)
        self._buffer = b""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, **fields: object) -> None:
        self.send_raw(json.dumps(fields).encode())

    def send_raw(self, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def recv(self, timeout: float = TIMEOUT) -> Event:
        """The next event; raises TimeoutError or ConnectionError."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self._buffer) >= 4:
                (length,) = struct.unpack(">I", self._buffer[:4])
                if len(self._buffer) >= 4 + length:
                    payload = self._buffer[4 : 4 + length]
                    self._buffer = self._buffer[4 + length :]
                    self.last_payload = payload
                    event: Event = json.loads(payload)
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no event in time")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("connection closed by the server")
            self._buffer += data


def tls_socket(
    context: ssl.SSLContext, raw: socket.socket, server_name: str, prefix: bytes = b""
) -> ssl.SSLSocket:
    """``raw`` with its TLS handshake done, after ``prefix`` in clear (a PROXY header).

    Wrapped before anything is sent: wrapping a socket the server has already reset (it
    drops a refused header at once) raises from inside ssl's wrapper after the descriptor
    moved into it, leaving a TLS socket nobody can close (a ResourceWarning later).
    """
    try:
        sock = context.wrap_socket(raw, server_hostname=server_name, do_handshake_on_connect=False)
    except BaseException:
        raw.close()
        raise
    try:
        socket.socket.sendall(sock, prefix)  # the plain socket's send: no TLS yet
        sock.do_handshake()
    except BaseException:  # refused: no socket left open behind the error
        sock.close()
        raise
    return sock
