"""The lists a client shows beside a conversation: what is unread, every conversation the
user has (the same on every device), the people directory, a room's members with their
roles, and the user's pending invitations.

Each reply is one page of the store's list that also fits in one frame: a page that
would not fit stops early with ``more``, and the client asks again after the last key.
Reads only: they query the store directly, not through the group commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Protocol, TypeVar

from securechat.accounts import Account
from securechat.config import Limits
from securechat.protocol.codec import encode, encode_object
from securechat.protocol.events import (
    UNREAD_CAP,
    Conversation,
    ConversationList,
    Event,
    PeopleList,
    Person,
    UnreadList,
)
from securechat.protocol.frames import HEADER_SIZE
from securechat.protocol.membership import (
    GetInvitations,
    GetMembers,
    Invitation,
    InvitationList,
    MemberList,
    RoomMember,
)
from securechat.protocol.requests import GetConversations, GetPeople, GetUnread
from securechat.protocol.wire import wire_object
from securechat.server.delivery import format_ts
from securechat.server.hub import Hub
from securechat.store.chat import ChatStore
from securechat.store.journal import Actor
from securechat.store.reads import ConversationState, UnreadCount


class Caller(Protocol):
    """Who asks: any logged-in connection (service.Caller)."""

    @property
    def account(self) -> Account: ...


T = TypeVar("T", Conversation, Person, RoomMember, Invitation)


class Listings:
    """Answers ``unread``, ``conversations``, ``people``, ``members`` and ``invitations``."""

    def __init__(self, store: ChatStore, hub: Hub, limits: Limits) -> None:
        self._store = store
        self._hub = hub
        self._limits = limits

    def unread(self, caller: Caller, request: GetUnread) -> list[Event]:
        """Conversations with unread messages after the key ``after``."""
        found, more = self._store.unread(
            caller.account.id, after=request.after, limit=self._limits.unread_page,
            cap=UNREAD_CAP,
        )  # fmt: skip
        page, more = self._fit((_conversation(c) for c in found), more, empty=UnreadList(()))
        return [UnreadList(conversations=page, more=more, ref=request.ref)]

    def conversations(self, caller: Caller, request: GetConversations) -> list[Event]:
        """Every conversation after the key ``after``, read or not, with its newest message."""
        found, more = self._store.conversations(
            caller.account.id, after=request.after, limit=self._limits.unread_page,
            cap=UNREAD_CAP,
        )  # fmt: skip
        empty = ConversationList(())
        page, more = self._fit((_conversation(c) for c in found), more, empty=empty)
        return [ConversationList(conversations=page, more=more, ref=request.ref)]

    def people(self, caller: Caller, request: GetPeople) -> list[Event]:
        """Every active user after the name ``after``: online, or when last seen."""
        found, more = self._store.people(after=request.after, limit=self._limits.people_page)
        online = set(self._hub.online_users())
        listed = (
            Person(p.name, True)
            if p.name in online
            else Person(p.name, False, None if p.last_seen is None else _iso(p.last_seen))
            for p in found
        )
        page, more = self._fit(listed, more, empty=PeopleList(()))
        return [PeopleList(people=page, more=more, ref=request.ref)]

    def members(self, caller: Caller, request: GetMembers) -> list[Event]:
        """``room``'s members after the name ``after``: role, presence, muted.

        Raises:
            NoSuchRoom: no such room, or a private one the caller may not see.
        """
        account = caller.account
        found, more = self._store.room_members(
            Actor(account.id, account.name, account.is_admin), request.room,
            after=request.after, limit=self._limits.members_page,
        )  # fmt: skip
        online = set(self._hub.online_users())
        listed = (
            RoomMember(m.name, m.role, m.name in online, True if m.muted else None) for m in found
        )
        page, more = self._fit(listed, more, empty=MemberList(request.room, ()))
        return [MemberList(room=request.room, members=page, more=more, ref=request.ref)]

    def invitations(self, caller: Caller, request: GetInvitations) -> list[Event]:
        """The caller's pending invitations, by room name after ``after``."""
        found, more = self._store.invitations(
            caller.account.id, after=request.after, limit=self._limits.invitations_page
        )
        listed = (
            Invitation(i.room, i.by, _iso(i.at), True if i.private else None, i.topic)
            for i in found
        )
        page, more = self._fit(listed, more, empty=InvitationList(()))
        return [InvitationList(invitations=page, more=more, ref=request.ref)]

    def _fit(self, items: Iterable[T], more: bool, *, empty: Event) -> tuple[tuple[T, ...], bool]:
        """The first ``items`` that fit in one frame beside ``empty``'s own fields."""
        budget = self._limits.max_frame - HEADER_SIZE
        size = len(encode(empty)) + len(',"more":true,"ref":""') + 64  # the longest ref
        page: list[T] = []
        for item in items:
            size += len(encode_object(wire_object(item))) + 1  # and a comma
            if size > budget:
                return tuple(page), True
            page.append(item)
        return tuple(page), more


def _conversation(found: UnreadCount | ConversationState) -> Conversation:
    conversation = Conversation(
        key=found.key, count=found.count, mentions=found.mentions, last_read=found.last_read,
        room=found.room, peer=found.peer,
    )  # fmt: skip
    if isinstance(found, ConversationState) and found.last_id is not None:
        last_ts = None if found.last_ts_ms is None else format_ts(found.last_ts_ms)
        return dataclasses.replace(conversation, last_id=found.last_id, last_ts=last_ts)
    return conversation


def _iso(moment: dt.datetime) -> str:
    return format_ts(int(moment.timestamp() * 1000))
