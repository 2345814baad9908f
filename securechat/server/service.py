"""What each request means: the chat logic between a connection, the store and the hub.

A connection thread calls :meth:`ChatService.handle` with a validated request and sends
back the events it returns. Nothing here touches a socket. Refusals are raised as
:class:`RequestError` subclasses, which the connection turns into ``error`` frames.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from securechat.accounts import Account, Accounts
from securechat.config import Limits, ThrottlePolicy
from securechat.errors import (
    AuthenticationError,
    NoSuchRoom,
    NoSuchUser,
    NotMember,
    StoreError,
    TooLarge,
)
from securechat.protocol.frames import HEADER_SIZE
from securechat.protocol.messages import (
    Auth,
    Event,
    History,
    HistoryPage,
    Join,
    Joined,
    Leave,
    Left,
    ListRooms,
    Message,
    Online,
    Ping,
    Pong,
    Request,
    RoomList,
    Send,
    Sync,
    Synced,
    Welcome,
    Who,
    encode,
    encode_object,
)
from securechat.protocol.names import normalize_name
from securechat.server.committer import Committer
from securechat.server.delivery import PendingSend, to_event
from securechat.server.hashpool import HashPool
from securechat.server.hub import Hub, Member
from securechat.server.throttle import LoginThrottle
from securechat.store.chat import ChatStore
from securechat.store.messages import NewMessage

log = logging.getLogger("securechat.server")


class Caller(Member, Protocol):
    """Who makes a request: a logged-in connection, as the hub's member and its account."""

    @property
    def account(self) -> Account: ...


