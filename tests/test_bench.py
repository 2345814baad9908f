"""securechat bench: every workload with tiny parameters against its own throwaway server."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from securechat.bench.commands import Endpoint, FanoutPlan, Role, Transport
from securechat.bench.pool import WorkerPool
from securechat.bench.report import Report
from securechat.bench.run import BenchParams
from securechat.bench.stats import Samples, percentile, summarize_ns
from securechat.bench.target import require_loopback
from securechat.bench.worker.connection import Connection, State
from securechat.bench.worker.fanout import Fanout
from securechat.bench.worker.framing import Framing, LengthPrefixed, WebSocketFraming
from securechat.bench.worker.wire import (
    BYE_FRAME,
    MAX_FRAME,
    PONG_FRAME,
    SendFrames,
    login_frames,
)
from securechat.bench.workloads import run_workload
from securechat.config import Limits
from securechat.errors import ConfigError, ConnectionLost, FrameTooLarge
from securechat.protocol.frames import FrameDecoder, encode_frame
from securechat.protocol.messages import (
    Ack,
    Auth,
    Bye,
    Event,
    Hello,
    Join,
    Message,
    Ping,
    Pong,
    Presence,
    Send,
    decode_event,
    decode_request,
    encode,
)
from tests.conftest import TIMEOUT, CliRunner

pytestmark = pytest.mark.slow


def _assert_latency(summary: dict[str, Any], count: int) -> None:
    assert summary["count"] == count
    assert 0 < summary["p50_ms"] <= summary["p99_ms"] <= summary["max_ms"]


def test_bench_fanout_rate_counts_every_delivery() -> None:
    params = BenchParams(receivers=3, senders=2, rate=200, duration=0.5)
    report = run_workload("fanout-rate", params, show_progress=False)
    assert report.failures == []
    results = report.results
    assert results["messages_sent"] == results["acks"] == 100
    assert results["deliveries"] == results["expected_deliveries"] == 100 * (3 + 2 - 1)
    _assert_latency(results["delivery_latency"], 400)
    _assert_latency(results["ack_latency"], 100)
    assert results["server_cpu_s"] > 0
    assert results["server_memory_mib"]["VmHWM"] > 0
    assert [c.name for c in report.checks] == ["fanout-rate delivery p99"]


def test_bench_fanout_rate_over_websocket_counts_every_delivery() -> None:
    params = BenchParams(receivers=3, senders=2, rate=200, duration=0.5, processes=1,
                         transport=Transport.WS)  # fmt: skip
    report = run_workload("fanout-rate", params, show_progress=False)
    assert report.failures == []
    assert report.params["transport"] == "ws"
    results = report.results
    assert results["messages_sent"] == results["acks"] == 100
    assert results["deliveries"] == results["expected_deliveries"] == 100 * (3 + 2 - 1)
    _assert_latency(results["delivery_latency"], 400)
    assert results["generator_cpu_us_per_delivery"] > 0
    assert results["server_cpu_us_per_delivery"] > 0
    # Each browser session is served by one server thread (see server/connection.py).
    assert results["server_memory_mib"]["Threads"] >= 5


@pytest.mark.parametrize("transport", [Transport.TLS, Transport.WS])
def test_bench_fanout_max_keeps_a_window_and_loses_nothing(transport: Transport) -> None:
    params = BenchParams(receivers=3, senders=2, messages=150, window=8, processes=1,
                         transport=transport)  # fmt: skip
    report = run_workload("fanout-max", params, show_progress=False)
    assert report.failures == []
    assert report.params["transport"] == transport.value
    assert report.results["deliveries"] == report.results["expected_deliveries"] == 300 * 4
    assert report.results["deliveries_per_s"] > 0
    _assert_latency(report.results["ack_latency"], 300)


def test_bench_connect_logs_in_and_resumes_when_the_server_issues_tokens() -> None:
    params = BenchParams(logins=4, resumes=6, receivers=2, senders=1, rate=20)
    report = run_workload("connect", params, show_progress=False)
    assert report.failures == []
    logins = report.results["password_logins"]
    assert logins["ok"] == 4
    _assert_latency(logins["connect_to_welcome"], 4)
    resumes = report.results["token_resumes"]
    if resumes["supported"]:
        assert resumes["ok"] == 6
    else:
        assert report.checks[-1].met is None  # reported as unsupported, not as a failure
    chat = report.results["background_chat"]
    assert chat["deliveries"] == chat["expected_deliveries"] > 0


def test_bench_idle_holds_each_level_and_reports_memory() -> None:
    report = run_workload("idle", BenchParams(levels=(5, 12)), show_progress=False)
    assert report.failures == []
    assert report.results["level_reached"] == 12
    for level in report.results["levels"]:
        assert level["ok"]
        assert 0 < level["ping_max_ms"] < 1000
        assert level["server_hwm_mib"] >= level["server_rss_mib"] > 0
        assert level["quiet_s"] is not None  # a dozen sessions quieten within the minute
        assert level["frames_per_session"] >= level["presence_per_session"] > 0
    # The second level's 7 logins were announced to the first 5 sessions.
    first, second = report.results["levels"]
    assert second["presence_per_session"] * 12 > first["presence_per_session"] * 5


def test_bench_idle_times_a_morning_and_first_logins_only_when_asked() -> None:
    """By default the users are members of #general before the start (a morning's logins
    cost presence only); with first_logins each login joins it in front of those online."""
    morning = run_workload("idle", BenchParams(levels=(3, 6)), show_progress=False)
    first = run_workload("idle", BenchParams(levels=(3, 6), first_logins=True), show_progress=False)
    assert morning.failures == first.failures == []
    assert morning.server["users"] == "7 members of #general since before the start"
    assert "users" not in first.server

    def room_events(report: Report) -> float:  # frames other than presence, per session
        level = report.results["levels"][-1]
        return float(level["frames_per_session"] - level["presence_per_session"])

    # The second level's three joins reached at least the first level's three sessions.
    assert room_events(first) >= room_events(morning) + 9 / 6


def test_bench_idle_holds_more_sessions_than_the_servers_cap_for_one_address() -> None:
    """The throwaway server lifts max_sessions_per_address: every session comes from 127.0.0.1."""
    above_cap = Limits().max_sessions_per_address + 1
    report = run_workload("idle", BenchParams(levels=(above_cap,)), show_progress=False)
    assert report.failures == []
    assert report.results["level_reached"] == above_cap


def test_bench_idle_over_websocket_holds_a_level_with_one_thread_a_session() -> None:
    report = run_workload(
        "idle", BenchParams(levels=(4, 10), processes=1, transport=Transport.WS),
        show_progress=False,
    )  # fmt: skip
    assert report.failures == []
    assert report.results["level_reached"] == 10
    first, second = report.results["levels"]
    assert first["ok"]
    assert second["ok"]
    assert 0 < second["ping_max_ms"] < 1000
    assert second["fresh_login"].endswith(" ms")
    assert 0 <= second["server_held_cpu_pct"] < 100  # ten sessions sitting there
    # One server thread a session, as over TLS (the probe's may still be ending: give or
    # take one); with websockets' threaded server it was three.
    added = second["server_threads"] - first["server_threads"]
    assert 10 - 4 - 1 <= added <= 10 - 4 + 1


def test_bench_scaling_measures_each_room_size() -> None:
    params = BenchParams(sizes=(3, 6), senders=1, rate=50, duration=0.4)
    report = run_workload("scaling", params, show_progress=False)
    assert report.failures == []
    points = report.results["points"]
    assert [p["members"] for p in points] == [3, 6]
    for point in points:
        assert point["deliveries"] == point["expected"] == 20 * (point["members"] - 1)
        assert 0 < point["p50_ms"] <= point["p99_ms"] <= point["max_ms"]
        assert point["server_cpu_us_per_delivery"] > 0


def test_bench_scaling_plot_is_a_png(tmp_path: Path) -> None:
    from securechat.bench.plot import plot_scaling

    point = {"members": 10, "p50_ms": 1.0, "p99_ms": 2.0, "server_cpu_us_per_delivery": 30.0}
    plot_scaling([point, {**point, "members": 50}], tmp_path / "scaling.png")
    assert (tmp_path / "scaling.png").read_bytes().startswith(b"\x89PNG")


def test_bench_json_output_is_one_object(run_cli: CliRunner) -> None:
    result = run_cli("bench", "fanout-max", "--receivers", "2", "--senders", "1",
                     "--messages", "20", "--processes", "1", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["workload"] == "fanout-max"
    assert report["ok"] is True
    assert report["results"]["deliveries"] == 40
    assert report["machine"]["cpus"] >= 1


def test_bench_refuses_a_remote_host_without_allow_remote(run_cli: CliRunner) -> None:
    result = run_cli("bench", "fanout-rate", "--host", "192.0.2.1", "--ca", "ca.pem",
                     "--password", "whatever-it-is", timeout=20)  # fmt: skip
    assert result.returncode == 1
    assert "not a loopback address" in result.stderr
    assert "--allow-remote" in result.stderr


def test_require_loopback_decides_before_any_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_traffic(*_args: object) -> None:
        raise AssertionError("require_loopback must not connect")

    monkeypatch.setattr(socket.socket, "connect", no_traffic)
    monkeypatch.setattr(socket.socket, "connect_ex", no_traffic)
    for host in ("127.0.0.1", "::1", "localhost", "127.8.9.10"):
        require_loopback(host, 5050, allow_remote=False)
    with pytest.raises(ConfigError, match=r"192\.0\.2\.1"):
        require_loopback("192.0.2.1", 5050, allow_remote=False)
    require_loopback("192.0.2.1", 5050, allow_remote=True)


def test_samples_reservoir_keeps_count_and_max() -> None:
    samples = Samples(cap=100)
    for value in range(1, 10_001):
        samples.add(value * 1000)
    assert len(samples.values) == 100
    summary = summarize_ns([samples])
    assert summary["count"] == 10_000
    assert summary["max_ms"] == 10.0
    assert 2.0 < summary["p50_ms"] < 8.0  # a uniform reservoir of 1..10 ms


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.5) == 0
    assert percentile([5], 0.99) == 5
    assert percentile(list(range(1, 101)), 0.99) == 99
    assert percentile(list(range(1, 101)), 0.50) == 50


def _payloads(data: bytes) -> list[bytes]:
    decoder = FrameDecoder(MAX_FRAME)
    decoder.feed(data)
    return list(iter(decoder.next_frame, None))


def test_generator_sends_are_the_codecs_encoding_of_a_send() -> None:
    frame = SendFrames("bench-fanout-max-abc123", "-1a2b3c4d-", 100).frame(123_456_789, 42)
    [payload] = _payloads(frame)
    body = f"{123_456_789:020d}-1a2b3c4d-".ljust(100, "x")
    send = Send(body=body, room="bench-fanout-max-abc123", ref="-1a2b3c4d-42")
    assert decode_request(payload) == send
    assert frame == encode_frame(encode(send))


def test_generator_logins_pongs_and_byes_are_valid_requests() -> None:
    frames = login_frames("bench0", password="pw", room="bench-idle-abc123")
    assert [decode_request(p) for p in _payloads(frames)] == [
        Auth(user="bench0", password="pw"),
        Join(room="bench-idle-abc123", ref="join"),
    ]
    assert [decode_request(p) for p in _payloads(login_frames("bench1", token="t0k"))] == [
        Auth(user="bench1", token="t0k")
    ]
    assert [decode_request(p) for p in _payloads(PONG_FRAME + BYE_FRAME)] == [Pong(), Bye()]


def _server_side(framing: Framing) -> Callable[[bytes], bytes]:
    """What a server writes for a blob of frames, on the framing's port (already upgraded)."""
    if not isinstance(framing, WebSocketFraming):
        return lambda frames: frames
    server = _accepting_server(framing)
    framing.feed(b"".join(server.data_to_send()))
    assert framing.upgraded()

    def write(frames: bytes) -> bytes:
        for payload in _payloads(frames):
            server.send_text(payload)
        return b"".join(server.data_to_send())

    return write


