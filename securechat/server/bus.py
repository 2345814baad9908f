"""How a server learns of journal rows it did not write: the command line's (``securechat
room ...``), and other nodes' sharing its PostgreSQL database.

Theory of operation: every journal row names its writer (``origin``: a random id per
server start; NULL for the command line). A bus reads the rows after the last id it has
seen that another writer wrote, and hands them, in id order, to each subscriber. It first
reads the newest id, then the rows up to it. That misses nothing only if a committed id is
never smaller than one already visible. SQLite gives that order: one write lock. On
PostgreSQL a sequence does not, so every transaction that writes the journal first locks the
table ``commit_order`` and holds it until its COMMIT (``store/commit_order.py``): ids are drawn
and committed one transaction at a time, across all nodes, and PostgreSQL makes a commit
visible before it releases the transaction's locks. Tailing by id is then exact, with no
gaps to track: nothing is missed, nothing read twice.

- :class:`PollingBus` (SQLite) reads every ``journal_poll_interval``.
- :class:`NotifyBus` (PostgreSQL) waits on a LISTEN connection of its own. The same
  transaction that takes the lock NOTIFYs the channel with its writer's origin, delivered
  at COMMIT. A notification is a hint and nothing more: any role that may connect to the
  database can send one, or listen, so the bus reads the tables on any payload but its own
  origin, and trusts nothing in it. It also reads every ``bus_check_interval``, in case.
  A lost listening connection is opened again, and the tables read from the last ids seen,
  before the bus waits for notifications again.
  News that has no journal row (a plain join or leave, a read marker: ``store/news.py``)
  is tailed the same way from its own table, ``node_news``; after a lost listening
  connection a :class:`Resync` (read every room again) covers news already pruned.

Subscribers see only the :class:`Bus` interface, so another transport (Redis Streams, say)
could carry the wake-ups instead; the rows would still come from the table.
"""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Callable
from typing import Protocol

from securechat.errors import StoreError
from securechat.server.periodic import Periodic
from securechat.store.chat import ChatStore
from securechat.store.database import CommitConnection
from securechat.store.listener import JournalListener
from securechat.store.message_rows import StoredMessage
from securechat.store.news import News, Resync
from securechat.transport import Waker

log = logging.getLogger("securechat.server")

Subscriber = Callable[[list[StoredMessage]], None]
NewsSubscriber = Callable[[News], None]

TAIL_BATCH = 1000  # rows handed over at once, at most; more follow at once


