"""Who is online, who is in which room, and each room's settings and roles: the server's
only shared mutable state.

One lock guards all of it. The hub never touches a socket: it hands already-encoded
frames to each member's :meth:`Member.send`. Broadcasts take a snapshot of their targets
under the lock and deliver after releasing it, so no member's state can hold up another's.

Presence is announced in batches: logins and logouts only record the change, and
:meth:`flush_presence`, called by the presence pacer (``presence.py``) at an interval that
grows with the number online, sends each watcher one ``presence_batch`` frame listing all
the changes it should hear about. A user who comes and goes within one interval (or goes
and comes back) is not announced at all. With several nodes on one database
(``nodes.py``), a user online on another node counts as online here too
(:meth:`Hub.set_elsewhere`): presence changes only when the user's first session anywhere
starts or the last ends. A user who is online when they are added to a room is introduced
to its members at the next flush.

Rooms change through :meth:`Hub.update_room`, with what the store says after each
operation (or after a row another writer committed): the hub mirrors the database and
answers the checks on the hot path (may this user send here?) without a query. It only
reports who came and went; ``effects.py`` decides what to tell whom.

State is keyed by user name, so the hub also records which account (id) each name's
memberships and sessions belong to. ``deluser`` followed by ``adduser`` of the same name
makes a new account with a new id: its first login (:meth:`claim`) or the server's account
watcher (:meth:`forget`) clears what the old account left, so the new one inherits none
of its rooms and receives none of its messages.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import threading
from collections.abc import Iterable, Mapping
from typing import Protocol

from securechat.permissions import Role
from securechat.protocol.frames import encode_frame
from securechat.protocol.messages import MemberLeft, RoomInfo, encode
from securechat.server.presence import presence_deliveries
from securechat.store.rooms import RoomMeta


class Member(Protocol):
    """One authenticated session, as the hub sees it."""

    @property
    def user(self) -> str: ...

    def send(self, frame: bytes) -> None:
        """Deliver an encoded frame, from any thread, without blocking.

        Frames sent by one thread arrive in the order sent. A member that cannot keep up
        is closed as a slow consumer; its ``send`` does not fail for the caller.
        """


def _frame(event: MemberLeft) -> bytes:
    return encode_frame(encode(event))


@dataclasses.dataclass(frozen=True, slots=True)
class Standing:
    """A user's place in a room: what the service checks a request against."""

    private: bool
    role: Role
    muted: bool


@dataclasses.dataclass(frozen=True, slots=True)
class RoomChange:
    """What :meth:`Hub.update_room` did: who came and went, and the room's sessions
    before and after (a snapshot each)."""

    room: str
    meta: RoomMeta | None
    added: list[str]
    removed: list[str]
    before: tuple[Member, ...]
    after: tuple[Member, ...]


