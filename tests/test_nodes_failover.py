"""Several nodes as real ``securechat serve`` processes on one test PostgreSQL (#17): three
of them as one chat service (fan-out, direct messages, presence and ``who`` across them,
their listening connections killed with ``pg_terminate_backend``),
and a node killed with SIGKILL under load, :class:`Client` failing over to the next node
with its resume token: every acknowledged message is stored and delivered exactly once;
the dead node's users go offline on the others within its ttl."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import TypeVar

import pytest

from securechat.client import Backoff, Client
from securechat.client.events import Reconnected
from securechat.protocol.messages import Message, PresenceBatch
from tests.conftest import PASSWORD, TIMEOUT, skip_or_fail
from tests.eventually import eventually
from tests.peer import Peer
from tests.serve_process import ServeProcess
from tests.sql import value

pytestmark = [pytest.mark.postgresql, pytest.mark.postgresql_only]

E = TypeVar("E")

NODE_TTL = 3.0
SENDS = 300


def _node(certs_dir: Path, db_url: str, serve: list[ServeProcess], *options: str) -> ServeProcess:
    process = ServeProcess(certs_dir, db_url, "--node-ttl", str(NODE_TTL), *options)
    serve.append(process)
    return process.start()


def _client(user: str, nodes: list[ServeProcess], certs_dir: Path) -> Client:
    first, *others = (f"127.0.0.1:{node.port}" for node in nodes)
    return Client(
        first, ca_file=certs_dir / "ca.pem", user=user, password=PASSWORD, timeout=TIMEOUT,
        reconnect=True, backoff=Backoff(initial=0.05, cap=0.2), also=others,
    )  # fmt: skip


def _next_of(client: Client, kind: type[E], user: str | None = None) -> E:
    """The next event of ``kind`` (about ``user``, if given) that ``client`` gets; others
    are passed over."""
    deadline = time.monotonic() + TIMEOUT
    while (event := client.next_event(max(deadline - time.monotonic(), 0.01))) is not None:
        if isinstance(event, kind) and user in (None, getattr(event, "user", None)):
            return event
    raise AssertionError(f"no {kind.__name__} in time")


def _next_presence(client: Client, user: str) -> PresenceBatch:
    """The next presence batch ``client`` gets that names ``user``; others are passed over."""
    deadline = time.monotonic() + TIMEOUT
    while (event := client.next_event(max(deadline - time.monotonic(), 0.01))) is not None:
        if isinstance(event, PresenceBatch) and user in (*event.online, *event.offline):
            return event
    raise AssertionError(f"no presence batch naming {user} in time")


def test_three_node_processes_are_one_chat_service(
    certs_dir: Path, db_url: str, serve: list[ServeProcess]
) -> None:
    a, b, c = (_node(certs_dir, db_url, serve) for _ in range(3))
    with (
        _client("alice", [a], certs_dir) as alice,
        _client("bob", [b], certs_dir) as bob,
        _client("carol", [c], certs_dir) as carol,
    ):
        # Presence and who: each node sees the users of the other two.
        eventually(lambda: {"alice", "bob"} <= set(carol.who()), "carol sees alice and bob")
        eventually(lambda: {"bob", "carol"} <= set(alice.who()), "alice sees bob and carol")
        # A room message on node A reaches node B and node C, once each.
        sent = alice.send("from node A", room="general")
        for reader in (bob, carol):
            message = _next_of(reader, Message)
            assert (message.id, message.sender, message.body) == (sent, "alice", "from node A")
        # A direct message from node B to node C, and the reply back.
        bob.send("a DM across nodes", to="carol")
        dm = _next_of(carol, Message)
        assert (dm.sender, dm.to, dm.body) == ("bob", "carol", "a DM across nodes")
        carol.send("and back", to="bob")
        reply = _next_of(bob, Message)
        assert (reply.sender, reply.body) == ("carol", "and back")
        # dave logging in on node B is presence news on node A and in who on node C.
        with _client("dave", [b], certs_dir):
            assert "dave" in _next_presence(alice, "dave").online
            eventually(lambda: "dave" in carol.who(), "carol sees dave")  # within a heartbeat
        # Every node's listening connection killed: what is committed meanwhile reaches
        # the other nodes all the same, each message once and in order.
        deaf = value(
            db_url,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name LIKE 'securechat n-%'",
        )
        assert deaf == 3
        sent_ids = [alice.send(f"while deaf {n}", room="general") for n in range(20)]
        for reader in (bob, carol):
            got: list[int] = []
            while len(got) < len(sent_ids):
                message = _next_of(reader, Message)
                if message.sender == "alice":
                    got.append(message.id)
            assert got == sent_ids


def test_clients_of_a_killed_node_fail_over_and_every_acked_message_arrives_once(
    certs_dir: Path, db_url: str, serve: list[ServeProcess]
) -> None:
    a, b = _node(certs_dir, db_url, serve), _node(certs_dir, db_url, serve)
    with (
        _client("alice", [a, b], certs_dir) as alice,
        _client("bob", [b, a], certs_dir) as bob,
        _client("carol", [a], certs_dir),  # no other node: she goes offline
    ):
        eventually(lambda: {"alice", "carol"} <= set(bob.who()), "bob sees alice and carol")
        acked: list[int] = []
        sender_failed: list[BaseException] = []

        def send_all() -> None:
            try:
                handles = []
                for n in range(SENDS):
                    handles.append(alice.submit(f"load {n}", room="general"))
                    time.sleep(0.002)
                acked.extend(handle.wait(30.0).id for handle in handles)
            except BaseException as exc:  # reported by the test's thread
                sender_failed.append(exc)

        sender = threading.Thread(target=send_all)
        sender.start()
        time.sleep(0.2)  # under way: some sends acked by node A, some in flight
        a.signal(signal.SIGKILL)
        killed_at = time.monotonic()
        sender.join(60.0)
        assert not sender.is_alive()
        assert not sender_failed, sender_failed
        received: dict[int, int] = {}
        carol_offline_after: float | None = None
        deadline = time.monotonic() + 30.0
        while len(received) < SENDS or carol_offline_after is None:
            event = bob.next_event(max(deadline - time.monotonic(), 0.01))
            assert event is not None, (
                f"{len(received)} of {SENDS} arrived; carol gone: {carol_offline_after}"
            )
            if isinstance(event, Message) and event.sender == "alice":
                received[event.id] = received.get(event.id, 0) + 1
            elif isinstance(event, PresenceBatch) and "carol" in event.offline:
                carol_offline_after = time.monotonic() - killed_at
        assert sorted(received) == sorted(acked)  # every acked message, and no other
        assert set(received.values()) == {1}  # each once
        assert len(set(acked)) == SENDS  # a resend after the failover got its first copy
        stored = value(
            db_url, "SELECT count(*) FROM messages WHERE sender = 'alice' AND kind = 'message'"
        )
        assert stored == SENDS
        assert carol_offline_after < NODE_TTL + 3.0
        assert "carol" not in bob.who()
        assert alice.is_connected
        assert any(isinstance(event, Reconnected) for event in alice.events(0.01))


HAPROXY = Path("/usr/sbin/haproxy")
HAPROXY_SOURCE = "127.0.0.3"  # HAProxy's address as the nodes see it; the clients' is 127.0.0.1


def _haproxy_config(nodes: list[ServeProcess], chat_port: int, web_port: int) -> str:
    """docs/deploy.md's HAProxy example, pointed at ``nodes`` on 127.0.0.1, connecting to
    them from HAPROXY_SOURCE (as if from its own machine)."""
    doc = (Path(__file__).parent.parent / "docs" / "deploy.md").read_text()
    after_title = doc.split("# /etc/haproxy/haproxy.cfg", 1)[1].split("\n", 1)[1]
    config = after_title.split("```", 1)[0]
    for node, lan in zip(nodes, ("192.168.1.10", "192.168.1.11"), strict=True):
        web = node.wait_for(r"web client on port (\d+)").group(1)
        config = config.replace(f"{lan}:5050", f"127.0.0.1:{node.port}")
        config = config.replace(f"{lan}:5443", f"127.0.0.1:{web}")
    config = config.replace("bind :5050", f"bind 127.0.0.1:{chat_port}")
    config = config.replace("bind :5443", f"bind 127.0.0.1:{web_port}")
    return config.replace("defaults\n", f"defaults\n    source {HAPROXY_SOURCE}\n", 1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_haproxy_in_tcp_mode_as_deploy_md_shows_moves_clients_off_a_killed_node(
    certs_dir: Path, db_url: str, serve: list[ServeProcess], tmp_path: Path
) -> None:
    if not HAPROXY.is_file():
        skip_or_fail("HAPROXY TEST SKIPPED: no haproxy; install it with `apt-get install haproxy`")
    # Each node trusts HAProxy's PROXY header (send-proxy-v2 in deploy.md's example).
    nodes = [_node(certs_dir, db_url, serve, "--trusted-proxy", HAPROXY_SOURCE) for _ in range(2)]
    port = _free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(_haproxy_config(nodes, port, _free_port()))
    proxy = subprocess.Popen(
        [str(HAPROXY), "-db", "-f", str(config)], stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        eventually(lambda: _accepts(port) or proxy.poll() is not None, "HAProxy listens or ended")
        assert proxy.poll() is None, proxy.communicate()[1]
        via_proxy = Client(
            "127.0.0.1", port, ca_file=certs_dir / "ca.pem", user="alice", password=PASSWORD,
            timeout=TIMEOUT, reconnect=True, backoff=Backoff(initial=0.05, cap=0.2),
        )  # fmt: skip
        with via_proxy as alice:
            on, other = _node_of("alice", nodes)
            # The node logged alice's own address (her client's, 127.0.0.1), not HAProxy's.
            on.wait_for(rf"login alice from 127\.0\.0\.1:\d+ via {HAPROXY_SOURCE}:\d+ ")
            with Peer(("127.0.0.1", port), certs_dir / "ca.pem", source="127.0.0.2") as dave:
                dave.login("dave", PASSWORD)  # another client address, through HAProxy too
            eventually(lambda: any(
                re.search(rf"login dave from 127\.0\.0\.2:\d+ via {HAPROXY_SOURCE}:", line)
                for node in nodes for line in _lines(node)
            ), "a node logged dave's login through HAProxy")  # fmt: skip
            with _client("bob", [other], certs_dir) as bob:
                first = alice.send("before", room="general")
                on.signal(signal.SIGKILL)
                second = alice.send("after", room="general")  # through HAProxy, to the other
                bodies: dict[int, str] = {}
                while len(bodies) < 2:
                    event = bob.next_event(TIMEOUT)
                    assert event is not None
                    if isinstance(event, Message) and event.sender == "alice":
                        bodies[event.id] = event.body
                assert bodies == {first: "before", second: "after"}
        # HAProxy's checks (every 2 s) send a LOCAL header: nothing to warn about.
        survivor = _lines(other)
        assert not [
            line
            for line in survivor
            if re.search(rf"dropped|TLS failure from {HAPROXY_SOURCE}", line)
        ]
    finally:
        proxy.terminate()
        proxy.communicate(timeout=TIMEOUT)


def _lines(node: ServeProcess) -> list[str]:
    """The node's log lines so far (what arrived within a moment)."""
    with contextlib.suppress(TimeoutError):
        node.wait_for(r"^\Z.", timeout=0.05)  # matches nothing: collects what came
    return node.lines


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except OSError:
        return False
    return True


def _node_of(user: str, nodes: list[ServeProcess]) -> tuple[ServeProcess, ServeProcess]:
    """The node ``user`` logged in on (from its log), and the other one."""
    first, second = nodes
    deadline = time.monotonic() + TIMEOUT
    while True:  # ask both in turn: either log may be slow to say it on a loaded machine
        for node, other in ((first, second), (second, first)):
            with contextlib.suppress(TimeoutError):
                node.wait_for(f"login {user} from", timeout=0.2)
                return node, other
        if time.monotonic() > deadline:
            raise TimeoutError(f"neither node logged {user}'s login")