@pytest.mark.parametrize("transport", list(Transport))
def test_generator_counts_the_servers_messages_and_acks_by_their_prefix(
    transport: Transport,
) -> None:
    """The receivers' bytes parsing agrees with the codec that writes the events."""
    tag = "-1a2b3c4d-"
    plan = FanoutPlan(tag=tag, body_bytes=64, senders=1, messages=1, start_ns=0, rate=1.0,
                      window=1, grace_s=1.0, max_samples=10)  # fmt: skip
    replies: list[tuple[str, Any]] = []
    fanout = Fanout(plan, "room", replies.append)
    endpoint = Endpoint("127.0.0.1", 1, "unused")
    with selectors.DefaultSelector() as selector:
        framing: Framing = (
            LengthPrefixed() if transport is Transport.TLS else WebSocketFraming("127.0.0.1", 1)
        )
        server_writes = _server_side(framing)
        conn = Connection(selector, endpoint, user="bench0", role=Role.SENDER, sender=0, login=b"",
                          framing=framing)  # fmt: skip
        try:
            conn.state = State.READY
            conn.pending_ns[7] = 1_000
            events: list[Event] = [
                Message(id=1, sender="bench1", body=f"{400:020d}{tag}xx", ts="t", room="room"),
                Message(id=2, sender="bench1", body=f"{400:020d}-other-run-", ts="t", room="room"),
                Ack(id=3, ts="t", ref=f"{tag}7"),
                Presence(user="bench2", online=True),
                Ping(),
            ]
            framing.feed(server_writes(b"".join(encode_frame(encode(e)) for e in events)))
            fanout.receive(conn, now=1_500)
        finally:
            conn.close(None)
    assert (conn.deliveries, fanout.delivered, list(fanout.delivery.values)) == (1, 1, [1_100])
    assert (conn.acked, fanout.acked, list(fanout.ack.values)) == (1, 1, [500])
    assert conn.pending_ns == {}
    assert [decode_event(p) for p in _payloads(b"".join(conn.queue))] == [Pong()]


