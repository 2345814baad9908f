"""Group commit: one thread stores messages in batches, a second acks and delivers them.

Connection threads ``submit()`` a send and return to their sockets at once. The committer
thread takes everything queued (up to ``max_batch``) and writes it in one transaction with
one ``fsync``. As soon as the rows are written, before the COMMIT, it hands the batch to
the delivery thread, which encodes what the batch sends to whom (each message once, each
recipient's share joined into one write) while the disk syncs, waits for the COMMIT, and
only then writes the ``ack`` for each sender and the messages to every recipient. An
acknowledged message is therefore always on disk. The two threads form a pipeline: while
batch n is written to fifty sockets, batch n+1 is already being committed, so a message
never waits for an earlier message's fan-out before its own commit starts. Batches leave
the committer in commit order and one thread delivers them all, so every recipient sees
messages in id order. If a commit fails nothing is acked: senders get ``server_error`` and
may resend with the same ``ref``. A send the store refuses alone (its recipient, room or
sender was deleted meanwhile) gets its own error; the rest of its batch is stored and acked.

The same transaction records when users last logged in (``note_login``). Login times wait
for the next message commit, or at most ``LOGIN_FLUSH_SECONDS``, so a reconnect storm
after a restart costs about one commit a second instead of one per login, and logins never
compete with messages for SQLite's single write lock. A crash loses at most that last
second of "last login" times, never a message.
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

from sqlalchemy import Connection

from securechat.config import Limits
from securechat.errors import ErrorCode, ServerError, StoreError
from securechat.protocol.frames import encode_frame
from securechat.protocol.messages import Ack, Error, Message, encode
from securechat.server.hub import Hub, Member
from securechat.store.chat import ChatStore
from securechat.store.messages import NewMessage, SaveResult, StoredMessage

log = logging.getLogger("securechat.server")


@dataclasses.dataclass(frozen=True, slots=True)
class PendingSend:
    origin: Member
    message: NewMessage


@functools.lru_cache(maxsize=256)  # a batch shares one timestamp
def format_ts(ts_ms: int) -> str:
    """Milliseconds since the epoch as the protocol's ``2026-11-22T10:00:00.123Z``."""
    moment = dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


def to_event(stored: StoredMessage) -> Message:
    return Message(
        id=stored.id,
        sender=stored.sender,
        body=stored.body,
        ts=format_ts(stored.ts_ms),
        room=stored.room,
        to=stored.to,
    )


def _refusal(code: ErrorCode, message: NewMessage) -> str:
    """Why the store refused one send of a batch (the others were stored)."""
    if code is ErrorCode.NO_SUCH_USER:
        return f"no user {message.to!r}"
    if code is ErrorCode.NO_SUCH_ROOM:
        return f"no room {message.room!r}"
    return "the message could not be stored: its sender no longer exists"


@dataclasses.dataclass(frozen=True, slots=True)
class _LoginSeen:
    user_id: int
    at: dt.datetime


class _Written:
    """A batch whose rows are written; its COMMIT may still be running."""

    __slots__ = ("_durable", "_unsettled", "batch", "results")

    def __init__(self, batch: list[PendingSend]) -> None:
        self.batch = batch
        self.results: list[SaveResult] = []
        self._durable = False
        # Held until settle(), exactly once: a bare lock wakes its one waiter with less
        # Python on the way than an Event, and this wait is on every message's path.
        self._unsettled = threading.Lock()
        self._unsettled.acquire()

    def settle(self, *, durable: bool) -> None:
        self._durable = durable
        self._unsettled.release()

    def is_durable(self) -> bool:
        """Wait for the COMMIT (one caller); True if it succeeded."""
        self._unsettled.acquire()
        return self._durable


_STOP = object()

LOGIN_FLUSH_SECONDS = 1.0


