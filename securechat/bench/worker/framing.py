"""How a worker's connection frames protocol messages: the chat port's or the web port's.

The rest of the worker speaks in the chat port's length-prefixed frames (the requests it
queues, the payloads it reads); a :class:`Framing` is the seam between those and the
bytes on the socket. :class:`LengthPrefixed` is the product's own framing, unchanged.
:class:`WebSocketFraming` is the web port's (docs/protocol.md, "WebSocket transport"):
the HTTP upgrade to ``/ws`` with one of the server's own origins, then one protocol
message per text message, client frames masked. The RFC 6455 work is done by
``websockets``' sans-I/O :class:`~websockets.client.ClientProtocol` (the upgrade, masking,
control frames, fragments, the close), with one exception: the frames a fan-out consists
of, whole unmasked text frames, are cut from the stream here (see
:class:`WebSocketFraming`).

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

_FIN_TEXT = 0x81  # FIN set, no RSV bits, opcode 1 (text)


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

    The frames the server sends by the hundred thousand, whole unmasked text frames
    (websockets' server never fragments or masks them), are cut from the stream here
    with one header check each, as :class:`LengthPrefixed` cuts the chat port's: a
    browser parses them in native code on its own machine, and ``websockets``' parser, a
    Python generator resumed per frame, made the generator sharing this machine with the
    server spend ~40% more CPU per delivery over WebSocket than over the chat port. The
    first frame of any other kind (a close, a ping, a fragment, anything RFC 6455 says
    must fail) hands the stream, from that frame on, to the protocol for good. The
    protocol never sees a frame byte before that, so it takes the stream at a frame
    boundary. Like the chat port's receivers (see :mod:`~securechat.bench.worker.wire`),
    text payloads are not checked for UTF-8 here.

    Server pings (it sends none) are answered with the next write.
    """

    __slots__ = (
        "_buffer", "_ended", "_fragments", "_payloads", "_pos", "_protocol", "_raw",
        "_to_protocol", "_upgraded",
    )  # fmt: skip

    def __init__(self, host: str, port: int, *, origin: str | None = None) -> None:
        self._protocol = ClientProtocol(
            parse_uri(web_uri(host, port)),
            origin=Origin(origin or web_origin(host, port)),
            max_size=MAX_FRAME,  # we are the client: any message the server sends is read
        )
        self._buffer = bytearray()  # read, not yet parsed (the protocol has none of it)
        self._pos = 0  # start of the unparsed bytes in _buffer
        self._to_protocol = False  # everything read goes to the protocol from now on
        self._raw: list[bytes] = []  # read, for the protocol, not yet given to it
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
        if not self._upgraded and (self._buffer or self._raw):
            self._parse_response()
        return self._upgraded

    def feed(self, data: bytes) -> None:
        if self._to_protocol:
            self._raw.append(data)
            return
        if self._pos:
            del self._buffer[: self._pos]
            self._pos = 0
        self._buffer += data

    def next_frame(self) -> bytes | None:
        """The next payload; see :meth:`Framing.next_frame`.

        Raises:
            ConnectionLost: the server refused the upgrade or closed.
            FrameTooLarge, MalformedMessage: the server broke RFC 6455.
        """
        if not self._upgraded and not self.upgraded():
            return None
        if not self._to_protocol:
            payload = self._cut_text_frame()
            if payload is not None or not self._to_protocol:
                return payload
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

    def _cut_text_frame(self) -> bytes | None:
        """The next whole unmasked text frame's payload, None until it is all here; at
        another kind of frame, the stream goes to the protocol (None too).

        Raises:
            FrameTooLarge: its header announces more than MAX_FRAME bytes.
        """
        buffer, pos = self._buffer, self._pos
        available = len(buffer) - pos
        if available < 2:
            return None
        if buffer[pos] != _FIN_TEXT or buffer[pos + 1] & 0x80:  # not whole text, or masked
            self._hand_over_to_protocol()
            return None
        length, start = buffer[pos + 1], pos + 2
        if length >= 126:
            size = 2 if length == 126 else 8
            if available < 2 + size:
                return None
            length = int.from_bytes(buffer[start : start + size], "big")
            start += size
            if length > MAX_FRAME:
                raise FrameTooLarge(f"WebSocket message too large: {length} bytes")
        end = start + length
        if end > len(buffer):
            return None
        self._pos = end
        return bytes(buffer[start:end])

    def _hand_over_to_protocol(self) -> None:
        self._to_protocol = True
        rest = bytes(self._buffer[self._pos :])
        self._buffer, self._pos = bytearray(), 0
        if rest:
            self._raw.insert(0, rest)

    def _parse_response(self) -> None:
        """Give the protocol the HTTP response, and nothing after it if it is the upgrade.

        Raises:
            ConnectionLost: the server refused the upgrade.
        """
        if self._to_protocol:
            self._parse()
            return
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return  # not all of the head yet
        end += 4
        head = bytes(buffer[:end])
        del buffer[:end]
        self._raw.append(head)
        self._parse()
        if not self._upgraded:  # a refusal, with a body the protocol reads too
            self._hand_over_to_protocol()
            self._parse()

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
