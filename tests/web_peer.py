"""A raw WebSocket test client for the web port: one JSON object per text message.

The counterpart of tests/peer.py: it asserts exactly what goes over the wire, with the
browser's framing, independent of the JavaScript client.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict, Unpack

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import OPEN
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin
from websockets.uri import parse_uri

from tests.conftest import TIMEOUT, WEB_OPENING_TIMEOUT
from tests.peer import Event, EventPeer, tls_socket


class ConnectOptions(TypedDict, total=False):
    """What a test may change in ``websockets.sync.client.connect``."""

    max_size: int | None
    max_queue: int | None
    additional_headers: list[tuple[str, str]] | None  # a Cookie, for stay signed in
    user_agent_header: str | None


def origin_of(address: tuple[str, int], host: str = "localhost") -> str:
    return f"https://{host}:{address[1]}"


class WebPeer(EventPeer):
    closed_errors = (ConnectionClosed,)

    def __init__(
        self,
        address: tuple[str, int],
        ca_file: Path,
        *,
        origin: str | None = None,
        host: str = "localhost",
        source: str | None = None,
        prefix: bytes = b"",
        **options: Unpack[ConnectOptions],
    ) -> None:
        """``source``: a loopback address to connect from; ``prefix``: bytes sent before
        the TLS handshake (a PROXY header)."""
        super().__init__()
        context = ssl.create_default_context(cafile=str(ca_file))
        self._exit = contextlib.ExitStack()  # websockets wants connect() used as a context
        scheme = "wss"
        tls: ssl.SSLContext | None = context
        sock: ssl.SSLSocket | None = None
        if source is not None or prefix:
            # A socket of our own, TLS done here too (tests.peer.tls_socket): websockets
            # wrapping a socket it was given leaves the TLS socket open when the handshake
            # fails (the server dropped it), which a later collection reports.
            scheme, tls = "ws", None
            sock = self._tls_socket(context, address, host, source, prefix)
            self._exit.callback(sock.close)  # if the opening fails; else websockets closes it
        try:
            self.ws: ClientConnection = self._exit.enter_context(connect(
                f"{scheme}://{host}:{address[1]}/ws",
                sock=sock,
                ssl=tls,
                origin=Origin(origin or origin_of(address, host)),
                open_timeout=WEB_OPENING_TIMEOUT,
                compression=None,
                **options,
            ))  # fmt: skip
        except BaseException:
            self._exit.close()
            raise

    @staticmethod
    def _tls_socket(
        context: ssl.SSLContext,
        address: tuple[str, int],
        host: str,
        source: str | None,
        prefix: bytes,
    ) -> ssl.SSLSocket:
        bind = None if source is None else (source, 0)
        raw = socket.create_connection(address, timeout=TIMEOUT, source_address=bind)
        return tls_socket(context, raw, host, prefix)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._exit.close()

    def send(self, **fields: object) -> None:
        self.ws.send(json.dumps(fields))

    def recv(self, timeout: float = TIMEOUT) -> Event:
        """The next event; raises TimeoutError or ConnectionClosed."""
        data = self.ws.recv(timeout=timeout)
        event: Event = json.loads(data)
        return event


class RawWebSocket:
    """A WebSocket client that writes the frames it is given, all at once: what a browser
    never sends (2000 pings in one write). websockets' sans-I/O client does the upgrade
    and parses what the server sends; nothing is answered automatically but pings.
    """

    def __init__(self, address: tuple[str, int], ca_file: Path, host: str = "localhost") -> None:
        context = ssl.create_default_context(cafile=str(ca_file))
        raw = socket.create_connection(address, timeout=TIMEOUT)
        self.sock = context.wrap_socket(raw, server_hostname=host)
        self.protocol = ClientProtocol(
            parse_uri(f"wss://{host}:{address[1]}/ws"), origin=Origin(origin_of(address, host))
        )
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        self.frames: list[Frame] = []  # every frame received, in order
        self.closed = False  # the server closed the TCP connection
        deadline = time.monotonic() + WEB_OPENING_TIMEOUT
        while self.protocol.state is not OPEN:
            assert self.protocol.handshake_exc is None, self.protocol.handshake_exc
            assert not self.closed, "closed during the handshake"
            self._read(max(deadline - time.monotonic(), 0.001))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, data: bytes) -> None:
        """Write ``data`` (serialized, masked frames) in one go."""
        self.sock.sendall(data)

    def send_text(self, payload: str) -> None:
        self.send(Frame(Opcode.TEXT, payload.encode()).serialize(mask=True))

    def read_until(self, condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        """Read until ``condition()`` holds; raises TimeoutError, or AssertionError if closed."""
        deadline = time.monotonic() + timeout
        while not condition():
            assert not self.closed, "the server closed the connection"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the condition never held")
            self._read(remaining)

    def read_until_quiet(self, quiet: float = 1.0) -> None:
        """Read until the server closes, or has sent nothing for ``quiet`` seconds."""
        with contextlib.suppress(TimeoutError):
            while not self.closed:
                self._read(quiet)

    def texts(self) -> list[Event]:
        """The text messages received so far, decoded."""
        return [json.loads(bytes(f.data)) for f in self.frames if f.opcode is Opcode.TEXT]

    def count(self, opcode: Opcode) -> int:
        return sum(1 for frame in self.frames if frame.opcode is opcode)

    def _read(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (ConnectionError, ssl.SSLError):
            data = b""
        if data:
            self.protocol.receive_data(data)
        else:
            self.closed = True
            self.protocol.receive_eof()
        for event in self.protocol.events_received():
            if isinstance(event, Frame):  # not the handshake's Response
                self.frames.append(event)
        with contextlib.suppress(OSError):
            self._flush()

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)