class Bus(Protocol):
    """Journal rows written elsewhere, delivered to subscribers in id order."""

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback`` with each batch of new rows (in the bus's own thread)."""

    def subscribe_news(self, callback: NewsSubscriber) -> None:
        """Call ``callback`` with other nodes' news that has no row (``store/news.py``)."""

    def poll(self) -> None:
        """Look for new rows now and hand them over."""

    def start(self) -> None:
        """Start the bus's thread."""

    def stop(self) -> None:
        """Stop and join the bus's thread. Idempotent."""


class _Tail:
    """The part both buses share: the last id seen, the subscribers, reading the table."""

    def __init__(self, store: ChatStore, *, origin: str, after: int) -> None:
        self._store = store
        self._origin = origin
        self._last = after  # owned by whichever thread polls (the bus's, or a test's)
        self._subscribers: list[Subscriber] = []
        self._news_subscribers: list[NewsSubscriber] = []
        self._connection: CommitConnection | None = None  # the polling thread's own, if any

    def subscribe(self, callback: Subscriber) -> None:
        self._subscribers.append(callback)

    def subscribe_news(self, callback: NewsSubscriber) -> None:
        self._news_subscribers.append(callback)

    def poll(self) -> None:
        while True:
            rows, self._last, more = self._store.journal_after(
                self._last, exclude_origin=self._origin, limit=TAIL_BATCH,
                connection=self._connection,
            )  # fmt: skip
            if rows:
                for callback in self._subscribers:
                    callback(rows)
            if not more:
                return

    def _poll_safely(self) -> None:
        """:meth:`poll`, logging failures: the next poll tries again from the same id."""
        try:
            self.poll()
        except StoreError as exc:
            log.warning("cannot read the journal: %s", exc.message)
        except Exception:  # a bug: keep tailing
            log.exception("internal error applying journal rows")


class PollingBus(_Tail):
    """The journal tail on SQLite: a thread polling the store for rows of other origins."""

    def __init__(self, store: ChatStore, *, origin: str, after: int, interval: float) -> None:
        """Tail rows after id ``after`` that are not ``origin``'s, every ``interval`` s."""
        super().__init__(store, origin=origin, after=after)
        self._thread = Periodic("journal-tail", self._poll_safely, interval=interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()


class NotifyBus(_Tail):
    """The journal tail on PostgreSQL: woken by NOTIFY, reading the table (see above)."""

    def __init__(
        self,
        store: ChatStore,
        listener: JournalListener,
        *,
        origin: str,
        after: int,
        news_after: int,
        check_interval: float,
        retry_interval: float,
    ) -> None:
        """Tail rows after id ``after`` and news after id ``news_after`` that are not
        ``origin``'s, when ``listener`` hears of them or every ``check_interval`` s;
        reconnect every ``retry_interval`` s."""
        super().__init__(store, origin=origin, after=after)
        self._last_news = news_after  # owned by whichever thread polls, like _last
        self._listener = listener
        self._check_interval = check_interval
        self._retry_interval = retry_interval
        self._stopping = threading.Event()
        self._waker = Waker()
        self._thread = threading.Thread(target=self._run, name="journal-listener")
        self.connected = threading.Event()  # set while listening, after catching up
        # The bus's thread: whether it listened before (the first time follows the hub's
        # load from the table; a later one may have missed news).
        self._has_listened = False

    def start(self) -> None:
        self._thread.start()

    def poll(self) -> None:
        """Read the journal rows, then the news, written elsewhere since last time."""
        super().poll()
        while True:
            news, self._last_news, more = self._store.news_after(
                self._last_news, exclude_origin=self._origin, limit=TAIL_BATCH,
                connection=self._connection,
            )  # fmt: skip
            for item in news:
                self._tell(item)
            if not more:
                return

    def stop(self) -> None:
        self._stopping.set()
        self._waker.wake()
        if self._thread.is_alive():
            self._thread.join()
        self._waker.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listener.open()
                self._serve()
            except StoreError as exc:
                log.warning(
                    "journal listener: %s; again in %.1f s", exc.message, self._retry_interval
                )
            except Exception:  # a bug: keep listening
                log.exception("internal error in the journal listener")
            finally:
                self.connected.clear()
                self._listener.close()
            self._sleep(self._retry_interval)

    def _serve(self) -> None:
        """Catch up, then listen, reading on a connection of the thread's own (a read per
        wake-up, without a pool checkout and its ping).

        Raises:
            StoreError: the database or the listening connection was lost.
        """
        with self._store.connect() as connection:
            self._connection = connection
            try:
                self.poll()  # what was committed before the LISTEN, or while it was down
                if self._has_listened:
                    self._tell(Resync())
                self._has_listened = True
                self.connected.set()
                log.info("listening for other nodes' journal rows")
                self._listen()
            finally:
                self._connection = None

    def _listen(self) -> None:
        """Read the tables whenever a notification may announce another's commit, until
        stopped.

        Raises:
            StoreError: the listening connection or the database was lost.
        """
        listener, waker = self._listener.fileno(), self._waker.fileno()
        while not self._stopping.is_set():
            ready, _, _ = select.select([listener, waker], [], [], self._check_interval)
            if waker in ready:
                self._waker.clear()
                continue
            if not ready:  # no news for check_interval: read the table anyway
                self.poll()
                continue
            # A hint only, whoever sent it: read the tables unless it was our own commit.
            if any(payload != self._origin for payload in self._listener.drain()):
                self.poll()

    def _tell(self, item: News) -> None:
        for callback in self._news_subscribers:
            try:
                callback(item)
            except StoreError as exc:
                log.warning("cannot apply news from another node: %s", exc.message)

    def _sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if stopped."""
        if not self._stopping.is_set():
            select.select([self._waker], [], [], seconds)
            self._waker.clear()
