"""Several server nodes on one PostgreSQL database (#17): what a user on one node sees of
the others. Each node is a whole :class:`ChatServer` on its own 127.0.0.1 port, with its
own hub, committer, journal listener and heartbeat; they share nothing but the database,
so two in one test process are two nodes (the kill tests, in test_nodes_failover.py, use
real processes). The shared parts are the test PostgreSQL's."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    PASSWORD,
    TIMEOUT,
    CliRunner,
    PostgresFixture,
    RunningServer,
    ServerFactory,
)
from tests.eventually import eventually
from tests.peer import Peer

pytestmark = [pytest.mark.postgresql, pytest.mark.postgresql_only]

FAST_NODES: dict[str, float] = {
    "node_heartbeat_interval": 0.2, "node_ttl": 2.0, "bus_retry_interval": 0.2,
}  # fmt: skip


def _ask(peer: Peer, ref: str, **request: Any) -> dict[str, Any]:
    """Send a request and return its reply (the event carrying ``ref``)."""
    peer.send(ref=ref, **request)
    return peer.expect(request_reply(request["type"]), ref=ref)


def request_reply(kind: str) -> str:
    return {"who": "who", "join": "joined", "create": "joined", "moderate": "done"}[kind]


@pytest.fixture
def nodes(server_factory: ServerFactory) -> list[RunningServer]:
    """Three nodes on the test database."""
    return [server_factory(**FAST_NODES) for _ in range(3)]  # type: ignore[arg-type]


def test_room_message_sent_on_one_node_reaches_members_on_the_others(
    nodes: list[RunningServer],
) -> None:
    alice, bob, carol = nodes[0].login("alice"), nodes[1].login("bob"), nodes[2].login("carol")
    acks = []
    for n in range(5):  # everyone is in #general, the default room
        alice.send(type="send", room="general", body=f"hi {n}", ref=f"m{n}")
        acks.append(alice.expect("ack", ref=f"m{n}")["id"])
    for peer in (bob, carol):
        got = [peer.expect("message", room="general", body=f"hi {n}") for n in range(5)]
        assert [m["id"] for m in got] == acks  # in commit order, each once
        assert [m["from"] for m in got] == ["alice"] * 5
    bob.send(type="send", room="general", body="hello", ref="b")
    assert alice.expect("message", body="hello")["id"] == bob.expect("ack", ref="b")["id"]


def test_a_plain_join_and_a_read_marker_reach_the_other_nodes(
    nodes: list[RunningServer],
) -> None:
    """Neither has a journal row: they travel as news (store/news.py)."""
    bob = nodes[1].login("bob")  # first: online before node B can hear of alice
    alice = nodes[0].login("alice")
    # Node B hears of alice from its heartbeat (online) and from the news of her first
    # login's join to #general (a room shared with bob), in either order: either way bob
    # is told she is online (#30: before, not when the heartbeat came first).
    bob.expect_presence("alice", online=True)
    _ask(alice, "j1", type="join", room="lunch")  # made by the join, without an event
    joined = _ask(bob, "j2", type="join", room="lunch")
    assert joined["members"] == ["alice", "bob"]
    assert joined["online"] == ["alice", "bob"]
    alice.expect("member_joined", room="lunch", user="bob")
    alice_on_b = nodes[1].login("alice")  # node B knows alice is a member: she may send
    alice_on_b.send(type="send", room="lunch", body="soup?", ref="s")
    sent = alice_on_b.expect("ack", ref="s")
    assert bob.expect("message", room="lunch")["id"] == sent["id"]
    alice.send(type="read", room="lunch", id=sent["id"], ref="r")
    alice.expect("read", ref="r")
    assert alice_on_b.expect("read", room="lunch")["id"] == sent["id"]


def test_direct_message_crosses_nodes_and_reaches_the_senders_other_sessions(
    nodes: list[RunningServer],
) -> None:
    alice, bob, alice_too = nodes[0].login("alice"), nodes[1].login("bob"), nodes[2].login("alice")
    alice.send(type="send", to="bob", body="psst", ref="d")
    ack = alice.expect("ack", ref="d")
    assert bob.expect("message", body="psst")["id"] == ack["id"]
    assert alice_too.expect("message", body="psst")["id"] == ack["id"]


def test_who_and_presence_agree_on_every_node_and_a_logout_is_seen_everywhere(
    nodes: list[RunningServer],
) -> None:
    alice = nodes[0].login("alice")  # everyone is in #general, the default room
    bob = nodes[1].login("bob")
    alice.expect_presence("bob", online=True)
    carol = nodes[2].login("carol")
    for peer in (alice, bob, carol):
        eventually(
            lambda p=peer: _ask(p, "w", type="who")["online"] == ["alice", "bob", "carol"],  # type: ignore[misc]
            "every node has alice, bob and carol online",
        )
    bob.send(type="bye")
    alice.expect_presence("bob", online=False)
    eventually(
        lambda: _ask(carol, "w2", type="who")["online"] == ["alice", "carol"],
        "bob went offline on carol's node",
    )


def test_a_kick_on_one_node_removes_the_member_on_another_at_once(
    nodes: list[RunningServer],
) -> None:
    alice, bob = nodes[0].login("alice"), nodes[1].login("bob")
    _ask(alice, "c", type="create", room="ops")
    _ask(bob, "j", type="join", room="ops")
    alice.send(type="moderate", room="ops", action="kick", user="bob", ref="k")
    alice.expect("done", ref="k")
    bob.expect("left", room="ops", timeout=TIMEOUT)
    bob.send(type="send", room="ops", body="still here?", ref="s")
    assert bob.expect("error", ref="s")["code"] in {"not_member", "no_such_room"}


def test_a_resume_token_from_one_node_logs_in_on_another(nodes: list[RunningServer]) -> None:
    welcome = nodes[0].peer().login("alice", "correct horse battery")
    resumed = nodes[1].peer()
    resumed.expect("hello")
    resumed.send(type="auth", user="alice", token=welcome["token"])
    assert resumed.expect("welcome")["user"] == "alice"


def _listeners(postgres: PostgresFixture, db_url: str, node: RunningServer) -> list[int]:
    """The backend pids of ``node``'s listening connection (one, when it is listening)."""
    name = db_url.rsplit("/", 1)[1]
    rows = postgres.cluster.query(
        name,
        f"SELECT pid FROM pg_stat_activity WHERE application_name = 'securechat {node.server.origin}'",
    )
    return [row[0] for row in rows]


