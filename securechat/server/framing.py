"""What a port puts around protocol v1's messages on the wire: the seam between the driver and a port.

A connection's driver (connection.py) owns the socket and the thread; a :class:`Framing`
owns the bytes' meaning, without I/O. The driver feeds it every byte it reads
(:meth:`~Framing.receive_data`), which hands each whole message to the connection's
:class:`ServerSession`, and writes what :meth:`~Framing.data_to_send` returns (answers
the framing makes itself) and what it frames for the session (:meth:`~Framing.event`,
:meth:`~Framing.blob`). The chat port's :class:`ChatFraming` is protocol v1's own
length prefix, open from the first byte; the web port's is ``webframing.WebFraming``:
HTTP/1.1 until a WebSocket upgrade on ``/ws``, then one text message per payload.
"""

from __future__ import annotations

from typing import Protocol

from securechat.protocol.frames import encode_frame
from securechat.protocol.session import ServerSession


class Transfer(Protocol):
    """A file request under way on the web port (filerequests.py): the driver pulls a
    download's body a chunk at a time while its write queue has room."""

    @property
    def pending(self) -> bool:
        """More of the body is to be pulled."""
        ...

    def pull(self) -> None:
        """Queue the next chunk (in the framing's :meth:`~Framing.data_to_send`)."""
        ...

    def abort(self) -> None:
        """The connection ends: drop a half-written upload, close an open file."""
        ...


class Framing(Protocol):
    """The sans-I/O layer between a connection's TLS stream and its session."""

    @property
    def is_open(self) -> bool:
        """Session messages flow both ways (the chat port from the start; the web port
        from the WebSocket upgrade until a close)."""
        ...

    @property
    def ending(self) -> str | None:
        """Why the framing has ended the exchange, once it has: write what
        :meth:`data_to_send` returns, then close the connection."""
        ...

    @property
    def transfer(self) -> Transfer | None:
        """The file request under way, if any: its own clock bounds the connection."""
        ...

    @property
    def half_close(self) -> bool:
        """Once :attr:`ending` is set: end our side of the stream first and read until the
        peer ends its own, rather than closing outright (websockets' server rule)."""
        ...

    def receive_data(self, data: bytes) -> bool:
        """Take bytes read from the peer; True when the session has just opened.

        Raises:
            Closing: the peer must be closed (control frames over the rate).
        """
        ...

    def data_to_send(self) -> list[bytes]:
        """The framing's own output since the last call (HTTP answers, pongs, a close)."""
        ...

    def event(self, payload: bytes) -> bytes:
        """One JSON payload (an event) as wire bytes."""
        ...

    def blob(self, blob: bytes) -> bytes:
        """A blob of length-prefixed frames (a fan-out, an ack) as wire bytes."""
        ...

    def close(self) -> None:
        """End the exchange from our side (queue a WebSocket close); idempotent. Once
        :attr:`ending` is set, nothing more is awaited from the peer."""
        ...

    def describe_end(self, reason: str) -> str:
        """The log's reason for a connection that ended with ``reason`` while open."""
        ...


class ChatFraming:
    """The chat port: 4-byte length-prefixed frames (protocol/frames.py), both ways."""

    __slots__ = ("_ending", "_session")

    def __init__(self, session: ServerSession) -> None:
        self._session = session
        self._ending: str | None = None

    @property
    def is_open(self) -> bool:
        return self._ending is None

    @property
    def ending(self) -> str | None:
        return self._ending

    @property
    def half_close(self) -> bool:
        return False

    @property
    def transfer(self) -> Transfer | None:
        return None  # files go over the web port only

    def receive_data(self, data: bytes) -> bool:
        self._session.receive_data(data)
        return False

    def data_to_send(self) -> list[bytes]:
        return []

    def event(self, payload: bytes) -> bytes:
        return encode_frame(payload)

    def blob(self, blob: bytes) -> bytes:
        return blob

    def close(self) -> None:
        self._ending = "closed"  # no closing handshake: the TLS connection just closes

    def describe_end(self, reason: str) -> str:
        return reason
