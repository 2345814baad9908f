"""Delivery: the thread that acks committed sends and fans the messages out.

Theory of operation: the committer hands each batch over as a :class:`WrittenBatch` as
soon as its rows are written, before the COMMIT. This thread then encodes every stored
row into its ``message`` event once, addresses it from the hub's snapshots, and joins
each member's share of the batch (its acks, the others' messages) into one blob, all
while the disk syncs. It waits for the COMMIT (:meth:`WrittenBatch.is_durable`) and only
then writes: an acknowledged message is always on disk, and a failed COMMIT sends nothing
but the refusals that the committer queues next. If a session logged in or a membership
changed meanwhile (``Hub.generation``), the batch is addressed again, so a session whose
welcome was computed before the COMMIT still receives the messages live.

Batches arrive in commit order and this one thread writes them all, so every recipient
sees messages in id order. It touches sockets only through :meth:`Member.send`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import queue
import threading

from securechat.errors import ErrorCode
from securechat.protocol.files import attachments_from_json
from securechat.protocol.frames import encode_frame
from securechat.protocol.messages import (
    Ack,
    Deleted,
    Edited,
    Error,
    Journal,
    Message,
    RoomEvent,
    encode,
)
from securechat.server.hub import Hub, Member
from securechat.store.message_rows import NewMessage, SaveResult, StoredMessage

log = logging.getLogger("securechat.server")


@dataclasses.dataclass(frozen=True, slots=True)
class PendingSend:
    """A send on its way: the message to store, and the member its ack or error goes to."""

    origin: Member
    message: NewMessage


@functools.lru_cache(maxsize=256)  # a batch shares one timestamp
def format_ts(ts_ms: int) -> str:
    """Milliseconds since the epoch as the protocol's ``2026-11-22T10:00:00.123Z``."""
    moment = dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


def to_event(stored: StoredMessage) -> Message:
    """A stored message as the ``message`` event clients receive, as it is now."""
    return Message(
        id=stored.id,
        sender=stored.sender,
        body=stored.body,
        ts=format_ts(stored.ts_ms),
        room=stored.room,
        to=stored.to,
        edited=None if stored.edited_ms is None else format_ts(stored.edited_ms),
        deleted=True if stored.deleted else None,
        files=None if stored.deleted else attachments_from_json(stored.files),
    )


def journal_event(stored: StoredMessage) -> Journal:
    """Any journal row as the event clients receive: message, edited, deleted, room_event."""
    ts = format_ts(stored.ts_ms)
    if stored.kind == "edit":
        assert stored.target_id is not None
        return Edited(
            id=stored.id, target=stored.target_id, sender=stored.sender, body=stored.body,
            ts=ts, room=stored.room, to=stored.to,
        )  # fmt: skip
    if stored.kind == "delete":
        assert stored.target_id is not None
        return Deleted(
            id=stored.id, target=stored.target_id, by=stored.sender, ts=ts, room=stored.room,
            to=stored.to,
        )  # fmt: skip
    if stored.kind == "event":
        assert stored.room is not None
        assert stored.action is not None
        return RoomEvent(
            id=stored.id, room=stored.room, action=stored.action, actor=stored.sender, ts=ts,
            user=stored.subject,
            topic=(stored.body or None) if stored.action in ("topic", "create") else None,
        )  # fmt: skip
    return to_event(stored)


def _refusal(code: ErrorCode, message: NewMessage) -> str:
    """Why the store refused one send of a batch (the others were stored)."""
    if code is ErrorCode.NO_SUCH_USER:
        return f"no user {message.to!r}"
    if code is ErrorCode.NO_SUCH_ROOM:
        return f"no room {message.room!r}"
    return "the message could not be stored: its sender no longer exists"


class WrittenBatch:
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
        """The COMMIT is over (the committer's thread): ``durable`` if it succeeded."""
        self._durable = durable
        self._unsettled.release()

    def is_durable(self) -> bool:
        """Wait for the COMMIT (one caller); True if it succeeded."""
        self._unsettled.acquire()
        return self._durable


_STOP = object()


class Delivery:
    """The delivery thread: acks and messages for each batch, in commit order."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        # Written batches and refusals, in commit order; bounded by what the committer can
        # commit.
        self._queue: queue.SimpleQueue[WrittenBatch | list[tuple[Member, bytes]] | object] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="delivery")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Deliver everything already handed over, then end the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    # --- called from the committer's thread, in commit order ----------------------

    def hand_over(self, written: WrittenBatch, results: list[SaveResult]) -> None:
        """Rows written, COMMIT next: encode and address them meanwhile."""
        if written.batch:
            written.results = results
            self._queue.put(written)

    def deliver(self, writes: list[tuple[Member, bytes]]) -> None:
        """Send ``writes`` after everything handed over before (the team operations' and
        the journal tail's events, in commit order)."""
        if writes:
            self._queue.put(writes)

    def refuse(self, batch: list[PendingSend]) -> None:
        """Answer every send of a batch that could not be stored (after earlier acks)."""
        if not batch:  # only login times failed: nobody to answer
            return
        self._queue.put([
            (pending.origin, encode_frame(encode(Error(
                code=ErrorCode.SERVER_ERROR,
                message="the server could not store the message; resend it with the same ref",
                ref=pending.message.ref,
            ))))
            for pending in batch
        ])  # fmt: skip

    # --- the delivery thread: reads the hub only through snapshots -----------------

    def _run(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            writes = self._writes_for(item) if isinstance(item, WrittenBatch) else item
            assert isinstance(writes, list)
            for member, data in writes:
                try:
                    member.send(data)
                except Exception:  # a bug: it must not stop delivery to everyone else
                    log.exception("internal error delivering %d bytes", len(data))

    def _writes_for(self, written: WrittenBatch) -> list[tuple[Member, bytes]]:
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

    def _encode(self, written: WrittenBatch) -> list[tuple[Member, bytes]]:
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
                        self._address_run(run, outgoing)
                        run = []
                    run.append((pending.origin, stored, encode_frame(encode(to_event(stored)))))
            origin = pending.origin
            ack = encode_frame(encode(reply))
            outgoing[origin] = outgoing[origin] + ack if origin in outgoing else ack
        if run:
            self._address_run(run, outgoing)
        return list(outgoing.items())

    def _address_run(
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