def test_a_killed_listening_connection_is_reopened_and_nothing_is_missed_or_repeated(
    nodes: list[RunningServer], postgres: PostgresFixture, db_url: str
) -> None:
    alice, bob = nodes[0].login("alice"), nodes[1].login("bob")
    eventually(lambda: len(_listeners(postgres, db_url, nodes[1])) == 1, "the node listens once")
    [old] = _listeners(postgres, db_url, nodes[1])
    name = db_url.rsplit("/", 1)[1]
    postgres.cluster.execute(name, f"SELECT pg_terminate_backend({old})")
    acks = []
    for n in range(20):  # committed while node B is deaf, and while it catches up
        alice.send(type="send", room="general", body=f"m{n}", ref=f"r{n}")
        acks.append(alice.expect("ack", ref=f"r{n}")["id"])
    eventually(
        lambda: _listeners(postgres, db_url, nodes[1]) not in ([], [old]),
        "the node listens on a new connection",
    )
    alice.send(type="send", room="general", body="last", ref="last")
    acks.append(alice.expect("ack", ref="last")["id"])
    got = [bob.expect("message", room="general")["id"] for _ in acks]
    assert got == acks  # each once, in commit order: "last" came after the other 20


def test_news_missed_while_the_listener_was_down_is_made_up_by_reading_the_rooms(
    server_factory: ServerFactory, postgres: PostgresFixture, db_url: str
) -> None:
    a = server_factory(**FAST_NODES)  # type: ignore[arg-type]
    b = server_factory(**{**FAST_NODES, "bus_retry_interval": 2.0})  # type: ignore[arg-type]
    alice, bob = a.login("alice"), b.login("bob")
    _ask(bob, "j0", type="join", room="lunch")
    [old] = _listeners(postgres, db_url, b)
    postgres.cluster.execute(db_url.rsplit("/", 1)[1], f"SELECT pg_terminate_backend({old})")
    _ask(alice, "j1", type="join", room="lunch")  # no journal row: news, while B is deaf
    bob.expect("member_joined", room="lunch", user="alice")  # after B listens again


def test_send_given_several_nodes_skips_one_that_is_down(
    nodes: list[RunningServer], run_cli: CliRunner, tmp_path: Path
) -> None:
    bob = nodes[2].login("bob")
    with socket.socket() as probe:  # a port nothing listens on: a dead node
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    hosts = f"127.0.0.1:{dead},127.0.0.1:{nodes[1].address[1]}"
    env = {"SECURECHAT_PASSWORD": PASSWORD, "SECURECHAT_CONFIG_DIR": str(tmp_path / "cfg")}
    done = run_cli(
        "send", "--user", "alice", "--ca", str(nodes[0].ca_file), "--room", "general", hosts,
        "via the second node", env=env, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert bob.expect("message", body="via the second node")["from"] == "alice"
