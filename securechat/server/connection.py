"""One connection, on either port: its thread, its TLS socket, and who may write to that socket.

Theory of operation: the acceptor (server.py, web.py) hands over a plain TCP socket. The
connection's only thread learns who is at the other end (``peer.py``: a trusted proxy's
PROXY header), runs the TLS handshake under the same deadline, then loops in ``poll()``
on the socket and its outbox's waker. The bytes' meaning is the port's :class:`Framing`
(framing.py, webframing.py; no I/O): the chat port's session opens at once, with
``hello``; the web port's after a WebSocket upgrade on ``/ws`` (other HTTP requests get
their answer and the connection closes). Each time round the thread

1. moves frames that other threads queued in the outbox (fan-out, acks) into the
   stream's write queue, framed for the port, and writes as much as the socket takes;
2. reads what arrived, feeds it to the framing and answers each complete request with
   its :class:`RequestHandler` (``requests.py``), whose replies it queues directly (they
   bypass the outbox bound);
3. asks the connection's :class:`SessionClocks` (protocol/clocks.py) what is due: the
   opening and login deadlines, heartbeat, idle timeout, a writer stuck for
   ``stuck_writer_timeout``.

Only this thread reads the socket, touches the session or the framing, or closes the
outbox; other threads call :meth:`~ServerConnection.send` (the hub's ``Member.send``) and
:meth:`~ServerConnection.request_close`. While ``HIGH_WATER`` bytes wait to be written
it reads no requests, so a peer that never reads cannot make the server buffer unbounded.

One writer at a time, not always the same thread: the socket is used only by the thread
holding the connection's :class:`Turn`, which the stream asserts. The connection's thread
holds it all the time except while it waits in ``poll()``. ``send`` from another thread
(the delivery thread fanning out a message) takes a free turn and writes the frame itself
if nothing waits before it (an open session, an empty outbox, an idle stream): one write
instead of a wake-up, a thread switch and a write, for each recipient of each message.
Otherwise (the turn is busy, frames wait, the write is left unfinished) the frame goes
through the outbox and the wake-up. ``send`` never waits for the turn.
"""

from __future__ import annotations

import contextlib
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
from securechat.protocol.clocks import OPENING_TIMED_OUT, Ending, Phase, SessionClocks
from securechat.protocol.messages import Error, Event, encode
from securechat.server.devicerequests import DeviceSessions
from securechat.server.framing import ChatFraming, Framing
from securechat.server.outbox import Outbox
from securechat.server.peer import PeerAddress, TrustedProxies, identify
from securechat.server.requests import Closing, RequestHandler
from securechat.server.service import ChatService
from securechat.server.transfers import HIGH_WATER, advance
from securechat.transport import TlsStream, Turn

log = logging.getLogger("securechat.server")

# The server's loop is poll(2), which Windows lacks; the constants are read where they
# exist so that the CLI, which imports every command's module, still loads there.
POLLIN, POLLOUT = getattr(select, "POLLIN", 0), getattr(select, "POLLOUT", 0)
POLL_ERRORS = sum(getattr(select, name, 0) for name in ("POLLERR", "POLLHUP", "POLLNVAL"))
BACKLOG_CHECK_SECONDS = 0.25
#: Seconds to get the last words out (a final event, a WebSocket close and its reply).
FINAL_FLUSH_SECONDS = 1.0

