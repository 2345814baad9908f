"""Protocol v1's payloads as WebSocket text frames, written without a library call per frame.

The web port's data frames (server to browser) are built here, not by websockets'
``send_text``: they are unmasked and unfragmented, with no extension (compression is off
on this port), which RFC 6455 5.2 fixes byte for byte, and a fan-out frames one blob once
for every browser in the room (:class:`FramedOnce`). websockets' sans-I/O protocol still
makes every control frame (pong, close). Pure: no sockets.
"""

from __future__ import annotations

import http
import struct

from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Response

from securechat.protocol.frames import HEADER, HEADER_SIZE
from securechat.server.webfiles import Answer

_SHORT, _MEDIUM, _LONG = struct.Struct("!BB"), struct.Struct("!BBH"), struct.Struct("!BBQ")
_TEXT_FIN = 0x81


def text_head(length: int) -> bytes:
    """The header of an unmasked, final text frame of ``length`` payload bytes."""
    if length < 126:
        return _SHORT.pack(_TEXT_FIN, length)
    if length < 65536:
        return _MEDIUM.pack(_TEXT_FIN, 126, length)
    return _LONG.pack(_TEXT_FIN, 127, length)


def text_frame(payload: bytes) -> bytes:
    """One payload as one text frame."""
    return text_head(len(payload)) + payload


def text_frames(blob: bytes) -> bytes:
    """Each length-prefixed frame of ``blob`` as one text frame, in one pass over the blob."""
    parts, pos, end = [], 0, len(blob)
    while pos < end:
        (length,) = HEADER.unpack_from(blob, pos)
        pos += HEADER_SIZE
        parts.append(text_head(length))
        parts.append(blob[pos : pos + length])
        pos += length
    return b"".join(parts)


class FramedOnce:
    """:func:`text_frames` of the last blob asked for: a fan-out hands the same blob object
    to every browser in the room (server/delivery.py), framed here once for all of them.

    Shared by a web port's connections; any thread may call it: the entry is one tuple,
    read and replaced whole, and a miss only frames again.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: tuple[bytes, bytes] | None = None

    def __call__(self, blob: bytes) -> bytes:
        last = self._last
        if last is not None and last[0] is blob:
            return last[1]
        frames = text_frames(blob)
        self._last = (blob, frames)
        return frames


def split_frames(blob: bytes) -> list[bytes]:
    """The payloads of a blob of length-prefixed frames (as the hub and committer send)."""
    payloads, pos = [], 0
    while pos < len(blob):
        (length,) = HEADER.unpack_from(blob, pos)
        pos += HEADER_SIZE
        payloads.append(blob[pos : pos + length])
        pos += length
    return payloads


_CLOSE = 0x88  # the first byte of an unmasked close frame (RFC 6455 5.2)
_TOO_BIG = CloseCode.MESSAGE_TOO_BIG.to_bytes(2, "big")  # a close's code, as it is written


def is_too_big_close(data: bytes) -> bool:
    """Whether ``data`` (websockets' output) is its close for a message over ``max_size``."""
    return data[0] == _CLOSE and len(data) >= 4 and data[2:4] == _TOO_BIG


def pong_of(ping: Frame) -> bytes:
    """The pong websockets queues for ``ping``, as it writes it."""
    return Frame(Opcode.PONG, ping.data).serialize(mask=False)


def websockets_answer(own: tuple[tuple[str, str], ...], response: Response) -> Answer:
    """websockets' refusal, with the security headers ``own`` every answer carries."""
    names = {name.lower() for name, _ in own}
    headers = [(n, v) for n, v in response.headers.raw_items() if n.lower() not in names]
    status = http.HTTPStatus(response.status_code)
    return Answer(status, (*own, *headers), bytes(response.body))
