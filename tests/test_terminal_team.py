"""The terminal client's #16 features in a real pty against a real server: the catch-up at
login, the moderation commands, /edit and /delete, and the bell."""

from __future__ import annotations

import re

from securechat.client import Client
from tests.conftest import PASSWORD, TIMEOUT, RunningServer, StartTerminal
from tests.eventually import eventually
from tests.pty_terminal import Terminal


def _other_device(server: RunningServer, user: str) -> Client:
    return Client(
        "localhost", server.address[1], ca_file=server.ca_file, user=user, password=PASSWORD,
        timeout=TIMEOUT,
    ).connect()  # fmt: skip


def _run(term: Terminal, command: str, answer: str) -> None:
    """Type ``command`` and wait for ``answer`` (a regex) after its echo."""
    term.line(command)
    term.expect(command.split()[0])
    term.expect(answer)


def test_login_shows_the_unread_summary_and_the_missed_direct_messages(
    running_server: RunningServer, terminal: StartTerminal
) -> None:
    bob, carol = running_server.login("bob"), running_server.login("carol")
    for n in range(1, 26):
        bob.send(type="send", to="dave", body=f"note {n}", ref=f"n{n}")
        bob.expect("ack")
    carol.send(type="send", to="dave", body="welcome aboard @dave", ref="w")
    carol.expect("ack")

    dave = terminal(running_server, "dave")  # his first login ever

    text = dave.text
    assert "25 unread in @bob, 1 in @carol (1 mention)" in text
    assert "… 5 earlier unread not shown: /query bob, then /history 25 shows them" in text
    assert "bob: note 5\n" not in text
    assert "bob: note 6" in text
    assert "bob: note 25" in text
    assert "unread in @carol (1, 1 mentioning you):" in text
    assert "(dm) carol: welcome aboard @dave" in text
    with _other_device(running_server, "dave") as laptop:  # what was shown is read there too
        eventually(lambda: laptop.unread() == (), "the laptop has nothing unread", interval=0.1)
    dave.line("/query carol")
    dave.expect(r"\[@carol\] dave>")
    assert "unread in @carol" not in dave.settle(0.3)  # read already, so not shown again


def test_entering_a_room_shows_what_is_unread_there_and_marks_it_read(
    running_server: RunningServer, terminal: StartTerminal
) -> None:
    alice = terminal(running_server, "alice")
    _run(alice, "/create ops", "created #ops; you own it and are in it")
    _run(alice, "/room general", r"now in #general")
    carol = running_server.login("carol")
    carol.send(type="join", room="ops", ref="j")
    carol.expect("joined")
    carol.send(type="send", room="ops", body="@alice the deploy is red", ref="s")
    carol.expect("ack")
    alice.expect(r"#ops carol: @alice the deploy is red")
    alice.line("/room ops")
    alice.expect(r"unread in #ops \(1, 1 mentioning you\):")
    alice.expect(r"#ops carol: @alice the deploy is red")
    with _other_device(running_server, "alice") as phone:
        eventually(lambda: phone.unread() == (), "the phone has nothing unread", interval=0.1)
        _run(alice, "/room general", "now in #general")
        carol.send(type="send", room="ops", body="fixed it", ref="s2")
        fixed = carol.expect("ack")["id"]
        alice.expect("#ops carol: fixed it")
        assert [c.count for c in phone.unread()] == [1]
        phone.mark_read(fixed, room="ops")  # read on the phone...
    _run(alice, "/room ops", "now in #ops")
    assert "unread in #ops" not in alice.settle(0.5)  # ...so not shown as unread here


def test_moderation_commands_act_on_the_current_room_and_on_live_sessions(
    running_server: RunningServer, terminal: StartTerminal
) -> None:
    alice, bob = terminal(running_server, "alice"), terminal(running_server, "bob")
    bob.line("/help")
    for usage in ("/create ROOM [private]", "/invite USER", "/ban USER", "/unmute USER"):
        bob.expect(re.escape(usage))
    for usage in ("/deop USER", "/topic [TEXT]", "/public", "/edit [N] TEXT", "/delete [N]"):
        bob.expect(re.escape(usage))
    private = r"created #ops, a private room \(invitation only: /invite USER\)"
    _run(alice, "/create ops private", private)
    _run(alice, "/create ops", r"#ops exists already: /join ops, or another name")
    _run(bob, "/join ops", r"there is no room #ops you can join")  # private: as if it did not exist
    _run(alice, "/invite bob", "you invited bob to #ops")
    bob.expect("alice invited you to #ops: /join ops to enter")
    _run(bob, "/join ops", r"joined #ops: 2 member\(s\)")
    bob.expect(r"\[ops\] bob>")
    _run(bob, "/kick alice", "only moderators of #ops can kick")
    _run(bob, "/private", "only the owner of #ops can make it private")
    _run(alice, "/invite zed", "cannot invite zed: there is no such user")
    _run(alice, "/kick carol", "cannot kick carol: they are not in #ops")
    _run(alice, "/topic deploys at 17:00", "topic of #ops: deploys at 17:00 \\(set by you\\)")
    bob.expect(r"topic of #ops: deploys at 17:00 \(set by alice\)")
    _run(bob, "/topic", "topic of #ops: deploys at 17:00")

    _run(alice, "/mute bob", "you muted bob in #ops")
    bob.expect("alice muted you in #ops")
    bob.line("can I still talk")
    bob.expect(r"not delivered to #ops: you are muted in #ops")
    _run(alice, "/unmute bob", "you unmuted bob in #ops")
    bob.expect("alice unmuted you in #ops")
    _run(alice, "/op bob", "you made bob a moderator of #ops")
    _run(bob, "/op carol", "only the owner of #ops can name moderators")
    _run(bob, "/kick alice", "moderators cannot kick the owner of #ops")
    _run(alice, "/deop bob", "you made bob a plain member of #ops")

    alice.type("/ki\t")  # Tab completes the command, then the user
    alice.type(" bo\t")
    alice.line("")
    alice.expect("» /kick bob")
    alice.expect("you kicked bob from #ops")
    bob.expect("alice kicked you from #ops")
    bob.expect(r"you are no longer in #ops and in no room now: nothing you type is sent")
    bob.expect(r"\[no room\] bob>")
    _run(bob, "/room general", r"\[general\] bob>")
    _run(alice, "/invite bob", "you invited bob to #ops")
    _run(bob, "/join ops", r"joined #ops")
    _run(alice, "/ban bob", "you banned bob from #ops")
    bob.expect("alice banned you from #ops")
    bob.expect(r"you are no longer in #ops and in no room now")
    _run(alice, "/invite bob", "bob is banned from #ops; unban them first")
    _run(alice, "/unban bob", "you unbanned bob in #ops")
    _run(alice, "/public", r"#ops is now public, by you")
    _run(bob, "/join ops", r"joined #ops")
    _run(bob, "/query alice", r"\[@alice\] bob>")
    _run(bob, "/kick alice", r"/kick needs a room: /room NAME first")
    _run(bob, "/topic x", r"/topic needs a room: /room NAME first")
    for line in ("you kicked bob from #ops", "topic of #ops: deploys at 17:00 (set by you)"):
        assert alice.text.count(line) == 1  # the room's copy of our own action is not repeated