#: Makes a connection's framing from its request handler (its session, meter and peer).
FramingFactory = Callable[[RequestHandler], Framing]


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
        framing: FramingFactory | None = None,
        kind: str = "conn",
        devices: DeviceSessions | None = None,
    ) -> None:
        """``on_proxied`` is asked, once a trusted proxy's header has named the client,
        whether the connection may go on under that address: a refusal, or None.
        ``framing`` makes the port's framing (default: the chat port's); ``kind`` names
        the thread ("conn", "web"); ``devices``: "stay signed in" (the web port's)."""
        self._sock = sock
        self._address = address
        self._proxies = proxies or TrustedProxies()
        self._on_proxied = on_proxied
        self._tls = tls
        self._limits = limits
        self._hello = service.hello
        self._on_closed = on_closed
        self._on_authenticated = on_authenticated
        self._kind = kind
        self._clocks = SessionClocks(
            accepted_at=accepted_at, handshake_timeout=limits.handshake_timeout,
            auth_timeout=limits.auth_timeout, heartbeat=limits.heartbeat,
            idle_timeout=limits.idle_timeout, stuck_writer_timeout=limits.stuck_writer_timeout,
            transfer_idle_timeout=limits.transfer_idle_timeout,
        )  # fmt: skip
        self._outbox = Outbox(max_frames=limits.outbox_frames, max_bytes=limits.outbox_bytes)
        self._requests = RequestHandler(
            self,
            peer=PeerAddress(address[0], address[1]),
            accepted_at=accepted_at,
            auth_deadline=self._clocks.login_deadline,
            service=service,
            limits=limits,
            ca_pem=ca_pem,
            on_authenticated=self._logged_in,
            reply=self._queue,
            devices=devices,
        )
        self._session = self._requests.session
        self._framing = ChatFraming(self._session) if framing is None else framing(self._requests)
        self._close_request: Closing | None = None  # set by other threads, read by ours
        self._stream: TlsStream | None = None
        self._turn = Turn()  # held by whichever thread is using the socket
        self._open_stream: TlsStream | None = None  # set while other threads may write to it
        # A daemon only because CPython scans every live non-daemon thread's lock each time
        # one starts (threading._maintain_shutdown_locks): O(n) per login, ~5% of the GIL
        # in a storm of 5,000. ChatServer.shutdown joins these threads all the same.
        self.thread = threading.Thread(target=self.run, name=f"{kind} {self.peer}", daemon=True)

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
                        # which asserts that this thread has the turn
                        if stream.write(self._framing.blob(frame)):
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
            stream.handshake(self._clocks.open_deadline, interrupt=self._outbox.waker)
            if self._close_request is not None:
                raise ConnectionLost(self._close_request.reason)
            if self._framing.is_open:
                self._open(stream, time.monotonic())
            reason = self._serve(stream)
        except BadProxyHeader as exc:
            reason = exc.message
            what = "connection" if self._kind == "conn" else "web connection"
            log.warning("dropped %s from %s: %s", what, self._requests.peer.described(), reason)
        except ConnectionLost as exc:
            reason = self._framing.describe_end(exc.message)
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
            max_header=self._limits.max_proxy_header, deadline=self._clocks.open_deadline,
            interrupt=self._outbox.waker,
        )  # fmt: skip
        if address is None or self._close_request is not None:
            raise ConnectionLost(self._close_request.reason if self._close_request else "closed")
        if address.proxy is None:
            return None
        self._requests.peer = address
        self.thread.name = f"{self._kind} {address}"
        return None if self._on_proxied is None else self._on_proxied(self)

    def _open(self, stream: TlsStream, now: float) -> None:
        """The session opens: ``hello`` goes out, and the fan-out may write directly."""
        self._clocks.opened(now)
        how = stream.version if self._kind == "conn" else "web"
        log.info("connect %s (%s)", self._requests.peer.described(), how)
        self._queue(self._hello(f"securechat {__version__}"))
        self._open_stream = stream

    def _logged_in(self, account: Account) -> None:
        """Count the login with the server (which may refuse it), then start its clocks."""
        self._on_authenticated(self, account)
        self._clocks.logged_in(time.monotonic())

    def _serve(self, stream: TlsStream) -> str:
        try:
            self._loop(stream)
        except Closing as close:
            self._open_stream = None
            self._last_words(stream, close.final)
            return close.reason
        finally:
            self._open_stream = None
        return "closed"  # pragma: no cover - the loop only ends by raising

    def _loop(self, stream: TlsStream) -> None:
        outbox, framing, clocks = self._outbox, self._framing, self._clocks
        sock_fd, wake_fd = stream.fileno(), outbox.waker.fileno()
        poller = select.poll()
        poller.register(sock_fd, POLLIN)
        poller.register(wake_fd, POLLIN)
        now = time.monotonic()
        written = stream.written
        woken = True
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
                if frames and framing.is_open:
                    stream.queue_many(list(map(framing.blob, frames)))
            if stream.unsent:
                stream.flush()
            if done := advance(stream, framing, clocks, now):
                raise Closing(done)
            if paused and stream.unsent < HIGH_WATER:
                paused = self._process_requests(stream)
            clocks.output(now, waiting=stream.unsent > 0, progressed=stream.written != written)
            written = stream.written  # by this thread or a direct write
            events = 0 if stream.unsent >= HIGH_WATER else POLLIN
            if stream.unsent or stream.wants_read_to_write:
                events |= POLLOUT
            poller.modify(sock_fd, events)
            backlogged = stream.unsent >= HIGH_WATER
            poller.modify(wake_fd, 0 if backlogged else POLLIN)
            ready_now = stream.has_buffered_input or (paused and not backlogged)
            timeout = 0.0 if ready_now else max(clocks.next_deadline() - now, 0.0)
            if backlogged:
                timeout = min(timeout, BACKLOG_CHECK_SECONDS)  # still see close requests
            self._turn.give_back()
            try:
                ready = poller.poll(timeout * 1000)
            finally:
                self._turn.take()
            now = time.monotonic()
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
                    clocks.heard(now)
                    opened = framing.receive_data(data)
                    if answers := framing.data_to_send():  # the 101 before the hello
                        stream.queue_many(answers)
                    if opened:
                        self._open(stream, now)
                    paused = self._process_requests(stream)
                    if done := advance(stream, framing, clocks, now):
                        raise Closing(done)
            due = clocks.tick(now)
            if isinstance(due, Ending):
                raise self._ended_by_clock(due)
            if due is not None:
                self._queue(due)

    def _ended_by_clock(self, ending: Ending) -> Closing:
        if ending.reason != OPENING_TIMED_OUT:
            return Closing(ending.reason, ending.final)
        limits = self._limits
        reason = f"no request within {min(limits.handshake_timeout, limits.auth_timeout):.0f} s"
        log.info("%s from %s", reason, self._requests.peer.described())
        return Closing(reason)

    def _process_requests(self, stream: TlsStream) -> bool:
        """Answer every complete request; True if some were left for lack of output room."""
        while self._requests.answer_next():
            if stream.unsent >= HIGH_WATER:
                return True
        return False

    def _queue(self, event: Event) -> None:
        assert self._stream is not None
        self._stream.queue(self._framing.event(encode(event)))

    def _last_words(self, stream: TlsStream, final: Event | None) -> None:
        """Send ``final`` if the session can still take it, and the framing's close; wait
        for them to go out (and a WebSocket close's reply) a short while at most."""
        framing = self._framing
        if final is not None and framing.is_open:
            self._queue(final)
        framing.close()
        stream.queue_many(framing.data_to_send())
        with contextlib.suppress(ConnectionLost):  # gone or not reading: nothing more to say
            deadline = time.monotonic() + FINAL_FLUSH_SECONDS
            stream.flush_until(deadline)
            while framing.ending is None:  # a WebSocket close awaits its reply
                framing.receive_data(stream.receive_until(deadline))
                stream.queue_many(framing.data_to_send())
                stream.flush_until(deadline)
            if framing.half_close:
                stream.end_output()
                while stream.receive_until(deadline):  # until the peer's end: ConnectionLost
                    pass  # unread: a peer still sending when we close would get a reset

    def _finish(self, reason: str) -> None:
        if (transfer := self._framing.transfer) is not None:
            transfer.abort()  # an upload cut off leaves nothing behind
        self._requests.disconnect()
        if self._stream is not None:
            self._stream.close()
        else:
            self._sock.close()
        self._session.close()
        self._outbox.close()
        self._on_closed(self)
        if self._clocks.phase is Phase.OPENING and self._kind != "conn":
            log.debug("web request from %s ended: %s", self._requests.peer.described(), reason)
        else:
            log.info("disconnect %s: %s", self._who(), reason)

    def _who(self) -> str:
        return self._requests.who()
