"""The web port's framing: HTTP/1.1 (h11), then a WebSocket (websockets' sans-I/O protocol).

Theory of operation: a :class:`WebFraming` starts in HTTP. ``h11`` parses each request;
its head is bounded (``max_http_head``, ``max_http_line``, ``max_http_headers``: 431 or
414 past them). A request for ``/ws`` must come from one of the server's own origins
(403; 400 for more than one ``Origin``) with GET (405); websockets'
:meth:`~websockets.server.ServerProtocol.accept` then checks the upgrade and makes the
101, or its 400/426 refusal. A file request (under ``/files``) goes to a FileExchange
(filerequests.py); any other to the shipped files (webfiles.py), but the two device POSTs
under ``/ws`` (webdevices.py): their small bodies arrive as h11's ``Data`` events, bounded
by ``webdevices.MAX_BODY`` (413), from an own origin. The upgrade hands the device cookie,
if the :class:`DeviceDoor` finds it valid, and the User-Agent to ``on_upgrade``. Every
answer but the 101 carries ``Connection: close`` (and the security headers): one request
per connection, then the driver closes.

After the 101, websockets' :class:`~websockets.server.ServerProtocol` (built OPEN, with
the same ``max_size``) parses the frames: each whole text (or binary) message goes to the
connection's :class:`ServerSession`, as one payload. A ping or pong from the browser is
charged to the request meter first; websockets has already queued its pong, which is
taken out of the output again if the meter refuses the ping. A message over ``max_size``
makes websockets fail the connection with close code 1009; the ``error``
``frame_too_large`` goes out just ahead of that close. When websockets ends the TCP
stream (the empty write it asks for), :attr:`WebFraming.ending` says why, and the driver
writes what is left and closes. Pure: no sockets, no threads.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Callable

import h11
from websockets.datastructures import Headers
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import OPEN
from websockets.server import ServerProtocol

from securechat.config import Limits
from securechat.errors import ErrorCode
from securechat.protocol.messages import Error, encode
from securechat.protocol.session import ServerSession
from securechat.server import webframes
from securechat.server.filerequests import FileExchange, is_file_path
from securechat.server.files import FileService
from securechat.server.requests import Closing
from securechat.server.webdevices import (
    MAX_BODY,
    PATHS,
    DeviceDoor,
    DevicePost,
    DevicePosts,
    device_cookie,
)
from securechat.server.webfiles import WEBSOCKET_PATH, Answer, Origins, StaticFiles
from securechat.server.webframes import text_frame, text_frames

log = logging.getLogger("securechat.server")

#: Charges one control frame (server/requests.py); False: refused, leave it unanswered.
Meter = Callable[[], bool]
#: Told at the upgrade: the valid device credential it carried (or None), the User-Agent.
OnUpgrade = Callable[[str | None, str], None]


class WebFraming:
    def __init__(
        self,
        *,
        session: ServerSession,
        meter: Meter,
        files: StaticFiles,
        origins: Origins,
        limits: Limits,
        peer: Callable[[], str],
        framed: Callable[[bytes], bytes] = text_frames,
        door: DeviceDoor | None = None,
        posts: DevicePosts | None = None,
        on_upgrade: OnUpgrade | None = None,
        transfers: FileService | None = None,
    ) -> None:
        """``peer`` names the connection in log lines; ``framed`` frames a fan-out blob
        (a :class:`~securechat.server.webframes.FramedOnce` shared by the port);
        ``door``, ``posts`` and ``on_upgrade``: "stay signed in" (None: not offered);
        ``transfers``: files (None: not offered)."""
        self._session = session
        self._meter = meter
        self._files = files
        self._origins = origins
        self._limits = limits
        self._peer = peer
        self._framed = framed
        self._http: h11.Connection | None = h11.Connection(
            h11.SERVER, max_incomplete_event_size=limits.max_http_head
        )
        self._ws: ServerProtocol | None = None
        self._out: list[bytes] = []
        self._ending: str | None = None
        self._fragments: list[bytes] | None = None  # a fragmented message so far
        self._closed_by = "closed"  # why websockets ends the stream, once it does
        self._door, self._posts, self._on_upgrade = door, posts, on_upgrade
        self._post: DevicePost | None = None  # a device POST whose body is still arriving
        self._transfers = transfers
        self._exchange: FileExchange | None = None  # a file request (filerequests.py)

    @property
    def is_open(self) -> bool:
        return self._ws is not None and self._ws.state is OPEN

    @property
    def ending(self) -> str | None:
        exchange = self._exchange
        return self._ending if exchange is None or self._ending else exchange.ending

    @property
    def transfer(self) -> FileExchange | None:
        return self._exchange

    @property
    def half_close(self) -> bool:
        return self._ws is not None and self._ending is not None

    def data_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out if self._exchange is None else [*out, *self._exchange.data_to_send()]

    def event(self, payload: bytes) -> bytes:
        return text_frame(payload)

    def blob(self, blob: bytes) -> bytes:
        return self._framed(blob)

    def close(self) -> None:
        ws = self._ws
        if self._exchange is not None:
            self._exchange.abort()
        if ws is None:
            self._http = None
            self._ending = self._ending or "closed"
        elif ws.state is OPEN:
            ws.send_close(CloseCode.NORMAL_CLOSURE)
            self._take_output(ws, [])

    def describe_end(self, reason: str) -> str:
        ws = self._ws
        if ws is not None and ws.state is OPEN:
            return "connection lost" if reason == "closed by peer" else reason
        return reason

    def receive_data(self, data: bytes) -> bool:
        """Raises Closing: a ping or pong over the rate (see requests.py)."""
        if self._ws is not None:
            self._receive_frames(self._ws, data)
            return False
        if self._http is None:
            return False  # answered: what else comes is not read
        self._http.receive_data(data)
        if self._exchange is not None:
            self._exchange.receive()
            return False
        try:
            return self._receive_request(self._http)
        except Closing:  # the first frames, sent with the upgrade, were over the rate
            raise
        except Exception:
            if self._http is None:  # answered, or a WebSocket already: the driver logs it
                raise
            # A bug in securechat: answer 500 (with the headers) as well as log it.
            log.exception("internal error on a web request from %s", self._peer())
            self._answer(self._files.error(http.HTTPStatus.INTERNAL_SERVER_ERROR), "internal error")
            return False

    # --- HTTP ----------------------------------------------------------------------

    def _receive_request(self, conn: h11.Connection) -> bool:
        if self._post is not None:
            return self._receive_body(conn, self._post)
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            status = http.HTTPStatus(exc.error_status_hint)
            log.info("bad HTTP request from %s: %s (%d)", self._peer(), exc, status)
            self._answer(self._files.error(status), f"bad HTTP request: {exc}")
            return False
        if event is h11.NEED_DATA:
            return False
        if not isinstance(event, h11.Request):  # pragma: no cover - h11 starts with a request
            self._answer(self._files.bad_request("no request"), "bad HTTP request")
            return False
        method, target = event.method.decode("ascii"), event.target.decode("ascii")
        refusal = self._oversized(event)
        if refusal is not None:
            log.info("bad HTTP request from %s: %s", self._peer(), refusal.body.decode().strip())
            self._answer(refusal, "bad HTTP request: too large")
            return False
        path = target.split("?", 1)[0]
        if path in PATHS and self._posts is not None:
            return self._start_post(conn, event, method, path)
        if self._transfers is not None and is_file_path(path):
            self._exchange = FileExchange(conn, self._transfers, self._origins, self._peer)
            self._exchange.start(event)
            return False
        if path != WEBSOCKET_PATH:
            answer = self._files.answer(method, target)
            self._answer(answer, f"answered {method} {target[:100]}: {answer.status.value}")
            return False
        return self._upgrade(conn, event, method, target)

    def _oversized(self, request: h11.Request) -> Answer | None:
        limits = self._limits
        if len(request.target) > limits.max_http_line:
            return self._files.error(http.HTTPStatus.REQUEST_URI_TOO_LONG)
        headers = request.headers.raw_items()
        if len(headers) > limits.max_http_headers or any(
            len(name) + len(value) + 2 > limits.max_http_line for name, value in headers
        ):
            return self._files.error(http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        return None

    def _origin_refused(self, event: h11.Request, what: str) -> bool:
        """Answer a request that does not come from exactly one of our origins; True if so."""
        origins = [value for name, value in event.headers if name == b"origin"]
        origin = origins[0].decode("latin-1") if len(origins) == 1 else None
        if len(origins) > 1:
            log.warning("refused %s from %s: %d Origin headers", what, self._peer(), len(origins))
            self._answer(self._files.bad_request("more than one Origin header"), f"refused {what}")
            return True
        if not self._origins.allows(origin):
            log.warning(
                "refused %s from %s: origin %r is not this server's",
                what, self._peer(), (origin or "")[:100],
            )  # fmt: skip
            self._answer(self._files.forbidden("this origin may not connect"), f"refused {what}")
            return True
        return False

    def _start_post(self, conn: h11.Connection, event: h11.Request, method: str, path: str) -> bool:
        """A device POST: checked like an upgrade, then its body is read (bounded)."""
        if self._origin_refused(event, "a device request"):
            return False
        if method != "POST":
            status = http.HTTPStatus.METHOD_NOT_ALLOWED
            self._answer(self._files.error(status), f"refused a device request: {method}")
            return False
        length = next((v for n, v in event.headers if n == b"content-length"), b"0")
        if int(length) > MAX_BODY:  # h11 has checked it is a number
            self._answer(
                self._files.error(http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE), "device body too big"
            )
            return False
        self._post = DevicePost(path, device_cookie(event.headers.raw_items()))
        return self._receive_body(conn, self._post)

    def _receive_body(self, conn: h11.Connection, post: DevicePost) -> bool:
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._answer(self._files.error(http.HTTPStatus(exc.error_status_hint)), str(exc))
                return False
            if event is h11.NEED_DATA:
                return False
            if isinstance(event, h11.Data):
                post.body += bytes(event.data)
                if len(post.body) > MAX_BODY:
                    status = http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE
                    self._answer(self._files.error(status), "device body too big")
                    return False
            elif isinstance(event, h11.EndOfMessage):
                assert self._posts is not None
                self._post = None
                answer, reason = self._posts.answer(post.path, post.body, post.cookie)
                log.info("%s for %s", reason, self._peer())
                self._answer(answer, reason)
                return False

    def _upgrade(self, conn: h11.Connection, event: h11.Request, method: str, path: str) -> bool:
        """Open the WebSocket if the request may; True when it is open."""
        if self._origin_refused(event, "a WebSocket"):
            return False
        if method != "GET":
            self._answer(self._files.answer(method, path), f"refused upgrade: {method}")
            return False
        headers = Headers(  # no cookie: websockets logs the request's headers at DEBUG
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in event.headers.raw_items()
            if name.lower() != b"cookie"
        )
        handshake = ServerProtocol(max_size=self._limits.max_frame)
        response = handshake.accept(Request(path, headers))
        if response.status_code != 101:
            log.info(
                "refused a WebSocket from %s: %s (%d)",
                self._peer(), handshake.handshake_exc, response.status_code,
            )  # fmt: skip
            refusal = webframes.websockets_answer(self._files.headers, response)
            self._answer(refusal, "refused upgrade")
            return False
        trailing = self._switch(conn)
        if trailing is None:
            self._answer(self._files.bad_request("a body with the upgrade"), "bad HTTP request")
            return False
        self._device_at_upgrade(event)
        handshake.send_response(response)
        self._out.extend(handshake.data_to_send())
        self._http = None
        self._ws = ServerProtocol(state=OPEN, max_size=self._limits.max_frame)
        if trailing:
            self._receive_frames(self._ws, trailing)
        return True

    def _device_at_upgrade(self, event: h11.Request) -> None:
        """Hand a valid device cookie (checked here, after the Origin) and the User-Agent on."""
        if self._on_upgrade is None:
            return
        credential = device_cookie(event.headers.raw_items())
        if credential is not None and (self._door is None or not self._door.valid(credential)):
            log.info("a WebSocket from %s carried a device cookie no longer valid", self._peer())
            credential = None
        agents = [value for name, value in event.headers if name == b"user-agent"]
        self._on_upgrade(credential, agents[0].decode("latin-1")[:500] if agents else "")

    def _switch(self, conn: h11.Connection) -> bytes | None:
        """What came after the upgrade request (the first frames), or None if it had a body."""
        while (event := conn.next_event()) is not h11.PAUSED:
            if not isinstance(event, h11.EndOfMessage):
                return None
        return conn.trailing_data[0]

    def _answer(self, answer: Answer, reason: str) -> None:
        """Write ``answer`` with ``Connection: close``; the exchange then ends.

        h11 writes it even after a request it could not parse (its side is then ERROR,
        ours still IDLE), and knows a HEAD answer has no body.
        """
        conn = self._http
        assert conn is not None
        headers = [(n, v) for n, v in answer.headers if n.lower() != "connection"]
        headers.append(("Connection", "close"))
        status = answer.status
        for event in (
            h11.Response(status_code=status, headers=headers, reason=status.phrase),
            *([h11.Data(data=answer.body)] if answer.body else []),
            h11.EndOfMessage(),
        ):
            self._out.append(conn.send(event) or b"")
        self._http = None
        self._ending = reason

    # --- WebSocket -------------------------------------------------------------------

    def _receive_frames(self, ws: ServerProtocol, data: bytes) -> None:
        refused: list[bytes] = []  # the pongs websockets queued for pings the meter refused
        ws.receive_data(data)
        frames = [frame for frame in ws.events_received() if isinstance(frame, Frame)]
        done = 0
        try:
            for frame in frames:
                self._received(frame, refused)
                done += 1
        except Closing:  # over the rate: no pong for this ping or any after it
            refused.extend(webframes.pong_of(f) for f in frames[done:] if f.opcode is Opcode.PING)
            raise
        finally:
            self._take_output(ws, refused)

    def _received(self, frame: Frame, refused: list[bytes]) -> None:
        opcode = frame.opcode
        if opcode is Opcode.PING or opcode is Opcode.PONG:
            # The meter first: a refused pong counts as much as a refused ping.
            if self.is_open and not self._meter() and opcode is Opcode.PING:
                refused.append(webframes.pong_of(frame))
        elif opcode is Opcode.CLOSE:
            close = Close.parse(frame.data)
            self._closed_by = f"closed by the browser ({close.code})"
        elif self._fragments is None and frame.fin:
            self._session.receive_message(bytes(frame.data))
        else:  # a fragment: websockets bounds the message's total size
            fragments = self._fragments = self._fragments or []
            fragments.append(bytes(frame.data))
            if frame.fin:
                self._session.receive_message(b"".join(fragments))
                self._fragments = None

    def _take_output(self, ws: ServerProtocol, refused: list[bytes]) -> None:
        """Move websockets' output to ours, without the refused pongs; see the docstring."""
        for data in ws.data_to_send():
            if data in refused:
                refused.remove(data)
            elif not data:  # websockets ends the stream: the driver closes after writing
                self._ending = self._ending or self._closed_by
            else:
                if webframes.is_too_big_close(data):
                    self._closed_by = "message too big"
                    self._out.append(text_frame(encode(Error(
                        code=ErrorCode.FRAME_TOO_LARGE,
                        message=f"message larger than {self._limits.max_frame} bytes",
                    ))))  # fmt: skip
                self._out.append(data)
