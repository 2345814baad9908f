"""The rooms one user may hold (issue 23 item 4): joins and creations past
``max_rooms_per_user`` are refused with ``too_many_rooms``, and the rooms a user left
empty count too, so creating and leaving rooms in a loop is bounded as well."""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest

from securechat.store import rooms
from securechat.store.chat import ChatStore
from securechat.store.database import open_database
from securechat.store.journal import CONSOLE
from tests.conftest import RunningServer

pytestmark = pytest.mark.postgresql


@pytest.fixture
def capped(server_factory: Callable[..., RunningServer]) -> RunningServer:
    return server_factory(max_rooms_per_user=3)  # "general" is the first


def test_joins_and_creations_past_the_cap_are_refused(capped: RunningServer) -> None:
    alice, bob = capped.login("alice"), capped.login("bob")
    assert bob.ask("c", type="create", room="open")["type"] == "joined"
    assert alice.ask("j1", type="join", room="one")["type"] == "joined"
    assert alice.ask("j2", type="join", room="two")["type"] == "joined"
    for ref, request in (("j3", {"type": "join", "room": "open"}),
                         ("j4", {"type": "join", "room": "brand-new"}),
                         ("c1", {"type": "create", "room": "mine"})):  # fmt: skip
        refused = alice.ask(ref, **request)
        assert (refused["type"], refused["code"]) == ("error", "too_many_rooms"), ref
        assert "3 rooms" in refused["message"]
    assert alice.ask("again", type="join", room="two")["type"] == "joined"  # already in it
    assert alice.ask("l", type="leave", room="one")["type"] == "left"  # bob is not in it...
    # ...but "one" is empty now: alice left it empty, so it still counts against her.
    assert alice.ask("j5", type="join", room="open")["code"] == "too_many_rooms"
    assert bob.ask("jb", type="join", room="two")["type"] == "joined"
    assert alice.ask("l2", type="leave", room="two")["type"] == "left"  # bob stays in it
    assert alice.ask("j6", type="join", room="open")["type"] == "joined"
    rooms_now = {r["name"] for r in alice.ask("r", type="rooms")["rooms"]}
    assert {"brand-new", "mine"} & rooms_now == set()  # nothing was made by the refusals


def test_creating_and_leaving_in_a_loop_stops_at_the_cap(capped: RunningServer) -> None:
    alice = capped.login("alice")
    made = 0
    for n in range(5):
        reply = alice.ask(f"c{n}", type="create", room=f"loop{n}")
        if reply["type"] == "error":
            assert reply["code"] == "too_many_rooms"
            break
        made += 1
        assert alice.ask(f"l{n}", type="leave", room=f"loop{n}")["type"] == "left"
    assert made == 2  # general, then two left empty: three held


def test_the_console_is_not_capped(capped: RunningServer) -> None:
    """The admin's command line may give a user a room past the cap (a deliberate act)."""
    database = open_database(capped.db_url)
    try:
        store = ChatStore(database)
        for n in range(4):
            store.perform(
                functools.partial(rooms.create, actor=CONSOLE, room=f"ops{n}", owner="alice")
            )
    finally:
        database.dispose()
