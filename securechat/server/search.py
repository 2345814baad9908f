"""The ``search`` request: one page of the messages the caller may read that hold a text.

What may be read is decided by the store's query (``store/search.py``), from the
database's memberships, not from the hub: a room left is searched up to the moment of
leaving. The reply is one frame, newest first; ``more`` tells the client to ask again
with ``before`` set to the oldest id it got.
"""

from __future__ import annotations

from typing import Protocol

from securechat.accounts import Account
from securechat.config import Limits
from securechat.protocol.frames import HEADER_SIZE
from securechat.protocol.messages import Event, Message, Search, SearchResults, encode
from securechat.server.delivery import format_ts
from securechat.store.chat import ChatStore
from securechat.store.search import Match


class _Caller(Protocol):  # service.Caller, without importing the service
    @property
    def account(self) -> Account: ...


class SearchRequests:
    """Answers ``search`` for :class:`ChatService`; any connection thread may call it."""

    def __init__(self, store: ChatStore, limits: Limits) -> None:
        self._store = store
        self._limits = limits

    def __call__(self, caller: _Caller, request: Search) -> list[Event]:
        limits = self._limits
        limit = min(request.limit or limits.search_default, limits.search_limit)
        matches, more = self._store.search(
            caller.account.id, request.query, before=request.before, limit=limit
        )
        return [self._fit(list(map(to_event, matches)), more, request.ref)]

    def _fit(self, messages: list[Message], more: bool, ref: str | None) -> SearchResults:
        """Keep the newest messages that fit in one frame; ``more`` if any had to go."""
        budget = self._limits.max_frame - HEADER_SIZE
        size = len(encode(SearchResults(messages=(), more=True, ref=ref)))
        for keep, message in enumerate(messages):
            size += len(encode(message)) + 1  # and a comma
            if size > budget:
                return SearchResults(messages=tuple(messages[:keep]), more=True, ref=ref)
        return SearchResults(messages=tuple(messages), more=more, ref=ref)


def to_event(match: Match) -> Message:
    """A match as the ``message`` clients know: the conversation, the time, any edit."""
    edited = None if match.edited_ms is None else format_ts(match.edited_ms)
    return Message(
        id=match.id, sender=match.sender, body=match.body, ts=format_ts(match.ts_ms),
        room=match.room, to=match.to, edited=edited,
    )  # fmt: skip
