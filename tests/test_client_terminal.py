"""The real ``securechat connect`` in a pseudo-terminal (pexpect) against a real server."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pexpect

from securechat.certs import fingerprint, read_certificate
from securechat.protocol.frames import encode_frame
from securechat.protocol.messages import RoomEvent, encode
from tests.conftest import PASSWORD, TIMEOUT, RunningServer, ServerFactory
from tests.pty_terminal import Terminal

TS = "2026-12-04T10:00:00.000Z"


def test_two_users_chat_in_a_room_and_directly(
    running_server: RunningServer, terminal: Callable[[RunningServer, str], Terminal]
) -> None:
    alice = terminal(running_server, "alice")
    bob = terminal(running_server, "bob")
    alice.expect("bob is online")
    alice.line("hi bob, ünïcödé ✓")
    alice.expect(r"#general alice: hi bob, ünïcödé ✓")
    bob.expect(r"\d\d:\d\d #general alice: hi bob, ünïcödé ✓")
    bob.line("/msg alice just for you")
    bob.expect(r"\(dm → alice\) bob: just for you")
    alice.expect(r"\(dm\) bob: just for you")
    alice.line("/query bob")
    alice.expect(r"\[@bob\] alice>")
    alice.line("back at you")
    bob.expect(r"\(dm\) alice: back at you")


def test_incoming_lines_do_not_break_what_is_being_typed(
    running_server: RunningServer, terminal: Callable[[RunningServer, str], Terminal]
) -> None:
    alice = terminal(running_server, "alice")
    bob = terminal(running_server, "bob")
    bob.type("half of a senten")
    bob.settle(0.3)
    alice.line("an interruption")
    screen = bob.expect("alice: an interruption")
    assert screen
    redraw = bob.expect(r"\[general\] bob> half of a senten")  # redrawn below the new line
    assert redraw
    bob.line("ce, finished")
    alice.expect("bob: half of a sentence, finished")


def test_help_who_and_history_show_what_they_should(
    running_server: RunningServer, terminal: Callable[[RunningServer, str], Terminal]
) -> None:
    alice = terminal(running_server, "alice")
    for text in ("first", "second", "third"):
        alice.line(text)
        alice.expect(f"alice: {text}")
    bob = terminal(running_server, "bob")
    bob.line("/help")
    for command in ("/join ROOM", "/leave", "/room ROOM", "/msg USER TEXT", "/query USER"):
        bob.expect(re.escape(command))
    bob.expect("/quit")
    bob.line("/who")
    bob.expect(r"online \(2\): alice, bob")
    bob.line("/history 3")  # room events count in N: bob's join is the newest
    bob.expect(r"last 2 message\(s\) and 1 room event\(s\) in #general")
    bob.expect("alice: second")
    bob.expect("alice: third")
    bob.expect("you joined #general")
    bob.expect("end of history")
    bob.line("/nonsense")
    bob.expect(r"unknown command /nonsense: /help lists them")
    bob.line("/quit")
    bob.expect("bye")
    bob.child.expect(pexpect.EOF, timeout=TIMEOUT)
    bob.child.close()
    assert bob.child.exitstatus == 0


def test_search_shows_matches_newest_first_with_their_conversation(
    running_server: RunningServer, terminal: Callable[..., Terminal]
) -> None:
    alice = terminal(running_server, "alice")
    bob = terminal(running_server, "bob")
    alice.line("the Deploy is done")
    alice.expect("alice: the Deploy is done")
    bob.line("/msg alice deploy notes for you")
    bob.expect(r"bob: deploy notes for you")
    bob.line("/msg carol a deploy alice must not find")
    bob.expect("bob: a deploy alice must not find")
    alice.line("/search DEPLOY")
    alice.expect(r"2 message\(s\) with 'DEPLOY', newest first:")
    alice.expect(r"\(dm\) bob: deploy notes for you")
    alice.expect(r"#general alice: the Deploy is done")
    alice.expect("end of results")
    assert "must not find" not in alice.settle(0.3)
    alice.line("/search xq")
    alice.expect(r"usage: /search TEXT  \(3 to 200 characters\)")
    alice.line("/search nowhere to be found")
    alice.expect("nothing found for 'nowhere to be found'")


def test_remote_control_characters_are_shown_escaped(
    running_server: RunningServer, terminal: Callable[[RunningServer, str], Terminal]
) -> None:
    alice = terminal(running_server, "alice")
    mallory = running_server.login("bob")
    mallory.send(type="send", room="general", body="\x1b[2Jgotcha\x07\u202eevil", ref="x")
    mallory.expect("ack")
    alice.expect(r"bob: \\x1b\[2Jgotcha\\x07\\u202eevil")
    assert "\x1b[2J" not in alice.raw
    assert "\x07" not in alice.raw
    assert "\u202e" not in alice.raw


def test_a_room_event_whose_action_looks_like_a_template_is_shown_and_the_chat_goes_on(
    running_server: RunningServer, terminal: Callable[[RunningServer, str], Terminal]
) -> None:
    """A hostile or newer server's ``action`` is text, not a format string: before the fix
    ``{nope}`` raised in the event thread, which died silently and showed nothing more."""
    alice = terminal(running_server, "alice")
    hub = running_server.server.parts.hub
    for n, action in enumerate(("{nope}", "{actor.__class__.__mro__}"), 1):
        event = RoomEvent(id=90 + n, room="general", action=action, actor="bob", ts=TS)
        for session in hub.sessions_of("alice"):
            session.send(encode_frame(encode(event)))
    alice.expect(re.escape("bob did '{nope}' in #general"))
    alice.expect(re.escape("bob did '{actor.__class__.__mro__}' in #general"))
    bob = running_server.login("bob")
    bob.send(type="send", room="general", body="still there?", ref="s")
    bob.expect("ack")
    alice.expect("bob: still there[?]")
    assert "<class" not in alice.text


def test_a_presence_batch_is_one_line_and_who_agrees_with_it(
    running_server: RunningServer, terminal: Callable[[RunningServer, str], Terminal]
) -> None:
    """bob and carol come online at once (on another node, as the heartbeat would say):
    one batch, one line; then they go, in one batch too."""
    for user in ("bob", "carol"):  # a first login: they join #general
        running_server.login(user).close()
    alice = terminal(running_server, "alice")
    hub = running_server.server.parts.hub
    hub.set_elsewhere({"bob", "carol"})
    alice.expect("bob and carol are online")
    alice.line("/who")
    alice.expect(r"online \(3\): alice, bob, carol")
    hub.set_elsewhere(())
    alice.expect("bob and carol are offline")
    alice.line("/who")
    alice.expect(r"online \(1\): alice")


def test_restart_while_a_message_is_pending_stores_and_shows_it_once(
    server_factory: ServerFactory, terminal: Callable[[RunningServer, str], Terminal]
) -> None:
    first = server_factory()
    port = first.address[1]
    alice = terminal(first, "alice")
    first.server.shutdown()
    alice.expect("connection lost")
    alice.line("typed while the server was down")
    alice.expect(r"… #general typed while the server was down")
    alice.expect(r"offline: reconnecting")
    second = server_factory(port=port)
    bob = second.login("bob")
    bob.send(type="send", room="general", body="bob during the outage", ref="b1")
    bob.expect("ack")
    alice.expect("reconnected")
    # Either may be committed first: alice's resend races bob's send after the restart.
    both = r"bob: bob during the outage|alice: typed while the server was down"
    seen = {alice.expect(both).group(0), alice.expect(both).group(0)}
    assert len(seen) == 2, seen
    alice.settle(0.5)
    rest = alice.text
    assert rest.count("bob: bob during the outage") == 1
    assert rest.count("alice: typed while the server was down") == 1
    with sqlite3.connect(second.db_url.removeprefix("sqlite:///")) as db:
        (stored,) = db.execute(
            "SELECT count(*) FROM messages WHERE body = 'typed while the server was down'"
        ).fetchone()
    assert stored == 1


def test_connect_remembers_everything_but_the_password(
    running_server: RunningServer,
    terminal: Callable[[RunningServer, str], Terminal],
    tmp_path: Path,
) -> None:
    alice = terminal(running_server, "alice")
    alice.line("/quit")
    alice.child.expect(pexpect.EOF, timeout=TIMEOUT)
    saved = tmp_path / "config-alice" / "client.json"
    assert saved.stat().st_mode & 0o777 == 0o600
    remembered = json.loads(saved.read_text())
    pinned = saved.parent / "trusted" / f"localhost-{running_server.address[1]}.pem"
    assert pinned.read_bytes() == running_server.ca_file.read_bytes()  # a copy of --ca FILE
    trusted_on = remembered["trusted"][f"localhost:{running_server.address[1]}"]["trusted_on"]
    assert remembered == {
        "host": "localhost",
        "port": running_server.address[1],
        "user": "alice",
        "ca_file": str(pinned),
        "trusted": {
            f"localhost:{running_server.address[1]}": {
                "ca_file": str(pinned),
                "fingerprint": fingerprint(read_certificate(running_server.ca_file)),
                "trusted_on": trusted_on,
            }
        },
    }
    assert PASSWORD not in saved.read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECURECHAT_")}
    env.update(SECURECHAT_CONFIG_DIR=str(saved.parent), TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1")
    child = pexpect.spawn(
        sys.executable, ["-m", "securechat", "connect"], env=env, encoding="utf-8", cwd=tmp_path
    )
    try:
        again = Terminal(child)
        again.expect(rf"Password for alice on localhost:{running_server.address[1]}:")
        child.sendline(PASSWORD)
        again.expect(r"\[general\] alice>")
        child.sendcontrol("d")
        again.expect("bye")
        child.expect(pexpect.EOF, timeout=TIMEOUT)
    finally:
        child.terminate(force=True)
        child.close()
    assert child.exitstatus == 0


# What a running `securechat connect` still holds of its password, reported by a thread in the
# client's own process once the test creates the trigger file. It walks the main thread's
# stack (the frames that run the chat) and every object the garbage collector tracks,
# comparing with the password's bytes so that the watcher itself holds no copy as a str.
_PASSWORD_WATCHER = """
import gc, json, os, sys, threading, time
from pathlib import Path

