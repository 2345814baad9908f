"""One of a worker's TLS connections: connect, handshake, log in, then read and write.

Everything is non-blocking and driven by the worker's loop, which calls in when the
selector reports the socket; a connection changes only what the selector watches for it
(:meth:`Connection.watch`). Its states run CONNECTING -> HANDSHAKE (-> UPGRADE, on the
web port) -> LOGIN (-> JOINING) -> READY, and CLOSED from any of them. Its
:class:`~.framing.Framing` turns the frames it queues into what the socket carries and
the bytes it reads back into payloads. A connection that ends raises :class:`Closed`,
whose message says why, and the worker settles the rest (a failed login, a lost session).
The fan-out counters live here too, one set per session, reset for each run, and the
idle workload's count of the frames a session received.
"""

from __future__ import annotations

import enum
import errno
import os
import selectors
import socket
import ssl
import time

from securechat.bench.commands import Endpoint, Role
from securechat.bench.worker.framing import Framing
from securechat.bench.worker.wire import read_event
from securechat.protocol.messages import Bye, Error, Joined, Welcome

READ_SIZE = 256 * 1024
TLS_RECORD = 16384  # the most plaintext one TLS record carries; recv() returns one record
READ_BUDGET = 1024 * 1024  # bytes read from one socket per turn, so no socket starves others


class State(enum.Enum):
    CONNECTING = "connecting"
    HANDSHAKE = "handshake"
    UPGRADE = "upgrade"  # the web port's HTTP upgrade, answered before the login goes out
    LOGIN = "login"
    JOINING = "joining"
    READY = "ready"
    CLOSED = "closed"


READING = frozenset({State.UPGRADE, State.LOGIN, State.JOINING, State.READY})


class Closed(Exception):
    """The connection ended; the message says why."""


