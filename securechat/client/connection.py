"""The blocking ``Client``: one connection to a securechat server, used from any thread.

Theory of operation: one I/O thread owns the TLS socket (a :class:`TlsStream`) and the
frame decoder; no other thread ever reads or writes the socket. Caller threads build a
request with a fresh ``ref``, register a :class:`_Slot` for the reply, append the frame to
``_outbox`` and wake the I/O thread with a :class:`Waker`. The I/O thread moves the outbox
into the stream, writes, reads, and routes each event: a reply or error that echoes a
``ref`` fills its slot; everything else goes to the ``events()`` queue. ``_lock`` guards
exactly the state both sides touch: ``_slots``, ``_unacked``, ``_outbox``, ``_connected``.

Sends are different from other requests: each lives in ``_unacked`` (ref -> Outgoing)
until its ``ack`` or error arrives, under a ref that is unique per Client and stable across
resends. With ``reconnect=True`` the I/O thread survives a lost connection: it backs off
(full jitter, 0.5 s doubling to 30 s), logs in again with the resume token from the last
``welcome`` (the password is dropped at the first login; without a token there is no way
back), syncs from the last message id it saw, and resends every unacknowledged message
with its original ref, which the server de-duplicates. Message ids already seen are
dropped, so a catch-up never shows a message twice. Other requests fail fast while
disconnected. A send refused with ``rate_limited`` or ``server_error`` (not stored) stays
in ``_unacked`` too and is resent later with the same ref (``_retry_at``); any other
refusal fails it.
"""

from __future__ import annotations

import collections
import itertools
import queue
import random
import secrets
import select
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

from securechat.client.escaping import escape
from securechat.client.events import (
    Backoff,
    ClientEvent,
    Delivered,
    Disconnected,
    Reconnected,
    Reconnecting,
    SendFailed,
)
from securechat.client.link import ONE_READ, Endpoint, Link, open_link
from securechat.client.outgoing import Outgoing, Slot, request_error
from securechat.client.trust import trusted_context
from securechat.config import DEFAULT_PORT
from securechat.errors import (
    AuthenticationError,
    ConnectionLost,
    ErrorCode,
    RateLimited,
    SecureChatError,
)
from securechat.protocol.frames import encode_frame
from securechat.protocol.messages import (
    Ack,
    Bye,
    Error,
    Event,
    History,
    HistoryPage,
    Join,
    Joined,
    Leave,
    Left,
    ListRooms,
    MemberJoined,
    MemberLeft,
    Message,
    Online,
    Ping,
    Pong,
    Presence,
    Request,
    RoomInfo,
    RoomList,
    Send,
    Sync,
    Synced,
    Who,
    decode_event,
    encode,
)
from securechat.transport import POLL_ERRORS, POLLIN, POLLOUT, TlsStream, Waker

__all__ = ["Client"]

PONG_TIMEOUT = 10.0  # a ping unanswered this long means the connection is dead
BYE_GRACE = 1.0  # how long close() lets the bye reach the server
SEEN_IDS = 20_000  # message ids remembered for de-duplication
#: Error codes after which a send stays unacknowledged and is resent, with the same ref.
_RESEND_LATER = frozenset({ErrorCode.RATE_LIMITED, ErrorCode.SERVER_ERROR})
_END = object()  # closes events() iterators


