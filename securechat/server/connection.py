"""One client connection: its thread, its TLS socket, and who may write to that socket.

Theory of operation: the acceptor hands over a plain TCP socket. The connection's thread
learns who is at the other end (``peer.py``: from a trusted proxy, its PROXY header), runs
the TLS handshake under the same deadline, sends ``hello``, then loops in ``poll()`` on two
descriptors: the socket and its outbox's waker. Each time round it

1. moves frames that other threads queued in the outbox (fan-out, acks) into the
   stream's write queue and writes as much as the socket takes, coalesced;
2. reads what arrived and hands each complete frame to its :class:`RequestHandler`
   (``requests.py``), whose replies it queues directly (they bypass the outbox bound);
3. checks its clocks: login deadline (counted from accept), heartbeat, idle timeout and
   a writer that has made no progress for ``stuck_writer_timeout``.

Only this thread reads the socket, touches the session, or closes the outbox. Other
threads reach it through :meth:`ServerConnection.send` (the hub's ``Member.send``) and
:meth:`ServerConnection.request_close`. While more than ``HIGH_WATER`` bytes wait to be
written, it stops reading requests, so a peer that sends but never reads cannot make the
server buffer without bound.

One writer at a time, not always the same thread: the socket is used only by the thread
holding the connection's :class:`Turn`, which the stream asserts. The connection's thread
holds it all the time except while it waits in ``poll()``. ``send`` from another thread
(the delivery thread fanning out a message) takes a free turn and writes the frame itself
if nothing waits before it (an empty outbox, an idle stream): one write instead of a
wake-up, a thread switch and a write, for each recipient of each message. Otherwise (the
turn is busy, frames wait, the write is left unfinished) the frame goes through the
outbox and the wake-up. ``send`` never waits for the turn.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable

from securechat import __version__
from securechat.accounts import Account
from securechat.config import Limits
from securechat.errors import BadProxyHeader, ConnectionLost, ErrorCode
from securechat.protocol.frames import encode_frame
from securechat.protocol.messages import PROTOCOL_VERSION, Bye, Error, Event, Hello, Ping, encode
from securechat.server.outbox import Outbox
from securechat.server.peer import PeerAddress, TrustedProxies, identify
from securechat.server.requests import Closing, RequestHandler
from securechat.server.service import ChatService
from securechat.transport import TlsStream, Turn

log = logging.getLogger("securechat.server")

# The server's loop is poll(2), which Windows lacks; the constants are read where they
# exist so that the CLI, which imports every command's module, still loads there.
POLLIN, POLLOUT = getattr(select, "POLLIN", 0), getattr(select, "POLLOUT", 0)
POLL_ERRORS = sum(getattr(select, name, 0) for name in ("POLLERR", "POLLHUP", "POLLNVAL"))
HIGH_WATER = 1024 * 1024
BACKLOG_CHECK_SECONDS = 0.25
FINAL_FLUSH_SECONDS = 1.0


class ServerConnection:
    def __init__(
        self,
        sock: socket.socket,
        *,
        address: tuple[str, int],
        accepted_at: float,
        tls: ssl.SSLContext,
        service: ChatService,
        limits: Limits,
        ca_pem: str,
        on_authenticated: Callable[[ServerConnection, Account], None],
        on_closed: Callable[[ServerConnection], None],
        proxies: TrustedProxies | None = None,
        on_proxied: Callable[[ServerConnection], str | None] | None = None,
    ) -> None:
        """``on_proxied`` is asked, once a trusted proxy's header has named the client,
        whether the connection may go on under that address: a refusal, or None."""
        self._sock = sock
        self._address = address
        self._proxies = proxies or TrustedProxies()
        self._on_proxied = on_proxied
        self._tls = tls
        self._limits = limits
        self._on_closed = on_closed
        self._auth_deadline = accepted_at + limits.auth_timeout
        self._handshake_deadline = accepted_at + min(limits.handshake_timeout, limits.auth_timeout)
        self._outbox = Outbox(max_frames=limits.outbox_frames, max_bytes=limits.outbox_bytes)
        self._requests = RequestHandler(
            self,
            peer=PeerAddress(address[0], address[1]),
            accepted_at=accepted_at,
            auth_deadline=self._auth_deadline,
            service=service,
            limits=limits,
            ca_pem=ca_pem,
            on_authenticated=functools.partial(on_authenticated, self),
            reply=self._queue,
        )
        self._session = self._requests.session
        self._close_request: Closing | None = None  # set by other threads, read by ours
        self._stream: TlsStream | None = None
        self._turn = Turn()  # held by whichever thread is using the socket
        self._open_stream: TlsStream | None = None  # set while other threads may write to it
        self.thread = threading.Thread(target=self.run, name=f"conn {self.peer}")

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
        """Write ``frame`` now if the turn is free and nothing waits, else queue it."""
        turn = self._turn
        if turn.try_take():
            try:
                stream = self._open_stream
                if stream is not None and not stream.unsent and self._outbox.is_empty:
                    try:
                        if stream.write(frame):  # which asserts that this thread has the turn
                            return
                    except ConnectionLost:
                        pass  # the connection's thread meets the same error next and closes
                    self._outbox.interrupt()  # the rest waits for the connection's poll()
                    return
            finally:
                turn.give_back()
        self._outbox.put(frame)

    def request_close(self, reason: str, final: Event | None = None) -> None:
        """Ask the connection's thread to send ``final`` (if any) and close."""
        self._close_request = Closing(reason, final)
        self._outbox.interrupt()

    # --- the connection's own thread -----------------------------------------------

    def run(self) -> None:
        with self._turn:  # given back only while the loop waits in poll()
            self._run()

    def _run(self) -> None:
        reason = "closed"
        try:
            refusal = self._identify()
            if refusal is not None:
                reason = refusal
                return
            stream = TlsStream(
                self._tls.wrap_socket(self._sock, server_side=True, do_handshake_on_connect=False),
                self._turn,
            )
            self._stream = stream
            stream.handshake(self._handshake_deadline, interrupt=self._outbox.waker)
            if self._close_request is not None:
                raise ConnectionLost(self._close_request.reason)
            log.info("connect %s (%s)", self._requests.peer.described(), stream.version)
            self._queue(Hello(
                protocol=PROTOCOL_VERSION, server=f"securechat {__version__}",
                max_frame=self._limits.max_frame, heartbeat=self._limits.heartbeat,
            ))  # fmt: skip
            reason = self._serve(stream)
        except BadProxyHeader as exc:
            reason = exc.message
            log.warning("dropped connection from %s: %s", self._requests.peer.described(), reason)
        except ConnectionLost as exc:
            reason = exc.message
            if self._stream is None or self._stream.version is None:
                peer = self._requests.peer
                # A proxy's health check opens, sends its LOCAL header and closes.
                level = logging.DEBUG if peer.health_check else logging.INFO
                log.log(level, "TLS failure from %s: %s", peer.described(), reason)
        except (ssl.SSLError, OSError) as exc:  # wrap_socket on a socket already reset
            reason = f"socket error: {exc}"
        except Exception:
            # A bug in securechat: end this connection only, and say where it happened.
            log.exception("internal error on connection %s", self._who())
            reason = "internal error"
        finally:
            self._finish(reason)

    def _identify(self) -> str | None:
        """Take the connection's address from a trusted proxy's header; a refusal, or None.

        Raises:
            BadProxyHeader: see :func:`peer.identify`.
            ConnectionLost: closed, broken or silent until the handshake deadline, or
                closed by the server meanwhile.
        """
        address = identify(
            self._sock, self._address, proxies=self._proxies,
            max_header=self._limits.max_proxy_header, deadline=self._handshake_deadline,
            interrupt=self._outbox.waker,
        )  # fmt: skip
        if address is None or self._close_request is not None:
            raise ConnectionLost(self._close_request.reason if self._close_request else "closed")
        if address.proxy is None:
            return None
        self._requests.peer = address
        self.thread.name = f"conn {address}"
        return None if self._on_proxied is None else self._on_proxied(self)

    def _serve(self, stream: TlsStream) -> str:
        try:
            self._open_stream = stream
            self._loop(stream)
        except Closing as close:
            if close.final is not None:
                self._queue(close.final)
                self._flush_before_close(stream)
            return close.reason
        finally:
            self._open_stream = None
        return "closed"  # pragma: no cover - the loop only ends by raising

    def _loop(self, stream: TlsStream) -> None:
        outbox = self._outbox
        sock_fd, wake_fd = stream.fileno(), outbox.waker.fileno()
        poller = select.poll()
        poller.register(sock_fd, POLLIN)
        poller.register(wake_fd, POLLIN)
        now = time.monotonic()
        last_heard = last_progress = now
        written = stream.written
        pinged = woken = True
        paused = False  # requests left unread because too much output waits
        while True:
            if self._close_request is not None:
                raise self._close_request
            backlogged = stream.unsent >= HIGH_WATER
            if woken and not backlogged:
                # Frames stay in the bounded outbox while the socket is backed up, so a
                # client that stops reading fills it and is dropped as a slow consumer.
                frames = outbox.take()
                if outbox.overflowed:
                    log.warning("slow consumer %s: outbox full", self._who())
                    raise Closing("slow consumer", Error(
                        code=ErrorCode.SLOW_CONSUMER,
                        message="you are not reading fast enough; reconnect and sync",
                    ))  # fmt: skip
                if frames:
                    stream.queue_many(frames)
            if stream.unsent:
                stream.flush()
            if stream.written != written:  # by this thread or a direct write
                written, last_progress = stream.written, now
            if paused and stream.unsent < HIGH_WATER:
                paused = self._process_requests(stream)
            events = 0 if stream.unsent >= HIGH_WATER else POLLIN
            if stream.unsent or stream.wants_read_to_write:
                events |= POLLOUT
            poller.modify(sock_fd, events)
            backlogged = stream.unsent >= HIGH_WATER
            poller.modify(wake_fd, 0 if backlogged else POLLIN)
            ready_now = stream.has_buffered_input or (paused and not backlogged)
            timeout = 0.0 if ready_now else self._next_timer(now, last_heard)
            if backlogged:
                timeout = min(timeout, BACKLOG_CHECK_SECONDS)  # still see close requests
            nothing_waits = not stream.unsent
            self._turn.give_back()
            try:
                ready = poller.poll(timeout * 1000)
            finally:
                self._turn.take()
            now = time.monotonic()
            if nothing_waits:  # the stuck-writer clock starts with output that waits
                last_progress = now
            readable = False
            woken = woken and backlogged  # a wake-up not yet acted on stays pending
            for fd, mask in ready:
                if fd == wake_fd:
                    woken = True
                elif mask & (POLLIN | POLL_ERRORS):
                    readable = True
            if (readable or stream.has_buffered_input) and events & POLLIN:
                data = stream.receive()
                if data:
                    last_heard, pinged = now, False
                    self._session.receive_data(data)
                    paused = self._process_requests(stream)
            pinged = self._check_timers(stream, now, last_heard, last_progress, pinged)

    def _next_timer(self, now: float, last_heard: float) -> float:
        limits = self._limits
        if not self._session.is_authenticated:
            return max(self._auth_deadline - now, 0.0)
        return max(min(limits.heartbeat, limits.idle_timeout) - (now - last_heard), 0.05) + 0.01

    def _check_timers(
        self, stream: TlsStream, now: float, last_heard: float, last_progress: float, pinged: bool
    ) -> bool:
        limits = self._limits
        if stream.unsent and now - last_progress >= limits.stuck_writer_timeout:
            raise Closing(f"slow consumer: nothing written for {limits.stuck_writer_timeout:.0f} s")
        if not self._session.is_authenticated:
            if now >= self._auth_deadline:
                raise Closing("login timed out", Error(
                    code=ErrorCode.AUTH_REQUIRED, message="no login within the time allowed",
                ))  # fmt: skip
            return pinged
        silent = now - last_heard
        if silent >= limits.idle_timeout:
            raise Closing("idle", Bye(reason="idle"))
        if silent >= limits.heartbeat and not pinged:
            self._queue(Ping())
            return True
        return pinged

    def _process_requests(self, stream: TlsStream) -> bool:
        """Answer every complete request; True if some were left for lack of output room."""
        while self._requests.answer_next():
            if stream.unsent >= HIGH_WATER:
                return True
        return False

    def _queue(self, event: Event) -> None:
        assert self._stream is not None
        self._stream.queue(encode_frame(encode(event)))

    def _flush_before_close(self, stream: TlsStream) -> None:
        with contextlib.suppress(ConnectionLost):  # gone or not reading: nothing more to say
            stream.flush_until(time.monotonic() + FINAL_FLUSH_SECONDS)

    def _finish(self, reason: str) -> None:
        self._requests.disconnect()
        if self._stream is not None:
            self._stream.close()
        else:
            self._sock.close()
        self._session.close()
        self._outbox.close()
        self._on_closed(self)
        log.info("disconnect %s: %s", self._who(), reason)

    def _who(self) -> str:
        return self._requests.who()
