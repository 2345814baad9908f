"""Group commit: the thread that stores sends in batches, with the login times.

Theory of operation: connection threads :meth:`Committer.submit` a send and return to
their sockets at once. The commit thread takes everything queued (up to
``commit_batch``) and writes it in one transaction with one ``fsync``. As soon as the rows
are written, before the COMMIT, it hands the batch to :class:`Delivery` (``delivery.py``),
which encodes and addresses it while the disk syncs and sends it once the COMMIT is
settled. The two threads form a pipeline: while batch n is written to fifty sockets,
batch n+1 is already being committed, so a message never waits for an earlier message's
fan-out before its own commit starts; batches reach the delivery thread in commit order.
If a commit fails nothing is acked: senders get ``server_error`` and may resend with the
same ``ref``. A send the store refuses alone (its recipient, room or sender was deleted
meanwhile) gets its own error; the rest of its batch is stored and acked. The sends
waiting for the disk are bounded in count (``commit_queue``) and in bytes
(``commit_queue_bytes``): beyond either, a send is refused at once.

Team operations (joins, room creation, moderation, edits, deletions, read markers:
:meth:`Committer.perform`) go through the same thread, each in a transaction of its own
right after the sends queued before it, so this thread writes every journal row and the
ids are allocated in the order things happened. The caller's thread waits for the
outcome (as a join always waited for its write); the hub is updated (``effects.py``)
before it hears back, so its next request sees the change, and the events go to the
delivery thread behind the batches committed before.

The same transaction records when users last logged in (``note_login``) and when their
sessions ended (``note_session_end``, the people list's "last seen"). These times wait
for the next message commit, or at most ``LOGIN_FLUSH_SECONDS``, so a reconnect storm
after a restart costs about one commit a second instead of one per login, and logins never
compete with messages for SQLite's single write lock. A crash loses at most that last
second of those times, never a message.

Search indexing (SQLite) rides along too: quiet batches index their rows in their own
transaction, bursts leave them for when the queue is idle (``indexing.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from securechat.config import Limits
from securechat.errors import SecureChatError, ServerError, StoreError
from securechat.server.delivery import Delivery, PendingSend, WrittenBatch
from securechat.server.effects import Effects
from securechat.server.hub import Hub, Member
from securechat.server.indexing import SearchIndexing
from securechat.store.chat import ChatStore
from securechat.store.database import CommitConnection
from securechat.store.journal import Tx
from securechat.store.search import IndexPass

T = TypeVar("T")

log = logging.getLogger("securechat.server")


@dataclasses.dataclass(frozen=True, slots=True)
class _LoginSeen:
    user_id: int
    at: dt.datetime
    ended: bool = False  # a session of the user ended (last seen), not a login


class _SeenTimes:
    """Login times and session ends waiting for a commit (the committer thread's)."""

    __slots__ = ("ends", "logins")

    def __init__(self) -> None:
        self.logins: dict[int, dt.datetime] = {}
        self.ends: dict[int, dt.datetime] = {}

    def __len__(self) -> int:
        return len(self.logins) + len(self.ends)

    def add(self, item: _LoginSeen) -> None:
        (self.ends if item.ended else self.logins)[item.user_id] = item.at


class _PendingOperation(Generic[T]):
    """A team operation on its way: run by the committer, waited for by its caller."""

    __slots__ = ("_done", "error", "operation", "origin", "result")

    def __init__(self, operation: Callable[[Tx], T], origin: Member | None) -> None:
        self.operation = operation
        self.origin = origin
        self.result: T | None = None
        self.error: SecureChatError | None = None
        self._done = threading.Event()

    def settle(self, result: T | None, error: SecureChatError | None = None) -> None:
        self.result, self.error = result, error
        self._done.set()

    def wait(self, timeout: float) -> T:
        if not self._done.wait(timeout):
            raise ServerError("the server is too busy to do that now; try again")
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


_STOP = object()

LOGIN_FLUSH_SECONDS = 1.0


class Committer:
    """The commit thread, and the :class:`Delivery` it hands each written batch to."""

    def __init__(self, store: ChatStore, hub: Hub, limits: Limits) -> None:
        self._store = store
        self._max_batch = limits.commit_batch
        self._max_queue = limits.commit_queue
        self._max_queue_bytes = limits.commit_queue_bytes
        # Sends and login times waiting to be committed. A SimpleQueue (C, no Condition)
        # wakes the committer sooner than queue.Queue, and this wake-up is on every
        # message's path. Its bounds are checked before each put, under _queued_lock with
        # the put: the count is never exceeded, the bytes by one send at most.
        self._queue: queue.SimpleQueue[
            PendingSend | _LoginSeen | _PendingOperation[Any] | object
        ] = queue.SimpleQueue()
        self._queued_lock = threading.Lock()
        self._queued_bytes = 0  # guarded by _queued_lock: the waiting sends' bodies, in memory
        self._delivery = Delivery(hub)
        self._effects = Effects(hub)
        self._indexing = SearchIndexing(store, limits)
        self._operation_timeout = limits.operation_timeout
        self._thread = threading.Thread(target=self._run, name="committer")

    @property
    def delivery(self) -> Delivery:
        """The delivery thread, which the journal tail hands its events to as well."""
        return self._delivery

    def start(self) -> None:
        self._delivery.start()
        self._thread.start()

    def submit(self, pending: PendingSend) -> None:
        """Queue a send; its ack or error reaches ``pending.origin`` later.

        Raises:
            ServerError: too many sends, or too many bytes of them, are waiting for the disk.
        """
        size = sys.getsizeof(pending.message.body)  # what the body holds in memory, O(1)
        with self._queued_lock:
            if (
                self._queue.qsize() >= self._max_queue
                or self._queued_bytes >= self._max_queue_bytes
            ):
                raise ServerError("the server is overloaded; resend later with the same ref")
            self._queued_bytes += size
            self._queue.put(pending)

    def perform(self, operation: Callable[[Tx], T], *, origin: Member | None) -> T:
        """Run a team operation in the commit thread, apply its effects, return its result.

        Raises:
            RequestError: the operation was refused (nothing was written).
            StoreError: it could not be committed. ServerError: no answer in time.
        """
        pending = _PendingOperation(operation, origin)
        self._queue.put(pending)
        return pending.wait(self._operation_timeout)

    def note_login(self, user_id: int) -> None:
        """Record, with the next commit, that ``user_id`` logged in now."""
        self._note(_LoginSeen(user_id, dt.datetime.now(dt.UTC)))

    def note_session_end(self, user_id: int) -> None:
        """Record, with the next commit, that a session of ``user_id`` ended now (the
        people list's "last seen")."""
        self._note(_LoginSeen(user_id, dt.datetime.now(dt.UTC), ended=True))

    def _note(self, item: _LoginSeen) -> None:
        # When the queue is full the server is overloaded with messages: a lost "last
        # login" or "last seen" time is the right thing to give up.
        if self._queue.qsize() < self._max_queue:
            self._queue.put(item)

    def stop(self) -> None:
        """Commit and deliver everything already submitted, then end both threads."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        self._delivery.stop()

    # The committer thread owns the batch and the pending login times.
    def _run(self) -> None:
        with contextlib.ExitStack() as stack:
            connection: CommitConnection | None = None
            try:
                connection = stack.enter_context(self._store.connect())
            except StoreError as exc:  # each commit then takes a connection from the pool
                log.warning("the group commit has no connection of its own: %s", exc.message)
            self._indexing.start()
            self._commit_loop(connection)

    def _commit_loop(self, connection: CommitConnection | None) -> None:
        running = True
        logins = _SeenTimes()
        logins_due = 0.0  # monotonic time by which the pending login times are written
        while running:
            batch: list[PendingSend] = []
            waits = [logins_due - time.monotonic()] if logins else []
            if (idle := self._indexing.idle_wait()) is not None:
                waits.append(idle)
            try:
                item = self._queue.get(timeout=max(min(waits), 0.0)) if waits else self._queue.get()
            except queue.Empty:  # nothing came along in time
                if logins and time.monotonic() >= logins_due:  # write the logins alone
                    self._commit(batch, logins, connection)
                    logins = _SeenTimes()
                else:
                    self._indexing.catch_up(connection)
                continue
            while True:
                if item is _STOP:
                    running = False
                    break
                if isinstance(item, _LoginSeen):
                    if not logins:
                        logins_due = time.monotonic() + LOGIN_FLUSH_SECONDS
                    logins.add(item)
                elif isinstance(item, _PendingOperation):
                    if batch:  # the sends queued before it are committed before it
                        self._commit_sends(batch, logins, connection)
                        batch, logins = [], _SeenTimes()
                    self._perform(item, connection)
                else:
                    assert isinstance(item, PendingSend)
                    batch.append(item)
                if len(batch) + len(logins) >= self._max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch or (
                logins
                and (
                    not running or len(logins) >= self._max_batch or time.monotonic() >= logins_due
                )
            ):
                self._commit_sends(batch, logins, connection)
                logins = _SeenTimes()

    def _commit_sends(
        self,
        batch: list[PendingSend],
        logins: _SeenTimes,
        connection: CommitConnection | None,
    ) -> None:
        if batch:
            taken = sum(sys.getsizeof(pending.message.body) for pending in batch)
            with self._queued_lock:
                self._queued_bytes -= taken
        self._commit(batch, logins, connection)

    def _perform(
        self, pending: _PendingOperation[Any], connection: CommitConnection | None
    ) -> None:
        """Run one team operation in its own transaction, then its effects, then answer."""
        try:
            result = self._store.perform(pending.operation, connection=connection)
        except SecureChatError as exc:  # refused (RequestError), or not stored (StoreError)
            pending.settle(None, exc)  # the requester logs a StoreError, with who asked
            return
        except Exception:  # a bug: keep the committer alive for everyone else
            log.exception("internal error in a team operation")
            pending.settle(None, ServerError("internal error; the request was not done"))
            return
        try:
            self._delivery.deliver(self._effects.of(result, pending.origin))
        except Exception:  # a bug: the change is stored; clients catch up with sync
            log.exception("internal error announcing a team operation")
        pending.settle(result)

    def _commit(
        self,
        batch: list[PendingSend],
        logins: _SeenTimes,
        connection: CommitConnection | None,
    ) -> None:
        written = WrittenBatch(batch)
        index = self._indexing.for_batch(len(batch), others_waiting=not self._queue.empty())
        try:
            self._store.save_messages(
                [p.message for p in batch],
                logins=logins.logins,
                session_ends=logins.ends,
                connection=connection,
                before_commit=functools.partial(self._delivery.hand_over, written),
                index=index,
            )
        except StoreError as exc:
            log.error("could not store %d message(s): %s", len(batch), exc.message)
            self._refuse(written, index)
            return
        except Exception:
            # A bug, not a full disk: keep the committer alive for everyone else.
            log.exception("internal error storing %d message(s)", len(batch))
            self._refuse(written, index)
            return
        written.settle(durable=True)
        self._indexing.saved(index)

    def _refuse(self, written: WrittenBatch, index: IndexPass | None) -> None:
        written.settle(durable=False)
        self._delivery.refuse(written.batch)
        self._indexing.not_saved(index)