class ChatService:
    def __init__(
        self,
        *,
        store: ChatStore,
        accounts: Accounts,
        hub: Hub,
        committer: Committer,
        hash_pool: HashPool,
        limits: Limits,
        throttle: ThrottlePolicy,
        default_rooms: tuple[str, ...],
    ) -> None:
        self._store = store
        self._accounts = accounts
        self._hub = hub
        self._committer = committer
        self._limits = limits
        self._default_rooms = default_rooms
        self._hash_pool = hash_pool  # the same one ``accounts`` hashes with
        self._throttle = LoginThrottle(throttle)
        self._handlers: dict[type[Request], Callable[[Caller, Any], list[Event]]] = {
            Join: self._join,
            Leave: self._leave,
            ListRooms: self._rooms,
            Send: self._send,
            History: self._history,
            Sync: self._sync,
            Who: self._who,
            Ping: lambda _caller, request: [Pong(ref=request.ref)],
        }

    # --- login ---------------------------------------------------------------------

    def login(self, request: Auth, *, address: str, timeout: float) -> tuple[Account, str]:
        """Check a login from ``address`` within ``timeout`` seconds; return it and its token.

        The attempt is reserved with the throttle before it waits for an argon2 slot, so
        parallel attempts cannot all slip past the throttle's count.

        Raises:
            AuthenticationError: unknown user, wrong password or token, disabled account.
            RateLimited: too many recent failures (see throttle.py), or no argon2 slot came
                free in time.
        """
        key = normalize_name(request.user) or request.user
        attempt = self._throttle.reserve(key, address, time.monotonic())
        try:
            if request.token is not None:
                account = self._accounts.authenticate_token(request.user, request.token)
                token = request.token
            else:
                assert request.password is not None
                account, token = self._log_in(request.user, request.password, timeout)
        except AuthenticationError:
            self._throttle.failed(attempt, time.monotonic())
            raise
        except BaseException:  # not checked (no argon2 slot, store down): no guess was made
            self._throttle.abandoned(attempt)
            raise
        self._throttle.succeeded(attempt, time.monotonic(), user_id=account.id)
        self._committer.note_login(account.id)
        return account, token

    def _log_in(self, user: str, password: str, timeout: float) -> tuple[Account, str]:
        limits = self._limits
        with self._hash_pool.slot(timeout):
            return self._accounts.log_in(
                user, password, token_ttl=limits.token_ttl, max_tokens=limits.max_tokens_per_user
            )

    def end_session(self, token: str) -> None:
        """The client said ``bye``: revoke the token it logged in with or was given."""
        try:
            self._accounts.revoke_token(token)
        except StoreError as exc:  # the token still expires after token_ttl
            log.warning("cannot revoke a resume token at bye: %s", exc.message)

    def forget_user(self, name: str, user_id: int) -> None:
        """Account ``user_id`` was deleted or replaced: drop its hub state and known addresses."""
        self._hub.forget(name, user_id)
        self._throttle.forget_user(name, user_id)

    def welcome(self, caller: Caller, token: str) -> Welcome:
        """Register the caller with the hub; a user in no room joins the default rooms."""
        account = caller.account
        self._hub.claim(account.name, account.id)
        if not self._hub.rooms_of(account.name):
            for room in self._default_rooms:
                if not self._hub.is_member(room, account.name):
                    self._store.join(account.id, room)
                    self._hub.add_member(room, caller)
        self._hub.connect(caller)
        return Welcome(
            user=account.name,
            rooms=tuple(self._hub.rooms_of(account.name)),
            last_id=self._store.last_message_id(),
            token=token,
        )

    def disconnect(self, caller: Caller) -> None:
        self._hub.disconnect(caller)

    # --- requests ------------------------------------------------------------------

    def handle(self, caller: Caller, request: Request) -> list[Event]:
        """The replies to ``request``; a ``send`` is answered later by the delivery thread.

        Raises:
            RequestError: the request is refused (not_member, no_such_user, ...).
        """
        return self._handlers[type(request)](caller, request)

    def _join(self, caller: Caller, request: Join) -> list[Event]:
        self._store.join(caller.account.id, request.room)
        members, online = self._hub.add_member(request.room, caller)
        return [
            Joined(room=request.room, members=tuple(members), online=tuple(online), ref=request.ref)
        ]

    def _leave(self, caller: Caller, request: Leave) -> list[Event]:
        self._require_member(request.room, caller.user)
        self._store.leave(caller.account.id, request.room)
        self._hub.remove_member(request.room, caller)
        return [Left(room=request.room, ref=request.ref)]

    def _rooms(self, caller: Caller, request: ListRooms) -> list[Event]:
        """One page of rooms after ``request.after``: at most ``rooms_page``, and one frame."""
        rooms, more = self._hub.room_list(
            caller.user, after=request.after, limit=self._limits.rooms_page
        )
        budget = self._limits.max_frame - HEADER_SIZE
        size = len(encode(RoomList(rooms=(), more=True, ref=request.ref)))
        for keep, room in enumerate(rooms):
            size += len(encode_object(dataclasses.asdict(room))) + 1  # and a comma
            if size > budget:
                rooms, more = rooms[:keep], True
                break
        return [RoomList(rooms=tuple(rooms), more=more, ref=request.ref)]

    def _who(self, caller: Caller, request: Who) -> list[Event]:
        return [Online(online=tuple(self._hub.online_users()), ref=request.ref)]

    def _send(self, caller: Caller, request: Send) -> list[Event]:
        if len(request.body) > self._limits.max_body:
            raise TooLarge(f"message body longer than {self._limits.max_body} characters")
        if request.room is not None:
            self._require_member(request.room, caller.user)
        account = caller.account
        self._committer.submit(PendingSend(origin=caller, message=NewMessage(
            sender_id=account.id, sender=account.name, body=request.body,
            ref=request.ref, room=request.room, to=request.to,
        )))  # fmt: skip
        return []

    def _history(self, caller: Caller, request: History) -> list[Event]:
        limit = min(request.limit or self._limits.history_default, self._limits.history_limit)
        if request.room is not None:
            self._require_member(request.room, caller.user)
            page, more = self._store.room_history(request.room, before=request.before, limit=limit)
        else:
            assert request.peer is not None
            peer_id = self._store.user_id(request.peer)
            if peer_id is None:
                raise NoSuchUser(f"no user {request.peer!r}")
            page, more = self._store.direct_history(
                caller.account.id, peer_id, before=request.before, limit=limit
            )
        return [self._fit_page([to_event(m) for m in page], more, request.ref)]

    def _fit_page(self, messages: list[Message], more: bool, ref: str | None) -> HistoryPage:
        """Drop the oldest messages until the reply fits in one frame."""
        budget = self._limits.max_frame - HEADER_SIZE
        size = len(encode(HistoryPage(messages=(), more=True, ref=ref)))
        keep = len(messages)
        for index in range(len(messages) - 1, -1, -1):
            size += len(encode(messages[index])) + 1
            if size > budget:
                keep = len(messages) - 1 - index
                more = True
                break
        return HistoryPage(messages=tuple(messages[len(messages) - keep :]), more=more, ref=ref)

    def _sync(self, caller: Caller, request: Sync) -> list[Event]:
        """Messages after ``since``, then ``synced``: at most ``sync_reply_bytes`` in all.

        The reply is queued whole, beside the outbox and its bound, so it is cut by bytes
        (always keeping one message, to make progress): ``more`` says where it stopped.
        """
        newest = self._store.last_message_id()  # read first: later commits get larger ids
        limits = self._limits
        page, more = self._store.sync(
            caller.account.id,
            since=request.since,
            limit=limits.sync_page,
            max_chars=limits.sync_reply_bytes,  # a character is at least a byte in the reply
        )
        size = HEADER_SIZE + len(encode(Synced(last_id=2**63 - 1, more=True, ref=request.ref)))
        messages: list[Message] = []
        for stored in page:
            message = to_event(stored)
            size += HEADER_SIZE + len(encode(message))
            if messages and size > limits.sync_reply_bytes:
                more = True
                break
            messages.append(message)
        last_id = (
            messages[-1].id if more else max(newest, request.since, *(m.id for m in page[-1:]))
        )
        return [*messages, Synced(last_id=last_id, more=more, ref=request.ref)]

    def _require_member(self, room: str, user: str) -> None:
        if not self._hub.is_member(room, user):
            if not self._hub.room_exists(room):
                raise NoSuchRoom(f"no room {room!r}")
            raise NotMember(f"you are not in room {room!r}; join it first")