def test_edit_and_delete_reach_the_other_screen_and_history(
    running_server: RunningServer, terminal: StartTerminal
) -> None:
    earlier = running_server.login("alice")  # sent before this terminal existed
    earlier.send(type="send", room="general", body="helo wrld", ref="h")
    earlier.expect("ack")
    alice, bob = terminal(running_server, "alice"), terminal(running_server, "bob")
    alice.line("second thought")
    bob.expect("alice: second thought")
    _run(alice, "/edit 2 hello world", '#general you edited "helo wrld" → "hello world"')
    bob.expect('#general alice edited "helo wrld" → "hello world"')
    _run(alice, "/delete", '#general you deleted your message "second thought"')
    bob.expect('#general alice deleted their message "second thought"')
    _run(alice, "/edit hello, world", 'you edited "hello world" → "hello, world"')  # now the last
    bob.expect('alice edited "hello world" → "hello, world"')
    _run(alice, "/delete 9", "fewer than 9 messages of yours to delete in #general")
    _run(bob, "/edit oops", "no message of yours to edit in #general")
    _run(bob, "/edit 2", r"usage: /edit \[N\] TEXT")
    _run(bob, "/delete x", r"usage: /delete \[N\]")
    _run(bob, "/history 3", r"last 2 message\(s\) and 1 room event\(s\) in #general:")
    bob.expect(r"alice: hello, world \(edited\)")
    bob.expect("you joined #general")
    bob.expect("alice: message deleted")
    bob.expect("end of history")


def test_bell_rings_for_a_mention_or_message_elsewhere_but_not_here(
    running_server: RunningServer, terminal: StartTerminal
) -> None:
    alice, bob = terminal(running_server, "alice"), terminal(running_server, "bob")
    bob.settle(0.3)
    rings = bob.raw.count("\x07")
    alice.line("/msg bob are you there")
    bob.expect(r"\(dm\) alice: are you there")
    bob.settle(0.3)
    assert bob.raw.count("\x07") == rings + 1  # a DM while bob looks at #general
    _run(bob, "/query alice", r"\[@alice\] bob>")
    alice.line("/msg bob now you see me")
    bob.expect(r"\(dm\) alice: now you see me")
    alice.line("/room general")
    alice.line("just chatting in general")
    bob.expect("alice: just chatting in general")
    bob.settle(0.3)
    assert bob.raw.count("\x07") == rings + 1  # here, and no mention: no bell
    alice.line("@bob please look")
    bob.expect("alice: @bob please look")
    bob.settle(0.3)
    assert bob.raw.count("\x07") == rings + 2  # a mention in #general while bob is in @alice
    _run(bob, "/room general", r"\[general\] bob>")
    alice.line("thanks @bob")
    bob.expect("alice: thanks @bob")
    bob.settle(0.3)
    assert bob.raw.count("\x07") == rings + 2  # a mention where bob looks: shown, no bell


def test_rooms_lists_the_servers_conversations_and_tab_knows_everyone(
    running_server: RunningServer, terminal: StartTerminal
) -> None:
    """#26: /rooms shows every conversation the server holds (a DM from before this device
    included), then the rooms to join; Tab completes users never seen in this session."""
    bob = running_server.login("bob")
    bob.ask("c", type="create", room="ops", topic="on call")
    bob.send(type="send", to="dave", body="welcome", ref="w")
    bob.expect("ack", ref="w")

    dave = terminal(running_server, "dave")
    dave.line("/rooms")
    dave.expect(r"your conversations \(2\):")
    dave.expect(r"#general")
    dave.expect(r"@bob  1 unread|@bob  last")  # shown at login, so maybe read already
    dave.expect(r"other rooms \(1\), /join ROOM to enter:")
    dave.expect(r"#ops  1 member\(s\)  on call")
    dave.type("/msg ca\t")  # carol never logged in, never spoke, and is not online
    dave.line(" hello")
    dave.expect(r"» /msg carol hello")
    dave.line("/join nowhere")  # not made silently, ownerless
    dave.expect(r"there is no room #nowhere you can join .*/create nowhere makes it")
    dave.line("/join ops")
    dave.line("/history")  # the room's events are part of its history
    dave.expect(r"bob created #ops \(topic: on call\)")
