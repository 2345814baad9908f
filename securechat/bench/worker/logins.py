"""The logins a worker has to make: sessions to open and one-shot logins, and their results.

``open`` and ``storm`` commands queue work here; the worker's loop asks :meth:`Logins.next`
for the next login to start while fewer than ``concurrency`` are in flight, and tells
each one's outcome back. Once a command's work is all settled its result is handed out
once (:meth:`Logins.opened`, :meth:`Logins.stormed`) for the worker to reply with.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from securechat.bench.commands import LoginResult, LoginSpec, OpenResult, Role, SessionSpec
from securechat.bench.worker.connection import Connection
from securechat.bench.worker.wire import login_frames


class Login(NamedTuple):
    """A connection to start: who logs in, as what, and the frames it sends first."""

    user: str
    role: Role
    sender: int
    frames: bytes
    port: int = 0  # another node's port; 0: the worker's endpoint


class Logins:
    """Queued logins, how many are in flight, and what became of the finished ones."""

    def __init__(self, room: str) -> None:
        self._room = room
        self._concurrency = 1
        self._open_todo: list[SessionSpec] = []
        self._open_result: OpenResult | None = None
        self._opening = 0
        self._storm_todo: list[LoginSpec] = []
        self._storm_results: list[LoginResult] | None = None
        self._storming = 0

    @property
    def busy(self) -> bool:
        """Whether an ``open`` or a ``storm`` is under way."""
        return self._open_result is not None or self._storm_results is not None

    @property
    def done_in_storm(self) -> int:
        """One-shot logins finished so far in the current storm."""
        return len(self._storm_results) if self._storm_results is not None else 0

    def open(self, specs: list[SessionSpec], concurrency: int) -> None:
        self._open_todo = list(reversed(specs))
        self._open_result = OpenResult(connect_ns=[], failures=[])
        self._concurrency = concurrency

    def storm(self, logins: list[LoginSpec], concurrency: int) -> None:
        self._storm_todo = list(reversed(logins))
        self._storm_results = []
        self._concurrency = concurrency

    def next(self) -> Login | None:
        """The next login to start, now counted as in flight; None at the concurrency cap."""
        if self._opening + self._storming >= self._concurrency:
            return None
        if self._open_todo:
            spec = self._open_todo.pop()
            room = None if spec.role is Role.IDLE else self._room
            self._opening += 1
            frames = login_frames(spec.user, password=spec.password, room=room)
            return Login(spec.user, spec.role, spec.sender, frames, spec.port)
        if self._storm_todo:
            one = self._storm_todo.pop()
            self._storming += 1
            if one.token is not None:
                return Login(one.user, Role.ONESHOT, -1, login_frames(one.user, token=one.token))
            return Login(one.user, Role.ONESHOT, -1, login_frames(one.user, password=one.password))
        return None

    def session_ready(self, conn: Connection) -> None:
        """A persistent session got its welcome (and joined the room)."""
        assert self._open_result is not None
        self._open_result.connect_ns.append(conn.welcome_ns - conn.started_ns)
        self._opening -= 1

    def oneshot_done(self, conn: Connection) -> None:
        """A one-shot login got its welcome."""
        assert self._storm_results is not None
        elapsed = conn.welcome_ns - conn.started_ns
        self._storm_results.append(LoginResult(conn.user, True, elapsed, conn.token))
        self._storming -= 1

    def failed(self, conn: Connection, reason: str) -> None:
        """A connection ended before its login was through."""
        if conn.role is Role.ONESHOT:
            assert self._storm_results is not None
            elapsed = time.monotonic_ns() - conn.started_ns
            self._storm_results.append(LoginResult(conn.user, False, elapsed, error=reason))
            self._storming -= 1
        else:
            assert self._open_result is not None
            self._open_result.failures.append(f"{conn.user}: {reason}")
            self._opening -= 1

    def opened(self) -> OpenResult | None:
        """The ``open`` command's result, once, when every session is open or failed."""
        result = self._open_result
        if result is None or self._open_todo or self._opening:
            return None
        self._open_result = None
        return result

    def stormed(self) -> list[LoginResult] | None:
        """The ``storm`` command's results, once, when every login is through or failed."""
        results = self._storm_results
        if results is None or self._storm_todo or self._storming:
            return None
        self._storm_results = None
        return results
