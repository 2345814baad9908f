"""The ``search`` request over real TLS: what a user finds, and what never leaks to them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from securechat.client import Client
from securechat.errors import MalformedMessage
from securechat.protocol.messages import SearchResults
from tests.conftest import PASSWORD, TIMEOUT, RunningServer
from tests.peer import Peer
from tests.sql import execute

pytestmark = pytest.mark.postgresql


def _say(peer: Peer, ref: str, **message: str) -> int:
    peer.send(type="send", ref=ref, **message)
    ack: int = peer.expect("ack", ref=ref)["id"]
    return ack


def _search(peer: Peer, query: str, **page: Any) -> dict[str, Any]:
    peer.send(type="search", query=query, ref="q", **page)
    reply: dict[str, Any] = peer.expect("search", ref="q")
    return reply


def _bodies(reply: dict[str, Any]) -> list[str]:
    return [m["body"] for m in reply["messages"]]


def _make_private(db_url: str, room: str) -> None:
    execute(db_url, "UPDATE rooms SET is_private = true WHERE name = :room", room=room)


def _join(peer: Peer, room: str) -> None:
    peer.send(type="join", room=room, ref=f"join-{room}")
    peer.expect("joined", ref=f"join-{room}")


def test_search_finds_room_and_direct_messages_newest_first(running_server: RunningServer) -> None:
    alice, bob = running_server.login("alice"), running_server.login("bob")
    first = _say(bob, "1", room="general", body="the Release is out")
    second = _say(alice, "2", to="bob", body="release notes attached")
    _say(alice, "3", room="general", body="unrelated")
    reply = _search(alice, "RELEASE")
    assert reply["more"] is False
    assert [(m["id"], m.get("room"), m.get("to"), m["from"]) for m in reply["messages"]] == [
        (second, None, "bob", "alice"),
        (first, "general", None, "bob"),
    ]
    assert all(m["type"] == "message" and m["ts"].endswith("Z") for m in reply["messages"])
    assert _bodies(_search(bob, "release")) == ["release notes attached", "the Release is out"]


def test_search_never_finds_others_direct_messages_private_rooms_or_after_leaving(
    running_server: RunningServer,
) -> None:
    alice, bob, carol = (running_server.login(u) for u in ("alice", "bob", "carol"))
    _say(bob, "dm", to="carol", body="leak: bob to carol")
    _say(carol, "dm2", to="bob", body="leak: carol to bob")
    for peer in (bob, carol):
        _join(peer, "secret")
    _make_private(running_server.db_url, "secret")
    _say(carol, "secret", room="secret", body="leak: in the private room")
    _join(alice, "former")
    _join(bob, "former")
    alice.send(type="leave", room="former", ref="l")
    alice.expect("left", ref="l")
    _say(bob, "after", room="former", body="leak: after alice left")
    _say(bob, "mine", to="alice", body="leak? no: bob to alice")

    assert _bodies(_search(alice, "leak")) == ["leak? no: bob to alice"]
    for query in ("bob to carol", "carol to bob", "private room", "alice left"):
        assert _search(alice, query)["messages"] == [], query
    assert _bodies(_search(carol, "private")) == ["leak: in the private room"]


def test_search_pages_with_before_and_fits_one_frame(
    server_factory: Callable[..., RunningServer],
) -> None:
    running = server_factory(max_frame=8192, max_body=4000)
    alice = running.login("alice")
    ids = [_say(alice, f"r{n}", room="general", body=f"{n} " + "word " * 500) for n in range(6)]
    reply = _search(alice, "word", limit=50)
    assert reply["more"] is True
    assert [m["id"] for m in reply["messages"]] == ids[:2:-1]  # 2.5 kB each: three fit in 8 kB
    assert len(json.dumps(reply, separators=(",", ":"))) <= 8192 - 4
    pages = [reply]
    while pages[-1]["more"]:
        pages.append(_search(alice, "word", limit=50, before=pages[-1]["messages"][-1]["id"]))
    assert [m["id"] for page in pages for m in page["messages"]] == ids[::-1]
    assert _bodies(_search(alice, "0 word", limit=1)) == [f"0 {'word ' * 500}"]


def test_search_refuses_a_short_query_and_takes_fts5_syntax_as_text(
    running_server: RunningServer,
) -> None:
    alice = running_server.login("alice")
    _say(alice, "1", room="general", body='he said "NEAR(a b)" OR * twice')
    alice.send(type="search", query="  ab ", ref="short")
    error = alice.expect("error", ref="short")
    assert error["code"] == "bad_request"
    for query in ('"NEAR(a b)"', "OR *", 'd "N', "AND NOT"):
        assert len(_search(alice, query)["messages"]) == (0 if query == "AND NOT" else 1), query


@pytest.fixture
def client(running_server: RunningServer) -> Any:
    client = Client(
        "localhost",
        running_server.address[1],
        ca_file=running_server.ca_file,
        user="alice",
        password=PASSWORD,
        timeout=TIMEOUT,
    )
    client.connect()
    yield client
    client.close()


def test_client_search_returns_typed_pages(running_server: RunningServer, client: Client) -> None:
    bob = running_server.login("bob")
    ids = [_say(bob, f"r{n}", room="general", body=f"status report {n}") for n in range(3)]
    page = client.search("REPORT", limit=2)
    assert isinstance(page, SearchResults)
    assert [(m.id, m.room, m.sender) for m in page.messages] == [
        (ids[2], "general", "bob"),
        (ids[1], "general", "bob"),
    ]
    assert page.more
    rest = client.search("report", before=page.messages[-1].id)
    assert [m.body for m in rest.messages] == ["status report 0"]
    assert not rest.more
    with pytest.raises(MalformedMessage, match="query"):
        client.search("ab")


def test_search_after_a_kick_never_shows_text_edited_since(running_server: RunningServer) -> None:
    """Issue 23 item 3: a removed member's search ends where their reading ended; a
    message edited after they left is no result at all (neither its new text nor its old)."""
    alice, carol = running_server.login("alice"), running_server.login("carol")
    assert alice.ask("c", type="create", room="board", private=True)["type"] == "joined"
    alice.ask("i", type="moderate", room="board", action="invite", user="carol")
    assert carol.ask("j", type="join", room="board")["type"] == "joined"
    early = _say(alice, "1", room="board", body="budget draft: 10k")
    alice.ask("e1", type="edit", id=early, body="budget draft: 12k")  # before the kick
    later = _say(alice, "2", room="board", body="budget plan: hire two")
    alice.ask("k", type="moderate", room="board", action="kick", user="carol")
    assert alice.ask("e2", type="edit", id=later, body="budget plan: layoffs")["type"] == "ack"

    assert _bodies(_search(carol, "budget")) == ["budget draft: 12k"]
    for query in ("layoffs", "hire two", "budget plan"):
        assert _search(carol, query)["messages"] == [], query
    assert _bodies(_search(alice, "budget")) == ["budget plan: layoffs", "budget draft: 12k"]


def test_search_stops_at_its_budget_and_says_where_to_go_on(
    server_factory: Callable[..., RunningServer],
) -> None:
    """Issue 23 item 13: an outsider's query examines at most ``search_scan_limit``
    messages holding its text; the reply says it was cut, and where to go on from."""
    running = server_factory(search_scan_limit=10)
    alice, carol = running.login("alice"), running.login("carol")
    mine = _say(alice, "m", room="general", body="needle of mine")
    _join(carol, "secret")
    _make_private(running.db_url, "secret")
    hidden = [_say(carol, f"h{n}", room="secret", body=f"needle {n}") for n in range(15)]
    first = _search(alice, "needle")
    assert (first["messages"], first["more"], first["cut"]) == ([], True, True)
    assert first["next_before"] == hidden[5]
    rest = _search(alice, "needle", before=first["next_before"])
    assert ([m["id"] for m in rest["messages"]], rest["more"]) == ([mine], False)
    assert "cut" not in rest
    assert "next_before" not in rest
    member = _search(carol, "needle", limit=3)
    assert ([m["id"] for m in member["messages"]], member["next_before"]) == (
        hidden[:-4:-1], hidden[-3],
    )  # fmt: skip
    assert "cut" not in member


def test_searches_are_rationed_per_user_across_sessions(
    server_factory: Callable[..., RunningServer],
) -> None:
    """Issue 23 item 13: ``search_burst`` queries, then ``rate_limited`` with a wait, for
    all of a user's sessions together; another user is not affected."""
    running = server_factory(search_burst=3, search_rate_per_second=0.01)
    first, second, bob = running.login("alice"), running.login("alice"), running.login("bob")
    for peer in (first, second, first):
        assert _search(peer, "anything")["more"] is False
    second.send(type="search", query="anything", ref="q4")
    refused = second.expect("error", ref="q4")
    assert refused["code"] == "rate_limited"
    assert refused["retry_after"] > 1
    assert _search(bob, "anything")["messages"] == []
