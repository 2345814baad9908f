"""A server connection's clocks, and the ``hello`` that opens its session, without I/O.

Theory of operation: one :class:`SessionClocks` per connection, beside its
:class:`~securechat.protocol.session.ServerSession`, on both ports. The connection's thread
tells it what happened, with the time (``time.monotonic()``, read by the caller):
:meth:`opened` (the session's messages may flow: the chat port after TLS, the web port
after the WebSocket upgrade), :meth:`logged_in`, :meth:`heard` (the peer sent bytes) and
:meth:`output` (whether bytes wait to be written, and whether any went out). It then asks
:meth:`tick` what is due, and waits no longer than :meth:`next_deadline`.

The four rules, each with its clock:

- opening: a connection whose session has not opened by ``open_deadline`` (accept plus
  the handshake timeout) is ended: a TLS handshake, a PROXY header or an HTTP request
  that takes too long;
- login: a session that has not logged in by ``login_deadline`` (accept plus the login
  timeout) is told ``auth_required`` and ended;
- heartbeat and idle: a logged-in peer silent for ``heartbeat`` seconds is sent a
  ``ping`` (once per silence), and ended with ``bye`` (idle) after ``idle_timeout``;
- stuck writer: output that has waited ``stuck_writer_timeout`` seconds without a byte
  going out ends the connection (a peer that stopped reading; nothing can be told);
- transfer: a file request (:meth:`transferring`) is ended once neither a byte came in
  nor one went out for its idle timeout, however long the whole transfer takes.
"""

from __future__ import annotations

import dataclasses
import enum

from securechat.errors import ErrorCode
from securechat.protocol.messages import PROTOCOL_VERSION, Bye, Error, Event, Hello, Ping

#: The reason of the :class:`Ending` for a connection that did not open in time.
OPENING_TIMED_OUT = "opening timed out"


@dataclasses.dataclass(frozen=True, slots=True)
class Ending:
    """A clock ran out: end the connection for ``reason``, sending ``final`` first if set."""

    reason: str
    final: Event | None = None


class Phase(enum.Enum):
    OPENING = "opening"  # TLS, a PROXY header, the HTTP upgrade: no session messages yet
    TRANSFER = "transfer"  # a file request on the web port, instead of a session (#27)
    AWAITING_LOGIN = "awaiting_login"
    LOGGED_IN = "logged_in"


def server_hello(
    *, server: str, max_frame: int, heartbeat: int, max_body: int,
    max_file_size: int | None = None, max_files_per_message: int | None = None,
) -> Hello:  # fmt: skip
    """The ``hello`` a server sends first on every session, on either port; the two file
    limits only when it has files on."""
    return Hello(
        protocol=PROTOCOL_VERSION, server=server, max_frame=max_frame, heartbeat=heartbeat,
        max_body=max_body, max_file_size=max_file_size,
        max_files_per_message=max_files_per_message,
    )  # fmt: skip


class SessionClocks:
    """When a connection must be pinged or ended; see the module docstring."""

    __slots__ = (
        "_heartbeat",
        "_idle_timeout",
        "_last_heard",
        "_pinged",
        "_stuck_after",
        "_transfer_idle",
        "_waiting_since",
        "login_deadline",
        "open_deadline",
        "phase",
    )

    def __init__(
        self,
        *,
        accepted_at: float,
        handshake_timeout: float,
        auth_timeout: float,
        heartbeat: float,
        idle_timeout: float,
        stuck_writer_timeout: float,
        transfer_idle_timeout: float = 60.0,
    ) -> None:
        self.open_deadline = accepted_at + min(handshake_timeout, auth_timeout)
        self.login_deadline = accepted_at + auth_timeout
        self._heartbeat = heartbeat
        self._idle_timeout = idle_timeout
        self._stuck_after = stuck_writer_timeout
        self._transfer_idle = transfer_idle_timeout
        self.phase = Phase.OPENING
        self._last_heard = accepted_at
        self._pinged = False
        self._waiting_since: float | None = None  # output waits, with no progress since then

    def opened(self, now: float) -> None:
        """The session has opened (``hello`` goes out now)."""
        assert self.phase is Phase.OPENING, self.phase
        self.phase = Phase.AWAITING_LOGIN
        self._last_heard = now

    def transferring(self, now: float) -> None:
        """A file request began instead of a session: the opening deadline no longer holds."""
        assert self.phase is Phase.OPENING, self.phase
        self.phase = Phase.TRANSFER
        self._last_heard = now
        self._idle_timeout = self._transfer_idle

    def logged_in(self, now: float) -> None:
        assert self.phase is Phase.AWAITING_LOGIN, self.phase
        self.phase = Phase.LOGGED_IN
        self._last_heard = now

    def heard(self, now: float) -> None:
        """The peer sent something: it is alive, the heartbeat starts over."""
        self._last_heard = now
        self._pinged = False

    def output(self, now: float, *, waiting: bool, progressed: bool) -> None:
        """Whether output waits to be written now, and whether any went out since the last call."""
        if not waiting:
            self._waiting_since = None
        elif progressed or self._waiting_since is None:
            self._waiting_since = now
        if progressed and self.phase is Phase.TRANSFER:
            self._last_heard = now  # a download's client says nothing; bytes going out count

    def tick(self, now: float) -> Ping | Ending | None:
        """What is due at ``now``: a ``ping`` to send, an :class:`Ending`, or nothing."""
        since = self._waiting_since
        if since is not None and now - since >= self._stuck_after:
            return Ending(f"slow consumer: nothing written for {self._stuck_after:.0f} s")
        if self.phase is Phase.OPENING:
            return Ending(OPENING_TIMED_OUT) if now >= self.open_deadline else None
        if self.phase is Phase.TRANSFER:
            idle = now - self._last_heard >= self._idle_timeout
            return Ending(f"transfer idle for {self._idle_timeout:.0f} s") if idle else None
        if self.phase is Phase.AWAITING_LOGIN:
            if now < self.login_deadline:
                return None
            return Ending("login timed out", Error(
                code=ErrorCode.AUTH_REQUIRED, message="no login within the time allowed",
            ))  # fmt: skip
        silent = now - self._last_heard
        if silent >= self._idle_timeout:
            return Ending("idle", Bye(reason="idle"))
        if silent >= self._heartbeat and not self._pinged:
            self._pinged = True
            return Ping()
        return None

    def next_deadline(self) -> float:
        """When :meth:`tick` must run next (monotonic seconds)."""
        if self.phase is Phase.OPENING:
            due = self.open_deadline
        elif self.phase is Phase.TRANSFER:
            due = self._last_heard + self._idle_timeout
        elif self.phase is Phase.AWAITING_LOGIN:
            due = self.login_deadline
        elif self._pinged:
            due = self._last_heard + self._idle_timeout
        else:
            due = self._last_heard + min(self._heartbeat, self._idle_timeout)
        if self._waiting_since is not None:
            due = min(due, self._waiting_since + self._stuck_after)
        return due
