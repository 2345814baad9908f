"""Length-prefixed framing: a 4-byte unsigned big-endian length, then that many bytes.

Pure code: bytes in, payloads out. The decoder judges a frame by its header before it
buffers any of the body, so a peer announcing 4 GiB costs us four bytes, not four GiB.
"""

from __future__ import annotations

import struct

from securechat.errors import FrameTooLarge

HEADER = struct.Struct(">I")
HEADER_SIZE = HEADER.size


def encode_frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its length."""
    return HEADER.pack(len(payload)) + payload


class FrameDecoder:
    """Reassemble frames from arbitrary slices of a byte stream.

    ``feed()`` adds bytes; ``next_frame()`` pulls one complete payload at a time, so a
    caller can stop between frames (to check a login, say) and resume later. Unconsumed
    bytes never exceed max_frame + 4 plus the last slice fed. After ``next_frame()`` has
    raised :class:`FrameTooLarge` the stream has no framing left and must be abandoned.
    """

    __slots__ = ("_buffer", "_max_frame", "_need", "_pos")

    def __init__(self, max_frame: int) -> None:
        self._max_frame = max_frame
        self._buffer = bytearray()
        self._pos = 0  # start of the unconsumed bytes in _buffer
        self._need = 0  # body length of the frame whose header was read, 0 when none

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a payload."""
        return len(self._buffer) - self._pos

    def feed(self, data: bytes) -> None:
        if self._pos:
            del self._buffer[: self._pos]
            self._pos = 0
        self._buffer += data

    def next_frame(self) -> bytes | None:
        """The next complete payload, or None until more bytes arrive.

        Raises:
            FrameTooLarge: a header announced 0 bytes or more than max_frame.
        """
        buffer, pos = self._buffer, self._pos
        if not self._need:
            if len(buffer) - pos < HEADER_SIZE:
                return None
            (length,) = HEADER.unpack_from(buffer, pos)
            if length == 0 or length > self._max_frame:
                self._buffer, self._pos = bytearray(), 0
                raise FrameTooLarge(f"frame length {length} is outside 1..{self._max_frame} bytes")
            pos += HEADER_SIZE
            self._pos, self._need = pos, length
        end = pos + self._need
        if len(buffer) < end:
            return None
        self._pos, self._need = end, 0
        return bytes(buffer[pos:end])