class Connection:
    """One TLS connection, its login and its counters; only the worker's loop calls it."""

    __slots__ = (
        "acked",
        "chunk",
        "deliveries",
        "error",
        "fd",
        "frames",
        "framing",
        "login",
        "mask",
        "next_seq",
        "pending_ns",
        "presence_frames",
        "queue",
        "read_ns",
        "role",
        "selector",
        "sender",
        "sock",
        "started_ns",
        "state",
        "token",
        "user",
        "welcome_ns",
    )

    def __init__(
        self,
        selector: selectors.BaseSelector,
        endpoint: Endpoint,
        *,
        user: str,
        role: Role,
        sender: int,
        login: bytes,
        framing: Framing,
    ) -> None:
        family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
        self.sock: socket.socket = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fd = self.sock.fileno()
        self.selector = selector
        self.user = user
        self.role = role
        self.sender = sender
        self.login = login  # the frames to send once the handshake is through
        self.state = State.CONNECTING
        self.framing = framing
        self.chunk = b""
        self.queue: list[bytes] = []
        self.mask = 0
        self.started_ns = time.monotonic_ns()
        self.welcome_ns = 0
        self.token: str | None = None
        self.error: str | None = None
        self.read_ns = 0  # when the loop read this socket ahead of handling its frames
        self.deliveries = 0
        self.frames = 0  # received once ready, outside a fan-out's message and ack frames
        self.presence_frames = 0  # of which presence announcements
        self.next_seq = 0
        self.acked = 0
        self.pending_ns: dict[int, int] = {}  # sequence number -> send time, until acked

    def reset_counts(self) -> None:
        """Start a fan-out run's counting afresh."""
        self.deliveries = self.next_seq = self.acked = 0
        self.pending_ns.clear()

    def watch(self, mask: int) -> None:
        """Have the selector report these events (0: none) for this socket."""
        if mask == self.mask:
            return
        if self.mask == 0:
            self.selector.register(self.fd, mask, self)
        elif mask == 0:
            self.selector.unregister(self.fd)
        else:
            self.selector.modify(self.fd, mask, self)
        self.mask = mask

    # --- connecting and logging in ----------------------------------------------------

    def connect(self, endpoint: Endpoint) -> None:
        """Start the TCP connect. Raises Closed: refused at once."""
        code = self.sock.connect_ex((endpoint.host, endpoint.port))
        if code not in (0, errno.EINPROGRESS):
            raise Closed(f"connect failed: {os.strerror(code)}")
        self.watch(selectors.EVENT_WRITE)

    def on_connected(self, tls: ssl.SSLContext, server_hostname: str) -> None:
        """The TCP connect finished: start the TLS handshake."""
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise Closed(f"connect failed: {os.strerror(code)}")
        self.sock = tls.wrap_socket(
            self.sock, server_hostname=server_hostname, do_handshake_on_connect=False
        )
        self.state = State.HANDSHAKE
        self.handshake()

    def handshake(self) -> None:
        """Go on with the handshake; once through, send the opening or the login frames."""
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self.watch(selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self.watch(selectors.EVENT_WRITE)
            return
        except (ssl.SSLError, OSError) as exc:
            raise Closed(f"TLS handshake failed: {exc}") from exc
        opening = self.framing.opening()
        if opening:
            self.state = State.UPGRADE
            self.chunk = opening  # as it is: the upgrade request is not a frame
        else:
            self.state = State.LOGIN
            self.queue.append(self.login)
        self.flush()

    def receive_login(self, now: int) -> bool:
        """Handle frames until the login is through: True once welcomed (and joined).

        A one-shot login is through at ``welcome``; its token, if any, is in ``token``.
        Raises:
            Closed: the server refused the login or said bye.
            ConnectionLost: the server refused the upgrade or closed.
            MalformedMessage, FrameTooLarge: the server broke the protocol.
        """
        if self.state is State.UPGRADE:
            if not self.framing.upgraded():
                return False
            self.state = State.LOGIN
            self.queue.append(self.login)
            self.flush()
        while payload := self.framing.next_frame():
            event = read_event(payload)
            if isinstance(event, Error):
                self.error = f"{event.code}: {event.message}"
                raise Closed(self.error)
            if isinstance(event, Bye):
                raise Closed(f"server said bye: {event.reason}")
            if isinstance(event, Welcome) and self.state is State.LOGIN:
                self.welcome_ns = now
                self.token = event.token
                if self.role is Role.ONESHOT:
                    return True
                self.state = State.READY if self.role is Role.IDLE else State.JOINING
            elif isinstance(event, Joined) and self.state is State.JOINING:
                self.state = State.READY
            if self.state is State.READY:
                return True
        return False

    # --- reading and writing ----------------------------------------------------------

    def read(self) -> bool:
        """Move what the socket has into the framing and note when (``read_ns``).

        Returns True when the read budget ran out first: more may wait inside OpenSSL,
        where the selector cannot see it.
        """
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket)
        feed = self.framing.feed
        total = 0
        try:
            while total < READ_BUDGET:
                data = sock.recv(READ_SIZE)
                if not data:
                    raise Closed(self.error or "closed by the server")
                feed(data)
                total += len(data)
                if len(data) < TLS_RECORD and not sock.pending():
                    # A short record ends what the server wrote: skip the recv() that
                    # would only fail with SSLWantReadError (epoll reports anything more).
                    break
        except (ssl.SSLWantReadError, BlockingIOError):
            pass
        except ssl.SSLWantWriteError:
            self.watch(self.mask | selectors.EVENT_WRITE)
        except (ssl.SSLError, OSError) as exc:
            raise Closed(self.error or f"connection broke: {exc}") from exc
        self.read_ns = time.monotonic_ns()
        return total >= READ_BUDGET

    def flush(self) -> None:
        """Write what the socket takes; OpenSSL needs a cut chunk retried unchanged."""
        sock = self.sock
        try:
            while True:
                if not self.chunk:
                    if not self.queue:
                        break
                    self.chunk = self.framing.encode(b"".join(self.queue))
                    self.queue.clear()
                sent = sock.send(self.chunk)
                self.chunk = self.chunk[sent:]
        except (ssl.SSLWantWriteError, BlockingIOError):
            self.watch(selectors.EVENT_READ | selectors.EVENT_WRITE)
            return
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLError, OSError) as exc:
            raise Closed(self.error or f"connection broke: {exc}") from exc
        self.watch(selectors.EVENT_READ)

    def close(self, reason: str | None) -> None:
        """Stop watching and close the socket; ``reason`` becomes the error if none was set."""
        if reason is not None and self.error is None:
            self.error = reason
        self.state = State.CLOSED
        self.watch(0)
        self.sock.close()
