"""The client's I/O thread: it drives a :class:`ClientSession` over one TLS socket at a time.

Theory of operation: the protocol (login, refs, resends, catch-up, de-duplication, the
heartbeat) lives in the sans-I/O :class:`ClientSession`; a :class:`Connection` only moves
bytes and hands results to other threads. Its one I/O thread owns the :class:`TlsStream`:
it writes what the session has to say, waits in a selector for the socket and for a
:class:`Waker`, feeds what it reads to the session, and routes the session's events.
Caller threads touch the session only through :meth:`Connection.ask` and
:meth:`Connection.submit`, under ``_lock``, and then wake the I/O thread. ``_lock`` guards
the session, ``_slots`` (ref -> the caller waiting for that reply), ``_outgoing`` (ref ->
the caller's handle on a send) and ``_hello``; callers read the session's state through
:meth:`Connection.view`, a copy taken under it. A :class:`Slot` or an :class:`Outgoing` is
filled by the I/O thread and read by its caller once its event is set.

With ``reconnect`` the I/O thread survives a lost connection: it backs off (full jitter,
0.5 s doubling to 30 s) and logs in again; the session does the rest (resume token,
catch-up, resends). Requests fail fast while disconnected; sends are kept. Given several
endpoints (the nodes of one service, #17), each login tries them in turn, starting with
the one after the endpoint last lost, so a dead node costs one failed attempt. One name
with several addresses (DNS round-robin) is tried address by address within each attempt
(``socket.create_connection`` in ``dialer.connect_tls``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import queue
import random
import selectors
import ssl
import threading
import time
from collections.abc import Sequence

from securechat.client.escaping import escape
from securechat.client.events import (
    Backoff,
    ClientEvent,
    Disconnected,
    Reconnected,
    Reconnecting,
)
from securechat.client.link import Endpoint, first_answering, log_in
from securechat.client.outgoing import Outgoing, Slot
from securechat.errors import (
    AuthenticationError,
    ConnectionLost,
    ErrorCode,
    RateLimited,
    SecureChatError,
)
from securechat.protocol.client import (
    ClientSession,
    ConnectionEnded,
    Delivered,
    Greeted,
    LoggedIn,
    LoginRefused,
    Reply,
    SendFailed,
    SessionEvent,
)
from securechat.protocol.messages import Asked, Error, Event, Hello
from securechat.transport import TlsStream, Waker

__all__ = ["Connection", "SessionView", "view_of"]

BYE_GRACE = 1.0  # how long close() lets the bye reach the server
_END = object()  # closes event iterators


@dataclasses.dataclass(frozen=True, slots=True)
class SessionView:
    """What a session says at one instant, copied under the lock for any thread to read."""

    user: str
    rooms: tuple[str, ...]
    last_id: int
    is_ready: bool
    server: str  # hello's free-form server string
    max_file_size: int | None = None  # from the hello of a server with files on


class Connection:
    """One user's session kept connected by an I/O thread; ``start()``, then use it."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        session: ClientSession,
        context: ssl.SSLContext,
        *,
        reconnect: bool,
        timeout: float,
        backoff: Backoff,
    ) -> None:
        self._endpoints = tuple(endpoints)
        self._endpoint = self._endpoints[0]  # the one connected to, or tried last
        self._has_connected = False  # I/O thread (the caller's, before it starts)
        self._context = context
        self._reconnect = reconnect
        self._timeout = timeout
        self._backoff = backoff
        self._waker = Waker()
        self._waker_open = True
        self._events: queue.Queue[object] = queue.Queue()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        # Guarded by _lock: shared between callers and the I/O thread.
        self._lock = threading.Lock()
        self._session = session
        self._slots: dict[str, Slot] = {}
        self._outgoing: dict[str, Outgoing] = {}  # insertion order = send order
        self._hello: Hello | None = None  # the last connection's
        self._stream: TlsStream | None = None  # owned by the I/O thread once it runs

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint connected to, or the one tried last while disconnected.

        Read without ``_lock``: the I/O thread replaces the reference whole, and a reader
        after a reconnect may see either node, both of which are true at some instant.
        """
        return self._endpoint

    @property
    def unacknowledged(self) -> list[Outgoing]:
        with self._lock:
            return list(self._outgoing.values())

    def view(self) -> SessionView:
        """The session's user, rooms, last id and readiness, and the server's name, now."""
        with self._lock:
            return view_of(self._session, self._hello)

    # --- called by the owner ------------------------------------------------------------

    def start(self) -> None:
        """Log in (in the caller's thread), then start the I/O thread.

        Raises:
            ConnectionLost, CertificateError, AuthenticationError, RateLimited,
            UnexpectedMessage: see :func:`securechat.client.link.log_in`.
        """
        if self._thread is not None:
            raise ConnectionLost("this client has already connected once; make a new Client")
        try:
            self._open()
        except BaseException:
            self._close_waker()
            raise
        self._thread = threading.Thread(target=self._run, name="securechat-client", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Say ``bye`` and stop the I/O thread; pending requests fail. Idempotent."""
        self._closing.set()
        self._waker.wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self._timeout + BYE_GRACE + 1)
            if not thread.is_alive():
                self._close_waker()

    def _close_waker(self) -> None:
        # Only once nobody can wake it any more: a closed descriptor number may be reused.
        with self._lock:
            waker, self._waker_open = self._waker_open, False
        if waker:
            self._waker.close()

    # --- called from any thread -------------------------------------------------------

    def ask(self, request: Asked, *, collect: bool = False) -> Slot:
        """Send ``request``; its answer fills the returned slot.

        Raises:
            ConnectionLost: not connected right now.
        """
        slot = Slot()
        with self._lock:
            self._check_open()
            self._slots[self._session.request(request, collect=collect)] = slot
        self._waker.wake()
        return slot

    def forget(self, slot: Slot) -> None:
        """The caller stopped waiting for ``slot``: drop its answer when it comes."""
        with self._lock:
            self._slots = {ref: s for ref, s in self._slots.items() if s is not slot}

    def submit(
        self, body: str, *, room: str | None, to: str | None, files: tuple[str, ...] = ()
    ) -> Outgoing:
        """Queue a chat message; kept, and resent, until acknowledged or refused.

        Raises:
            ConnectionLost: closed, or disconnected without ``reconnect``.
        """
        with self._lock:
            self._check_open(for_send=True)
            outgoing = Outgoing(self._session.submit(body, room=room, to=to, files=files))
            self._outgoing[outgoing.ref] = outgoing
        self._waker.wake()
        return outgoing

    def next_event(self, timeout: float | None = None) -> ClientEvent | None:
        """The next event, or None after ``timeout`` seconds or once the client has closed."""
        try:
            item = self._events.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is _END:
            self._events.put(_END)  # for every other reader
            return None
        return item  # type: ignore[return-value]

    def _check_open(self, *, for_send: bool = False) -> None:
        """With ``_lock`` held: refuse a request the session cannot take now."""
        if self._closing.is_set() or self._thread is None:
            raise ConnectionLost("the client is not connected")
        if not self._session.is_ready and not (for_send and self._reconnect):
            raise ConnectionLost("not connected to the server right now; try again shortly")

    # --- the I/O thread ----------------------------------------------------------------

    def _open(self) -> None:
        """Log in on a new connection (the caller's thread at first, then the I/O thread)."""
        assert self._context is not None
        with self._lock:
            can_log_in = self._session.can_log_in
        if not can_log_in:
            raise AuthenticationError(
                f"{self._endpoint.label} gave no resume token at login, so this client cannot "
                "log in again by itself: connect again"
            )
        stream, events = self._log_in_any()
        try:
            self._route(events)
        except BaseException:
            stream.close()
            with self._lock:
                self._session.connection_lost("closed")
            raise
        with self._lock:
            assert self._session.hello is not None
            self._hello = self._session.hello
        self._has_connected = True
        self._stream = stream

    def _log_in_any(self) -> tuple[TlsStream, list[SessionEvent | Event]]:
        """Log in at the first endpoint that answers, from the one after the last lost.

        Raises:
            ConnectionLost: none answered (see ``first_answering``). Others as ``log_in``.
        """
        count = len(self._endpoints)
        start = self._endpoints.index(self._endpoint)
        if self._has_connected:  # a reconnect: the endpoint last used may be the dead one
            start = (start + 1) % count
        in_turn = [self._endpoints[(start + turn) % count] for turn in range(count)]

        def attempt(endpoint: Endpoint) -> tuple[TlsStream, list[SessionEvent | Event]]:
            self._endpoint = endpoint
            return log_in(
                endpoint, self._context, self._session, timeout=self._timeout, guard=self._lock
            )

        return first_answering(in_turn, attempt)

    def _run(self) -> None:
        error: SecureChatError = ConnectionLost("the client was closed")
        try:
            while self._stream is not None:
                try:
                    self._pump(self._stream)
                    return  # closing
                except SecureChatError as exc:  # lost, or the server ended it
                    error = exc
                self._drop_stream(error.message)
                if self._closing.is_set():
                    return
                if not self._reconnect:
                    self._emit(Disconnected(error.message, error))
                    return
                error = self._reconnect_loop(error)
        finally:
            self._drop_stream(error.message)
            with self._lock:
                abandoned = self._session.abandon()
                outgoing = [self._outgoing.pop(send.ref or "") for send in abandoned]
            for handle in outgoing:
                handle.fail(Error(code=ErrorCode.SHUTTING_DOWN, message=error.message))
            self._events.put(_END)

    def _drop_stream(self, reason: str) -> None:
        """Close the stream; the session fails requests in flight (sends stay, to be resent)."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
        with self._lock:
            self._session.connection_lost(reason)
            events = self._session.events_received()
        self._route(events)

    def _reconnect_loop(self, error: SecureChatError) -> SecureChatError:
        """Log in again, backing off; the last error when it gives up (closing, or fatal)."""
        for attempt in itertools.count():
            delay = random.uniform(0, self._backoff.ceiling(attempt))
            if isinstance(error, RateLimited):
                delay = max(delay, error.retry_after)
            self._emit(Reconnecting(delay=delay, attempt=attempt + 1, reason=error.message))
            if self._closing.wait(delay):
                return error
            try:
                self._open()
                return error
            except (ConnectionLost, RateLimited) as exc:
                error = exc
            except SecureChatError as exc:  # wrong password, certificate, version: fatal
                self._emit(Disconnected(exc.message, exc))
                return exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _pump(self, stream: TlsStream) -> None:
        """Serve one connection until it is lost (raises) or the client closes (returns)."""
        with selectors.DefaultSelector() as selector:
            selector.register(stream.fileno(), selectors.EVENT_READ)
            selector.register(self._waker.fileno(), selectors.EVENT_READ)
            while not self._closing.is_set():
                with self._lock:
                    self._session.tick(time.monotonic())
                    stream.queue(self._session.data_to_send())
                    events = self._session.events_received()
                    deadline = self._session.next_deadline()
                self._route(events)
                stream.flush()
                wait = 0.0 if stream.has_buffered_input else _until(deadline)
                mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if stream.unsent else 0)
                selector.modify(stream.fileno(), mask)
                ready = {key.fd for key, _ in selector.select(wait)}
                if self._waker.fileno() in ready:
                    self._waker.clear()
                if stream.fileno() in ready or stream.has_buffered_input:
                    data = stream.receive()
                    with self._lock:
                        self._session.receive_data(data, time.monotonic())
        self._say_bye(stream)

    def _say_bye(self, stream: TlsStream) -> None:
        with self._lock:
            self._session.close()
            stream.queue(self._session.data_to_send())
        with contextlib.suppress(ConnectionLost):  # gone already: nothing more to say
            stream.flush_until(time.monotonic() + BYE_GRACE)

    def _route(self, events: list[SessionEvent | Event]) -> None:
        """Hand each event to whoever waits for it; raise if the connection must end."""
        ended: ConnectionEnded | None = None
        for event in events:
            if isinstance(event, Reply):
                self._answer(event)
            elif isinstance(event, Delivered | SendFailed):
                with self._lock:
                    outgoing = self._outgoing.pop(event.ref, None)
                if outgoing is None:
                    pass
                elif isinstance(event, Delivered):
                    outgoing.deliver(event.message)
                else:
                    outgoing.fail(Error(code=event.code, message=event.reason, ref=event.ref))
                self._emit(event)
            elif isinstance(event, LoggedIn) and event.resumed:
                self._emit(Reconnected(rooms=event.welcome.rooms, last_id=event.welcome.last_id))
            elif isinstance(event, ConnectionEnded):
                ended = event
            elif not isinstance(event, Greeted | LoggedIn | LoginRefused):
                self._emit(event)  # a server event nobody asked for: pushed
        if ended is not None:
            raise ConnectionLost(f"{self._endpoint.label}: {escape(ended.reason)}")

    def _answer(self, reply: Reply) -> None:
        with self._lock:
            slot = self._slots.pop(reply.ref, None)
        if slot is None:
            return  # its caller gave up waiting
        slot.messages = list(reply.messages)
        if isinstance(reply.event, Error):
            slot.fail(reply.event)
        else:
            slot.resolve(reply.event)

    def _emit(self, event: ClientEvent) -> None:
        self._events.put(event)


def view_of(session: ClientSession, hello: Hello | None = None) -> SessionView:
    """``session``'s state as a :class:`SessionView`; the caller holds what guards it."""
    user, server = session.user or "", hello.server if hello else ""
    limit = hello.max_file_size if hello else None
    return SessionView(user, session.rooms, session.last_id, session.is_ready, server, limit)


def _until(deadline: float | None) -> float | None:
    """Seconds to wait for ``deadline`` (monotonic), None for ever."""
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)
