"""A client's sends not yet acknowledged: kept, resent after a reconnect, retried when refused.

Pure bookkeeping for :class:`~securechat.protocol.client.ClientSession`: each send has a
``ref`` unique across the user's clients (``prefix-n``) and its frame, encoded once and
written again as is (the server de-duplicates by ``ref``). A send refused with
``rate_limited`` waits ``retry_after``; one refused with ``server_error`` waits
:data:`RETRY_FIRST` seconds, doubling up to :data:`RETRY_CAP`; any other refusal is
final. An ack, or a final refusal, ends the send with the event the caller sees
(:class:`Delivered`, :class:`SendFailed`). Time is passed in.
"""

from __future__ import annotations

import itertools

from securechat.errors import ErrorCode
from securechat.protocol.client_events import Delivered, SendFailed
from securechat.protocol.frames import encode_frame
from securechat.protocol.messages import Ack, Error, Message, Send, encode

RETRY_FIRST = 1.0  # seconds before resending a send refused with server_error, doubling...
RETRY_CAP = 30.0  # ...up to this

__all__ = ["RETRY_CAP", "RETRY_FIRST", "Sends"]


class Sends:
    """The unacknowledged sends, oldest first, with their frames and retry times."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._refs = itertools.count(1)
        self._unacked: dict[str, Send] = {}  # insertion order = resend order
        self._frames: dict[str, bytes] = {}  # ref -> the encoded send, built once
        self._retry_due: dict[str, float] = {}  # refused sends to resend, and when
        self._retry_delay: dict[str, float] = {}  # the next server_error back-off, by ref

    def add(
        self, body: str, *, room: str | None, to: str | None, files: tuple[str, ...] = ()
    ) -> tuple[Send, bytes]:
        """A new send under a new ref, and its frame; ``files``: ids of uploads it carries."""
        ref = f"{self._prefix}-{next(self._refs)}"
        send = Send(body=body, room=room, to=to, ref=ref, files=files or None)
        self._unacked[ref] = send
        self._frames[ref] = encode_frame(encode(send))
        return send, self._frames[ref]

    @property
    def unacknowledged(self) -> list[Send]:
        return list(self._unacked.values())

    def frames(self) -> list[bytes]:
        """Every unacknowledged send's frame, oldest first (to resend after a login)."""
        return [self._frames[ref] for ref in self._unacked]

    def get(self, ref: str | None) -> Send | None:
        """The unacknowledged send with this ``ref``, if any."""
        return self._unacked.get(ref or "")

    def delivered(self, ack: Ack, sender: str | None) -> Delivered | None:
        """Forget the send ``ack`` confirms, stored now, and say so with the message as
        stored; None if the ack is not for a send of ours (any more)."""
        send = self._unacked.pop(ack.ref or "", None)
        if send is None:
            return None
        assert send.ref is not None
        assert sender is not None
        self._forget(send.ref)
        message = Message(
            id=ack.id, sender=sender, body=send.body, ts=ack.ts, room=send.room, to=send.to
        )
        return Delivered(send.ref, message)

    def refused(self, send: Send, error: Error, now: float) -> SendFailed | None:
        """Schedule ``send`` again if ``error`` is one to retry (None); else give it up and
        say so."""
        if self._retry_later(send, error, now):
            return None
        assert send.ref is not None
        del self._unacked[send.ref]
        self._forget(send.ref)
        return SendFailed(send.ref, send.body, send.room, send.to, error.code, error.message)

    def _retry_later(self, send: Send, error: Error, now: float) -> bool:
        """Schedule ``send`` again if ``error`` is one to retry; False if it is final."""
        assert send.ref is not None
        if error.code == ErrorCode.RATE_LIMITED:
            self._retry_due[send.ref] = now + (error.retry_after or 1.0)
            return True
        if error.code == ErrorCode.SERVER_ERROR:
            # Not stored (a failed commit, an overload): try again later under the same
            # ref, which the server de-duplicates, waiting longer each time.
            delay = self._retry_delay.get(send.ref, RETRY_FIRST)
            self._retry_due[send.ref] = now + delay
            self._retry_delay[send.ref] = min(delay * 2, RETRY_CAP)
            return True
        return False

    def next_due(self) -> float | None:
        """When the next refused send is to be resent, or None."""
        return min(self._retry_due.values(), default=None)

    def due(self, now: float) -> list[bytes]:
        """The frames of the refused sends whose time has come, taken off the schedule."""
        ready = [ref for ref, due in self._retry_due.items() if due <= now]
        for ref in ready:
            del self._retry_due[ref]
        return [self._frames[ref] for ref in ready]

    def cancel_retries(self) -> None:
        """The connection is gone: the next login resends every unacknowledged send."""
        self._retry_due.clear()

    def abandon(self) -> list[Send]:
        """Give up every unacknowledged send (the client is closing); returns them."""
        abandoned = list(self._unacked.values())
        self._unacked.clear()
        self._frames.clear()
        self._retry_due.clear()
        self._retry_delay.clear()
        return abandoned

    def _forget(self, ref: str) -> None:
        del self._frames[ref]
        self._retry_due.pop(ref, None)
        self._retry_delay.pop(ref, None)