SECRET = os.environb[b"SECURECHAT_PASSWORD"]
trigger, report = Path(sys.argv[1]), Path(sys.argv[2])
main_thread = threading.get_ident()

def is_secret(value):
    return type(value) is str and len(value) == len(SECRET) and value.encode() == SECRET

def holders():
    found = []
    frame = sys._current_frames()[main_thread]
    while frame is not None:
        names = [name for name, value in frame.f_locals.items() if is_secret(value)]
        found += [f"{frame.f_code.co_name}() local {name}" for name in names]
        frame = frame.f_back
    gc.collect()
    for holder in gc.get_objects():
        if any(is_secret(referent) for referent in gc.get_referents(holder)):
            found.append(type(holder).__qualname__)
    return found

def watch():
    while not trigger.exists():
        time.sleep(0.05)
    report.write_text(json.dumps(holders()))

threading.Thread(target=watch, daemon=True).start()
sys.argv = ["securechat", *sys.argv[3:]]
from securechat.cli import main
main()
"""


def test_connect_keeps_no_password_while_the_chat_runs(
    running_server: RunningServer, tmp_path: Path
) -> None:
    watcher, trigger, report = tmp_path / "watch.py", tmp_path / "go", tmp_path / "report.json"
    watcher.write_text(_PASSWORD_WATCHER)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECURECHAT_")}
    env.update(
        SECURECHAT_PASSWORD=PASSWORD, SECURECHAT_CONFIG_DIR=str(tmp_path / "config"),
        TERM="xterm", NO_COLOR="1", PROMPT_TOOLKIT_NO_CPR="1",
    )  # fmt: skip
    argv = [str(watcher), str(trigger), str(report), "connect", "localhost", "--user", "alice"]
    argv += ["--port", str(running_server.address[1]), "--ca", str(running_server.ca_file)]
    child = pexpect.spawn(
        sys.executable, argv, env=env, encoding="utf-8", dimensions=(30, 120), cwd=tmp_path
    )
    try:
        term = Terminal(child)
        term.expect(r"\[general\] alice>")
        trigger.touch()
        deadline = time.monotonic() + TIMEOUT
        while not report.exists() and time.monotonic() < deadline:
            term.settle(0.1)
        assert json.loads(report.read_text()) == []
        term.line("/quit")
        child.expect(pexpect.EOF, timeout=TIMEOUT)
    finally:
        child.terminate(force=True)
        child.close()
