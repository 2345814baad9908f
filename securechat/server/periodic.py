"""One named thread that does one thing every few seconds, until it is stopped.

The server has several of these (the account watcher, the certificate renewal, the
presence announcer, the journal poll on SQLite, the node heartbeat on PostgreSQL, the
directory sync); each
is an action and an interval, and this is the thread, the stop and the wake-up they share.
The action returns how long to wait before the next run (None: the usual interval), so a
check that failed can come back sooner. :meth:`Periodic.wake` runs it now: a wake that
comes while the action runs is not lost, the next wait returns at once. The action
handles the errors it expects (a database that is down, say) and logs them; anything else
is a bug, logged with its traceback, and the thread goes on with the next run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("securechat.server")

__all__ = ["Periodic"]


class Periodic:
    """``action`` every ``interval`` seconds in a thread named ``name``; start(), stop()."""

    def __init__(
        self,
        name: str,
        action: Callable[[], float | None],
        *,
        interval: float,
        at_start: bool = False,
    ) -> None:
        """``at_start``: run once as soon as started, rather than one interval later."""
        self.name = name
        self._action = action
        self._interval = interval
        self._at_start = at_start
        self._stopping = threading.Event()
        self._wake = threading.Event()  # set by wake() and stop(); cleared by the thread
        self._thread = threading.Thread(target=self._run, name=name)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Run the action now rather than at the end of the wait. Any thread."""
        self._wake.set()

    def stop(self) -> None:
        """Stop after the run in progress, if any, and join the thread. Idempotent."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        delay = self._run_once() if self._at_start else self._interval
        while not self._stopping.is_set():
            self._wake.wait(delay)
            if self._stopping.is_set():
                return
            self._wake.clear()  # after the wait it ended: a wake during the run still counts
            delay = self._run_once()

    def _run_once(self) -> float:
        try:
            delay = self._action()
        except Exception:  # a bug: log it with its traceback, and keep running
            log.exception("internal error in the %s thread", self.name)
            delay = None
        return self._interval if delay is None else delay
