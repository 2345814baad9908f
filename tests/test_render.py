"""Pure formatting for the terminal: escaping, local times, mentions, line styles."""

from __future__ import annotations

import datetime as dt

import pytest

from securechat.client.render import (
    conversation,
    escape,
    local_time,
    mentions,
    message_line,
    pending_line,
)
from securechat.protocol.messages import Message


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mred", "\\x1b[31mred"),
        ("bell\x07", "bell\\x07"),
        ("c1\x9bcsi", "c1\\x9bcsi"),
        ("del\x7f", "del\\x7f"),
        ("bidi\u202eevil", "bidi\\u202eevil"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("tab\there", "tab    here"),
        ("line\nbreak", "line\\x0abreak"),
        ("ünïcödé ✓ 日本語 🎉", "ünïcödé ✓ 日本語 🎉"),
    ],
)
def test_escape_makes_control_characters_visible(raw: str, shown: str) -> None:
    assert escape(raw) == shown


def test_escape_can_keep_newlines_for_message_bodies() -> None:
    assert escape("a\nb\r\x1b", keep_newlines=True) == "a\nb\\x0d\\x1b"


def test_local_time_converts_utc_to_local_and_adds_dates_when_needed() -> None:
    ts = "2026-03-01T09:30:00.123Z"
    moment = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC).astimezone()
    assert local_time(ts, now=moment) == moment.strftime("%H:%M")
    assert local_time(ts, now=moment + dt.timedelta(days=3)) == moment.strftime("%b %d %H:%M")
    assert local_time(ts, now=moment + dt.timedelta(days=400)) == moment.strftime("%Y-%m-%d %H:%M")
    assert local_time("garbage") == "??:??"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("hi alice", True),
        ("@Alice: look", True),
        ("alice, lunch?", True),
        ("malice aforethought", False),
        ("alice_b is here", False),
        ("alice.smith", True),
    ],
)
def test_mentions_match_the_name_as_a_word(body: str, expected: bool) -> None:
    assert mentions(body, "alice") is expected


def _message(
    sender: str, body: str, *, room: str | None = "general", to: str | None = None
) -> Message:
    return Message(id=1, sender=sender, body=body, ts="2026-03-01T09:30:00.000Z", room=room, to=to)


def _styles(line: object) -> dict[str, str]:
    return {text.strip(): style for style, text, *_ in line}  # type: ignore[attr-defined]


def test_message_lines_distinguish_own_mention_dm_and_plain() -> None:
    own = _styles(message_line(_message("alice", "mine"), "alice"))
    assert own["mine"] == "class:own"
    mention = _styles(message_line(_message("bob", "hey alice"), "alice"))
    assert mention["hey alice"] == "class:mention"
    plain = _styles(message_line(_message("bob", "hey all"), "alice"))
    assert plain["hey all"] == ""
    dm = _styles(message_line(_message("bob", "psst", room=None, to="alice"), "alice"))
    assert dm["psst"] == "class:dm"
    assert "(dm)" in dm
    sent_dm = _styles(message_line(_message("alice", "psst", room=None, to="bob"), "alice"))
    assert "(dm → bob)" in sent_dm


def test_message_line_escapes_names_and_indents_continuation_lines() -> None:
    line = message_line(_message("bob", "one\ntwo\x1b]0;title\x07"), "alice")
    text = "".join(fragment[1] for fragment in line)
    assert "\x1b" not in text
    assert "one\n      two\\x1b]0;title\\x07" in text


def test_conversation_names_the_room_or_the_other_person() -> None:
    assert conversation(_message("bob", "x"), "alice") == "#general"
    assert conversation(_message("bob", "x", room=None, to="alice"), "alice") == "@bob"
    assert conversation(_message("alice", "x", room=None, to="bob"), "alice") == "@bob"


def test_pending_line_is_marked_and_escaped() -> None:
    text = "".join(fragment[1] for fragment in pending_line("hi\x1b[2J", "#general"))
    assert text == "  … #general hi\\x1b[2J  (sending)"
