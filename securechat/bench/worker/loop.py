"""One load-generator worker process: many non-blocking TLS connections in one epoll loop.

Theory of operation: the parent process sends commands over a pipe and the worker runs one
``selectors`` loop over the pipe and all its sockets. Commands start activities that can
run side by side (a background chat load during a login storm):

- ``open``: log persistent sessions in (and join the bench room), a bounded number at a
  time; replies ``opened`` with each session's time from TCP connect to ``welcome``.
- ``fanout``: senders send on a fixed timetable (a total rate) or keep a bounded window of
  un-acked sends (as fast as flow control allows); everyone counts ``message`` frames.
  ``stop`` ends an open-ended run; ``expect`` then says how many messages went out in all.
  Replies ``fanout_done`` with counts and latency samples (see :mod:`.fanout`).
- ``storm``: one-shot logins (password or resume token), each closed after ``welcome``
  without a ``bye`` (which would revoke the token); replies ``storm_done``.
- ``status``: reply ``status`` with the current counters (sessions open, deliveries,
  frames received while idle...)
  and why the first sessions lost outside a fan-out ended (``lost``).
- ``close``: say ``bye`` everywhere and exit, replying ``closed`` with this process's CPU.

Each turn of the loop reads every socket the selector reported before handling any frame,
so a delivery's latency never includes the time spent on other sockets' frames. How the
frames are written and read is in :mod:`.wire`, how they travel on the chat port or the
web port in :mod:`.framing`, one connection's life in :mod:`.connection`.
"""

from __future__ import annotations

import dataclasses
import selectors
import ssl
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection as Pipe
from pathlib import Path

from securechat.bench.commands import (
    Endpoint,
    FanoutPlan,
    LoginSpec,
    Role,
    SessionSpec,
    Transport,
)
from securechat.bench.scheduling import start_client_process
from securechat.bench.worker.connection import READING, Closed, Connection, State
from securechat.bench.worker.fanout import Fanout, receive_idle
from securechat.bench.worker.framing import Framing, LengthPrefixed, WebSocketFraming
from securechat.bench.worker.logins import Login, Logins
from securechat.bench.worker.wire import BYE_FRAME
from securechat.errors import ConnectionLost, ProtocolError
from securechat.tls import client_context

PROGRESS_NS = 100_000_000
MAX_LOST = 10  # lost sessions reported with their reason; the rest are counted


