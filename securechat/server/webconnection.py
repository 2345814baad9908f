"""One browser connection: protocol v1 over a WebSocket, one JSON payload per text message.

Theory of operation: websockets' threaded server gives each accepted socket a handler
thread, which runs the TLS and HTTP handshakes and then :meth:`WebConnection.serve`. Three
threads touch a connection:

1. the handler thread (``thread``) is the reader: it sends ``hello``, reads one message at
   a time with a timeout for its clocks (login deadline, heartbeat, idle) and hands each
   to the connection's :class:`RequestHandler` (server/requests.py, shared with the chat
   port: metering, login, the session caps, bye, the service's answers), which replies
   through this thread. Its sends block while
   the browser does not read, so it stops reading requests, as the TLS side does;
2. websockets' own receiving thread parses WebSocket frames (the library's, joined before
   the handler thread ends) and answers pings, each charged to the request meter first
   (:meth:`charge_control_frame`, server/webprotocol.py);
3. the writer thread drains the bounded :class:`Outbox` that other threads fill through
   :meth:`send` (fan-out, acks): each blob of length-prefixed frames becomes one text
   message per frame. It starts only once ``welcome`` is out, so nothing overtakes it, and
   it carries out :meth:`request_close` from other threads: final event, then close.

:meth:`send` never blocks: a full outbox marks a slow consumer, whom the writer drops.
As on the chat port, a sender (the delivery thread fanning out) writes the blob itself
when that cannot wait: the connection's :class:`Turn` is free (the writer holds it from
taking blobs until they are sent), nothing waits in the outbox, websockets' lock is free
and the kernel holds nothing unsent for the socket (:meth:`WebSocket.write_now`). That is
one write instead of a wake-up, a thread switch (and a GIL hand-over) and a write, for
each recipient of each message; anything else goes through the outbox as before.
A send that makes no progress for ``stuck_writer_timeout`` fails (the socket's timeout),
which ends the connection too. ``websockets`` sends from several threads under its own
lock, so each message goes out whole.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable

from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.protocol import OPEN
from websockets.sync.server import ServerConnection

from securechat import __version__
from securechat.accounts import Account
from securechat.config import Limits
from securechat.errors import (
    ErrorCode,
)
from securechat.protocol.frames import HEADER, HEADER_SIZE
from securechat.protocol.messages import (
    PROTOCOL_VERSION,
    Bye,
    Error,
    Event,
    Hello,
    Ping,
    encode,
)
from securechat.server.outbox import Outbox
from securechat.server.peer import PeerAddress
from securechat.server.requests import Closing, RequestHandler
from securechat.server.service import ChatService
from securechat.transport import Turn, format_address

log = logging.getLogger("securechat.server")

#: Seconds to get the final event and the WebSocket close out before giving up.
CLOSE_TIMEOUT = 1.0
#: The largest blob a sender writes itself: an empty send buffer takes it whole at once.
DIRECT_WRITE_MAX = 16 * 1024

_SIOCOUTQ = 0x5411  # Linux: bytes the kernel holds for the peer, not yet sent or not yet acked


def _no_room(sock: socket.socket, size: int, budget: int) -> bool:
    return False  # without a way to ask the kernel, every frame goes through the writer thread


def _kernel_room_check() -> Callable[[socket.socket, int, int], bool]:
    """The question a direct write asks first, where the kernel can answer it (Linux).

    fcntl is imported here, not at the top: every module the CLI loads must load where
    there is no fcntl (tests/test_client_portability.py).
    """
    if sys.platform != "linux":
        return _no_room
    try:
        import fcntl
    except ImportError:
        return _no_room

    def room_for(sock: socket.socket, size: int, budget: int) -> bool:
        """Whether the kernel takes ``size`` more bytes at once: what it still holds for
        the peer, plus them, stays within ``budget`` (a quarter of the send buffer)."""
        try:
            out = fcntl.ioctl(sock.fileno(), _SIOCOUTQ, b"\0\0\0\0")
        except OSError:  # closed meanwhile
            return False
        held = int.from_bytes(out, sys.byteorder, signed=True)
        return held >= 0 and held + size <= budget

    return room_for


_room_for = _kernel_room_check()


_TEXT_HEAD = (struct.Struct("!BB"), struct.Struct("!BBH"), struct.Struct("!BBQ"))


def text_frames(blob: bytes) -> bytes:
    """Each length-prefixed frame of ``blob`` as an unmasked, unfragmented WebSocket text
    frame (RFC 6455 5.2): what websockets writes for ``send_text`` on the server side when
    no extension is on, in one pass over the blob."""
    short, medium, long = _TEXT_HEAD
    parts, pos, end = [], 0, len(blob)
    while pos < end:
        (length,) = HEADER.unpack_from(blob, pos)
        pos += HEADER_SIZE
        if length < 126:
            parts.append(short.pack(0x81, length))
        elif length < 65536:
            parts.append(medium.pack(0x81, 126, length))
        else:
            parts.append(long.pack(0x81, 127, length))
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


class WebSocket(ServerConnection):
    """websockets' server connection, plus a write for senders that must never wait."""

    _budget = 0  # bytes write_now() may leave unacked in the kernel: a quarter of SO_SNDBUF

    def write_now(self, blob: bytes, framed: Callable[[bytes], bytes] = text_frames) -> bool:
        """Send each frame of ``blob`` (length-prefixed) as one text message if that cannot
        block; False: nothing was sent. ``framed`` turns a blob into WebSocket frames (a
        :class:`FramedOnce` shared by the port's connections).

        It cannot block when websockets' lock is free, the connection is open and the
        kernel has room for it at once (so a peer that stopped reading is never written
        to here). A write that fails all the same cuts the connection, whose threads then
        end it as for any broken socket.
        """
        mutex = self.protocol_mutex
        if not mutex.acquire(False):
            return False
        try:
            protocol, sock = self.protocol, self.socket
            if protocol.state is not OPEN:
                return False
            if not self._budget:
                try:
                    self._budget = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) // 4
                except OSError:  # closed meanwhile
                    return False
            if not _room_for(sock, len(blob) + 64, self._budget):
                return False
            if protocol.extensions or protocol.expect_continuation_frame:
                for payload in split_frames(blob):
                    protocol.send_text(payload)  # which checks and frames as it must
                data = b"".join(protocol.data_to_send())
            else:
                # Whoever held the lock before sent what the protocol had queued; anything
                # left (a failed send) goes first all the same.
                queued = protocol.data_to_send()
                data = b"".join([*queued, framed(blob)]) if queued else framed(blob)
            try:
                # One SSL_write: send() writes it all (no partial writes on an SSLSocket),
                # without sendall()'s loop over a memoryview.
                sent = sock.send(data)
                if sent < len(data):
                    sock.sendall(data[sent:])
            except OSError as exc:
                self.set_connection_exc(exc)
                with contextlib.suppress(OSError):  # already cut: nothing more to do
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
            return True
        finally:
            mutex.release()


