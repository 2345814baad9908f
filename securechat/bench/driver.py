"""One load-generator worker process: many non-blocking TLS connections in one epoll loop.

Theory of operation: the parent process sends commands over a pipe and the worker runs one
``selectors`` loop over the pipe and all its sockets. Commands start activities that can
run side by side (a background chat load during a login storm):

- ``open``: log persistent sessions in (and join the bench room), a bounded number at a
  time; replies ``opened`` with each session's time from TCP connect to ``welcome``.
- ``fanout``: senders send on a fixed timetable (a total rate) or keep a bounded window of
  un-acked sends (as fast as flow control allows); everyone counts ``message`` frames.
  ``stop`` ends an open-ended run; ``expect`` then says how many messages went out in all.
  Replies ``fanout_done`` with counts and latency samples.
- ``storm``: one-shot logins (password or resume token), each closed after ``welcome``
  without a ``bye`` (which would revoke the token); replies ``storm_done``.
- ``status``: reply ``status`` with the current counters (sessions open, deliveries...).
- ``close``: say ``bye`` everywhere and exit, replying ``closed`` with this process's CPU.

Receivers do not decode JSON: a ``message`` frame is recognised by its prefix and its send
time is read from the body (``time.monotonic_ns()``, 20 digits, then the run's tag). Every
frame still goes through :class:`FrameDecoder`, so each one is counted exactly once.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import json
import os
import resource
import selectors
import signal
import socket
import ssl
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from securechat.bench.stats import Samples
from securechat.errors import FrameTooLarge
from securechat.protocol.frames import HEADER, FrameDecoder
from securechat.tls import client_context

READ_SIZE = 256 * 1024
TLS_RECORD = 16384  # the most plaintext one TLS record carries; recv() returns one record
READ_BUDGET = 1024 * 1024  # bytes read from one socket per turn, so no socket starves others
PROGRESS_NS = 100_000_000
MAX_FRAME = 16 * 1024 * 1024  # we are the client: any frame the server sends is accepted

_MESSAGE = b'{"type":"message"'
_ACK = b'{"type":"ack"'
_PING = b'{"type":"ping"'
_BODY = b'"body":"'
_REF = b'"ref":"'
_PONG_FRAME = HEADER.pack(15) + b'{"type":"pong"}'
_BYE_FRAME = HEADER.pack(14) + b'{"type":"bye"}'
STAMP_DIGITS = 20


class Role(enum.StrEnum):
    RECEIVER = "receiver"
    SENDER = "sender"
    IDLE = "idle"
    ONESHOT = "oneshot"  # a storm login: closed right after welcome


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    ca_file: str


@dataclasses.dataclass(frozen=True, slots=True)
class SessionSpec:
    """A persistent session; ``sender`` is its global index among all senders, or -1."""

    user: str
    password: str
    role: Role
    sender: int = -1


@dataclasses.dataclass(frozen=True, slots=True)
class LoginSpec:
    """A one-shot login with either a password or a resume token."""

    user: str
    password: str | None = None
    token: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class LoginResult:
    user: str
    ok: bool
    elapsed_ns: int
    token: str | None = None
    error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class OpenResult:
    connect_ns: list[int]
    failures: list[str]


@dataclasses.dataclass(frozen=True, slots=True)
class FanoutPlan:
    """One fan-out run. ``rate`` None means window mode; ``messages`` None means open-ended."""

    tag: str
    body_bytes: int
    senders: int
    messages: int | None
    start_ns: int
    rate: float | None
    window: int
    grace_s: float
    max_samples: int


@dataclasses.dataclass(frozen=True, slots=True)
class FanoutResult:
    sent: int
    acked: int
    deliveries: int
    expected: int
    delivery_ns: Samples
    ack_ns: Samples
    first_send_ns: int
    last_event_ns: int
    failures: list[str]


def message_body(stamp_ns: int, tag: bytes, size: int) -> bytes:
    """A body of ``size`` bytes: the send time, the run's tag, then padding."""
    head = b"%020d" % stamp_ns + tag
    return head + b"x" * max(size - len(head), 0)


