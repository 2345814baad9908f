"""The terminal client and room membership (#26) in a real pty against a real server:
"bob joined #dev" lines live and in /history, a burst of joins as one line, pending
invitations at start, and /members with roles."""

from __future__ import annotations

import re

from tests.conftest import RunningServer, StartTerminal, add_accounts
from tests.pty_terminal import Terminal


def _run(term: Terminal, command: str, answer: str) -> None:
    """Type ``command`` and wait for ``answer`` (a regex) after its echo."""
    term.line(command)
    term.expect(re.escape(command.split()[0]))
    term.expect(answer)


def test_joins_and_leaves_show_live_once_and_a_burst_as_one_line(
    running_server: RunningServer, terminal: StartTerminal
) -> None:
    alice = terminal(running_server, "alice")
    _run(alice, "/create dev", "created #dev")
    bob = running_server.login("bob")
    bob.ask("j", type="join", room="dev")
    alice.expect(r"bob joined #dev")
    bob.ask("l", type="leave", room="dev")
    alice.expect(r"bob left #dev")
    shown = alice.settle(0.5)
    assert "bob left #dev" not in shown  # once: member_left makes no second line
    burst = ["carol", "dave", "erin", "frank", "gina", "hal"]
    add_accounts(running_server.db_url, *burst[2:])
    for name in burst:
        running_server.login(name).ask("j", type="join", room="dev")
    for name in burst[:3]:  # the first lines of a run as they come...
        alice.expect(rf"{name} joined #dev")
    alice.expect(r"frank, gina and hal joined #dev")  # ...then one line for the rest
    # After a reload the stored timeline reads the same, each run as one line.
    again = terminal(running_server, "alice")
    _run(again, "/room dev", "now in #dev")
    _run(
        again,
        "/history",
        r"bob joined #dev\s.*bob left #dev\s.*carol, dave, erin and 3 others joined #dev",
    )
    assert "frank joined" not in again.text


def test_pending_invitations_show_at_start_and_in_rooms_and_members_show_roles(
    running_server: RunningServer, terminal: StartTerminal
) -> None:
    alice = running_server.login("alice")
    alice.ask("c", type="create", room="ops", private=True, topic="on call")
    alice.ask("i", type="moderate", room="ops", action="invite", user="bob")
    alice.ask("i2", type="moderate", room="ops", action="invite", user="carol")
    carol = running_server.login("carol")
    carol.ask("j", type="join", room="ops")
    alice.ask("m", type="moderate", room="ops", action="mute", user="carol")
    carol.close()
    bob = terminal(running_server, "bob")  # invited while away: the catch-up says so
    assert re.search(
        r"pending invitations \(1\):\n-- +#ops \(private\) \[on call\] from alice, [0-9:]+: /join ops",
        bob.text,
    )
    _run(bob, "/rooms", r"pending invitations \(1\):\s+-- +#ops \(private\)")
    _run(bob, "/members ops", "no room 'ops'")  # not a member yet: private
    _run(bob, "/join ops", r"joined #ops")
    _run(bob, "/members", r"members of #ops \(3\): alice \(owner\), bob, carol \(offline, muted\)")
    _run(bob, "/members general", r"members of #general \(3\): alice, bob, carol \(offline\)")


def test_here_and_room_ring_a_member_online_and_a_plain_members_is_refused(
    running_server: RunningServer, terminal: StartTerminal
) -> None:
    alice = terminal(running_server, "alice")
    _run(alice, "/create ops", "created #ops")
    bob = terminal(running_server, "bob")
    _run(bob, "/join ops", r"joined #ops")
    _run(bob, "/room general", r"\[general\] bob>")  # looking elsewhere
    bob.settle(0.3)
    rings = bob.raw.count("\x07")
    _run(alice, "/room ops", r"\[ops\] alice>")
    alice.line("@here standup in 5")
    bob.expect("#ops alice: @here standup in 5")
    bob.settle(0.3)
    assert bob.raw.count("\x07") == rings + 1  # reached: online at the send
    _run(bob, "/room ops", r"\[ops\] bob>")
    bob.line("@room lunch?")
    bob.expect(r"not delivered to #ops: only moderators of #ops can mention @room or @here")
