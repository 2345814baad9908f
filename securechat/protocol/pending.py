"""A client's requests in flight: each ``ref`` is answered by one :class:`Reply`.

Pure bookkeeping for :class:`~securechat.protocol.client.ClientSession`. While a
*collecting* request (the caller's ``sync``) is in flight, the messages that arrive go
into its reply instead of out as events. A lost connection answers every request in
flight with a ``shutting_down`` error (sends are not requests: they stay and are resent).
"""

from __future__ import annotations

import dataclasses

from securechat.errors import ErrorCode
from securechat.protocol.client_events import Reply
from securechat.protocol.messages import Error, Event, Journal

__all__ = ["Pending"]


@dataclasses.dataclass(slots=True)
class _Request:
    collects: bool
    messages: list[Journal] = dataclasses.field(default_factory=list)


class Pending:
    """The requests waiting for an answer, by ref, and the one collecting messages."""

    def __init__(self) -> None:
        self._by_ref: dict[str, _Request] = {}
        self._collecting: _Request | None = None

    def add(self, ref: str, *, collect: bool) -> None:
        request = self._by_ref[ref] = _Request(collect)
        if collect:
            self._collecting = request

    def collect(self, journal: Journal) -> bool:
        """Put ``journal`` into the collecting request's reply; False if none collects."""
        if self._collecting is None:
            return False
        self._collecting.messages.append(journal)
        return True

    def answer(self, event: Event) -> Reply | None:
        """The reply to the request ``event``'s ``ref`` names; None if none is waiting."""
        ref = getattr(event, "ref", None)
        request = self._by_ref.pop(ref, None) if ref is not None else None
        if request is None:
            return None
        assert ref is not None
        if request is self._collecting:
            self._collecting = None
        return Reply(ref, event, tuple(request.messages))

    def fail_all(self, reason: str) -> list[Reply]:
        """Answer every request in flight with ``shutting_down``: the connection is gone."""
        by_ref, self._by_ref = self._by_ref, {}
        self._collecting = None
        return [
            Reply(ref, Error(code=ErrorCode.SHUTTING_DOWN, message=reason, ref=ref))
            for ref in by_ref
        ]