def body_overhead(tag: str) -> int:
    """The smallest body a run with ``tag`` can send."""
    return STAMP_DIGITS + len(tag.encode())


class _State(enum.Enum):
    CONNECTING = "connecting"
    HANDSHAKE = "handshake"
    LOGIN = "login"
    JOINING = "joining"
    READY = "ready"
    CLOSED = "closed"


_READING = frozenset({_State.LOGIN, _State.JOINING, _State.READY})


class _Conn:
    """One TLS connection and its counters; the worker's loop drives it."""

    __slots__ = (
        "acked",
        "chunk",
        "decoder",
        "deliveries",
        "error",
        "fd",
        "login",
        "mask",
        "next_seq",
        "pending_ns",
        "queue",
        "read_ns",
        "role",
        "sender",
        "sock",
        "started_ns",
        "state",
        "token",
        "user",
        "welcome_ns",
    )

    def __init__(self, sock: socket.socket, user: str, role: Role, sender: int) -> None:
        self.sock: socket.socket = sock
        self.fd = sock.fileno()
        self.user = user
        self.role = role
        self.sender = sender
        self.state = _State.CONNECTING
        self.decoder = FrameDecoder(MAX_FRAME)
        self.chunk = b""
        self.queue: list[bytes] = []
        self.mask = 0
        self.started_ns = time.monotonic_ns()
        self.welcome_ns = 0
        self.login: bytes = b""
        self.token: str | None = None
        self.error: str | None = None
        self.deliveries = 0
        self.next_seq = 0
        self.acked = 0
        self.pending_ns: dict[int, int] = {}
        self.read_ns = 0  # when run() read this socket ahead of handling its frames


class _Closed(Exception):
    """Internal: the connection ended; the message says why."""


def _frame(obj: dict[str, Any]) -> bytes:
    payload = json.dumps(obj, separators=(",", ":")).encode()
    return HEADER.pack(len(payload)) + payload


class _Fanout:
    """The state of one fan-out run in this worker."""

    def __init__(self, plan: FanoutPlan, room: str) -> None:
        self.plan = plan
        self.tag = plan.tag.encode()
        self.room = room.encode()
        self.interval_ns = int(1e9 / plan.rate) if plan.rate else 0
        self.delivery = Samples(plan.max_samples)
        self.ack = Samples(plan.max_samples)
        self.total: int | None = None if plan.messages is None else plan.messages * plan.senders
        self.stopping = False
        self.stopped_reported = False
        self.sent = self.acked = self.delivered = 0
        self.deadline_ns = (
            0
            if plan.messages is None
            else plan.start_ns
            + int((plan.messages * plan.senders / (plan.rate or 1e9) + plan.grace_s) * 1e9)
        )
        self.first_send_ns = 0
        self.last_event_ns = 0
        self.failures: list[str] = []
        self.done = False