# --- the web port's framing (securechat.bench.worker.framing) --------------------------


def _accepting_server(client: WebSocketFraming) -> ServerProtocol:
    """websockets' own server side, sans-I/O, having read and accepted the upgrade."""
    server = ServerProtocol(max_size=MAX_FRAME)
    server.receive_data(client.opening())
    [request] = server.events_received()
    assert isinstance(request, Request)
    server.send_response(server.accept(request))
    return server


def test_websocket_framing_upgrades_to_ws_with_the_servers_origin() -> None:
    client = WebSocketFraming("127.0.0.1", 5443)
    server = ServerProtocol()
    server.receive_data(client.opening())
    [request] = server.events_received()
    assert isinstance(request, Request)
    assert request.path == "/ws"
    assert request.headers["Host"] == "127.0.0.1:5443"
    assert request.headers["Origin"] == "https://127.0.0.1:5443"
    assert "Sec-WebSocket-Extensions" not in request.headers  # no compression
    assert not client.upgraded()
    server.send_response(server.accept(request))
    response = b"".join(server.data_to_send())
    client.feed(response[:20])  # a partial response is not an upgrade yet
    assert not client.upgraded()
    client.feed(response[20:])
    assert client.upgraded()
    assert WebSocketFraming("::1", 5443).opening().count(b"Origin: https://[::1]:5443\r\n") == 1