class Worker:
    """The event loop of one worker process."""

    def __init__(self, pipe: Pipe, endpoint: Endpoint, room: str) -> None:
        self._pipe = pipe
        self._endpoint = endpoint
        self._room = room
        self._tls: ssl.SSLContext = client_context(Path(endpoint.ca_file))
        self._selector = selectors.DefaultSelector()
        self._selector.register(pipe.fileno(), selectors.EVENT_READ, None)
        self._conns: dict[int, Connection] = {}
        self._sessions: list[Connection] = []
        self._senders: list[Connection] = []
        self._buffered: set[Connection] = set()  # decrypted bytes left inside OpenSSL
        self._fanout: Fanout | None = None
        self._logins = Logins(room)
        self._lost: list[str] = []  # the first sessions lost while no fan-out ran, and why
        self._running = True
        self._next_progress = 0
        self._commands: dict[str, Callable[..., None]] = {
            "open": self._cmd_open,
            "fanout": self._cmd_fanout,
            "stop": self._cmd_stop,
            "expect": self._cmd_expect,
            "storm": self._cmd_storm,
            "close": self._cmd_close,
            "status": lambda: self._pipe.send(("status", {**self._counters(), "lost": self._lost})),
        }

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        while self._running:
            timeout = 0.0 if self._buffered else self._timeout()
            ready = self._selector.select(timeout)
            # Read every ready socket before handling any frame, and time each frame from
            # the moment its bytes were read: a delivery's latency must not include what
            # this process spends on the other sockets' frames (a real client has one).
            for key, mask in ready:
                conn = key.data
                if conn is not None and mask & selectors.EVENT_READ and conn.state in READING:
                    try:
                        if conn.read():
                            self._buffered.add(conn)
                    except Closed as closed:
                        self._fail(conn, str(closed))
            for key, mask in ready:
                conn = key.data
                if conn is None:
                    self._read_command()
                elif conn.state is not State.CLOSED:
                    self._on_event(conn, mask)
            for conn in list(self._buffered):
                self._buffered.discard(conn)
                if conn.state is not State.CLOSED:
                    self._on_event(conn, selectors.EVENT_READ)
            self._tick()

    def _timeout(self) -> float:
        now = time.monotonic_ns()
        wake = now + 1_000_000_000
        fanout = self._fanout
        if fanout is not None and not fanout.done:
            wake = min(wake, self._next_progress, fanout.wake_ns(self._senders))
        elif self._logins.busy:
            wake = min(wake, self._next_progress)
        return max(wake - now, 0) / 1e9

    def _tick(self) -> None:
        now = time.monotonic_ns()
        fanout = self._fanout
        if fanout is not None and not fanout.done:
            if now >= fanout.plan.start_ns:
                fanout.send_due(self._senders, now, self._flush)
            fanout.check(now, len(self._senders), len(self._sessions))
        if now >= self._next_progress:
            self._next_progress = now + PROGRESS_NS
            self._report_progress()

    def _flush(self, conn: Connection) -> None:
        try:
            conn.flush()
        except Closed as closed:
            self._fail(conn, str(closed))

    def _report_progress(self) -> None:
        self._pipe.send(("progress", self._counters()))

    def _counters(self) -> dict[str, int]:
        fanout = self._fanout
        return {
            "sent": fanout.sent if fanout else 0,
            "acked": fanout.acked if fanout else 0,
            "deliveries": fanout.delivered if fanout else 0,
            "logins": self._logins.done_in_storm,
            "sessions": sum(c.state is State.READY for c in self._sessions),
            "frames": sum(c.frames for c in self._sessions),
            "presence_frames": sum(c.presence_frames for c in self._sessions),
        }

    # --- commands from the parent -----------------------------------------------------

    def _read_command(self) -> None:
        try:
            name, *args = self._pipe.recv()
        except EOFError:  # the parent is gone: nothing left to report to
            self._cmd_close(report=False)
            return
        self._commands[name](*args)

    def _cmd_open(self, specs: list[SessionSpec], concurrency: int) -> None:
        self._logins.open(specs, concurrency)
        self._start_logins()

    def _cmd_storm(self, logins: list[LoginSpec], concurrency: int) -> None:
        self._logins.storm(logins, concurrency)
        self._start_logins()

    def _cmd_fanout(self, plan: FanoutPlan) -> None:
        self._fanout = Fanout(plan, self._room, self._pipe.send)
        for conn in self._sessions:
            conn.reset_counts()

    def _cmd_stop(self) -> None:
        """End an open-ended run: send nothing more, report once every send is acked."""
        if self._fanout is not None:
            self._fanout.stopping = True

    def _cmd_expect(self, total: int) -> None:
        fanout = self._fanout
        if fanout is not None:
            fanout.total = total
            fanout.deadline_ns = time.monotonic_ns() + int(fanout.plan.grace_s * 1e9)

    def _cmd_close(self, report: bool = True) -> None:
        for conn in list(self._conns.values()):
            if conn.state is State.READY:
                conn.queue.append(BYE_FRAME)
                self._flush(conn)  # a session that broke meanwhile is settled as lost
            self._close(conn, None)
        self._running = False
        if report:
            import resource  # POSIX only, like the bench (the CLI must load on Windows)

            usage = resource.getrusage(resource.RUSAGE_SELF)
            self._pipe.send(("closed", usage.ru_utime + usage.ru_stime))

    # --- connections ------------------------------------------------------------------

    def _start_logins(self) -> None:
        """Start logins up to the concurrency cap; reply for a command whose logins are done."""
        while (login := self._logins.next()) is not None:
            self._connect(login)
        if (opened := self._logins.opened()) is not None:
            self._report_progress()
            self._pipe.send(("opened", opened))
        if (stormed := self._logins.stormed()) is not None:
            self._pipe.send(("storm_done", stormed))

    def _connect(self, login: Login) -> None:
        conn = Connection(
            self._selector,
            self._endpoint,
            user=login.user,
            role=login.role,
            sender=login.sender,
            login=login.frames,
            framing=self._framing(),
        )
        self._conns[conn.fd] = conn
        endpoint = self._endpoint
        if login.port:
            endpoint = dataclasses.replace(endpoint, port=login.port)
        try:
            conn.connect(endpoint)
        except Closed as closed:  # refused at once: settled here, the caller starts the next
            self._close(conn, str(closed))
            self._logins.failed(conn, str(closed))

    def _framing(self) -> Framing:
        endpoint = self._endpoint
        if endpoint.transport is Transport.WS:
            return WebSocketFraming(endpoint.host, endpoint.port)
        return LengthPrefixed()

    def _on_event(self, conn: Connection, mask: int) -> None:
        try:
            if conn.state is State.CONNECTING:
                conn.on_connected(self._tls, self._endpoint.host)
            elif conn.state is State.HANDSHAKE:
                conn.handshake()
            else:
                if mask & selectors.EVENT_WRITE:
                    conn.flush()
                if mask & selectors.EVENT_READ:
                    self._receive(conn)
        except Closed as closed:
            self._fail(conn, str(closed))

    def _receive(self, conn: Connection) -> None:
        if not conn.read_ns and conn.read():  # not read ahead by run()
            self._buffered.add(conn)
        now, conn.read_ns = conn.read_ns, 0
        try:
            if conn.state is not State.READY:
                if not conn.receive_login(now):
                    return
                if conn.role is Role.ONESHOT:
                    self._finish_oneshot(conn)
                    return
                self._session_ready(conn)
            if self._fanout is not None:
                self._fanout.receive(conn, now)
            else:
                receive_idle(conn)
        except ProtocolError as exc:  # FrameTooLarge or MalformedMessage
            raise Closed(f"the server sent a bad frame: {exc}") from exc
        except ConnectionLost as exc:  # the web port's upgrade refused, or its close
            raise Closed(conn.error or exc.message) from exc
        if conn.queue:
            conn.flush()

    # --- completion -------------------------------------------------------------------

    def _session_ready(self, conn: Connection) -> None:
        self._logins.session_ready(conn)
        self._sessions.append(conn)
        if conn.role is Role.SENDER:
            self._senders.append(conn)
        self._start_logins()

    def _finish_oneshot(self, conn: Connection) -> None:
        self._logins.oneshot_done(conn)
        # Closed without a bye, like a dropped connection: a bye would revoke the token,
        # and the resume rounds log in with it again.
        self._close(conn, None)
        self._start_logins()

    def _fail(self, conn: Connection, reason: str) -> None:
        """A connection ended: a failed login, or a session the server dropped."""
        state = conn.state
        self._close(conn, reason)
        if conn.role is Role.ONESHOT or (state is not State.READY and conn not in self._sessions):
            self._logins.failed(conn, reason)
            self._start_logins()
        elif self._fanout is not None:
            self._fanout.failures.append(f"{conn.user}: disconnected: {reason}")
        elif len(self._lost) < MAX_LOST:
            self._lost.append(f"{conn.user}: disconnected: {reason}")

    def _close(self, conn: Connection, reason: str | None) -> None:
        if conn.state is State.CLOSED:
            return
        conn.close(reason)
        self._buffered.discard(conn)
        self._conns.pop(conn.fd, None)


def worker_main(pipe: Pipe, endpoint: Endpoint, room: str, batch: bool) -> None:
    """Entry point of a worker process (spawned by :mod:`securechat.bench.pool`)."""
    start_client_process(batch)  # the parent handles Ctrl-C; SCHED_BATCH if asked
    try:
        Worker(pipe, endpoint, room).run()
    except Exception:
        # A bug in the generator: tell the parent, which reports it and stops the run.
        pipe.send(("error", traceback.format_exc()))
        raise
    finally:
        pipe.close()
