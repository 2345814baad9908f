"""A burst of joins in the terminal (#26): a stored page groups each run of like room
events into one line; live, a run prints its first lines and one line for the rest."""

from __future__ import annotations

from securechat.client.terminal.runs import LIVE_LINES, LiveRuns, names_text, page_lines
from securechat.protocol.messages import Message, RoomEvent


def _event(action: str, user: str, *, actor: str | None = None, room: str = "dev") -> RoomEvent:
    return RoomEvent(id=1, room=room, action=action, actor=actor or user, ts="", user=user)


def test_names_text_names_three_then_counts_the_others() -> None:
    assert names_text(["bob"], "alice") == "bob"
    assert names_text(["bob", "alice"], "alice") == "bob and you"
    assert names_text(["bob", "carol", "dave"], "alice") == "bob, carol and dave"
    assert (
        names_text(["bob", "carol", "dave", "erin", "bob"], "x") == "bob, carol, dave and 1 other"
    )
    assert names_text(["b", "c", "d", "e", "f"], "x") == "b, c, d and 2 others"
    assert names_text(["\x1b[2Jbob"], "x") == "\\x1b[2Jbob"  # escaped like every remote name


def test_a_page_groups_each_run_and_keeps_messages_between_them() -> None:
    message = Message(id=5, sender="bob", body="hi", ts="", room="dev")
    items: list[Message | RoomEvent] = [
        *(_event("join", name) for name in ("b", "c", "d", "e", "f")), message,
        _event("join", "g"), _event("leave", "b"), _event("leave", "c"),
        _event("invite", "h", actor="directory"), _event("invite", "i", actor="directory"),
        _event("invite", "j", actor="carol"), _event("topic", "b"),
    ]  # fmt: skip
    assert list(page_lines(items, "alice")) == [
        "b, c, d and 2 others joined #dev", message, "g joined #dev", "b and c left #dev",
        "directory invited h and i to #dev", "carol invited j to #dev", "b cleared the topic of #dev",
    ]  # fmt: skip


def test_live_runs_print_the_first_lines_then_one_for_the_rest() -> None:
    runs = LiveRuns("alice")
    printed = [line for name in "bcdefgh" for line in runs.lines(_event("join", name))]
    assert printed == [f"{name} joined #dev" for name in "bcd"][:LIVE_LINES]
    assert runs.end() == ["e, f, g and 1 other joined #dev"]
    assert runs.end() == []
    # Another kind of event ends the run: its held line comes first.
    for name in "bcde":
        runs.lines(_event("join", name))
    assert runs.lines(_event("leave", "b")) == ["e joined #dev", "b left #dev"]
    # Each room has its own run.
    for name in "bcdef":
        runs.lines(_event("join", name))
        runs.lines(_event("join", name, room="general"))
    assert runs.end("dev") == ["e and f joined #dev"]
    assert runs.end() == ["e and f joined #general"]