def test_websocket_framing_sends_each_request_as_one_masked_text_message() -> None:
    client = WebSocketFraming("localhost", 5443)
    server = _accepting_server(client)
    client.feed(b"".join(server.data_to_send()))
    assert client.upgraded()
    send = SendFrames("bench-room-abc123", "-1a2b3c4d-", 100).frame(123, 4)
    wire = client.encode(login_frames("bench0", password="pw", room="lobby") + send + PONG_FRAME)
    assert wire[0] == 0x81  # FIN, text
    assert wire[1] & 0x80  # masked, as RFC 6455 requires of a client
    server.receive_data(wire)  # websockets' server refuses unmasked frames
    frames = [f for f in server.events_received() if isinstance(f, Frame)]
    assert server.parser_exc is None
    assert [f.opcode for f in frames] == [Opcode.TEXT] * 4
    assert [decode_request(bytes(f.data)) for f in frames] == [
        Auth(user="bench0", password="pw"),
        Join(room="lobby", ref="join"),
        decode_request(_payloads(send)[0]),
        Pong(),
    ]


def test_websocket_framing_reads_each_text_message_as_one_event() -> None:
    client = WebSocketFraming("127.0.0.1", 5443)
    server = _accepting_server(client)
    events: list[Event] = [Hello(protocol=1, server="securechat", max_frame=65536, heartbeat=30),
              Message(id=1, sender="bench1", body="hi", ts="t", room="r"), Ping()]  # fmt: skip
    for event in events:
        server.send_text(encode(event))
    server.send_text(b'{"type":"pong",', fin=False)  # one message in two frames
    server.send_continuation(b'"ref":"p1"}', fin=True)
    wire = b"".join(server.data_to_send())
    client.feed(wire[:7])
    client.feed(wire[7:])
    received = list(iter(client.next_frame, None))
    assert [decode_event(p) for p in received] == [*events, Pong(ref="p1")]


