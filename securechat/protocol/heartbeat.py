"""A client's heartbeat: a ``ping`` after a silence, and the end of a server gone quiet.

Pure clock for :class:`~securechat.protocol.client.ClientSession`, the client's side of
the server's :class:`~securechat.protocol.clocks.SessionClocks`. Any bytes from the server
count as life. After ``heartbeat`` seconds of silence (the server's ``hello`` says how
long, unless the client overrides it) one ``ping`` goes out; if nothing comes back within
:data:`PONG_TIMEOUT` seconds the connection is dead. Time is passed in.
"""

from __future__ import annotations

from securechat.protocol.messages import Hello

PONG_TIMEOUT = 10.0  # seconds an unanswered heartbeat ping may wait

__all__ = ["PONG_TIMEOUT", "Heartbeat"]


class Heartbeat:
    """When to ping the server, and when to give up on it."""

    def __init__(self, override: float | None = None) -> None:
        """``override``: the interval to use instead of the one the server's hello says."""
        self._override = override
        self._interval: float | None = None  # known once the server said hello
        self._last_heard = 0.0
        self._ping_sent: float | None = None

    def greeted(self, hello: Hello) -> None:
        self._interval = self._override or float(hello.heartbeat)

    def heard(self, now: float) -> None:
        """The server sent something (or a new connection opened): the silence restarts."""
        self._last_heard, self._ping_sent = now, None

    def next_deadline(self) -> float | None:
        """When :meth:`is_dead` or :meth:`ping_due` may next turn true; None before hello."""
        if self._interval is None:
            return None
        if self._ping_sent is not None:
            return self._ping_sent + PONG_TIMEOUT
        return self._last_heard + self._interval

    def is_dead(self, now: float) -> bool:
        """The ping went unanswered for longer than :data:`PONG_TIMEOUT`."""
        return self._ping_sent is not None and now - self._ping_sent > PONG_TIMEOUT

    def ping_due(self, now: float) -> bool:
        """Whether to send a ping now: once per silence of the interval."""
        if self._interval is None or self._ping_sent is not None:
            return False
        if now - self._last_heard < self._interval:
            return False
        self._ping_sent = now
        return True
