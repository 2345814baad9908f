"""Presence batches (#30): the hub's flush and the pacer, with sessions that only collect frames."""

from __future__ import annotations

from typing import Any

import pytest

from securechat.protocol.frames import FrameDecoder
from securechat.protocol.messages import PresenceBatch, decode_event
from securechat.server.hub import Hub
from securechat.server.presence import PresencePacer, presence_interval
from securechat.store.rooms import RoomMeta


class _Session:
    """A logged-in session that keeps the frames the hub sends it."""

    def __init__(self, user: str) -> None:
        self.user = user
        self._decoder = FrameDecoder(1 << 24)
        self.frames: list[Any] = []

    def send(self, frame: bytes) -> None:
        self._decoder.feed(frame)
        while (payload := self._decoder.next_frame()) is not None:
            self.frames.append(decode_event(payload))

    def batches(self) -> list[PresenceBatch]:
        taken = [f for f in self.frames if isinstance(f, PresenceBatch)]
        self.frames.clear()
        return taken


def _online(hub: Hub, *users: str) -> dict[str, _Session]:
    sessions = {user: _Session(user) for user in users}
    for session in sessions.values():
        hub.connect(session)
    return sessions


def test_presence_storm_reaches_each_watcher_as_one_frame_per_flush() -> None:
    users = [f"user{i:02}" for i in range(40)]
    hub = Hub({"general": users})
    sessions = _online(hub, *users)
    hub.flush_presence()
    for user, session in sessions.items():
        [batch] = session.batches()
        assert batch == PresenceBatch(online=tuple(u for u in users if u != user), offline=())
    for user in users[:10]:
        hub.disconnect(sessions[user])
    hub.flush_presence()
    for user in users[10:]:
        assert sessions[user].batches() == [PresenceBatch(online=(), offline=tuple(users[:10]))]


def test_presence_batch_names_a_user_once_for_a_watcher_sharing_several_rooms() -> None:
    hub = Hub({"general": ["alice", "bob", "carol"], "dev": ["alice", "bob"], "ops": ["dave"]})
    alice, *_ = _online(hub, "alice").values()
    hub.flush_presence()
    _online(hub, "bob", "carol", "dave")
    hub.flush_presence()
    assert alice.batches() == [PresenceBatch(online=("bob", "carol"), offline=())]


def test_presence_of_a_user_with_no_shared_room_is_not_sent() -> None:
    hub = Hub({"general": ["alice"], "ops": ["bob"]})
    alice, _ = _online(hub, "alice", "bob").values()
    hub.flush_presence()
    assert alice.batches() == []


def test_presence_user_online_elsewhere_is_announced_when_the_room_news_arrives() -> None:
    """A node that learns from the heartbeat that alice is online, and only then that she
    joined bob's room, tells bob she is online (before #30 it never did)."""
    hub = Hub({"general": ["bob"], "ops": ["alice"]})
    bob = _online(hub, "bob")["bob"]
    hub.flush_presence()
    hub.set_elsewhere({"alice"})
    hub.flush_presence()
    assert bob.batches() == []  # alice shares no room with bob yet
    hub.update_room("general", RoomMeta("general"), added=["alice"])
    hub.flush_presence()
    assert bob.batches() == [PresenceBatch(online=("alice",), offline=())]


def test_presence_user_joining_a_room_while_online_is_introduced_to_its_members() -> None:
    hub = Hub({"general": ["bob"], "ops": ["alice", "carol"]})
    sessions = _online(hub, "alice", "bob", "carol")
    hub.flush_presence()
    for session in sessions.values():
        session.batches()
    hub.update_room("general", RoomMeta("general"), added=["alice"])
    hub.update_room("general", RoomMeta("general"), added=["dave"])  # offline: not announced
    hub.flush_presence()
    assert sessions["bob"].batches() == [PresenceBatch(online=("alice",), offline=())]
    assert sessions["alice"].batches() == []


@pytest.mark.parametrize(
    ("online", "interval"), [(0, 0.1), (500, 0.1), (1000, 0.2), (2000, 0.4), (5000, 0.5)]
)
def test_presence_interval_grows_with_the_number_online_up_to_the_longest(
    online: int, interval: float
) -> None:
    got = presence_interval(online, shortest=0.1, longest=0.5, per_1000=0.2)
    assert got == pytest.approx(interval)


class _CountingHub:
    def __init__(self, online: int) -> None:
        self.online = online
        self.flushes = 0

    def online_count(self) -> int:
        return self.online

    def flush_presence(self) -> None:
        self.flushes += 1


def test_presence_pacer_flushes_less_often_as_more_are_online() -> None:
    now = [0.0]
    hub = _CountingHub(online=100)
    pacer = PresencePacer(
        hub, interval=0.1, interval_max=0.5, interval_per_1000=0.2, clock=lambda: now[0]
    )
    for _ in range(20):  # 2 s of ticks every 0.1 s: every tick flushes
        now[0] += 0.1
        pacer.tick()
    assert hub.flushes == 20
    hub.online, hub.flushes = 5000, 0
    for _ in range(20):  # 2 s more: every 0.5 s
        now[0] += 0.1
        pacer.tick()
    assert hub.flushes == 4