@pytest.mark.parametrize("step", [1, 3, 7, 4096, 1 << 20])
def test_websocket_framing_cuts_text_frames_itself_then_hands_the_rest_to_the_protocol(
    step: int,
) -> None:
    """The upgrade, then text frames of each header size, fed in slices that cut heads,
    headers and payloads, read by the framing's own cut; the first ping goes to the protocol, which answers
    it, and everything after it (text, a fragmented message, the close) is read too."""
    client = WebSocketFraming("127.0.0.1", 5443)
    server = _accepting_server(client)
    sizes = [0, 1, 125, 126, 65535, 65536, 70000]
    before = [b'"' + b"a" * max(n - 2, 0) + b'"' if n >= 2 else b"1" * n for n in sizes]
    for payload in before:
        server.send_text(payload)
    server.send_ping(b"are you there")
    server.send_text(b'{"after":"the ping"}')
    server.send_text(b'{"in":', fin=False)
    server.send_continuation(b'"two"}', fin=True)
    server.send_close(CloseCode.GOING_AWAY)
    wire = b"".join(server.data_to_send())
    assert wire.startswith(b"HTTP/1.1 101 ")  # the upgrade, sliced like the rest
    read: list[bytes] = []

    def read_all() -> None:
        for start in range(0, len(wire), step):
            client.feed(wire[start : start + step])
            while (payload := client.next_frame()) is not None:
                read.append(payload)

    with pytest.raises(ConnectionLost, match="WebSocket close 1001"):
        read_all()
    assert read == [*before, b'{"after":"the ping"}', b'{"in":"two"}']
    server.receive_data(client.encode(b""))
    assert [f.opcode for f in server.events_received() if isinstance(f, Frame)] == [
        Opcode.PONG,
        Opcode.CLOSE,
    ]
    assert server.parser_exc is None


def test_websocket_framing_reads_frames_that_came_with_the_upgrade() -> None:
    client = WebSocketFraming("127.0.0.1", 5443)
    server = _accepting_server(client)
    server.send_text(encode(Hello(protocol=1, server="s", max_frame=65536, heartbeat=30)))
    client.feed(b"".join(server.data_to_send()))  # the 101 and hello in one read
    assert decode_event(client.next_frame() or b"") == Hello(
        protocol=1, server="s", max_frame=65536, heartbeat=30
    )
    assert client.next_frame() is None


