"""What each request means: the chat logic between a connection, the store and the hub.

A connection thread calls :meth:`ChatService.handle` with a validated request and sends
back the events it returns. Nothing here touches a socket. Refusals are raised as
:class:`RequestError` subclasses, which the connection turns into ``error`` frames.

Sends are checked against the hub (member? muted?) and queued for the group commit.
Everything else that writes (join, leave, create, moderate, edit, delete, read) is a team
operation of the store, run by the committer (:meth:`Committer.perform`), which checks it
against the database and the permission table; this thread waits for its outcome and
answers. Reads (history, sync, unread) query the store directly: a conversation's
messages in timelines.py, the lists beside it in listing.py, search in search.py.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from securechat.accounts import Account, Accounts, new_resume_token
from securechat.config import Limits, ThrottlePolicy
from securechat.directory.login import DirectoryLogin, DirectorySignIn
from securechat.directory.placement import place_rooms
from securechat.errors import (
    AuthenticationError,
    RequestError,
    StoreError,
    TooLarge,
)
from securechat.protocol.files import AskFileTicket
from securechat.protocol.frames import HEADER_SIZE
from securechat.protocol.membership import GetInvitations, GetMembers
from securechat.protocol.messages import (
    Ack,
    Auth,
    Create,
    Delete,
    Done,
    Edit,
    Event,
    GetUnread,
    History,
    Join,
    Joined,
    Leave,
    Left,
    ListRooms,
    MarkRead,
    Moderate,
    Online,
    Ping,
    Pong,
    ReadMarker,
    Request,
    RoomList,
    Search,
    Send,
    Sync,
    Welcome,
    Who,
    encode,
    encode_object,
)
from securechat.protocol.names import normalize_name
from securechat.protocol.requests import GetConversations, GetPeople
from securechat.server.addresses import address_key
from securechat.server.broadcasts import RoomMentions
from securechat.server.committer import Committer
from securechat.server.delivery import PendingSend, format_ts
from securechat.server.files import FileService
from securechat.server.filesends import FileRequests
from securechat.server.hashpool import HashPool
from securechat.server.hub import Hub, Member
from securechat.server.listing import Listings
from securechat.server.search import SearchRequests
from securechat.server.throttle import LoginThrottle
from securechat.server.timelines import Timelines, require_member
from securechat.store import edits, moderation, reads, rooms
from securechat.store.chat import ChatStore
from securechat.store.journal import Actor, Tx
from securechat.store.message_rows import NewMessage

T = TypeVar("T")

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
        directory: DirectoryLogin | None = None,
        files: FileService | None = None,
    ) -> None:
        """``files``: shared files (#27; None: every ``file_ticket`` is ``files_disabled``)."""
        self._store = store
        self._directory = directory
        self._accounts = accounts
        self._hub = hub
        self._committer = committer
        self._limits = limits
        self._room_mentions = RoomMentions(hub, limits)
        self._default_rooms = default_rooms
        self._hash_pool = hash_pool  # the same one ``accounts`` hashes with
        self._throttle = LoginThrottle(throttle)
        listings = Listings(store, hub, limits)
        timelines = Timelines(store, hub, limits)
        self._files = FileRequests(files, committer=committer, limits=limits)
        self.hello = self._files.hello  # the first event of every session
        self._handlers: dict[type[Request], Callable[[Caller, Any], list[Event]]] = {
            Join: self._join,
            Leave: self._leave,
            ListRooms: self._rooms,
            Send: self._send,
            History: timelines.history,
            Sync: timelines.sync,
            Who: self._who,
            Ping: lambda _caller, request: [Pong(ref=request.ref)],
            Create: self._create,
            Moderate: self._moderate,
            Edit: self._edit,
            Delete: self._delete,
            MarkRead: self._read,
            GetUnread: listings.unread,
            GetConversations: listings.conversations,
            GetPeople: listings.people,
            GetMembers: listings.members,
            GetInvitations: listings.invitations,
            Search: SearchRequests(store, limits),
            AskFileTicket: self._files.ticket,
        }

    # --- login ---------------------------------------------------------------------

    def login(self, request: Auth, *, address: str, timeout: float) -> tuple[Account, str]:
        """Check a login from ``address`` within ``timeout`` seconds; return it and its token.

        A resume token is checked at once: it cannot be guessed, so no one's failures
        delay it. A password goes through the throttle (throttle.py), which reserves the
        attempt before it waits for an argon2 slot, so parallel attempts cannot all slip
        past the throttle's count.

        Raises:
            AuthenticationError: unknown user, wrong password or token, disabled account.
            RateLimited: too many recent failures (see throttle.py), or no argon2 slot came
                free in time.
        """
        name = normalize_name(request.user) or request.user
        source = address_key(address, self._limits.ipv6_prefix)
        if request.token is not None:
            account = self._accounts.authenticate_token(request.user, request.token)
            self._throttle.remember(name, source, time.monotonic(), user_id=account.id)
            token = request.token
        else:
            account, token = self._password_login(request, name, source, timeout)
        self._committer.note_login(account.id)
        return account, token

    def resumed(self, account: Account, *, address: str) -> None:
        """A login without a password (a device cookie, #26), counted as a token's is."""
        source = address_key(address, self._limits.ipv6_prefix)
        self._throttle.remember(account.name, source, time.monotonic(), user_id=account.id)
        self._committer.note_login(account.id)

    def _password_login(
        self, request: Auth, name: str, source: str, timeout: float
    ) -> tuple[Account, str]:
        """Reserve the attempt with the throttle, check it, and tell the throttle how it went."""
        assert request.password is not None
        attempt = self._throttle.reserve(name, source, time.monotonic())
        try:
            account, token = self._log_in(request.user, request.password, timeout)
        except AuthenticationError:
            self._throttle.failed(attempt, time.monotonic())
            raise
        except BaseException:  # not checked (no argon2 slot, store down): no guess was made
            self._throttle.abandoned(attempt)
            raise
        self._throttle.succeeded(attempt, time.monotonic(), user_id=account.id)
        return account, token

    def _log_in(self, user: str, password: str, timeout: float) -> tuple[Account, str]:
        limits = self._limits
        if self._directory is not None:  # no argon2 slot: the directory checks the password
            token, new_token = new_resume_token(
                ttl=limits.token_ttl, keep=limits.max_tokens_per_user
            )
            try:
                signed = self._directory.log_in(user, password, new_token)
            except AuthenticationError:
                with self._hash_pool.slot(timeout):  # as long as a local failure takes
                    self._accounts.spend_a_check(password)
                raise
            if signed is not None:
                self._follow_directory(signed)
                return signed.account, token
        with self._hash_pool.slot(timeout):
            return self._accounts.log_in(
                user, password, token_ttl=limits.token_ttl, max_tokens=limits.max_tokens_per_user
            )

    def _follow_directory(self, signed: DirectorySignIn) -> None:
        """Apply what a directory login found: a rename (the hub learns the new name's
        rooms now), and the rooms its groups map to (through the committer, so the hub
        has them before ``welcome``)."""
        account = signed.account
        if signed.renamed_from is not None:
            self.forget_user(signed.renamed_from, account.id)
            for room, state in self._store.room_states().items():
                if account.name in state.members:
                    self._hub.update_room(room, state.meta, members=state.members)
        if signed.grants is not None:
            # Before the grants: a first login still joins the default rooms (welcome
            # joins them only for a user in no room).
            self._hub.claim(account.name, account.id)
            roomless = not self._hub.rooms_of(account.name)
            place_rooms(
                lambda operation: self._committer.perform(operation, origin=None),
                account.name, signed.grants,
            )  # fmt: skip
            if roomless:
                self._join_default_rooms(account, None)

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
            self._join_default_rooms(account, caller)
        self._hub.connect(caller)
        return Welcome(
            user=account.name,
            rooms=tuple(self._hub.rooms_of(account.name)),
            last_id=self._store.newest_visible_id(account.id),
            token=token,
        )

    def _join_default_rooms(self, account: Account, origin: Member | None) -> None:
        for room in self._default_rooms:
            join = functools.partial(
                rooms.join, actor=Actor(account.id, account.name, account.is_admin), room=room,
                max_rooms=self._limits.max_rooms_per_user,
            )  # fmt: skip
            try:
                self._committer.perform(join, origin=origin)
            except RequestError as exc:  # made private, or the user is banned from it
                log.info("%s does not join default room %s: %s", account.name, room, exc.code)

    def disconnect(self, caller: Caller) -> None:
        """A logged-in session ended: it leaves the hub, and its user was last seen now."""
        self._hub.disconnect(caller)
        self._committer.note_session_end(caller.account.id)

    # --- requests ------------------------------------------------------------------

    def handle(self, caller: Caller, request: Request) -> list[Event]:
        """The replies to ``request``; a ``send`` is answered later by the delivery thread.

        Raises:
            RequestError: the request is refused (not_member, no_such_user, ...).
        """
        return self._handlers[type(request)](caller, request)

    def _perform(self, caller: Caller, operation: Callable[[Tx], T]) -> T:
        return self._committer.perform(operation, origin=caller)

    def _joined(self, room: str, user: str, ref: str | None) -> Joined:
        members, online, meta = self._hub.joined_view(room, user)
        return Joined(
            room=room, members=tuple(members), online=tuple(online), ref=ref,
            private=meta.private or None, topic=meta.topic,
            role=meta.role_of(user, is_member=True).label, muted=(user in meta.muted) or None,
        )  # fmt: skip

    def _join(self, caller: Caller, request: Join) -> list[Event]:
        join = functools.partial(
            rooms.join, actor=_actor(caller), room=request.room,
            max_rooms=self._limits.max_rooms_per_user, create=request.create is not False,
        )  # fmt: skip
        self._perform(caller, join)
        return [self._joined(request.room, caller.user, request.ref)]

    def _leave(self, caller: Caller, request: Leave) -> list[Event]:
        self._perform(
            caller, functools.partial(rooms.leave, actor=_actor(caller), room=request.room)
        )
        return [Left(room=request.room, ref=request.ref)]

    def _create(self, caller: Caller, request: Create) -> list[Event]:
        create = functools.partial(
            rooms.create, actor=_actor(caller), room=request.room, private=request.private,
            topic=(request.topic or "").strip() or None,
            max_rooms=self._limits.max_rooms_per_user,
        )  # fmt: skip
        self._perform(caller, create)
        return [self._joined(request.room, caller.user, request.ref)]

    def _moderate(self, caller: Caller, request: Moderate) -> list[Event]:
        moderate = functools.partial(
            moderation.moderate, actor=_actor(caller), room=request.room, action=request.action,
            user=request.user, topic=request.topic,
        )  # fmt: skip
        self._perform(caller, moderate)
        if request.action == "delete":  # the room, with its messages and their files
            self._files.collect()
        return [Done(ref=request.ref)]

    def _edit(self, caller: Caller, request: Edit) -> list[Event]:
        self._check_body(request.body)
        edit = functools.partial(
            edits.edit, actor=_actor(caller), message_id=request.id, body=request.body
        )
        entry = self._perform(caller, edit)
        return [Ack(id=entry.id, ts=format_ts(entry.ts_ms), ref=request.ref)]

    def _delete(self, caller: Caller, request: Delete) -> list[Event]:
        entry = self._perform(
            caller, functools.partial(edits.delete, actor=_actor(caller), message_id=request.id)
        )
        self._files.collect()
        return [Ack(id=entry.id, ts=format_ts(entry.ts_ms), ref=request.ref)]

    def _read(self, caller: Caller, request: MarkRead) -> list[Event]:
        mark = functools.partial(
            reads.mark_read, actor=_actor(caller), message_id=request.id, room=request.room,
            peer=request.peer,
        )  # fmt: skip
        marker = self._perform(caller, mark)
        return [ReadMarker(id=marker.id, room=marker.room, peer=marker.peer, ref=request.ref)]

    def _rooms(self, caller: Caller, request: ListRooms) -> list[Event]:
        """One page of rooms after ``request.after``: at most ``rooms_page``, and one frame."""
        listed, more = self._hub.room_list(
            caller.user, after=request.after, limit=self._limits.rooms_page,
            is_admin=caller.account.is_admin,
        )  # fmt: skip
        budget = self._limits.max_frame - HEADER_SIZE
        size = len(encode(RoomList(rooms=(), more=True, ref=request.ref)))
        for keep, room in enumerate(listed):
            size += len(encode_object(dataclasses.asdict(room))) + 1  # and a comma
            if size > budget:
                listed, more = listed[:keep], True
                break
        return [RoomList(rooms=tuple(listed), more=more, ref=request.ref)]

    def _who(self, caller: Caller, request: Who) -> list[Event]:
        return [Online(online=tuple(self._hub.online_users()), ref=request.ref)]

    def _check_body(self, body: str) -> None:
        if len(body) > self._limits.max_body:
            raise TooLarge(f"message body longer than {self._limits.max_body} characters")

    def _send(self, caller: Caller, request: Send) -> list[Event]:
        if not request.files:  # a caption's limits are the file sends' to check
            self._check_body(request.body)
        notify: tuple[str, ...] = ()
        if request.room is not None:
            require_member(self._hub, request.room, caller, sending=True)
            notify = self._room_mentions.reach(caller, request.room, request.body)
        if request.files:
            return self._files.send(caller, request, notify=notify)
        account = caller.account
        self._committer.submit(PendingSend(origin=caller, message=NewMessage(
            sender_id=account.id, sender=account.name, body=request.body,
            ref=request.ref, room=request.room, to=request.to, notify=notify,
        )))  # fmt: skip
        return []


def _actor(caller: Caller) -> Actor:
    account = caller.account
    return Actor(account.id, account.name, account.is_admin)
