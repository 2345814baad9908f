"""SessionClocks without sockets: every deadline a server connection keeps, on either port."""

from __future__ import annotations

import pytest

from securechat.protocol.clocks import Ending, Phase, SessionClocks, server_hello
from securechat.protocol.messages import Bye, Error, Hello, Ping


def clocks(**overrides: float) -> SessionClocks:
    settings = {
        "accepted_at": 100.0,
        "handshake_timeout": 5.0,
        "auth_timeout": 10.0,
        "heartbeat": 30.0,
        "idle_timeout": 90.0,
        "stuck_writer_timeout": 20.0,
    }
    settings.update(overrides)
    return SessionClocks(**settings)


def test_clocks_end_a_connection_that_does_not_open_by_the_handshake_deadline() -> None:
    c = clocks()
    assert c.next_deadline() == 105.0
    assert c.tick(104.9) is None
    ending = c.tick(105.0)
    assert isinstance(ending, Ending)
    assert ending.final is None


def test_clocks_opening_deadline_is_never_after_the_login_deadline() -> None:
    assert clocks(handshake_timeout=30.0).open_deadline == 110.0


def test_clocks_end_a_session_without_login_by_the_deadline_counted_from_accept() -> None:
    c = clocks()
    c.opened(104.0)
    assert c.phase is Phase.AWAITING_LOGIN
    assert c.next_deadline() == 110.0
    assert c.tick(109.0) is None
    ending = c.tick(110.0)
    assert isinstance(ending, Ending)
    assert ending.reason == "login timed out"
    assert isinstance(ending.final, Error)
    assert ending.final.code == "auth_required"


def test_clocks_ping_a_silent_session_once_then_end_it_as_idle() -> None:
    c = clocks()
    c.opened(101.0)
    c.logged_in(102.0)
    assert c.next_deadline() == 132.0
    assert c.tick(131.0) is None
    assert isinstance(c.tick(132.0), Ping)
    assert c.tick(133.0) is None  # one ping per silence
    assert c.next_deadline() == 192.0  # then nothing until idle: no busy wake-ups
    ending = c.tick(192.0)
    assert isinstance(ending, Ending)
    assert ending.final == Bye(reason="idle")


def test_clocks_start_the_heartbeat_over_when_the_peer_is_heard() -> None:
    c = clocks()
    c.opened(101.0)
    c.logged_in(102.0)
    assert isinstance(c.tick(132.0), Ping)
    c.heard(140.0)
    assert c.next_deadline() == 170.0
    assert isinstance(c.tick(170.0), Ping)  # a new silence gets its own ping


def test_clocks_heartbeat_never_waits_past_the_idle_timeout() -> None:
    c = clocks(heartbeat=60.0, idle_timeout=45.0)
    c.opened(100.0)
    c.logged_in(100.0)
    assert c.next_deadline() == 145.0
    assert isinstance(c.tick(145.0), Ending)


def test_clocks_end_a_writer_that_makes_no_progress() -> None:
    c = clocks()
    c.opened(100.0)
    c.logged_in(100.0)
    c.output(101.0, waiting=True, progressed=False)
    assert c.next_deadline() == 121.0
    c.output(110.0, waiting=True, progressed=True)  # some went out: the clock starts over
    assert c.next_deadline() == 130.0
    c.output(125.0, waiting=True, progressed=False)
    assert c.tick(129.0) is None
    ending = c.tick(130.0)
    assert isinstance(ending, Ending)
    assert ending.reason.startswith("slow consumer")
    assert ending.final is None  # a peer that does not read cannot be told


def test_clocks_stuck_writer_clock_starts_when_output_begins_to_wait() -> None:
    c = clocks()
    c.opened(100.0)
    c.logged_in(100.0)
    c.output(105.0, waiting=False, progressed=False)
    c.output(150.0, waiting=True, progressed=False)
    assert not isinstance(c.tick(169.0), Ending)
    assert isinstance(c.tick(170.0), Ending)


def test_clocks_refuse_to_log_in_before_opening() -> None:
    with pytest.raises(AssertionError):
        clocks().logged_in(101.0)


def test_server_hello_states_the_protocol_and_limits() -> None:
    hello = server_hello(server="securechat 9", max_frame=65536, heartbeat=30, max_body=4000)
    assert isinstance(hello, Hello)
    assert (hello.server, hello.max_frame, hello.heartbeat, hello.max_body) == (
        "securechat 9", 65536, 30, 4000,
    )  # fmt: skip