class Worker:
    """The event loop of one worker process."""

    def __init__(self, pipe: Connection, endpoint: Endpoint, room: str) -> None:
        self._pipe = pipe
        self._endpoint = endpoint
        self._room = room
        self._tls = client_context(Path(endpoint.ca_file))
        self._selector = selectors.DefaultSelector()
        self._selector.register(pipe.fileno(), selectors.EVENT_READ, None)
        self._conns: dict[int, _Conn] = {}
        self._sessions: list[_Conn] = []
        self._senders: list[_Conn] = []
        self._buffered: set[_Conn] = set()  # decrypted bytes left inside OpenSSL
        self._fanout: _Fanout | None = None
        self._open_todo: list[SessionSpec] = []
        self._open_result: OpenResult | None = None
        self._opening = 0
        self._storm_todo: list[LoginSpec] = []
        self._storm_results: list[LoginResult] | None = None
        self._storming = 0
        self._concurrency = 1
        self._running = True
        self._next_progress = 0
        self._commands: dict[str, Callable[..., None]] = {
            "open": self._cmd_open,
            "fanout": self._cmd_fanout,
            "stop": self._cmd_stop,
            "expect": self._cmd_expect,
            "storm": self._cmd_storm,
            "close": self._cmd_close,
            "status": lambda: self._pipe.send(("status", self._counters())),
        }

    # --- the loop --------------------------------------------------------------------

    def run(self) -> None:
        while self._running:
            timeout = 0.0 if self._buffered else self._timeout()
            ready = self._selector.select(timeout)
            # Read every ready socket before handling any frame, and time each frame from
            # the moment its bytes were read: a delivery's latency must not include what
            # this process spends on the other sockets' frames (a real client has one).
            for key, mask in ready:
                conn = key.data
                if conn is not None and mask & selectors.EVENT_READ and conn.state in _READING:
                    try:
                        self._read(conn)
                    except _Closed as closed:
                        self._fail(conn, str(closed))
            for key, mask in ready:
                conn = key.data
                if conn is None:
                    self._read_command()
                elif conn.state is not _State.CLOSED:
                    self._on_event(conn, mask)
            for conn in list(self._buffered):
                self._buffered.discard(conn)
                if conn.state is not _State.CLOSED:
                    self._on_event(conn, selectors.EVENT_READ)
            self._tick()

    def _timeout(self) -> float:
        now = time.monotonic_ns()
        wake = now + 1_000_000_000
        fanout = self._fanout
        if fanout is not None and not fanout.done:
            wake = min(wake, self._next_progress)
            if (fanout.interval_ns and fanout.total is None) or fanout.interval_ns:
                for conn in self._senders:
                    wake = min(wake, self._due_ns(conn))
            if fanout.deadline_ns:
                wake = min(wake, fanout.deadline_ns)
        elif self._storm_results is not None or self._open_result is not None:
            wake = min(wake, self._next_progress)
        return max(wake - now, 0) / 1e9

    def _tick(self) -> None:
        now = time.monotonic_ns()
        fanout = self._fanout
        if fanout is not None and not fanout.done:
            if now >= fanout.plan.start_ns:
                self._send_due(fanout, now)
            self._check_fanout(fanout, now)
        if now >= self._next_progress:
            self._next_progress = now + PROGRESS_NS
            self._report_progress()

    def _report_progress(self) -> None:
        self._pipe.send(("progress", self._counters()))

    def _counters(self) -> dict[str, int]:
        fanout = self._fanout
        storm = self._storm_results
        return {
            "sent": fanout.sent if fanout else 0,
            "acked": fanout.acked if fanout else 0,
            "deliveries": fanout.delivered if fanout else 0,
            "logins": len(storm) if storm is not None else 0,
            "sessions": sum(c.state is _State.READY for c in self._sessions),
        }

    # --- commands from the parent -------------------------------------------------------

    def _read_command(self) -> None:
        try:
            name, *args = self._pipe.recv()
        except EOFError:  # the parent is gone: nothing left to report to
            self._cmd_close(report=False)
            return
        self._commands[name](*args)

    def _cmd_open(self, specs: list[SessionSpec], concurrency: int) -> None:
        self._open_todo = list(reversed(specs))
        self._open_result = OpenResult(connect_ns=[], failures=[])
        self._concurrency = concurrency
        self._start_logins()
        self._check_open()

    def _cmd_storm(self, logins: list[LoginSpec], concurrency: int) -> None:
        self._storm_todo = list(reversed(logins))
        self._storm_results = []
        self._concurrency = concurrency
        self._start_logins()
        self._check_storm()

    def _cmd_fanout(self, plan: FanoutPlan) -> None:
        self._fanout = _Fanout(plan, self._room)
        for conn in self._sessions:
            conn.deliveries = conn.next_seq = conn.acked = 0
            conn.pending_ns.clear()

    def _cmd_stop(self) -> None:
        """End an open-ended run: send nothing more, report once every send is acked."""
        fanout = self._fanout
        if fanout is not None:
            fanout.stopping = True

    def _cmd_expect(self, total: int) -> None:
        fanout = self._fanout
        if fanout is not None:
            fanout.total = total
            fanout.deadline_ns = time.monotonic_ns() + int(fanout.plan.grace_s * 1e9)

    def _cmd_close(self, report: bool = True) -> None:
        for conn in list(self._conns.values()):
            if conn.state is _State.READY:
                conn.queue.append(_BYE_FRAME)
                self._flush(conn)
            self._close(conn, None)
        self._running = False
        if report:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            self._pipe.send(("closed", usage.ru_utime + usage.ru_stime))

    # --- connecting and logging in -------------------------------------------------------

    def _start_logins(self) -> None:
        while self._opening + self._storming < self._concurrency:
            if self._open_todo:
                spec = self._open_todo.pop()
                login: dict[str, Any] = {
                    "type": "auth",
                    "user": spec.user,
                    "password": spec.password,
                }
                conn = self._connect(spec.user, spec.role, spec.sender)
                frames = _frame(login)
                if spec.role is not Role.IDLE:
                    frames += _frame({"type": "join", "room": self._room, "ref": "join"})
                conn.login = frames
                self._opening += 1
            elif self._storm_todo:
                one = self._storm_todo.pop()
                auth: dict[str, Any] = {"type": "auth", "user": one.user}
                if one.token is not None:
                    auth["token"] = one.token
                else:
                    auth["password"] = one.password
                conn = self._connect(one.user, Role.ONESHOT, -1)
                conn.login = _frame(auth)
                self._storming += 1
            else:
                return

    def _connect(self, user: str, role: Role, sender: int) -> _Conn:
        family = socket.AF_INET6 if ":" in self._endpoint.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(sock, user, role, sender)
        self._conns[conn.fd] = conn
        code = sock.connect_ex((self._endpoint.host, self._endpoint.port))
        if code not in (0, errno.EINPROGRESS):
            conn.mask = 0
            self._fail(conn, f"connect failed: {os.strerror(code)}")
            return conn
        self._watch(conn, selectors.EVENT_WRITE)
        return conn

    def _watch(self, conn: _Conn, mask: int) -> None:
        if mask == conn.mask:
            return
        if conn.mask == 0:
            self._selector.register(conn.fd, mask, conn)
        elif mask == 0:
            self._selector.unregister(conn.fd)
        else:
            self._selector.modify(conn.fd, mask, conn)
        conn.mask = mask

    def _on_event(self, conn: _Conn, mask: int) -> None:
        try:
            if conn.state is _State.CONNECTING:
                self._on_connected(conn)
            elif conn.state is _State.HANDSHAKE:
                self._handshake(conn)
            else:
                if mask & selectors.EVENT_WRITE:
                    self._flush(conn)
                if mask & selectors.EVENT_READ:
                    self._receive(conn)
        except _Closed as closed:
            self._fail(conn, str(closed))

    def _on_connected(self, conn: _Conn) -> None:
        code = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise _Closed(f"connect failed: {os.strerror(code)}")
        conn.sock = self._tls.wrap_socket(
            conn.sock, server_hostname=self._endpoint.host, do_handshake_on_connect=False
        )
        conn.state = _State.HANDSHAKE
        self._handshake(conn)

    def _handshake(self, conn: _Conn) -> None:
        sock = conn.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._watch(conn, selectors.EVENT_READ)
            return
        except ssl.SSLWantWriteError:
            self._watch(conn, selectors.EVENT_WRITE)
            return
        except (ssl.SSLError, OSError) as exc:
            raise _Closed(f"TLS handshake failed: {exc}") from exc
        conn.state = _State.LOGIN
        conn.queue.append(conn.login)
        self._flush(conn)

    # --- reading ------------------------------------------------------------------------

    def _receive(self, conn: _Conn) -> None:
        if not conn.read_ns:  # not read ahead by run()
            self._read(conn)
        now, conn.read_ns = conn.read_ns, 0
        try:
            if conn.state is _State.READY:
                self._on_ready_frames(conn, now)
            else:
                self._on_login_frames(conn, now)
        except FrameTooLarge as exc:
            raise _Closed(f"bad frame from the server: {exc}") from exc
        if conn.queue:
            self._flush(conn)

    def _read(self, conn: _Conn) -> None:
        """Move what the socket has into the decoder; note when (``conn.read_ns``)."""
        sock = conn.sock
        assert isinstance(sock, ssl.SSLSocket)
        decoder = conn.decoder
        total = 0
        try:
            while total < READ_BUDGET:
                data = sock.recv(READ_SIZE)
                if not data:
                    raise _Closed(conn.error or "closed by the server")
                decoder.feed(data)
                total += len(data)
                if len(data) < TLS_RECORD and not sock.pending():
                    # A short record ends what the server wrote: skip the recv() that
                    # would only fail with SSLWantReadError (epoll reports anything more).
                    break
        except (ssl.SSLWantReadError, BlockingIOError):
            pass
        except ssl.SSLWantWriteError:
            self._watch(conn, conn.mask | selectors.EVENT_WRITE)
        except (ssl.SSLError, OSError) as exc:
            raise _Closed(conn.error or f"connection broke: {exc}") from exc
        if total >= READ_BUDGET:
            self._buffered.add(conn)
        conn.read_ns = time.monotonic_ns()

    def _on_login_frames(self, conn: _Conn, now: int) -> None:
        while conn.state is not _State.READY and (payload := conn.decoder.next_frame()):
            event = json.loads(payload)
            kind = event.get("type")
            if kind == "error":
                conn.error = f"{event.get('code')}: {event.get('message')}"
                raise _Closed(conn.error)
            if kind == "bye":
                raise _Closed(f"server said bye: {event.get('reason')}")
            if kind == "welcome" and conn.state is _State.LOGIN:
                conn.welcome_ns = now
                token = event.get("token")
                conn.token = token if isinstance(token, str) else None
                if conn.role is Role.ONESHOT:
                    self._finish_oneshot(conn)
                    return
                conn.state = _State.READY if conn.role is Role.IDLE else _State.JOINING
            elif kind == "joined" and conn.state is _State.JOINING:
                conn.state = _State.READY
            if conn.state is _State.READY:
                self._session_ready(conn)
        if conn.state is _State.READY:
            self._on_ready_frames(conn, now)

    def _on_ready_frames(self, conn: _Conn, now: int) -> None:
        fanout = self._fanout
        next_frame = conn.decoder.next_frame
        while payload := next_frame():
            if payload.startswith(_MESSAGE):
                if fanout is None:
                    continue
                at = payload.find(_BODY, 17) + 8
                tag = fanout.tag
                end = at + STAMP_DIGITS
                if payload[end : end + len(tag)] != tag:
                    continue  # someone else's message (an external server's real users)
                conn.deliveries += 1
                fanout.delivered += 1
                fanout.delivery.add(now - int(payload[at:end]))
                fanout.last_event_ns = now
            elif payload.startswith(_ACK):
                # The ref is the run's tag then the sequence number: refs are per user and
                # the server deduplicates a repeated one, so each run needs its own.
                at = payload.find(_REF) + 7 + (len(fanout.tag) if fanout else 0)
                sent_ns = conn.pending_ns.pop(int(payload[at : payload.index(b'"', at)]), 0)
                conn.acked += 1
                if fanout is not None and sent_ns:
                    fanout.acked += 1
                    fanout.ack.add(now - sent_ns)
                    fanout.last_event_ns = now
                    if fanout.plan.rate is None:
                        self._send_window(fanout, conn, now)
            elif payload.startswith(_PING):
                conn.queue.append(_PONG_FRAME)
            else:
                self._on_other_event(conn, json.loads(payload))

    def _on_other_event(self, conn: _Conn, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "error":
            text = f"{conn.user}: error {event.get('code')}: {event.get('message')}"
            conn.error = text
            if self._fanout is not None:
                self._fanout.failures.append(text)
        elif kind == "bye":
            conn.error = f"{conn.user}: server said bye ({event.get('reason')})"

    # --- writing ------------------------------------------------------------------------

    def _flush(self, conn: _Conn) -> None:
        """Write what the socket takes; OpenSSL needs a cut chunk retried unchanged."""
        sock = conn.sock
        try:
            while True:
                if not conn.chunk:
                    if not conn.queue:
                        break
                    conn.chunk = b"".join(conn.queue)
                    conn.queue.clear()
                sent = sock.send(conn.chunk)
                conn.chunk = conn.chunk[sent:]
        except (ssl.SSLWantWriteError, BlockingIOError):
            self._watch(conn, selectors.EVENT_READ | selectors.EVENT_WRITE)
            return
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLError, OSError) as exc:
            raise _Closed(conn.error or f"connection broke: {exc}") from exc
        self._watch(conn, selectors.EVENT_READ)

    def _send_one(self, fanout: _Fanout, conn: _Conn) -> None:
        seq = conn.next_seq
        conn.next_seq = seq + 1
        fanout.sent += 1
        now = time.monotonic_ns()
        if not fanout.first_send_ns:
            fanout.first_send_ns = now
        body = message_body(now, fanout.tag, fanout.plan.body_bytes)
        payload = b'{"type":"send","room":"%s","body":"%s","ref":"%s%d"}' % (
            fanout.room,
            body,
            fanout.tag,
            seq,
        )
        conn.pending_ns[seq] = now
        conn.queue.append(HEADER.pack(len(payload)) + payload)

    def _due_ns(self, conn: _Conn) -> int:
        fanout = self._fanout
        assert fanout is not None
        if conn.state is not _State.READY or not self._may_send(fanout, conn):
            return 1 << 62
        if not fanout.interval_ns:
            return 1 << 62
        slot = conn.next_seq * fanout.plan.senders + conn.sender
        return fanout.plan.start_ns + slot * fanout.interval_ns

    def _may_send(self, fanout: _Fanout, conn: _Conn) -> bool:
        limit = fanout.plan.messages
        return not fanout.stopping and (limit is None or conn.next_seq < limit)

    def _send_due(self, fanout: _Fanout, now: int) -> None:
        for conn in self._senders:
            if conn.state is not _State.READY:
                continue
            if fanout.interval_ns:
                while self._may_send(fanout, conn) and self._due_ns(conn) <= now:
                    self._send_one(fanout, conn)
            elif conn.next_seq == 0:
                self._send_window(fanout, conn, now)
            if conn.queue:
                try:
                    self._flush(conn)
                except _Closed as closed:
                    self._fail(conn, str(closed))

    def _send_window(self, fanout: _Fanout, conn: _Conn, now: int) -> None:
        if now < fanout.plan.start_ns:
            return
        while len(conn.pending_ns) < fanout.plan.window and self._may_send(fanout, conn):
            self._send_one(fanout, conn)

    # --- completion ----------------------------------------------------------------------

    def _session_ready(self, conn: _Conn) -> None:
        result = self._open_result
        assert result is not None
        result.connect_ns.append(conn.welcome_ns - conn.started_ns)
        self._sessions.append(conn)
        if conn.role is Role.SENDER:
            self._senders.append(conn)
        self._opening -= 1
        self._start_logins()
        self._check_open()

    def _finish_oneshot(self, conn: _Conn) -> None:
        assert self._storm_results is not None
        self._storm_results.append(
            LoginResult(conn.user, True, conn.welcome_ns - conn.started_ns, conn.token)
        )
        # Closed without a bye, like a dropped connection: a bye would revoke the token,
        # and the resume rounds log in with it again.
        self._close(conn, None)
        self._storming -= 1
        self._start_logins()
        self._check_storm()

    def _fail(self, conn: _Conn, reason: str) -> None:
        """A connection ended: a failed login, or a session the server dropped."""
        state = conn.state
        self._close(conn, reason)
        if conn.role is Role.ONESHOT:
            assert self._storm_results is not None
            elapsed = time.monotonic_ns() - conn.started_ns
            self._storm_results.append(LoginResult(conn.user, False, elapsed, error=reason))
            self._storming -= 1
            self._start_logins()
            self._check_storm()
        elif state is not _State.READY and conn not in self._sessions:
            assert self._open_result is not None
            self._open_result.failures.append(f"{conn.user}: {reason}")
            self._opening -= 1
            self._start_logins()
            self._check_open()
        elif self._fanout is not None:
            self._fanout.failures.append(f"{conn.user}: disconnected: {reason}")

    def _close(self, conn: _Conn, reason: str | None) -> None:
        if conn.state is _State.CLOSED:
            return
        if reason is not None and conn.error is None:
            conn.error = reason
        conn.state = _State.CLOSED
        self._watch(conn, 0)
        self._buffered.discard(conn)
        self._conns.pop(conn.fd, None)
        conn.sock.close()

    def _check_open(self) -> None:
        result = self._open_result
        if result is not None and not self._open_todo and self._opening == 0:
            self._open_result = None
            self._report_progress()
            self._pipe.send(("opened", result))

    def _check_storm(self) -> None:
        results = self._storm_results
        if results is not None and not self._storm_todo and self._storming == 0:
            self._storm_results = None
            self._pipe.send(("storm_done", results))

    def _check_fanout(self, fanout: _Fanout, now: int) -> None:
        # Cheap aggregate tests first: this runs on every turn of the loop.
        limit = fanout.plan.messages
        all_sent = fanout.stopping or (
            limit is not None and fanout.sent == limit * len(self._senders)
        )
        senders_done = all_sent and fanout.acked == fanout.sent
        if fanout.stopping and not fanout.stopped_reported and senders_done:
            fanout.stopped_reported = True
            self._pipe.send(("stopped", fanout.sent))
        if fanout.total is None:
            return
        # A session gets every message except its own sends.
        received = fanout.delivered >= fanout.total * len(self._sessions) - fanout.sent
        if (senders_done and received) or (fanout.deadline_ns and now >= fanout.deadline_ns):
            self._finish_fanout(fanout)

    def _finish_fanout(self, fanout: _Fanout) -> None:
        fanout.done = True
        assert fanout.total is not None
        expected = fanout.total * len(self._sessions) - fanout.sent
        deliveries, acked, sent = fanout.delivered, fanout.acked, fanout.sent
        failures = list(fanout.failures)
        if deliveries < expected:
            failures.append(f"{expected - deliveries} deliveries missing at the deadline")
        if acked < sent:
            failures.append(f"{sent - acked} sends never acknowledged")
        self._pipe.send(("fanout_done", FanoutResult(
            sent=sent, acked=acked, deliveries=deliveries, expected=expected,
            delivery_ns=fanout.delivery, ack_ns=fanout.ack, first_send_ns=fanout.first_send_ns,
            last_event_ns=fanout.last_event_ns, failures=failures,
        )))  # fmt: skip


def worker_main(pipe: Connection, endpoint: Endpoint, room: str, batch: bool) -> None:
    """Entry point of a worker process (spawned by :mod:`securechat.bench.workloads`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    if batch:
        # Clients on other machines never take the server's CPU when a message wakes them.
        # Under SCHED_BATCH this process does not preempt the server on wake-up either; it
        # still gets its full share of CPU, and any wait it has counts in the latencies.
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    try:
        Worker(pipe, endpoint, room).run()
    except Exception:
        # A bug in the generator: tell the parent, which reports it and stops the run.
        pipe.send(("error", traceback.format_exc()))
        raise
    finally:
        pipe.close()