class Committer:
    def __init__(self, store: ChatStore, hub: Hub, limits: Limits) -> None:
        self._store = store
        self._hub = hub
        self._max_batch = limits.commit_batch
        self._max_queue = limits.commit_queue
        self._max_queue_bytes = limits.commit_queue_bytes
        # Sends and login times waiting to be committed. A SimpleQueue wakes the committer
        # sooner than queue.Queue (C, no Condition: submit to commit start 32-38 against
        # 46-49 µs p50 at office load, on every message's path). Its bounds are checked
        # before each put, under _queued_lock with the put: the count is never exceeded,
        # the bytes by one send at most.
        self._queue: queue.SimpleQueue[PendingSend | _LoginSeen | object] = queue.SimpleQueue()
        self._queued_lock = threading.Lock()
        self._queued_bytes = 0  # guarded by _queued_lock: the waiting sends' bodies, in memory
        # Written batches and refusals, in commit order; bounded by what the committer can
        # commit.
        self._committed: queue.SimpleQueue[_Written | list[tuple[Member, bytes]] | object] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="committer")
        self._delivery = threading.Thread(target=self._deliver, name="delivery")

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

    def note_login(self, user_id: int) -> None:
        """Record, with the next commit, that ``user_id`` logged in now."""
        # When the queue is full the server is overloaded with messages: a lost "last
        # login" time (shown by `securechat users`) is the right thing to give up.
        if self._queue.qsize() < self._max_queue:
            self._queue.put(_LoginSeen(user_id, dt.datetime.now(dt.UTC)))

    def stop(self) -> None:
        """Commit and deliver everything already submitted, then end both threads."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        if self._delivery.is_alive():
            self._committed.put(_STOP)
            self._delivery.join()

    # The committer thread owns the batch and the pending login times; it reads the hub
    # only through snapshots.
    def _run(self) -> None:
        with contextlib.ExitStack() as stack:
            connection: Connection | None = None
            try:
                connection = stack.enter_context(self._store.connect())
            except StoreError as exc:  # each commit then takes a connection from the pool
                log.warning("the group commit has no connection of its own: %s", exc.message)
            self._commit_loop(connection)

    def _commit_loop(self, connection: Connection | None) -> None:
        running = True
        logins: dict[int, dt.datetime] = {}
        logins_due = 0.0  # monotonic time by which the pending login times are written
        while running:
            batch: list[PendingSend] = []
            try:
                if logins:
                    item = self._queue.get(timeout=max(logins_due - time.monotonic(), 0.0))
                else:
                    item = self._queue.get()
            except queue.Empty:  # no message came along in time: write the logins alone
                self._commit(batch, logins, connection)
                logins = {}
                continue
            while True:
                if item is _STOP:
                    running = False
                    break
                if isinstance(item, _LoginSeen):
                    if not logins:
                        logins_due = time.monotonic() + LOGIN_FLUSH_SECONDS
                    logins[item.user_id] = item.at
                else:
                    assert isinstance(item, PendingSend)
                    batch.append(item)
                if len(batch) + len(logins) >= self._max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                taken = sum(sys.getsizeof(pending.message.body) for pending in batch)
                with self._queued_lock:
                    self._queued_bytes -= taken
            if batch or (
                logins
                and (
                    not running or len(logins) >= self._max_batch or time.monotonic() >= logins_due
                )
            ):
                self._commit(batch, logins, connection)
                logins = {}

    def _commit(
        self,
        batch: list[PendingSend],
        logins: dict[int, dt.datetime],
        connection: Connection | None,
    ) -> None:
        written = _Written(batch)
        try:
            self._store.save_messages(
                [p.message for p in batch],
                logins=logins,
                connection=connection,
                before_commit=functools.partial(self._hand_over, written),
            )
        except StoreError as exc:
            log.error("could not store %d message(s): %s", len(batch), exc.message)
            written.settle(durable=False)
            self._refuse(batch)
            return
        except Exception:
            # A bug, not a full disk: keep the committer alive for everyone else.
            log.exception("internal error storing %d message(s)", len(batch))
            written.settle(durable=False)
            self._refuse(batch)
            return
        written.settle(durable=True)

    def _hand_over(self, written: _Written, results: list[SaveResult]) -> None:
        """Rows written, COMMIT next: let the delivery thread encode meanwhile."""
        if written.batch:
            written.results = results
            self._committed.put(written)

    # The delivery thread: encodes and writes each batch, in commit order. It reads the
    # hub only through snapshots and touches sockets only through Member.send(), which is
    # thread-safe.
    def _deliver(self) -> None:
        while (item := self._committed.get()) is not _STOP:
            writes = self._writes_for(item) if isinstance(item, _Written) else item
            assert isinstance(writes, list)
            for member, data in writes:
                try:
                    member.send(data)
                except Exception:  # a bug: it must not stop delivery to everyone else
                    log.exception("internal error delivering %d bytes", len(data))

    def _writes_for(self, written: _Written) -> list[tuple[Member, bytes]]:
        """Encode while the COMMIT runs; nothing if it fails (the refusals come next)."""
        generation = self._hub.generation
        writes = self._encode(written)
        if not written.is_durable():
            return []
        # A session that logged in or joined during the COMMIT saw a last message id from
        # before it, so it must get these messages live: address them again.
        if self._hub.generation != generation:
            writes = self._encode(written)
        return writes

    def _encode(self, written: _Written) -> list[tuple[Member, bytes]]:
        try:
            return self._outgoing(written.batch, written.results)
        except Exception:  # a bug: the messages are stored, clients catch up with sync
            log.exception("internal error delivering %d message(s)", len(written.batch))
            return []

    def _outgoing(
        self, batch: list[PendingSend], results: list[SaveResult]
    ) -> list[tuple[Member, bytes]]:
        """One write per member: its acks and the others' messages, in id order."""
        # Most members get one blob per batch, so pieces are joined by concatenation
        # (no list per member); a member with many pieces (a sender's acks) is rare.
        outgoing: dict[Member, bytes] = {}
        run: list[tuple[Member, StoredMessage, bytes]] = []
        for pending, result in zip(batch, results, strict=True):
            ref = pending.message.ref
            if isinstance(result, ErrorCode):
                reply: Ack | Error = Error(
                    code=result, message=_refusal(result, pending.message), ref=ref
                )
            else:
                stored, is_new = result
                reply = Ack(id=stored.id, ts=format_ts(stored.ts_ms), ref=ref)
                if is_new:
                    if run and run[-1][1].room != stored.room:
                        self._deliver_run(run, outgoing)
                        run = []
                    run.append((pending.origin, stored, encode_frame(encode(to_event(stored)))))
            origin = pending.origin
            ack = encode_frame(encode(reply))
            outgoing[origin] = outgoing[origin] + ack if origin in outgoing else ack
        if run:
            self._deliver_run(run, outgoing)
        return list(outgoing.items())

    def _deliver_run(
        self, run: list[tuple[Member, StoredMessage, bytes]], outgoing: dict[Member, bytes]
    ) -> None:
        """Add consecutive messages with one destination, in id order, for each recipient."""
        room = run[0][1].room
        if room is None:  # direct messages: few recipients each, one by one
            for origin, stored, frame in run:
                assert stored.to is not None
                targets = self._hub.sessions_of(stored.to)
                if stored.to != stored.sender:
                    targets += self._hub.sessions_of(stored.sender)
                for member in targets:
                    if member is not origin:
                        outgoing[member] = outgoing.get(member, b"") + frame
            return
        origins = {origin for origin, _, _ in run}
        blob = b"".join(frame for _, _, frame in run)
        for member in self._hub.room_targets(room):
            if member in origins:  # a sender gets the others' messages, not its own
                blob_for = b"".join(frame for origin, _, frame in run if origin is not member)
            else:
                blob_for = blob
            if member in outgoing:
                outgoing[member] += blob_for
            elif blob_for:
                outgoing[member] = blob_for

    def _refuse(self, batch: list[PendingSend]) -> None:
        """Answer every send of a batch that could not be stored (after earlier acks)."""
        if not batch:  # only login times failed: nobody to answer
            return
        self._committed.put([
            (pending.origin, encode_frame(encode(Error(
                code=ErrorCode.SERVER_ERROR,
                message="the server could not store the message; resend it with the same ref",
                ref=pending.message.ref,
            ))))
            for pending in batch
        ])  # fmt: skip
