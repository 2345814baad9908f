"""A conversation's messages as a client reads them: ``history`` pages and ``sync``.

Reads only: they query the store directly, not through the group commit. Each reply is
cut to fit: a history page to one frame (dropping the oldest messages, or reading forward,
the newest), a sync reply to ``sync_reply_bytes``; ``more`` says where it stopped. Who may
read or send in a room (:func:`require_member`) is the hub's room state.
"""

from __future__ import annotations

from typing import Protocol

from securechat.accounts import Account
from securechat.config import Limits
from securechat.errors import Forbidden, NoSuchUser
from securechat.permissions import Role, may_see, no_such_room, not_member
from securechat.protocol.frames import HEADER_SIZE
from securechat.protocol.messages import (
    Event,
    History,
    HistoryPage,
    Journal,
    Message,
    RoomEvent,
    Sync,
    Synced,
    encode,
)
from securechat.server.delivery import journal_event
from securechat.server.hub import Hub
from securechat.store.chat import ChatStore

__all__ = ["Caller", "Timelines", "require_member"]


class Caller(Protocol):
    """Who asks: any logged-in connection (service.Caller)."""

    @property
    def user(self) -> str: ...

    @property
    def account(self) -> Account: ...


class Timelines:
    """Answers ``history`` and ``sync``."""

    def __init__(self, store: ChatStore, hub: Hub, limits: Limits) -> None:
        self._store = store
        self._hub = hub
        self._limits = limits

    def history(self, caller: Caller, request: History) -> list[Event]:
        """One page of a room's or a direct conversation's messages, fit to one frame."""
        limit = min(request.limit or self._limits.history_default, self._limits.history_limit)
        if request.room is not None:
            require_member(self._hub, request.room, caller)
            page, more = self._store.room_history(
                request.room, before=request.before, limit=limit, after=request.after,
                events=bool(request.events),
            )  # fmt: skip
        else:
            assert request.peer is not None
            peer_id = self._store.user_id(request.peer)
            if peer_id is None:
                raise NoSuchUser(f"no user {request.peer!r}")
            page, more = self._store.direct_history(
                caller.account.id, peer_id, before=request.before, limit=limit,
                after=request.after,
            )  # fmt: skip
        timeline = [journal_event(m) for m in page]  # messages, and room events when asked
        with_events = bool(request.events and request.room)
        forward = request.after is not None
        return [self._fit(timeline, more, request.ref, forward=forward, events=with_events)]

    def _fit(
        self, timeline: list[Journal], more: bool, ref: str | None, *,
        forward: bool = False, events: bool = False,
    ) -> HistoryPage:  # fmt: skip
        """Drop messages (and room events) until the reply fits in one frame: the oldest,
        or reading forward (``after``), the newest. ``events``: the page has its room
        events (``[]`` when there are none, so the client knows it asked a server that
        sends them)."""
        budget = self._limits.max_frame - HEADER_SIZE
        empty = HistoryPage(messages=(), more=True, ref=ref, events=() if events else None)
        size = len(encode(empty))
        order = range(len(timeline)) if forward else range(len(timeline) - 1, -1, -1)
        keep = len(timeline)
        for count, index in enumerate(order):
            size += len(encode(timeline[index])) + 1
            if size > budget:
                keep, more = count, True
                break
        kept = timeline[:keep] if forward else timeline[len(timeline) - keep :]
        messages = tuple(m for m in kept if isinstance(m, Message))
        found = tuple(m for m in kept if isinstance(m, RoomEvent))
        return HistoryPage(messages=messages, more=more, ref=ref, events=found if events else None)

    def sync(self, caller: Caller, request: Sync) -> list[Event]:
        """Messages after ``since``, then ``synced``: at most ``sync_reply_bytes`` in all.

        The reply is queued whole, beside the outbox and its bound, so it is cut by bytes
        (always keeping one message, to make progress): ``more`` says where it stopped.
        """
        # The newest id the caller may see, read first: later commits get larger ids.
        newest = self._store.newest_visible_id(caller.account.id)
        limits = self._limits
        page, more = self._store.sync(
            caller.account.id,
            since=request.since,
            limit=limits.sync_page,
            max_chars=limits.sync_reply_bytes,  # a character is at least a byte in the reply
        )
        size = HEADER_SIZE + len(encode(Synced(last_id=2**63 - 1, more=True, ref=request.ref)))
        messages: list[Journal] = []
        for stored in page:
            message = journal_event(stored)
            size += HEADER_SIZE + len(encode(message))
            if messages and size > limits.sync_reply_bytes:
                more = True
                break
            messages.append(message)
        last_id = (
            messages[-1].id if more else max(newest, request.since, *(m.id for m in page[-1:]))
        )
        return [*messages, Synced(last_id=last_id, more=more, ref=request.ref)]


def require_member(hub: Hub, room: str, caller: Caller, *, sending: bool = False) -> None:
    """Refuse unless the caller is in ``room`` (and, ``sending``, not muted there).

    Raises:
        NoSuchRoom: no such room, or a private one the caller may not see.
        NotMember: not in it. Forbidden: muted, for a send.
    """
    user = caller.user
    standing = hub.standing(room, user)
    if standing is None or not may_see(
        private=standing.private, role=standing.role, is_admin=caller.account.is_admin
    ):
        raise no_such_room(room)
    if standing.role is Role.NONE:
        raise not_member(room)
    if sending and standing.muted:
        raise Forbidden(f"you are muted in #{room}")
