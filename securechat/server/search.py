"""The ``search`` request: one page of the messages the caller may read that hold a text.

What may be read is decided by the store's query (``store/search.py``), from the
database's memberships, not from the hub: a room left is searched up to the moment of
leaving. The reply is one frame, newest first; ``more`` tells the client to ask again
with ``before`` set to ``next_before``: the oldest id it got, or older when the query's
budget ended the page (``cut``).
"""

from __future__ import annotations

import time
from typing import Protocol

from securechat.accounts import Account
from securechat.config import Limits
from securechat.errors import RateLimited
from securechat.protocol.frames import HEADER_SIZE
from securechat.protocol.messages import Event, Message, Search, SearchResults, encode
from securechat.server.delivery import format_ts
from securechat.server.ratelimit import SharedBuckets
from securechat.store.chat import ChatStore
from securechat.store.search import Match, SearchPage


class _Caller(Protocol):  # service.Caller, without importing the service
    @property
    def account(self) -> Account: ...


class SearchRequests:
    """Answers ``search`` for :class:`ChatService`; any connection thread may call it.

    Two bounds on what one user's searches cost: each query examines at most
    ``search_scan_limit`` messages holding its text (the store's budget), and each user,
    all sessions together, runs ``search_rate_per_second`` queries (bursts of
    ``search_burst``); one more is refused with ``rate_limited``.
    """

    def __init__(self, store: ChatStore, limits: Limits) -> None:
        self._store = store
        self._limits = limits
        self._buckets = SharedBuckets(rate=limits.search_rate_per_second, burst=limits.search_burst)

    def __call__(self, caller: _Caller, request: Search) -> list[Event]:
        """Raises: RateLimited: the user's searches ran out of tokens."""
        limits = self._limits
        wait = self._buckets.take(caller.account.id, time.monotonic())
        if wait:
            raise RateLimited("too many searches; wait a moment", retry_after=round(wait, 3))
        limit = min(request.limit or limits.search_default, limits.search_limit)
        page = self._store.search(
            caller.account.id, request.query, before=request.before, limit=limit,
            scan=limits.search_scan_limit,
        )  # fmt: skip
        return [self._fit(list(map(to_event, page.matches)), page, request.ref)]

    def _fit(self, messages: list[Message], page: SearchPage, ref: str | None) -> SearchResults:
        """Keep the newest messages that fit in one frame; ``more`` if any had to go."""
        budget = self._limits.max_frame - HEADER_SIZE
        size = len(encode(SearchResults(messages=(), more=True, ref=ref, next_before=2**63)))
        for keep, message in enumerate(messages):
            size += len(encode(message)) + 1  # and a comma
            if size > budget:
                kept = tuple(messages[:keep])
                return SearchResults(
                    messages=kept, more=True, ref=ref, next_before=kept[-1].id,
                )  # fmt: skip
        return SearchResults(
            messages=tuple(messages), more=page.more, ref=ref, next_before=page.resume,
            cut=page.cut or None,
        )  # fmt: skip


def to_event(match: Match) -> Message:
    """A match as the ``message`` clients know: the conversation, the time, any edit."""
    edited = None if match.edited_ms is None else format_ts(match.edited_ms)
    return Message(
        id=match.id, sender=match.sender, body=match.body, ts=format_ts(match.ts_ms),
        room=match.room, to=match.to, edited=edited,
    )  # fmt: skip
