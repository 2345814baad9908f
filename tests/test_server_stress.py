"""Many connections under heavy fan-out: none is dropped, every message arrives in order."""

from __future__ import annotations

import threading
import time

from tests.conftest import USERS, RunningServer, ServerFactory
from tests.eventually import eventually
from tests.peer import Peer

RECEIVERS = 60
SENDERS = 4
PER_SENDER = 250


def _threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("conn "))


def test_heavy_fanout_drops_no_connection(server_factory: ServerFactory) -> None:
    running: RunningServer = server_factory(rate_per_second=100_000, rate_burst=100_000)
    receivers = [running.login(USERS[i % len(USERS)]) for i in range(RECEIVERS)]
    senders = [running.login("alice") for _ in range(SENDERS)]
    total = SENDERS * PER_SENDER
    counts = [0] * RECEIVERS
    failures: list[str] = []

    def receive(index: int, peer: Peer) -> None:
        last_id = 0
        try:
            while counts[index] < total:
                event = peer.recv(timeout=20)
                if event["type"] == "message":
                    counts[index] += 1
                    # Written directly by the delivery thread or queued for the connection's own
                    # thread: either way, each session sees the messages in id order.
                    if event["id"] <= last_id:
                        failures.append(f"receiver {index}: id {event['id']} after {last_id}")
                        return
                    last_id = event["id"]
                elif event["type"] in ("error", "bye"):
                    failures.append(f"receiver {index}: {event}")
                    return
        except (OSError, TimeoutError) as exc:
            failures.append(f"receiver {index}: {exc!r} after {counts[index]}")

    def send(index: int, peer: Peer) -> None:
        for n in range(PER_SENDER):
            peer.send(
                type="send", room="general", body=f"{index}:{n} " + "x" * 100, ref=f"{index}-{n}"
            )
        acked = 0
        try:
            while acked < PER_SENDER:
                if peer.recv(timeout=20)["type"] == "ack":
                    acked += 1
        except (OSError, TimeoutError) as exc:
            failures.append(f"sender {index}: {exc!r} after {acked} acks")

    readers = [threading.Thread(target=receive, args=(i, p)) for i, p in enumerate(receivers)]
    writers = [threading.Thread(target=send, args=(i, p)) for i, p in enumerate(senders)]
    started = time.monotonic()
    for thread in readers + writers:
        thread.start()
    for thread in readers + writers:
        thread.join(timeout=60)
    elapsed = time.monotonic() - started
    assert not failures, failures[:5]
    # Each sender's other sessions receive the message too; the sending one does not.
    assert counts == [total] * RECEIVERS, (min(counts), max(counts))
    print(f"{RECEIVERS * total} deliveries in {elapsed:.1f} s")
    for peer in receivers + senders:
        peer.send(type="ping", ref="alive")
        peer.expect("pong", ref="alive")


def test_closed_connections_leave_no_threads(running_server: RunningServer) -> None:
    baseline = _threads()
    peers = [running_server.login(USERS[n % len(USERS)]) for n in range(40)]  # 32 per user at most
    assert _threads() == baseline + 40
    for peer in peers:
        peer.send(type="bye")
        peer.expect_closed()
    eventually(
        lambda: _threads() <= baseline, lambda: f"{baseline} threads again ({_threads()} now)"
    )
    assert _threads() == baseline
    raw = [running_server.peer() for _ in range(20)]  # closed before logging in, mid-handshake
    for peer in raw:
        peer.close()
    eventually(
        lambda: _threads() <= baseline, lambda: f"{baseline} threads again ({_threads()} now)"
    )
    assert _threads() == baseline
    alice = running_server.login("alice")  # and the server still serves
    alice.send(type="ping", ref="p")
    assert alice.expect("pong")["ref"] == "p"