class WebConnection:
    def __init__(
        self,
        *,
        address: tuple[str, int],
        accepted_at: float,
        service: ChatService,
        limits: Limits,
        ca_pem: str,
        on_authenticated: Callable[[WebConnection, Account], None],
        framed: Callable[[bytes], bytes] = text_frames,
    ) -> None:
        self.thread = threading.current_thread()  # websockets' handler thread for the socket
        self._limits = limits
        self._framed = framed
        self._auth_deadline = accepted_at + limits.auth_timeout
        self._outbox = Outbox(max_frames=limits.outbox_frames, max_bytes=limits.outbox_bytes)
        self._requests = RequestHandler(
            self,
            peer=PeerAddress(address[0], address[1]),
            accepted_at=accepted_at,
            auth_deadline=self._auth_deadline,
            service=service,
            limits=limits,
            ca_pem=ca_pem,
            on_authenticated=lambda account: on_authenticated(self, account),
            reply=self._send,
        )
        self._close_request: Closing | None = None  # set by other threads, acted on by the writer
        self._ended = False  # set by the handler thread when it is done
        self._sending = False  # the writer is inside a send (it may be blocked there)
        self._dropped = False  # the outbox overflowed: this connection is being dropped
        self._writing = threading.Event()  # the writer may start: welcome is out, or closing
        self._ws: ServerConnection | None = None
        self._direct: WebSocket | None = None  # self._ws, when senders may write to it
        self._turn = Turn()  # held by the writer from take() to sent, or by a direct write
        self._writer = threading.Thread(
            target=self._write_loop, name=f"web-writer {format_address(address)}"
        )
        self.socket: socket.socket | None = None  # the accepted socket, for abort()

    # --- called from any thread ----------------------------------------------------

    @property
    def peer_host(self) -> str:
        """The address every limit and throttle counts this connection under."""
        return self._requests.peer.host

    @property
    def peer(self) -> str:
        """``host:port``, for log lines."""
        return str(self._requests.peer)

    @property
    def address(self) -> PeerAddress:
        return self._requests.peer

    def readdress(self, address: PeerAddress) -> None:
        """Take the client's address from a trusted proxy's header (the handler thread,
        before the TLS handshake)."""
        self._requests.peer = address
        self.thread.name = f"web {address}"
        self._writer.name = f"web-writer {address}"

    @property
    def account(self) -> Account:
        account = self._requests.account
        assert account is not None, "not logged in"
        return account

    @property
    def user(self) -> str:
        return self.account.name

    @property
    def is_authenticated(self) -> bool:
        return self._requests.account is not None

    def send(self, frame: bytes) -> None:
        """Write a blob of frames now if that cannot wait, else queue it; never blocks.

        When the outbox overflows, the browser is dropped as a slow consumer: told so by
        the writer if it is free, cut off at once if the writer is stuck in a send to it.
        """
        direct = self._direct
        if direct is not None and len(frame) <= DIRECT_WRITE_MAX and self._turn.try_take():
            try:
                if (
                    self._writing.is_set()  # welcome is out (or closing: checked next)
                    and self._close_request is None
                    and not self._ended
                    and self._outbox.is_empty
                    and direct.write_now(frame, self._framed)
                ):
                    return
            finally:
                self._turn.give_back()
        if self._outbox.put(frame) or self._dropped or not self._outbox.overflowed:
            return  # queued, already being dropped, or closed (a stale fan-out snapshot)
        self._dropped = True
        log.warning("slow consumer %s: outbox full", self._who())
        self.request_close("slow consumer", Error(
            code=ErrorCode.SLOW_CONSUMER,
            message="you are not reading fast enough; reconnect and sync",
        ))  # fmt: skip
        if self._sending:
            self.abort()

    def charge_control_frame(self) -> bool:
        """Charge a WebSocket ping or pong like a request (server/webprotocol.py's Meter,
        called in websockets' receiving thread); False: drop it unanswered.

        A peer over the rate is closed as on the chat port, through the writer thread;
        once a close is asked for, every further control frame is dropped unmetered.
        """
        if self._close_request is not None or self._ended:
            return False
        try:
            return self._requests.charge_control_frame()
        except Closing as close:
            self.request_close(close.reason, close.final)
            return False

    def request_close(self, reason: str, final: Event | None = None) -> None:
        """Ask the writer thread to send ``final`` (if any) and close.

        Still in the TLS or HTTP handshake, there is nobody to tell: the socket is cut.
        """
        self._close_request = Closing(reason, final)
        self._writing.set()
        self._outbox.interrupt()
        if self._ws is None:
            self.abort()

    def release(self) -> None:
        """Free what a connection that never became a WebSocket holds (a plain HTTP request,
        a failed handshake). Called by the handler thread when websockets is done with it."""
        if self._ws is None:
            self._outbox.close()

    def abort(self) -> None:
        """Cut the TCP connection now (shutdown, when a close did not finish in time).

        ``shutdown()`` on the plain socket wakes any thread blocked on it; the SSLSocket
        method would also drop the TLS object under a thread still using it.
        """
        sock = self.socket
        if sock is not None:
            with contextlib.suppress(OSError):  # not connected any more: nothing to cut
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    # --- the handler thread --------------------------------------------------------

    def serve(self, ws: ServerConnection) -> None:
        """Run the session on an open WebSocket until it ends; closes it."""
        self._ws = ws
        if isinstance(ws, WebSocket):
            self._direct = ws
        reason = "closed"
        try:
            ws.socket.settimeout(self._limits.stuck_writer_timeout)  # bounds a blocked send
            self._writer.start()
            log.info("connect %s (web)", self._requests.peer.described())
            self._send(Hello(
                protocol=PROTOCOL_VERSION, server=f"securechat {__version__}",
                max_frame=self._limits.max_frame, heartbeat=self._limits.heartbeat,
            ))  # fmt: skip
            self._read_loop(ws)
        except Closing as close:
            reason = close.reason
            self._close(close.final)
        except ConnectionClosed as exc:
            reason = _closed_reason(exc, self._close_request)
        except Exception:
            # A bug in securechat: end this connection only, and say where it happened.
            log.exception("internal error on web connection %s", self._who())
            reason = "internal error"
            self._close(None)
        finally:
            self._finish(reason)

    def _read_loop(self, ws: ServerConnection) -> None:
        """Read until the connection ends; close requests end it through the writer."""
        last_heard = time.monotonic()
        pinged = False
        while True:
            now = time.monotonic()
            try:
                data = ws.recv(timeout=self._next_timer(now, last_heard), decode=False)
            except TimeoutError:
                pinged = self._check_timers(time.monotonic(), last_heard, pinged)
                continue
            last_heard, pinged = time.monotonic(), False
            if self._close_request is not None:
                continue  # closing (over the rate, shut down, ended): nothing more is answered
            self._requests.session.receive_message(data)
            self._process_requests()

    def _next_timer(self, now: float, last_heard: float) -> float:
        limits = self._limits
        if not self._requests.session.is_authenticated:
            return max(self._auth_deadline - now, 0.0)
        return max(min(limits.heartbeat, limits.idle_timeout) - (now - last_heard), 0.05) + 0.01

    def _check_timers(self, now: float, last_heard: float, pinged: bool) -> bool:
        limits = self._limits
        if not self._requests.session.is_authenticated:
            if now >= self._auth_deadline:
                raise Closing("login timed out", Error(
                    code=ErrorCode.AUTH_REQUIRED, message="no login within the time allowed",
                ))  # fmt: skip
            return pinged
        silent = now - last_heard
        if silent >= limits.idle_timeout:
            raise Closing("idle", Bye(reason="idle"))
        if silent >= limits.heartbeat and not pinged:
            self._send(Ping())
            return True
        return pinged

    def _process_requests(self) -> None:
        """Answer every complete request (see server/requests.py); the writer starts at login."""
        while self._requests.answer_next():
            if self._requests.account is not None and not self._writing.is_set():
                self._writing.set()  # welcome is out: the fan-out queued since may follow
                self._outbox.interrupt()

    def _send(self, event: Event) -> None:
        assert self._ws is not None
        self._ws.send(encode(event).decode())

    def _close(self, final: Event | None) -> None:
        """Send ``final`` if the browser can still take it, then the WebSocket close."""
        ws = self._ws
        assert ws is not None
        try:
            if final is not None:
                self._send(final)
            ws.close(CloseCode.NORMAL_CLOSURE)
        except (ConnectionClosed, OSError):
            pass  # the browser is gone or stuck; nothing more to tell it

    def _finish(self, reason: str) -> None:
        self._requests.disconnect()
        self._requests.session.close()
        self._ended = True
        self._writing.set()
        self._outbox.interrupt()
        if self._writer.is_alive():
            self._writer.join()  # a final event it is sending goes out before the close
        if self._ws is not None:
            self._close(None)
            receiver = self._ws.recv_events_thread
            receiver.join(CLOSE_TIMEOUT)
            if receiver.is_alive():
                self.abort()
                receiver.join()
        self._outbox.close()
        log.info("disconnect %s: %s", self._who(), reason)

    # --- the writer thread ---------------------------------------------------------

    def _write_loop(self) -> None:
        """Send what other threads queued, in order; carry out close requests."""
        outbox = self._outbox
        poller = select.poll()
        poller.register(outbox.waker.fileno(), select.POLLIN)
        self._writing.wait()
        try:
            while True:
                with self._turn:  # no direct write overtakes what is taken here
                    # take() clears the waker first, so the state is read after it: read
                    # before, an end or a close asked for in between was slept through.
                    blobs = outbox.take()
                    if self._ended:
                        return
                    if self._close_request is not None:
                        self._close(self._close_request.final)
                        return
                    if outbox.overflowed:
                        continue  # send() has asked for the close
                    self._sending = True
                    for blob in blobs:
                        for payload in split_frames(blob):
                            self._ws_send(payload)
                    self._sending = False
                poller.poll()
        except (ConnectionClosed, OSError):
            pass  # the reader meets the same end and reports it

    def _ws_send(self, payload: bytes) -> None:
        assert self._ws is not None
        self._ws.send(payload.decode())

    def _who(self) -> str:
        return self._requests.who()


def _closed_reason(exc: ConnectionClosed, request: Closing | None) -> str:
    if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
        return "message too big"
    if request is not None:
        return request.reason
    if exc.rcvd is None:
        return "connection lost"
    return f"closed by the browser ({exc.rcvd.code})"
