"""The terminal client's notices from #26, in a real pty against a real server: where the
next line goes after a kick, a wrong password asked again, the login backlog's heading,
and message bodies rendered as the page renders them."""

from __future__ import annotations

import re

import pexpect

from securechat.client import Client
from tests.conftest import PASSWORD, TIMEOUT, RunningServer, StartTerminal
from tests.pty_terminal import Terminal


def _run(term: Terminal, command: str, answer: str) -> None:
    """Type ``command`` and wait for ``answer`` (a regex) after its echo."""
    term.line(command)
    term.expect(re.escape(command.split()[0]))
    term.expect(answer)


def test_after_a_kick_the_next_line_goes_nowhere_and_the_prompt_says_so(
    running_server: RunningServer, terminal: StartTerminal
) -> None:
    alice, bob = terminal(running_server, "alice"), terminal(running_server, "bob")
    _run(alice, "/create ops", "created #ops")
    _run(bob, "/join ops", r"joined #ops")
    bob.expect(r"\[ops\] bob>")
    _run(alice, "/kick bob", "you kicked bob from #ops")
    bob.expect("alice kicked you from #ops")
    bob.line("the plan for the reorg")  # typed at once, before reading the notice
    bob.expect(
        r"you are no longer in #ops and in no room now: nothing you type is sent until you "
        r"choose where \(/room general, /join ROOM or /query USER\)"
    )
    bob.expect(r"\[no room\] bob>")
    bob.expect(  # refused here, or (typed before the notice) by the server for #ops
        r"not sent, you are in no room: .*\(your text: the plan for the reorg\)"
        r"|not delivered to #ops: .*\(your text: the plan for the reorg\)"
    )
    _run(bob, "/room general", r"\[general\] bob>")
    bob.line("hello all")
    alice.expect("#general bob: hello all")  # sent after the first line: it would be earlier
    assert "the plan for the reorg" not in alice.text


def test_when_the_current_room_is_deleted_no_other_room_takes_its_place(
    running_server: RunningServer, terminal: StartTerminal
) -> None:
    with Client(
        "localhost", running_server.address[1], ca_file=running_server.ca_file, user="alice",
        password=PASSWORD, timeout=TIMEOUT,
    ) as alice:  # fmt: skip
        alice.create("ops")
        alice.create("lab")
        bob = terminal(running_server, "bob")
        _run(bob, "/join lab", r"joined #lab")
        _run(bob, "/join ops", r"joined #ops")
        bob.expect(r"\[ops\] bob>")
        alice.delete_room("lab")  # not the current room: said, and nothing moves
        bob.expect("alice deleted #lab")
        bob.expect(r"you are no longer in #lab\n")
        bob.expect(r"\[ops\] bob>")
        alice.delete_room("ops")
        bob.expect("alice deleted #ops")
        bob.expect(r"you are no longer in #ops and in no room now: .*\(/room general, ")
        bob.expect(r"\[no room\] bob>")
        bob.line("still there?")
        bob.expect(r"not sent, you are in no room: .*\(your text: still there\?\)")


def test_a_wrong_password_is_asked_again_up_to_three_times(
    running_server: RunningServer, terminal: StartTerminal
) -> None:
    alice = terminal(running_server, "alice", at_password_prompt=True)
    for left in (2, 1):
        alice.expect(r"Password for alice on \S+: ")
        alice.line("not the password")
        alice.expect(rf"wrong user name or password for 'alice' .*: try again \({left} left\)")
    alice.expect(r"Password for alice on \S+: ")
    alice.line(PASSWORD)
    alice.expect(r"\[general\] alice>")

    bob = terminal(running_server, "bob", at_password_prompt=True)
    for _ in range(3):
        bob.expect(r"Password for bob on \S+: ")
        bob.line("wrong again")
    bob.expect(r"error: wrong user name or password for 'bob'")
    bob.child.expect(pexpect.EOF, timeout=TIMEOUT)
    bob.child.close()
    assert bob.child.exitstatus not in (0, None)
    assert bob.text.count("Password for bob") == 3


def test_the_login_backlog_sits_between_a_heading_and_a_closing_rule(
    running_server: RunningServer, terminal: StartTerminal
) -> None:
    carol = running_server.login("carol")
    carol.send(type="send", room="general", body="standup moved to 10:15", ref="s")
    carol.expect("ack")
    carol.send(type="send", to="dave", body="welcome @dave", ref="d")
    carol.expect("ack")

    dave = terminal(running_server, "dave")

    backlog = re.search(
        r"(?s)── catch-up: what you missed while away ──(.*)── end of catch-up; what arrives "
        r"now shows below ──",
        dave.text,  # all shown before the prompt, which the fixture waited for
    )
    assert backlog is not None, dave.text
    assert "the last messages in #general, read already:" in backlog.group(1)
    assert "(dm) carol: welcome @dave" in backlog.group(1)
    assert "#general carol: standup moved to 10:15" in backlog.group(1)
    carol.send(type="send", room="general", body="and now live", ref="l")
    carol.expect("ack")
    dave.expect("#general carol: and now live")  # after the rule


def test_message_bodies_render_the_pages_markdown_subset_as_text(
    running_server: RunningServer, terminal: StartTerminal
) -> None:
    alice = terminal(running_server, "alice")
    bob = running_server.login("bob")
    body = (
        "see **this** and `make lint` in [the guide](https://example.com/guide), "
        "not [that](javascript:alert(1))\n> quoted\n- one\n- two\n```\nx = 1\n```\n<b>raw</b>\x1b[2J"
    )
    bob.send(type="send", room="general", body=body, ref="m")
    bob.expect("ack")
    shown = alice.expect(r"(?s)#general bob: see .*?raw</b>\S*").group(0)
    assert shown.splitlines() == [
        "#general bob: see this and make lint in the guide <https://example.com/guide>, "
        "not [that](javascript:alert(1))",
        "      > quoted",
        "      • one",
        "      • two",
        "        x = 1",
        "      <b>raw</b>\\x1b[2J",
    ]
