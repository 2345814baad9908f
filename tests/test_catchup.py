"""The terminal's per-conversation memory (client/terminal/catchup.py): own messages and read markers."""

from __future__ import annotations

from securechat.client.terminal.catchup import OWN_KEPT, ReadState, key_of, key_of_message
from securechat.protocol.messages import Message


def _message(
    id: int, sender: str, *, room: str | None = "ops", to: str | None = None, deleted: bool = False
) -> Message:
    return Message(id=id, sender=sender, body="x", ts="", room=room, to=to, deleted=deleted or None)


def test_conversation_keys_are_the_servers() -> None:
    assert key_of("ops", None) == "r:ops"
    assert key_of(None, "carol") == "u:carol"
    assert key_of_message(_message(1, "carol", room=None, to="alice"), "alice") == "u:carol"
    assert key_of_message(_message(1, "alice", room=None, to="carol"), "alice") == "u:carol"


def test_read_state_finds_your_nth_last_message_per_conversation() -> None:
    state = ReadState("alice")
    state.note([_message(5, "alice"), _message(3, "alice"), _message(4, "bob")])
    state.note([_message(6, "alice", room=None, to="carol"), _message(5, "alice")])
    assert [state.own("r:ops", n) for n in (1, 2, 3, 0)] == [5, 3, None, None]
    assert state.own("u:carol", 1) == 6
    state.note([_message(5, "alice", deleted=True)])  # a tombstone in history
    assert state.own("r:ops", 1) == 3
    state.forget(3)  # deleted live
    assert state.own_count("r:ops") == 0


def test_read_state_keeps_only_the_newest_own_ids() -> None:
    state = ReadState("alice")
    state.note([_message(n, "alice") for n in range(1, OWN_KEPT + 11)])
    assert state.own_count("r:ops") == OWN_KEPT
    assert state.own("r:ops", OWN_KEPT) == 11


def test_read_markers_only_move_forward() -> None:
    state = ReadState("alice")
    assert state.marker("r:ops") == 0
    assert state.set_marker("r:ops", 7) is True
    assert state.set_marker("r:ops", 5) is False
    assert state.marker("r:ops") == 7