def test_websocket_framing_reports_the_servers_close_after_what_came_before() -> None:
    client = WebSocketFraming("127.0.0.1", 5443)
    server = _accepting_server(client)
    server.send_text(encode(Bye(reason="idle")))
    server.send_close(CloseCode.NORMAL_CLOSURE)
    client.feed(b"".join(server.data_to_send()))
    assert decode_event(client.next_frame() or b"") == Bye(reason="idle")
    with pytest.raises(ConnectionLost, match="WebSocket close 1000"):
        client.next_frame()
    assert client.encode(PONG_FRAME).startswith(b"\x88")  # only the close's echo goes out


def test_websocket_framing_reports_a_refused_upgrade() -> None:
    client = WebSocketFraming("127.0.0.1", 5443)
    server = ServerProtocol()
    server.receive_data(client.opening())
    server.events_received()
    server.send_response(server.reject(403, "this origin may not connect"))
    client.feed(b"".join(server.data_to_send()))
    with pytest.raises(ConnectionLost, match="HTTP 403"):
        client.upgraded()


def test_websocket_framing_refuses_a_message_over_its_limit_by_its_header() -> None:
    client = WebSocketFraming("127.0.0.1", 5443)
    server = _accepting_server(client)
    client.feed(b"".join(server.data_to_send()))
    assert client.upgraded()
    client.feed(bytes([0x81, 127]) + (MAX_FRAME + 1).to_bytes(8, "big"))
    with pytest.raises(FrameTooLarge):
        client.next_frame()


@pytest.mark.parametrize(("batch", "policy"), [(True, "SCHED_BATCH"), (False, "SCHED_OTHER")])
def test_generator_processes_run_under_the_chosen_policy(
    certs_dir: Path, batch: bool, policy: str
) -> None:
    endpoint = Endpoint(host="127.0.0.1", port=1, ca_file=str(certs_dir / "ca.pem"))
    with WorkerPool(endpoint, "room", 2, batch=batch) as pool:
        pool.send_all("status")
        pool.collect("status", timeout=10)  # both are up and in their loops
        policies = [os.sched_getscheduler(pid) for pid in pool.pids]
    assert policies == [getattr(os, policy)] * 2


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue  # it ended meanwhile
            if text.encode() in cmdline:
                found.append(int(entry.name))
    return found


def test_bench_stopped_by_sigterm_removes_its_server_and_folder(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECURECHAT_")}
    bench = subprocess.Popen(
        [sys.executable, "-m", "securechat", "bench", "fanout-rate", "--duration", "30",
         "--receivers", "2", "--senders", "1", "--rate", "20", "--processes", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**env, "TMPDIR": str(temp)},
    )  # fmt: skip
    folder: Path | None = None
    server_pids: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not server_pids:
            assert bench.poll() is None, bench.stderr.read() if bench.stderr else ""
            assert time.monotonic() < deadline, "the throwaway server never started"
            folders = list(temp.glob("securechat-bench-*"))
            log = folders[0] / "server.log" if folders else None
            if log is not None and log.is_file() and "listening on" in log.read_text():
                folder = folders[0]
                port = int(log.read_text().split("listening on 127.0.0.1 port ")[1].split()[0])
                server_pids = _processes_mentioning(str(folder))
            time.sleep(0.1)
        bench.send_signal(signal.SIGTERM)  # as `timeout` and systemd stop a program
        assert bench.wait(TIMEOUT * 3) == 130  # as after Ctrl-C
        assert _processes_mentioning(str(folder)) == []
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
        assert list(temp.iterdir()) == []
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        for pid in _processes_mentioning(str(temp)):  # whatever a failed run left behind
            os.kill(pid, signal.SIGKILL)
        if bench.stderr is not None:
            bench.stderr.close()
