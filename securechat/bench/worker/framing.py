"""How a worker's connection frames protocol messages: the chat port's or the web port's.

The rest of the worker speaks in the chat port's length-prefixed frames (the requests it
queues, the payloads it reads); a :class:`Framing` is the seam between those and the
bytes on the socket. :class:`LengthPrefixed` is the product's own framing, unchanged.
:class:`WebSocketFraming` is the web port's (docs/protocol.md, "WebSocket transport"):
the HTTP upgrade to ``/ws`` with one of the server's own origins, then one protocol
message per text message, client frames masked. The RFC 6455 work is done by
``websockets``' sans-I/O :class:`~websockets.client.ClientProtocol`; this module only
feeds it and translates its errors.

Bytes read are only stored by :meth:`Framing.feed` and parsed by :meth:`Framing.next_frame`:
the worker reads every ready socket before handling any frame, and a socket's parsing
belongs to its own handling, not to the read time of the sockets read after it.
"""

from __future__ import annotations

import collections
from typing import Protocol

from websockets.client import ClientProtocol
from websockets.exceptions import PayloadTooBig
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import OPEN
from websockets.typing import Origin
from websockets.uri import parse_uri

from securechat.bench.worker.wire import MAX_FRAME
from securechat.errors import ConnectionLost, FrameTooLarge, MalformedMessage
from securechat.protocol.frames import HEADER, HEADER_SIZE, FrameDecoder
from securechat.server.webfiles import WEBSOCKET_PATH


class Framing(Protocol):
    """Length-prefixed frames in and out, whatever the socket carries."""

    def opening(self) -> bytes:
        """What to write once TLS is up, before any frame (empty: nothing)."""
        ...

    def upgraded(self) -> bool:
        """Whether frames may be sent now (the opening was answered).

        Raises:
            ConnectionLost: the server refused the opening.
        """
        ...

    def feed(self, data: bytes) -> None:
        """Keep bytes read from the socket, to be parsed by :meth:`next_frame`."""
        ...

    def next_frame(self) -> bytes | None:
        """The next protocol payload the server sent, or None until more bytes arrive.

        Raises:
            ProtocolError: the bytes are not this framing.
            ConnectionLost: the server closed, after the payloads it sent before that.
        """
        ...

    def encode(self, frames: bytes) -> bytes:
        """The bytes that carry ``frames`` (length-prefixed) on this socket."""
        ...


class LengthPrefixed(FrameDecoder):
    """The chat port's framing: the product's decoder; frames go out as they are."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(MAX_FRAME)

    def opening(self) -> bytes:
        return b""

    def upgraded(self) -> bool:
        return True

    def encode(self, frames: bytes) -> bytes:
        return frames


def web_origin(host: str, port: int) -> str:
    """The origin a browser on ``https://host:port/`` sends (IPv6 in brackets)."""
    return f"https://{_netloc(host, port)}"


def web_uri(host: str, port: int) -> str:
    """The web port's WebSocket endpoint, ``wss://host:port/ws``."""
    return f"wss://{_netloc(host, port)}{WEBSOCKET_PATH}"


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class WebSocketFraming:
    """Protocol v1 over a WebSocket to ``wss://host:port/ws``; one per connection.

    Server pings (it sends none) are answered with the next write.
    """

    __slots__ = ("_ended", "_fragments", "_payloads", "_protocol", "_raw", "_upgraded")

    def __init__(self, host: str, port: int, *, origin: str | None = None) -> None:
        self._protocol = ClientProtocol(
            parse_uri(web_uri(host, port)),
            origin=Origin(origin or web_origin(host, port)),
            max_size=MAX_FRAME,  # we are the client: any message the server sends is read
        )
        self._raw: list[bytes] = []  # read, not yet parsed
        self._payloads: collections.deque[bytes] = collections.deque()
        self._fragments: list[bytes] | None = None  # a message arriving in pieces
        self._upgraded = False
        self._ended: str | None = None  # why the server closed, once it has

    def opening(self) -> bytes:
        """The HTTP upgrade request."""
        protocol = self._protocol
        protocol.send_request(protocol.connect())
        return b"".join(protocol.data_to_send())

    def upgraded(self) -> bool:
        if not self._upgraded and self._raw:
            self._parse()
        return self._upgraded

    def feed(self, data: bytes) -> None:
        self._raw.append(data)

    def next_frame(self) -> bytes | None:
        payloads = self._payloads
        if not payloads:
            if self._raw:
                self._parse()
            if not payloads:
                if self._ended is not None:
                    raise ConnectionLost(self._ended)
                return None
        return payloads.popleft()

    def encode(self, frames: bytes) -> bytes:
        """One masked text frame per payload; and a pong the protocol owes, if any."""
        protocol = self._protocol
        # Once the server's close has come, nothing more may be sent: the close is
        # reported by next_frame(), which the worker calls right after the read.
        if protocol.state is OPEN:
            pos, end = 0, len(frames)
            while pos < end:
                (length,) = HEADER.unpack_from(frames, pos)
                pos += HEADER_SIZE
                protocol.send_text(frames[pos : pos + length])
                pos += length
        return b"".join(protocol.data_to_send())

    def _parse(self) -> None:
        """Run what was read through the protocol; keep the payloads, note a close.

        Raises:
            ConnectionLost: the server refused the upgrade.
            FrameTooLarge, MalformedMessage: the server broke RFC 6455.
        """
        raw = self._raw
        protocol = self._protocol
        protocol.receive_data(raw[0] if len(raw) == 1 else b"".join(raw))
        raw.clear()
        for event in protocol.events_received():
            if isinstance(event, Frame):
                self._on_frame(event)
            elif isinstance(event, Response) and protocol.handshake_exc is None:
                self._upgraded = True
        if protocol.handshake_exc is not None:
            raise ConnectionLost(
                f"the WebSocket upgrade failed: {protocol.handshake_exc}"
            ) from protocol.handshake_exc
        error = protocol.parser_exc
        if isinstance(error, PayloadTooBig):
            raise FrameTooLarge(f"WebSocket message too large: {error}") from error
        if error is not None:
            raise MalformedMessage(f"bad WebSocket frame: {error}") from error

    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if frame.fin:
                self._payloads.append(bytes(frame.data))
            else:
                self._fragments = [bytes(frame.data)]
        elif opcode is Opcode.CONT and self._fragments is not None:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                self._payloads.append(b"".join(self._fragments))
                self._fragments = None
        elif opcode is Opcode.CLOSE:
            close = self._protocol.close_rcvd
            code = close.code if close is not None else "none"
            self._ended = f"closed by the server (WebSocket close {code})"