class Client:
    """A blocking client. ``connect()``, then call methods from any thread.

    Raises (from the methods): :class:`ConnectionLost` when not connected or no reply came
    in time, and the :class:`RequestError` subclass matching a server refusal.
    """

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        ca_file: Path,
        ca_fingerprint: str | None = None,
        user: str,
        password: str,
        reconnect: bool = False,
        timeout: float = 10.0,
        server_name: str | None = None,
        heartbeat: float | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._endpoint = Endpoint(host, port, Path(ca_file), server_name)
        self._ca_fingerprint = ca_fingerprint
        self._user = user
        # In memory only, and only until the first welcome, which drops it (_adopt):
        # reconnects log in with the welcome's resume token instead.
        self._password: str | None = password
        self._token: str | None = None
        self._reconnect = reconnect
        self._timeout = timeout
        self._heartbeat = heartbeat
        self._backoff = backoff or Backoff()
        self._context: ssl.SSLContext | None = None
        self._waker = Waker()
        self._waker_closed = False
        self._events: queue.Queue[object] = queue.Queue()
        self._refs = itertools.count(1)
        self._send_prefix = secrets.token_hex(8)
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        # Guarded by _lock: shared between callers and the I/O thread.
        self._lock = threading.Lock()
        self._slots: dict[str, Slot] = {}
        self._unacked: dict[str, Outgoing] = {}  # insertion order = resend order
        self._outbox: list[tuple[str, bytes]] = []
        self._connected = False
        # Owned by the I/O thread (and by connect() before the thread starts).
        self._link: Link | None = None
        self._seen: set[int] = set()
        self._seen_order: collections.deque[int] = collections.deque()
        self._collecting: Slot | None = None  # the caller's sync() in flight
        self._catch_up_ref: str | None = None
        self._retry_at: list[tuple[float, str]] = []  # refused sends to resend: (when, ref)
        self._store_failures: dict[str, int] = {}  # ref -> server_error replies in a row
        # Read by any thread, written by the I/O thread.
        self.user = user
        self.rooms: tuple[str, ...] = ()
        self.last_id = 0
        self.server = ""

    # --- lifecycle -------------------------------------------------------------------

    def connect(self) -> Self:
        """Connect and log in, then start the I/O thread. Returns ``self``.

        Raises:
            CertificateError: ``ca_file`` is not exactly one CA certificate (the one with
                ``ca_fingerprint``, when given): see ``trust.trusted_context``.
            ConnectionLost, CertificateError, AuthenticationError, RateLimited,
            UnexpectedMessage: see :func:`securechat.client.link.open_link`.
        """
        if self._thread is not None:
            raise ConnectionLost("this client has already connected once; make a new Client")
        self._context = trusted_context(self._endpoint.ca_file, ca_fingerprint=self._ca_fingerprint)
        link = self._open()
        self.last_id = link.welcome.last_id
        self._adopt(link)
        self._thread = threading.Thread(target=self._run, name="securechat-client", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Say ``bye`` and stop the I/O thread; pending requests fail. Idempotent."""
        self._closing.set()
        self._waker.wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self._timeout + BYE_GRACE + 1)
            if not self._thread.is_alive() and not self._waker_closed:
                self._waker_closed = True
                self._waker.close()

    def __enter__(self) -> Self:
        return self.connect() if self._thread is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def is_connected(self) -> bool:
        return self._connected

    @property
    def unacknowledged(self) -> list[Outgoing]:
        """Sends not yet acknowledged, oldest first."""
        with self._lock:
            return list(self._unacked.values())

    # --- requests ----------------------------------------------------------------------

    def join(self, room: str) -> Joined:
        """Join (and create if needed) ``room``."""
        reply = self._request(Join(room=room, ref=self._ref()))
        assert isinstance(reply, Joined)
        return reply

    def leave(self, room: str) -> Left:
        reply = self._request(Leave(room=room, ref=self._ref()))
        assert isinstance(reply, Left)
        return reply

    def list_rooms(self) -> tuple[RoomInfo, ...]:
        """Every room on the server, with member counts and whether we are in it."""
        reply = self._request(ListRooms(ref=self._ref()))
        assert isinstance(reply, RoomList)
        return reply.rooms

    def who(self) -> tuple[str, ...]:
        """Every user online now."""
        reply = self._request(Who(ref=self._ref()))
        assert isinstance(reply, Online)
        return reply.online

    def history(
        self,
        room: str | None = None,
        *,
        peer: str | None = None,
        before: int | None = None,
        limit: int | None = None,
    ) -> HistoryPage:
        """The newest ``limit`` messages (oldest first) of a room or of a conversation with ``peer``."""
        request = History(room=room, peer=peer, before=before, limit=limit, ref=self._ref())
        reply = self._request(request)
        assert isinstance(reply, HistoryPage)
        return reply

    def sync(self, since: int | None = None) -> list[Message]:
        """Every visible message after ``since`` (default: the last one seen), in id order.

        The messages returned are not repeated on :meth:`events`.
        """
        since = self.last_id if since is None else since
        found: list[Message] = []
        while True:
            slot = Slot(collects=True)
            reply = self._request(Sync(since=since, ref=self._ref()), slot)
            assert isinstance(reply, Synced)
            known = {m.id for m in found}
            found.extend(m for m in slot.messages if m.id > since and m.id not in known)
            if not reply.more:
                return found
            since = reply.last_id

    def submit(self, body: str, *, room: str | None = None, to: str | None = None) -> Outgoing:
        """Queue a message to a room or a user and return at once; see :class:`Outgoing`.

        With ``reconnect=True`` it is kept, and resent, until the server acknowledges it.
        """
        if (room is None) == (to is None):
            raise ValueError("give exactly one of room= or to=")
        ref = f"{self._send_prefix}-{next(self._refs)}"
        outgoing = Outgoing(Send(body=body, room=room, to=to, ref=ref))
        with self._lock:
            self._check_open(for_send=True)
            self._unacked[ref] = outgoing
            if self._connected:
                self._outbox.append((ref, outgoing.frame))
        self._waker.wake()
        return outgoing

    def send(
        self, body: str, *, room: str | None = None, to: str | None = None, timeout: float = 30.0
    ) -> int:
        """Send and wait for the server's ack; returns the stored message's id."""
        return self.submit(body, room=room, to=to).wait(timeout).id

    def events(self, timeout: float | None = None) -> Iterator[ClientEvent]:
        """Yield pushed and local events until the client closes (or ``timeout`` passes idle)."""
        while (event := self.next_event(timeout)) is not None:
            yield event

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

    # --- caller side ---------------------------------------------------------------------

    def _ref(self) -> str:
        return f"c-{next(self._refs)}"

    def _check_open(self, *, for_send: bool = False) -> None:
        if self._closing.is_set() or self._thread is None:
            raise ConnectionLost("the client is not connected")
        if not self._connected and not (for_send and self._reconnect):
            raise ConnectionLost("not connected to the server right now; try again shortly")

    def _request(self, request: Request, slot: Slot | None = None) -> Event:
        slot = slot or Slot()
        ref = getattr(request, "ref", None)
        assert ref is not None
        with self._lock:
            self._check_open()
            self._slots[ref] = slot
            self._outbox.append((ref, encode_frame(encode(request))))
        self._waker.wake()
        if not slot.done.wait(self._timeout):
            with self._lock:
                self._slots.pop(ref, None)
            raise ConnectionLost(f"no reply from the server within {self._timeout:.0f} s")
        if slot.error is not None:
            raise request_error(slot.error)
        assert slot.reply is not None
        return slot.reply

    # --- the I/O thread ----------------------------------------------------------------

    def _open(self) -> Link:
        assert self._context is not None
        if self._password is None and self._token is None:
            raise AuthenticationError(
                f"{self._endpoint.label} gave no resume token at login, so this client cannot "
                "log in again by itself: connect again"
            )
        return open_link(
            self._endpoint,
            self._context,
            user=self._user,
            password=self._password,
            token=self._token,
            timeout=self._timeout,
        )

    def _adopt(self, link: Link) -> None:
        self._link = link
        # Logged in: the password goes, whatever the server sent (a token, or nothing).
        self._password = None
        self._token = link.welcome.token or self._token
        self.user = link.welcome.user
        self.rooms = link.welcome.rooms
        self.server = link.hello.server
        with self._lock:
            self._connected = True

    def _run(self) -> None:
        error: SecureChatError | None = None
        try:
            while self._link is not None:
                try:
                    self._pump(self._link)
                    return  # closing
                except SecureChatError as exc:  # lost, or the server broke the protocol
                    error = exc
                self._drop_link(error)
                if self._closing.is_set():
                    return
                if not self._reconnect:
                    self._emit(Disconnected(error.message, error))
                    return
                self._link = self._reconnect_loop(error)
        finally:
            self._drop_link(error or ConnectionLost("the client was closed"))
            self._fail_everything(error)
            self._events.put(_END)

    def _drop_link(self, error: SecureChatError) -> None:
        """Close the stream; fail requests in flight (sends stay, to be resent)."""
        link, self._link = self._link, None
        if link is not None:
            link.stream.close()
        with self._lock:
            self._connected = False
            self._outbox.clear()
            slots, self._slots = self._slots, {}
        self._collecting = None
        self._catch_up_ref = None
        for slot in slots.values():
            slot.fail(Error(code=ErrorCode.SHUTTING_DOWN, message=error.message))

    def _fail_everything(self, error: SecureChatError | None) -> None:
        reason = error.message if error is not None else "the client was closed"
        with self._lock:
            unacked, self._unacked = self._unacked, {}
        self._store_failures.clear()
        for outgoing in unacked.values():
            outgoing.fail(Error(code=ErrorCode.SHUTTING_DOWN, message=reason))

    def _reconnect_loop(self, error: SecureChatError) -> Link | None:
        for attempt in itertools.count():
            delay = random.uniform(0, self._backoff.ceiling(attempt))
            if isinstance(error, RateLimited):
                delay = max(delay, error.retry_after)
            self._emit(Reconnecting(delay=delay, attempt=attempt + 1, reason=error.message))
            if self._closing.wait(delay):
                return None
            try:
                link = self._open()
            except (ConnectionLost, RateLimited) as exc:
                error = exc
                continue
            except SecureChatError as exc:  # wrong password, certificate, version: fatal
                self._emit(Disconnected(exc.message, exc))
                self._fail_everything(exc)
                return None
            self._adopt(link)
            self._emit(Reconnected(rooms=link.welcome.rooms, last_id=link.welcome.last_id))
            self._catch_up(link.stream, self.last_id)
            with self._lock:
                resend = list(self._unacked.values())
            link.stream.queue_many([outgoing.frame for outgoing in resend])
            return link
        return None  # pragma: no cover - the loop only ends by returning

    def _catch_up(self, stream: TlsStream, since: int) -> None:
        self._catch_up_ref = self._ref()
        stream.queue(encode_frame(encode(Sync(since=since, ref=self._catch_up_ref))))

    def _pump(self, link: Link) -> None:
        """Serve one connection until it is lost (raises) or the client closes (returns)."""
        stream = link.stream
        heartbeat = self._heartbeat or float(link.hello.heartbeat)
        poller = select.poll()
        poller.register(stream.fileno(), POLLIN)
        poller.register(self._waker.fileno(), POLLIN)
        last_heard = time.monotonic()
        ping_sent: float | None = None
        while True:
            if self._closing.is_set():
                self._say_bye(stream)
                return
            self._move_outbox(stream)
            stream.flush()
            self._dispatch_frames(link)
            now = time.monotonic()
            if ping_sent is not None and now - ping_sent > PONG_TIMEOUT:
                raise ConnectionLost(f"the server stopped answering for {PONG_TIMEOUT:.0f} s")
            if ping_sent is None and now - last_heard >= heartbeat:
                stream.queue(encode_frame(encode(Ping(ref="hb"))))
                ping_sent = now
                continue
            wait = (ping_sent + PONG_TIMEOUT if ping_sent else last_heard + heartbeat) - now
            if self._retry_at:
                wait = min(wait, self._retry_at[0][0] - now)
            if stream.has_buffered_input:
                wait = 0.0
            poller.modify(stream.fileno(), POLLIN | (POLLOUT if stream.unsent else 0))
            ready = dict(poller.poll(max(wait, 0.0) * 1000))
            if self._waker.fileno() in ready:
                self._waker.clear()
            if ready.get(stream.fileno(), 0) & (POLLIN | POLL_ERRORS) or stream.has_buffered_input:
                try:
                    data = stream.receive(ONE_READ)
                except ConnectionLost as exc:
                    raise ConnectionLost(f"{self._endpoint.label}: {exc.message}") from exc
                if data:
                    link.decoder.feed(data)
                    last_heard, ping_sent = time.monotonic(), None

    def _move_outbox(self, stream: TlsStream) -> None:
        now = time.monotonic()
        with self._lock:
            items, self._outbox = self._outbox, []
            while self._retry_at and self._retry_at[0][0] <= now:
                outgoing = self._unacked.get(self._retry_at.pop(0)[1])
                if outgoing is not None:
                    items.append((outgoing.ref, outgoing.frame))
            collecting = [self._slots[ref] for ref, _ in items if ref in self._slots]
        for slot in collecting:
            if slot.collects:
                self._collecting = slot
        if items:
            stream.queue_many([frame for _, frame in items])

    def _say_bye(self, stream: TlsStream) -> None:
        stream.queue(encode_frame(encode(Bye(ref="bye"))))
        deadline = time.monotonic() + BYE_GRACE
        poller = select.poll()
        poller.register(stream.fileno(), POLLOUT)
        while not stream.flush() and time.monotonic() < deadline:
            poller.poll(100)

    def _dispatch_frames(self, link: Link) -> None:
        while (payload := link.decoder.next_frame()) is not None:
            self._dispatch(decode_event(payload), link.stream)

    def _dispatch(self, event: Event, stream: TlsStream) -> None:
        if isinstance(event, Message):
            self._receive_message(event)
        elif isinstance(event, Ping):
            stream.queue(encode_frame(encode(Pong(ref=event.ref))))
        elif isinstance(event, Bye):
            why = "the server is restarting" if event.reason == "shutting_down" else event.reason
            raise ConnectionLost(escape(why or "the server closed the connection"))
        elif isinstance(event, Ack):
            self._acknowledge(event)
        elif isinstance(event, Error):
            self._refused(event)
        elif isinstance(event, Synced) and event.ref == self._catch_up_ref:
            if event.more:
                self._catch_up(stream, event.last_id)
            else:
                self._catch_up_ref = None
            self.last_id = max(self.last_id, event.last_id)
        elif isinstance(event, MemberJoined | MemberLeft | Presence):
            self._emit(event)
        elif not isinstance(event, Pong):
            # A reply whose caller gave up waiting is dropped; nothing else is expected.
            self._fill_slot(event)

    def _receive_message(self, message: Message) -> None:
        self.last_id = max(self.last_id, message.id)
        is_new = self._mark_seen(message.id)
        if self._collecting is not None:
            self._collecting.messages.append(message)
        elif is_new:
            self._emit(message)

    def _mark_seen(self, message_id: int) -> bool:
        """Remember ``message_id``; False if it was seen before."""
        if message_id in self._seen:
            return False
        self._seen.add(message_id)
        self._seen_order.append(message_id)
        if len(self._seen_order) > SEEN_IDS:
            self._seen.discard(self._seen_order.popleft())
        return True

    def _acknowledge(self, ack: Ack) -> None:
        self._store_failures.pop(ack.ref or "", None)
        with self._lock:
            outgoing = self._unacked.pop(ack.ref or "", None)
        if outgoing is None:
            self._fill_slot(ack)  # a duplicate ack after a resend, or a stray one
            return
        message = outgoing.acknowledged(ack, sender=self.user)
        self._mark_seen(ack.id)
        self._emit(Delivered(ref=outgoing.ref, message=message))

    def _refused(self, error: Error) -> None:
        """An error reply: a send is resent later (rate_limited, server_error) or failed."""
        with self._lock:
            outgoing = self._unacked.get(error.ref or "")
            if outgoing is not None and error.code in _RESEND_LATER:
                delay = self._resend_delay(outgoing.ref, error)
                self._retry_at.append((time.monotonic() + delay, outgoing.ref))
                self._retry_at.sort()
                return
            if outgoing is not None:
                del self._unacked[outgoing.ref]
                self._store_failures.pop(outgoing.ref, None)
        if outgoing is not None:
            outgoing.fail(error)
            send = outgoing.request
            self._emit(
                SendFailed(outgoing.ref, send.body, send.room, send.to, error.code, error.message)
            )
        elif not self._fill_slot(error):
            self._emit(error)

    def _resend_delay(self, ref: str, error: Error) -> float:
        """Seconds before resending: what the server asked for, else a growing backoff.

        A ``server_error`` (the server could not store the message: a locked or full disk,
        an overload) is retried after 1/2 to 1 times the reconnect backoff for its count
        of failures in a row, so a struggling server is not hammered; the same ref makes
        a resend of something the server did store harmless.
        """
        if error.code == ErrorCode.RATE_LIMITED:
            return error.retry_after or 1.0
        failures = self._store_failures.get(ref, 0)
        self._store_failures[ref] = failures + 1
        return random.uniform(0.5, 1.0) * self._backoff.ceiling(failures)

    def _fill_slot(self, event: Event) -> bool:
        ref = getattr(event, "ref", None)
        if ref is None:
            return False
        with self._lock:
            slot = self._slots.pop(ref, None)
        if slot is None:
            return False
        if slot is self._collecting:
            self._collecting = None
        if isinstance(event, Joined):
            self.rooms = tuple(sorted({*self.rooms, event.room}))
        elif isinstance(event, Left):
            self.rooms = tuple(r for r in self.rooms if r != event.room)
        if isinstance(event, Error):
            slot.fail(event)
        else:
            slot.resolve(event)
        return True

    def _emit(self, event: ClientEvent) -> None:
        self._events.put(event)