class Hub:
    def __init__(
        self,
        memberships: Mapping[str, Iterable[str]],
        owners: Mapping[str, int] | None = None,
        rooms: Mapping[str, RoomMeta] | None = None,
    ) -> None:
        """``owners``: each user name's account id, read before ``memberships``; ``rooms``:
        each room's settings and roles (default: public, ownerless)."""
        self._lock = threading.Lock()
        # Everything below is guarded by _lock.
        self._members: dict[str, set[str]] = {
            room: set(users) for room, users in memberships.items()
        }
        self._meta: dict[str, RoomMeta] = dict(rooms or {})
        self._owners: dict[str, int] = dict(owners or {})  # name -> the account id it means
        self._names = sorted(self._members)  # every room, for paging through them by name
        self._rooms_of: dict[str, set[str]] = {}
        for room, users in self._members.items():
            for user in users:
                self._rooms_of.setdefault(user, set()).add(room)
        self._sessions: dict[str, list[Member]] = {}
        self._targets: dict[str, tuple[Member, ...]] = {}  # room -> online sessions, cached
        self._presence: dict[str, bool] = {}  # user -> online, not yet announced
        self._introduced: dict[str, set[str]] = {}  # room -> online users added, not yet announced
        self._elsewhere: frozenset[str] = frozenset()  # users online on other nodes
        # Bumped (under _lock) whenever a session or a membership comes or goes, i.e.
        # whenever a snapshot of targets may be stale; read without the lock.
        self.generation = 0

    # --- accounts ------------------------------------------------------------------

    def claim(self, user: str, user_id: int) -> None:
        """Record that ``user`` now means account ``user_id``, before its session connects.

        If the name meant another account, what that one left (rooms, sessions) goes first.
        """
        with self._lock:
            owner = self._owners.get(user)
            leaving = self._drop(user) if owner not in (None, user_id) else []
            self._owners[user] = user_id
        self._announce_left(user, leaving)

    def forget(self, user: str, user_id: int) -> None:
        """Drop the rooms and sessions of ``user``, if it still means account ``user_id``.

        For the account watcher: the account was deleted, or replaced by one of that name.
        """
        with self._lock:
            if self._owners.get(user) != user_id:
                return
            del self._owners[user]
            leaving = self._drop(user)
        self._announce_left(user, leaving)

    def owners(self) -> dict[str, int]:
        """Each name the hub holds state for, and the account id that state belongs to."""
        with self._lock:
            return dict(self._owners)

    # --- sessions ------------------------------------------------------------------

    def connect(self, member: Member) -> None:
        """Register an authenticated session; the user's first session is announced."""
        with self._lock:
            sessions = self._sessions.setdefault(member.user, [])
            sessions.append(member)
            self._invalidate_rooms_of(member.user)
            self.generation += 1
            if len(sessions) == 1 and member.user not in self._elsewhere:
                self._presence_changed(member.user, online=True)

    def disconnect(self, member: Member) -> None:
        """Forget a session; the user's last session closing is announced."""
        with self._lock:
            sessions = self._sessions.get(member.user, [])
            if member not in sessions:
                return
            sessions.remove(member)
            self._invalidate_rooms_of(member.user)
            self.generation += 1
            if not sessions:
                del self._sessions[member.user]
                if member.user not in self._elsewhere:
                    self._presence_changed(member.user, online=False)

    def flush_presence(self) -> None:
        """Send every watcher the presence changes since the last flush: one frame each."""
        with self._lock:
            if not self._presence and not self._introduced:
                return
            changes, self._presence = self._presence, {}
            introduced = {
                room: {u for u in users if u in self._sessions or u in self._elsewhere}
                for room, users in self._introduced.items()
            }
            self._introduced = {}
            deliveries = presence_deliveries(
                changes, introduced, rooms_of=self._rooms_of, members=self._members,
                sessions=self._sessions,
            )  # fmt: skip
        for sessions, frame in deliveries:
            self.broadcast(frame, sessions)

    def online_count(self) -> int:
        """Users with a session here or on another node, for pacing presence (one online on
        both counts twice: an estimate, without a set union under the lock every tick)."""
        with self._lock:
            return len(self._sessions) + len(self._elsewhere)

    def sessions_of(self, user: str) -> tuple[Member, ...]:
        with self._lock:
            return tuple(self._sessions.get(user, ()))

    def all_sessions(self) -> list[Member]:
        with self._lock:
            return [m for sessions in self._sessions.values() for m in sessions]

    def online_users(self) -> list[str]:
        """Users with a session here or on another node."""
        with self._lock:
            return sorted(self._elsewhere.union(self._sessions))

    def local_user_ids(self) -> set[int]:
        """The account ids of the users with a session on this node (for ``nodes.py``)."""
        with self._lock:
            return {self._owners[u] for u in self._sessions if u in self._owners}

    def set_elsewhere(self, users: Iterable[str]) -> None:
        """The users online on other nodes are now ``users``; changes are announced at the
        next :meth:`flush_presence`, for users with no session here."""
        with self._lock:
            now = frozenset(users)
            for user in now.symmetric_difference(self._elsewhere):
                if user not in self._sessions:
                    self._presence_changed(user, online=user in now)
            self._elsewhere = now

    # --- rooms ---------------------------------------------------------------------

    def update_room(
        self,
        room: str,
        meta: RoomMeta | None,
        *,
        added: Iterable[str] = (),
        removed: Iterable[str] = (),
        members: Iterable[str] | None = None,
    ) -> RoomChange:
        """Make the hub's ``room`` match the store: its settings (None: deleted) and its
        members, as a change (``added``, ``removed``) or whole (``members``).

        Returns who came and went and the room's online sessions before and after, for
        the caller to address what happened; the hub itself announces nothing here.
        """
        with self._lock:
            before = self._room_targets(room)
            current = self._members.get(room, set())
            if meta is None:
                came, went = set(), set(current)
            elif members is not None:
                wanted = set(members)
                came, went = wanted - current, current - wanted
            else:
                came, went = set(added) - current, set(removed) & current
            if meta is None:
                if room in self._members:
                    del self._members[room]
                    self._names.pop(bisect.bisect_left(self._names, room))
                self._meta.pop(room, None)
            else:
                if room not in self._members:
                    bisect.insort(self._names, room)
                    self._members[room] = set()
                self._members[room] |= came
                self._members[room] -= went
                self._meta[room] = meta
            for user in came:
                self._rooms_of.setdefault(user, set()).add(room)
                if user in self._sessions or user in self._elsewhere:
                    self._introduced.setdefault(room, set()).add(user)
            for user in went:
                self._rooms_of.get(user, set()).discard(room)
            self._targets.pop(room, None)
            self.generation += 1
            after = self._room_targets(room) if meta is not None else ()
        return RoomChange(room, meta, sorted(came), sorted(went), before, after)

    def standing(self, room: str, user: str) -> Standing | None:
        """``user``'s place in ``room`` (None: there is no such room), in one look."""
        with self._lock:
            members = self._members.get(room)
            if members is None:
                return None
            meta = self._meta.get(room) or RoomMeta(room)
            is_member = user in members
            role = meta.role_of(user, is_member=is_member)
            return Standing(meta.private, role, is_member and user in meta.muted)

    def joined_view(self, room: str, user: str) -> tuple[list[str], list[str], RoomMeta]:
        """Members, those online, and the settings of ``room``: for a ``joined`` reply."""
        with self._lock:
            members = self._members.get(room, set())
            meta = self._meta.get(room) or RoomMeta(room)
            online = sorted(u for u in members if u in self._sessions or u in self._elsewhere)
            return sorted(members), online, meta

    def room_names(self) -> list[str]:
        with self._lock:
            return list(self._names)

    def room_exists(self, room: str) -> bool:
        with self._lock:
            return room in self._members

    def is_member(self, room: str, user: str) -> bool:
        with self._lock:
            return user in self._members.get(room, ())

    def rooms_of(self, user: str) -> list[str]:
        with self._lock:
            return sorted(self._rooms_of.get(user, ()))

    def room_list(
        self, user: str, *, after: str | None, limit: int, is_admin: bool = False
    ) -> tuple[list[RoomInfo], bool]:
        """Up to ``limit`` rooms ``user`` may see named after ``after``, in name order; True
        if more follow. A private room is listed to its members and to admins only."""
        page: list[RoomInfo] = []
        with self._lock:
            start = 0 if after is None else bisect.bisect_right(self._names, after)
            for room in itertools.islice(self._names, start, None):
                members = self._members[room]
                meta = self._meta.get(room)
                private = meta is not None and meta.private
                if private and not is_admin and user not in members:
                    continue
                if len(page) == limit:
                    return page, True
                page.append(RoomInfo(
                    name=room, members=len(members), joined=user in members,
                    private=private or None,
                    topic=None if meta is None else meta.topic,
                ))  # fmt: skip
        return page, False

    def room_targets(self, room: str) -> tuple[Member, ...]:
        """Every online session of every member of ``room`` (a snapshot)."""
        with self._lock:
            return self._room_targets(room)

    # --- delivery ------------------------------------------------------------------

    @staticmethod
    def broadcast(frame: bytes, targets: Iterable[Member], exclude: Member | None = None) -> None:
        """Queue ``frame`` for each target; a full outbox only affects its own member."""
        for member in targets:
            if member is not exclude:
                member.send(frame)

    def _announce_left(self, user: str, leaving: list[tuple[str, tuple[Member, ...]]]) -> None:
        for room, others in leaving:
            self.broadcast(_frame(MemberLeft(room=room, user=user)), others)

    # --- helpers (call with _lock held) ---------------------------------------------

    def _drop(self, user: str) -> list[tuple[str, tuple[Member, ...]]]:
        """Remove ``user`` from every room and detach its sessions (the account watcher
        closes them); return each room it left with the sessions to tell."""
        rooms = sorted(self._rooms_of.pop(user, ()))
        for room in rooms:
            self._members[room].discard(user)
            self._targets.pop(room, None)
            meta = self._meta.get(room)
            if meta is not None and user in (meta.owner, *meta.moderators, *meta.muted):
                self._meta[room] = dataclasses.replace(
                    meta, owner=None if meta.owner == user else meta.owner,
                    moderators=meta.moderators - {user}, muted=meta.muted - {user},
                )  # fmt: skip
        if self._sessions.pop(user, None):
            self._presence_changed(user, online=False)
        self.generation += 1
        return [(room, self._room_targets(room)) for room in rooms]

    def _room_targets(self, room: str) -> tuple[Member, ...]:
        targets = self._targets.get(room)
        if targets is None:
            targets = tuple(
                m for user in self._members.get(room, ()) for m in self._sessions.get(user, ())
            )
            self._targets[room] = targets
        return targets

    def _invalidate_rooms_of(self, user: str) -> None:
        for room in self._rooms_of.get(user, ()):
            self._targets.pop(room, None)

    def _presence_changed(self, user: str, *, online: bool) -> None:
        if self._presence.pop(user, online) == online:
            self._presence[user] = online
        # else: the opposite change was not announced yet; together they are no change
