"""Presence announcements that scale with the number online: who hears what, and how often.

Theory of operation: logins and logouts only record a change in the hub; the presence
thread calls :meth:`PresencePacer.tick` every ``presence_interval``, and the pacer lets the
hub flush (:meth:`Hub.flush_presence`) once the interval for the number of users online
has passed: ``presence_interval`` up to a few hundred users, then growing by
``presence_interval_per_1000`` for each thousand, up to ``presence_interval_max``. A flush
sends each watcher **one** ``presence_batch`` frame listing every change it should hear
about (:func:`presence_deliveries`), so a login storm of *n* users costs each watcher one
frame per flush instead of one per login, and the frames written a second stay bounded
(about 1,000 / ``presence_interval_per_1000`` while the interval grows) instead of growing
with *n*\\ :sup:`2`.

A watcher hears of a user it shares a room with. A user who joins a room while online (or
whom this node learns has joined, after it learnt that they were online) is *introduced*
to that room's members at the next flush, as online: without it they would not hear of
them until their next change (docs/protocol.md, "who").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence, Set
from typing import Protocol, TypeVar

from securechat.protocol.frames import encode_frame
from securechat.protocol.messages import PresenceBatch, encode

M = TypeVar("M")  # a session, as the hub holds it


class Flushing(Protocol):
    def online_count(self) -> int: ...

    def flush_presence(self) -> None: ...


def presence_interval(online: int, *, shortest: float, longest: float, per_1000: float) -> float:
    """How long presence changes wait to be announced with ``online`` users online."""
    return max(shortest, min(longest, per_1000 * online / 1000))


class PresencePacer:
    """Flushes the hub's presence changes as often as the number online allows."""

    def __init__(
        self,
        hub: Flushing,
        *,
        interval: float,
        interval_max: float,
        interval_per_1000: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hub = hub
        self._shortest = interval
        self._longest = interval_max
        self._per_1000 = interval_per_1000
        self._clock = clock
        self._last = clock()

    def tick(self) -> None:
        """Flush if the interval for the number online has passed since the last flush."""
        now = self._clock()
        wait = presence_interval(
            self._hub.online_count(), shortest=self._shortest, longest=self._longest,
            per_1000=self._per_1000,
        )  # fmt: skip
        # Ticks come every `shortest` seconds; a tick a hair early still counts.
        if now - self._last >= wait - self._shortest / 2:
            self._last = now
            self._hub.flush_presence()


def presence_deliveries(
    changes: Mapping[str, bool],
    introduced: Mapping[str, Set[str]],
    *,
    rooms_of: Mapping[str, Set[str]],
    members: Mapping[str, Set[str]],
    sessions: Mapping[str, Sequence[M]],
) -> list[tuple[tuple[M, ...], bytes]]:
    """One ``presence_batch`` frame for each watching user's sessions: the ``changes``
    (user -> online) of everyone it shares a room with, and the users ``introduced`` to its
    rooms (room -> users now online there), never the watcher itself.

    Watchers are grouped by the rooms they hear from, so the union of changes is worked
    out and encoded once per group (everyone in #general: once), not once per watcher.
    """
    told: dict[str, set[str]] = {}  # room -> changed or introduced users to tell its members
    for user in changes:
        for room in rooms_of.get(user, ()):
            told.setdefault(room, set()).add(user)
    for room, users in introduced.items():
        if room in members:
            told.setdefault(room, set()).update(users)
    hears: dict[str, list[str]] = {}  # watcher -> the rooms with news it is in
    for room in told:
        for watcher in members.get(room, ()):
            if watcher in sessions:
                hears.setdefault(watcher, []).append(room)
    groups: dict[tuple[str, ...], list[str]] = {}
    for watcher, its_rooms in hears.items():
        groups.setdefault(tuple(its_rooms), []).append(watcher)
    deliveries: list[tuple[tuple[M, ...], bytes]] = []
    for rooms, watchers in groups.items():
        heard: set[str] = set().union(*(told[room] for room in rooms))
        shared: bytes | None = None
        for watcher in watchers:
            if watcher in heard:  # its own login is not news to it
                frame = _batch(heard - {watcher}, changes)
            else:
                shared = shared if shared is not None else _batch(heard, changes)
                frame = shared
            if frame:
                deliveries.append((tuple(sessions[watcher]), frame))
    return deliveries


def _batch(users: set[str], changes: Mapping[str, bool]) -> bytes:
    """The frame announcing ``users`` (an introduced user, not in ``changes``, is online)."""
    if not users:
        return b""
    online = sorted(u for u in users if changes.get(u, True))
    offline = sorted(u for u in users if not changes.get(u, True))
    return encode_frame(encode(PresenceBatch(online=tuple(online), offline=tuple(offline))))
