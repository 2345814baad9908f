"""A file's bytes to and from the server's web port (#27): one HTTPS request per ticket.

Theory of operation: :func:`upload` and :func:`download` dial the chat server's host at
the ticket's web port with the client's TLS context (``dialer.connect_tls``: TLS 1.3, the
deployment's CA, the host name checked), write one HTTP/1.1 request with ``h11`` and the
ticket as ``Authorization: Bearer``, and read the one answer. An upload's body is read
from disk and written a chunk at a time, a download's body written to disk as it comes:
neither holds a whole file in memory. Each wait for the socket is bounded by ``timeout``
(a transfer that makes progress may take as long as it needs). A refusal's JSON body
becomes the :class:`RequestError` of its code, as an ``error`` frame would.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable
from typing import BinaryIO

import h11

from securechat.client.escaping import escape
from securechat.client.link import Endpoint
from securechat.client.outgoing import request_error
from securechat.dialer import connect_tls
from securechat.errors import ConnectionLost, ServerError
from securechat.protocol.files import Attachment, FileTicket, attachment
from securechat.protocol.messages import Error
from securechat.transport import TlsStream

__all__ = ["CHUNK", "Progress", "download", "upload"]

#: Bytes read from disk (or taken from h11) and written at a time.
CHUNK = 256 * 1024
#: An answer's body larger than this is not a refusal of ours (which is a few hundred bytes).
MAX_ANSWER = 64 * 1024

#: Called with (bytes done, bytes in all) as a transfer goes on.
Progress = Callable[[int, int], None]


def upload(
    endpoint: Endpoint, context: ssl.SSLContext, ticket: FileTicket, source: BinaryIO,
    size: int, *, timeout: float, progress: Progress | None = None,
) -> Attachment:  # fmt: skip
    """Send ``size`` bytes of ``source`` with an upload ticket; the file as stored.

    Raises:
        FileTooLarge, QuotaExceeded, TooManyUploads, BadTicket, ...: the server refused it.
        ConnectionLost: the web port cannot be reached, or the connection broke.
    """
    http = _Exchange(endpoint, context, ticket, timeout=timeout)
    try:
        http.send(h11.Request(
            method="POST", target=ticket.path,
            headers=[*http.headers, ("Content-Length", str(size))],
        ))  # fmt: skip
        sent = 0
        try:
            while sent < size:
                data = source.read(min(CHUNK, size - sent))
                if not data:
                    raise ConnectionLost(f"the file ended after {sent} of {size} bytes")
                http.send(h11.Data(data=data))
                sent += len(data)
                if progress is not None:
                    progress(sent, size)
            http.send(h11.EndOfMessage())
        except ConnectionLost:
            if not http.has_answer():  # the server refused it mid-way: say why
                raise
        status, body = http.answer(sink=None)
        if status != 201:
            raise _refusal(status, body)
        return attachment(json.loads(body))
    finally:
        http.close()


def download(
    endpoint: Endpoint, context: ssl.SSLContext, ticket: FileTicket, sink: BinaryIO,
    *, timeout: float, progress: Progress | None = None,
) -> int:  # fmt: skip
    """Fetch the file a download ticket opens into ``sink``; how many bytes came.

    Raises:
        NoSuchFile, BadTicket, ...: the server refused it.
        ConnectionLost: the web port cannot be reached, the connection broke, or the body
            was cut short.
    """
    http = _Exchange(endpoint, context, ticket, timeout=timeout)
    try:
        http.send(h11.Request(method="GET", target=ticket.path, headers=http.headers))
        http.send(h11.EndOfMessage())
        status, body = http.answer(sink=sink, progress=progress)
        if status != 200:
            raise _refusal(status, body)
        return http.received
    finally:
        http.close()


class _Exchange:
    """One request and its answer on a fresh TLS connection to the web port."""

    def __init__(
        self, endpoint: Endpoint, context: ssl.SSLContext, ticket: FileTicket, *, timeout: float
    ) -> None:
        host = endpoint.server_name or endpoint.host
        self.headers = [
            ("Host", f"{host}:{ticket.port}"),
            ("Authorization", f"Bearer {ticket.ticket}"),
            ("Connection", "close"),
        ]
        self._timeout = timeout
        self._conn = h11.Connection(h11.CLIENT)
        self._stream: TlsStream = connect_tls(
            (endpoint.host, ticket.port), context, timeout=timeout,
            server_name=endpoint.server_name, ca_file=endpoint.ca_file,
        )  # fmt: skip
        self._early: list[h11.Event] = []  # an answer that came while we were still sending
        self.received = 0

    def send(self, event: h11.Event) -> None:
        """Raises: ConnectionLost."""
        stream = self._stream
        stream.queue(self._conn.send(event) or b"")
        stream.flush_until(time.monotonic() + self._timeout)

    def has_answer(self) -> bool:
        """Whether the server has answered already (a refusal before the body's end)."""
        try:
            while data := self._stream.receive():
                self._conn.receive_data(data)
        except ConnectionLost:
            pass  # what came before the end is in h11 now
        try:
            event = self._conn.next_event()
        except h11.RemoteProtocolError:
            return False
        if isinstance(event, h11.Response):
            self._early.append(event)
            return True
        return False

    def answer(
        self, *, sink: BinaryIO | None, progress: Progress | None = None
    ) -> tuple[int, bytes]:
        """The status, and the body (written to ``sink`` when given, for a 200)."""
        status, total, body = 0, 0, bytearray()
        while True:
            event = self._early.pop(0) if self._early else self._next()
            if isinstance(event, h11.Response):
                status = event.status_code
                lengths = [v for n, v in event.headers if n == b"content-length"]
                total = int(lengths[0]) if lengths else 0
            elif isinstance(event, h11.Data):
                if sink is not None and status == 200:
                    sink.write(event.data)
                    self.received += len(event.data)
                    if progress is not None:
                        progress(self.received, total)
                elif len(body) + len(event.data) <= MAX_ANSWER:
                    body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return status, bytes(body)

    def _next(self) -> h11.Event:
        conn = self._conn
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise ConnectionLost(f"the web port's answer broke off: {exc}") from exc
            if event is h11.NEED_DATA:
                try:
                    data = self._stream.receive_until(time.monotonic() + self._timeout)
                except ConnectionLost:
                    data = b""  # h11 says whether the answer was complete
                conn.receive_data(data)
                continue
            if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                raise ConnectionLost("the web port closed the connection before answering")
            assert isinstance(
                event,
                h11.Response
                | h11.InformationalResponse
                | h11.Data
                | h11.EndOfMessage
                | h11.Request,
            )
            return event

    def close(self) -> None:
        self._stream.close()


def _refusal(status: int, body: bytes) -> Exception:
    try:
        refusal = json.loads(body)
        code, message = str(refusal["code"]), str(refusal["message"])
    except (ValueError, KeyError, TypeError):
        text = escape(body[:200].decode("utf-8", "replace"))
        return ServerError(f"the web port answered HTTP {status}: {text}")
    return request_error(Error(code=code, message=message))  # an unknown code: ServerError
