"""How a server learns of journal rows it did not write: the command line's (``securechat
room ...``), and in time other servers' on the same database.

Theory of operation: every journal row names its writer (``origin``: a random id per
server start; NULL for the command line). :class:`PollingBus` reads, every
``journal_poll_interval``, the rows after the last id it has seen that another writer
wrote, and hands them, in id order, to each subscriber. It first reads the newest id,
then the rows up to it. On SQLite every writer allocates ids and commits under the one
write lock, so a committed id is never smaller than one already visible: the rows up to
the newest id read are all there, and tailing by id misses none. (#17 replaces the
polling with PostgreSQL's LISTEN/NOTIFY, where ids do not commit in order; subscribers
see the same interface, :class:`Bus`.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from securechat.errors import StoreError
from securechat.store.chat import ChatStore
from securechat.store.messages import StoredMessage

log = logging.getLogger("securechat.server")

Subscriber = Callable[[list[StoredMessage]], None]

TAIL_BATCH = 1000  # rows handed over at once, at most; more follow at once


class Bus(Protocol):
    """Journal rows written elsewhere, delivered to subscribers in id order."""

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback`` with each batch of new rows (in the bus's own thread)."""

    def poll(self) -> None:
        """Look for new rows now and hand them over."""


class PollingBus:
    """The journal tail: a thread polling the store for rows of other origins."""

    def __init__(self, store: ChatStore, *, origin: str, after: int, interval: float) -> None:
        """Tail rows after id ``after`` that are not ``origin``'s, every ``interval`` s."""
        self._store = store
        self._origin = origin
        self._last = after  # owned by whichever thread polls (the tail's, or a test's)
        self._interval = interval
        self._subscribers: list[Subscriber] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="journal-tail")

    def subscribe(self, callback: Subscriber) -> None:
        self._subscribers.append(callback)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def poll(self) -> None:
        while True:
            rows, self._last, more = self._store.journal_after(
                self._last, exclude_origin=self._origin, limit=TAIL_BATCH
            )
            if rows:
                for callback in self._subscribers:
                    callback(rows)
            if not more:
                return

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self.poll()
            except StoreError as exc:  # the next poll tries again from the same id
                log.warning("cannot read the journal: %s", exc.message)
            except Exception:  # a bug: keep tailing
                log.exception("internal error applying journal rows")
