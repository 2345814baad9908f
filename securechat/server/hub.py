"""Who is online and who is in which room: the server's only shared mutable state.

One lock guards all of it. The hub never touches a socket: it hands already-encoded
frames to each member's ``send()``, which never blocks (it writes to an idle socket that
no other thread is using, or appends to a bounded outbox). Broadcasts take a snapshot of
their targets under the lock and deliver after releasing it, so no member's state can
hold up another's.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Protocol

from securechat.protocol.frames import encode_frame
from securechat.protocol.messages import MemberJoined, MemberLeft, Presence, RoomInfo, encode


class Member(Protocol):
    """One authenticated session, as the hub sees it."""

    @property
    def user(self) -> str: ...

    def send(self, frame: bytes) -> None:
        """Queue an encoded frame; never blocks."""


def _frame(event: MemberJoined | MemberLeft | Presence) -> bytes:
    return encode_frame(encode(event))


class Hub:
    def __init__(self, memberships: Mapping[str, Iterable[str]]) -> None:
        self._lock = threading.Lock()
        # Everything below is guarded by _lock.
        self._members: dict[str, set[str]] = {
            room: set(users) for room, users in memberships.items()
        }
        self._rooms_of: dict[str, set[str]] = {}
        for room, users in self._members.items():
            for user in users:
                self._rooms_of.setdefault(user, set()).add(room)
        self._sessions: dict[str, list[Member]] = {}
        self._targets: dict[str, tuple[Member, ...]] = {}  # room -> online sessions, cached

    # --- sessions ------------------------------------------------------------------

    def connect(self, member: Member) -> None:
        """Register an authenticated session; the user's first session announces presence."""
        with self._lock:
            sessions = self._sessions.setdefault(member.user, [])
            sessions.append(member)
            self._invalidate_rooms_of(member.user)
            watchers = self._watchers(member.user) if len(sessions) == 1 else ()
        self.broadcast(_frame(Presence(user=member.user, online=True)), watchers)

    def disconnect(self, member: Member) -> None:
        """Forget a session; the user's last session closing announces absence."""
        with self._lock:
            sessions = self._sessions.get(member.user, [])
            if member not in sessions:
                return
            sessions.remove(member)
            self._invalidate_rooms_of(member.user)
            watchers: Iterable[Member] = ()
            if not sessions:
                del self._sessions[member.user]
                watchers = self._watchers(member.user)
        self.broadcast(_frame(Presence(user=member.user, online=False)), watchers)

    def sessions_of(self, user: str) -> tuple[Member, ...]:
        with self._lock:
            return tuple(self._sessions.get(user, ()))

    def all_sessions(self) -> list[Member]:
        with self._lock:
            return [m for sessions in self._sessions.values() for m in sessions]

    def online_users(self) -> list[str]:
        with self._lock:
            return sorted(self._sessions)

    # --- rooms ---------------------------------------------------------------------

    def add_member(self, room: str, joiner: Member) -> tuple[list[str], list[str]]:
        """Record that ``joiner.user`` is in ``room`` (already stored); return members, online."""
        user = joiner.user
        with self._lock:
            members = self._members.setdefault(room, set())
            is_new = user not in members
            members.add(user)
            self._rooms_of.setdefault(user, set()).add(room)
            self._targets.pop(room, None)
            others = [m for m in self._room_targets(room) if m is not joiner] if is_new else []
            listing = sorted(members), sorted(u for u in members if u in self._sessions)
        self.broadcast(_frame(MemberJoined(room=room, user=user)), others)
        return listing

    def remove_member(self, room: str, leaver: Member) -> None:
        user = leaver.user
        with self._lock:
            others = [m for m in self._room_targets(room) if m is not leaver]
            self._members.get(room, set()).discard(user)
            self._rooms_of.get(user, set()).discard(room)
            self._targets.pop(room, None)
        self.broadcast(_frame(MemberLeft(room=room, user=user)), others)

    def room_exists(self, room: str) -> bool:
        with self._lock:
            return room in self._members

    def is_member(self, room: str, user: str) -> bool:
        with self._lock:
            return user in self._members.get(room, ())

    def rooms_of(self, user: str) -> list[str]:
        with self._lock:
            return sorted(self._rooms_of.get(user, ()))

    def room_list(self, user: str) -> list[RoomInfo]:
        with self._lock:
            return [
                RoomInfo(name=room, members=len(members), joined=user in members)
                for room, members in sorted(self._members.items())
            ]

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

    # --- helpers (call with _lock held) ---------------------------------------------

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

    def _watchers(self, user: str) -> list[Member]:
        """Sessions of the other users who share a room with ``user``."""
        peers = {u for room in self._rooms_of.get(user, ()) for u in self._members[room]}
        peers.discard(user)
        return [m for peer in peers for m in self._sessions.get(peer, ())]
