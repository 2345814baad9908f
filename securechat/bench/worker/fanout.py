"""One fan-out run inside a worker: when each sender sends, and counting what arrives.

With a ``rate``, message *j* of sender *g* (of S) is due at start + (*j*·S + *g*)/rate:
late sends go out at once and there is no sleep drift. Without one, each sender keeps
``window`` un-acked sends in flight, sending again as acks come back. A send's body starts
with its send time; a receiver's delivery latency is the time its socket was read (taken
by the worker's loop before it handles any frame) minus that. The run reports
``stopped`` (open-ended runs, once every send is acked) and ``fanout_done`` itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from securechat.bench.commands import FanoutPlan, FanoutResult
from securechat.bench.stats import Samples
from securechat.bench.worker.connection import Connection, State
from securechat.bench.worker.wire import (
    ACK_PREFIX,
    BODY_KEY,
    MESSAGE_PREFIX,
    PONG_FRAME,
    PRESENCE_PREFIX,
    REF_KEY,
    STAMP_DIGITS,
    SendFrames,
    read_event,
)
from securechat.protocol.messages import Bye, Error, Event, Ping

Reply = Callable[[tuple[str, Any]], None]
NEVER = 1 << 62  # a due time that never comes

_BODY_AT = len(MESSAGE_PREFIX)  # the body comes after the prefix
_STAMP_AT = len(BODY_KEY)
_SEQ_AT = len(REF_KEY)


class Fanout:
    """The state of one fan-out run in this worker; only the worker's loop calls it."""

    def __init__(self, plan: FanoutPlan, room: str, reply: Reply) -> None:
        self.plan = plan
        self.tag = plan.tag.encode()
        self.frames = SendFrames(room, plan.tag, plan.body_bytes)
        self.reply = reply
        self.interval_ns = int(1e9 / plan.rate) if plan.rate else 0
        self.delivery = Samples(plan.max_samples)
        self.ack = Samples(plan.max_samples)
        self.total: int | None = None if plan.messages is None else plan.messages * plan.senders
        self.stopping = False
        self.stopped_reported = False
        self.sent = self.acked = self.delivered = 0
        self.deadline_ns = (
            0
            if plan.messages is None
            else plan.start_ns
            + int((plan.messages * plan.senders / (plan.rate or 1e9) + plan.grace_s) * 1e9)
        )
        self.first_send_ns = 0
        self.last_event_ns = 0
        self.failures: list[str] = []
        self.done = False

    # --- receiving: the hot loop ------------------------------------------------------

    def receive(self, conn: Connection, now: int) -> None:
        """Count the frames a ready session read at ``now``; reply to pings.

        ``message`` and ``ack`` frames are read by prefix, not decoded: a choice made for
        the measurement (see :mod:`securechat.bench.worker.wire`).
        Raises:
            MalformedMessage, FrameTooLarge: the server broke the protocol.
            ConnectionLost: the server closed the WebSocket.
        """
        next_frame = conn.framing.next_frame
        while payload := next_frame():
            if payload.startswith(MESSAGE_PREFIX):
                at = payload.find(BODY_KEY, _BODY_AT) + _STAMP_AT
                tag = self.tag
                end = at + STAMP_DIGITS
                if payload[end : end + len(tag)] != tag:
                    continue  # someone else's message (an external server's real users)
                conn.deliveries += 1
                self.delivered += 1
                self.delivery.add(now - int(payload[at:end]))
                self.last_event_ns = now
            elif payload.startswith(ACK_PREFIX):
                at = payload.find(REF_KEY) + _SEQ_AT + len(self.tag)
                sent_ns = conn.pending_ns.pop(int(payload[at : payload.index(b'"', at)]), 0)
                conn.acked += 1
                if sent_ns:
                    self.acked += 1
                    self.ack.add(now - sent_ns)
                    self.last_event_ns = now
                    if self.plan.rate is None:
                        self.send_window(conn, now)
            else:
                event = read_event(payload)
                note_event(conn, event)
                if isinstance(event, Error) and conn.error is not None:
                    self.failures.append(conn.error)

    # --- sending ----------------------------------------------------------------------

    def send_due(
        self, senders: Sequence[Connection], now: int, flush: Callable[[Connection], None]
    ) -> None:
        """Send what is due at ``now``: the timetable's sends, or without a rate the first window."""
        for conn in senders:
            if conn.state is not State.READY:
                continue
            if self.interval_ns:
                while self.may_send(conn) and self.due_ns(conn) <= now:
                    self.send_one(conn)
            elif conn.next_seq == 0:
                self.send_window(conn, now)
            if conn.queue:
                flush(conn)

    def send_window(self, conn: Connection, now: int) -> None:
        if now < self.plan.start_ns:
            return
        while len(conn.pending_ns) < self.plan.window and self.may_send(conn):
            self.send_one(conn)

    def send_one(self, conn: Connection) -> None:
        seq = conn.next_seq
        conn.next_seq = seq + 1
        self.sent += 1
        now = time.monotonic_ns()
        if not self.first_send_ns:
            self.first_send_ns = now
        conn.pending_ns[seq] = now
        conn.queue.append(self.frames.frame(now, seq))

    def may_send(self, conn: Connection) -> bool:
        limit = self.plan.messages
        return not self.stopping and (limit is None or conn.next_seq < limit)

    def due_ns(self, conn: Connection) -> int:
        """When the timetable has the next send of ``conn`` (NEVER in window mode)."""
        if conn.state is not State.READY or not self.may_send(conn) or not self.interval_ns:
            return NEVER
        slot = conn.next_seq * self.plan.senders + conn.sender
        return self.plan.start_ns + slot * self.interval_ns

    def wake_ns(self, senders: Sequence[Connection]) -> int:
        """The next moment this run needs the loop: a due send or the deadline."""
        wake = NEVER
        if self.interval_ns:
            for conn in senders:
                wake = min(wake, self.due_ns(conn))
        if self.deadline_ns:
            wake = min(wake, self.deadline_ns)
        return wake

    # --- completion -------------------------------------------------------------------

    def check(self, now: int, senders: int, sessions: int) -> None:
        """Report ``stopped`` and ``fanout_done`` when they are due (runs every turn)."""
        # Cheap aggregate tests first: this runs on every turn of the loop.
        limit = self.plan.messages
        all_sent = self.stopping or (limit is not None and self.sent == limit * senders)
        senders_done = all_sent and self.acked == self.sent
        if self.stopping and not self.stopped_reported and senders_done:
            self.stopped_reported = True
            self.reply(("stopped", self.sent))
        if self.total is None:
            return
        # A session gets every message except its own sends.
        received = self.delivered >= self.total * sessions - self.sent
        if (senders_done and received) or (self.deadline_ns and now >= self.deadline_ns):
            self._finish(sessions)

    def _finish(self, sessions: int) -> None:
        self.done = True
        assert self.total is not None
        expected = self.total * sessions - self.sent
        deliveries, acked, sent = self.delivered, self.acked, self.sent
        failures = list(self.failures)
        if deliveries < expected:
            failures.append(f"{expected - deliveries} deliveries missing at the deadline")
        if acked < sent:
            failures.append(f"{sent - acked} sends never acknowledged")
        self.reply(("fanout_done", FanoutResult(
            sent=sent, acked=acked, deliveries=deliveries, expected=expected,
            delivery_ns=self.delivery, ack_ns=self.ack, first_send_ns=self.first_send_ns,
            last_event_ns=self.last_event_ns, failures=failures,
        )))  # fmt: skip


def receive_idle(conn: Connection) -> None:
    """Handle the frames of a ready session while no fan-out runs: count them (and the
    presence ones), answer pings; deliveries are not counted.

    Raises:
        MalformedMessage, FrameTooLarge: the server broke the protocol.
        ConnectionLost: the server closed the WebSocket.
    """
    next_frame = conn.framing.next_frame
    while payload := next_frame():
        conn.frames += 1
        if payload.startswith(PRESENCE_PREFIX):
            conn.presence_frames += 1
            continue
        if payload.startswith(MESSAGE_PREFIX):
            continue
        if payload.startswith(ACK_PREFIX):
            conn.acked += 1
            continue
        note_event(conn, read_event(payload))


def note_event(conn: Connection, event: Event | None) -> None:
    """Answer a ping; note an error or a bye as what ended the session, should it end."""
    if isinstance(event, Ping):
        conn.queue.append(PONG_FRAME)
    elif isinstance(event, Error):
        conn.error = f"{conn.user}: error {event.code}: {event.message}"
    elif isinstance(event, Bye):
        conn.error = f"{conn.user}: server said bye ({event.reason})"
