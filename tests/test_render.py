"""Pure formatting for the terminal: escaping, local times, mentions, line styles."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prompt_toolkit.formatted_text import FormattedText

from securechat.client.terminal.markdown import body_lines
from securechat.client.terminal.render import (
    QUOTE_MAX,
    change_line,
    conversation,
    escape,
    is_mentioned,
    local_time,
    mentions,
    message_line,
    pending_line,
    presence_changes,
    presence_text,
    quote,
    room_event_text,
    unread_summary,
)
from securechat.protocol.messages import (
    Conversation,
    Deleted,
    Edited,
    Message,
    Ping,
    Presence,
    PresenceBatch,
    RoomEvent,
)


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


def _styles(line: FormattedText) -> dict[str, str]:
    return {text.strip(): style for style, text, *_ in line}


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


def _text(line: FormattedText) -> str:
    return "".join(fragment[1] for fragment in line)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("@alice look", True),
        ("ping @Alice.", True),
        ("hi alice", False),  # highlighted (mentions), but not a mention: no bell
        ("@alice_b here", False),
        ("mail@alice", False),
    ],
)
def test_is_mentioned_needs_the_at_sign_as_the_server_does(body: str, expected: bool) -> None:
    assert is_mentioned(body, "alice") is expected


def test_edited_and_deleted_messages_are_marked() -> None:
    edited = dataclasses.replace(_message("bob", "fixed"), edited="2026-03-01T09:31:00.000Z")
    assert _text(message_line(edited, "alice")).endswith("bob: fixed (edited)")
    gone = dataclasses.replace(_message("bob", ""), deleted=True, edited="x")
    line = message_line(gone, "alice")
    assert _text(line).endswith("bob: message deleted")
    assert _styles(line)["message deleted"] == "class:system"


@pytest.mark.parametrize(
    ("action", "user", "topic", "shown"),
    [
        ("kick", "carol", None, "bob kicked carol from #ops"),
        ("ban", "alice", None, "bob banned you from #ops"),
        ("invite", "alice", None, "bob invited you to #ops: /join ops to enter"),
        ("invite", "carol", None, "bob invited carol to #ops"),
        ("op", "carol", None, "bob made carol a moderator of #ops"),
        ("private", None, None, "#ops is now private (invitation only), by bob"),
        ("topic", None, "deploys\x1b at 17", "topic of #ops: deploys\\x1b at 17 (set by bob)"),
        ("topic", None, "", "bob cleared the topic of #ops"),
        ("create", None, "on call", "bob created #ops (topic: on call)"),
        ("rename", None, None, "bob did 'rename' in #ops"),  # an action a newer server may add
    ],
)
def test_room_events_read_as_sentences(
    action: str, user: str | None, topic: str | None, shown: str
) -> None:
    event = RoomEvent(id=9, room="ops", action=action, actor="bob", ts="", user=user, topic=topic)
    assert room_event_text(event, "alice") == shown


@pytest.mark.parametrize(
    ("action", "shown"),
    [
        ("{nope}", "bob did '{nope}' in #ops"),
        ("{actor.__class__.__mro__}", "bob did '{actor.__class__.__mro__}' in #ops"),
        ("{0}{}", "bob did '{0}{}' in #ops"),
        ("%s{user!r:>99}", "bob did '%s{user!r:>99}' in #ops"),
        ("x\x1b[2J{", "bob did 'x\\x1b[2J{' in #ops"),
    ],
)
def test_room_event_actions_from_the_server_are_shown_as_plain_text(
    action: str, shown: str
) -> None:
    event = RoomEvent(id=9, room="ops", action=action, actor="bob", ts="", user="carol")
    assert room_event_text(event, "alice") == shown


def test_room_event_fields_from_the_server_are_never_templates() -> None:
    event = RoomEvent(
        id=9, room="{room}", action="kick", actor="{user}", ts="", user="{actor.__class__}"
    )
    assert room_event_text(event, "alice") == "{user} kicked {actor.__class__} from #{room}"


def test_unread_summary_counts_mentions_and_the_cap() -> None:
    found = [
        Conversation(key="r:ops", count=3, mentions=1, last_read=5, room="ops"),
        Conversation(key="u:carol", count=1, mentions=0, last_read=0, peer="carol"),
        Conversation(key="u:dave", count=1000, mentions=2, last_read=0, peer="dave"),
    ]
    assert unread_summary(found, 1000) == (
        "3 unread in #ops (1 mention), 1 in @carol, 1000+ in @dave (2 mentions)"
    )
    assert unread_summary([], 1000) is None


def test_pending_line_is_marked_and_escaped() -> None:
    text = "".join(fragment[1] for fragment in pending_line("hi\x1b[2J", "#general"))
    assert text == "  … #general hi\\x1b[2J  (sending)"


# --- the escape rule over every code point ---------------------------------------------

#: Categories a terminal obeys or draws as nothing; see securechat/client/escaping.py.
UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}
HANGUL_FILLERS = "\u115f\u1160\u3164\uffa0"
JOINERS = "\u200c\u200d"


def _every(wanted: Callable[[str], bool]) -> list[str]:
    return [c for c in map(chr, range(sys.maxunicode + 1)) if wanted(c)]


def test_escape_shows_every_control_format_and_separator_character() -> None:
    unsafe = [*_every(lambda c: unicodedata.category(c) in UNSAFE_CATEGORIES), *HANGUL_FILLERS]
    assert {"\u061c", "\u2028", "\u2029", "\u00ad", "\u180e", "\ufff9", "\U000e0041"} <= set(unsafe)
    for char in unsafe:
        for text in (char,) if char in JOINERS else (char, f"a{char}b", f"{char}{char}"):
            shown = escape(text)
            assert char not in shown, f"U+{ord(char):04X} in {text!r} was not escaped"
            assert shown.isprintable() or char == "\t", f"{shown!r}"


def test_escape_leaves_every_other_character_alone() -> None:
    other = "".join(
        _every(
            lambda c: unicodedata.category(c) not in UNSAFE_CATEGORIES and c not in HANGUL_FILLERS
        )
    )
    assert escape(other) == other


@pytest.mark.parametrize(
    "text",
    [
        "ünïcödé, Ελληνικά, русский, עברית, العربية, 日本語, 한국어 ✓",
        "e\u0301 (a combining accent)",
        "emoji 🎉👍🏽 and ZWJ sequences 👩\u200d💻 👨\u200d👩\u200d👧 ❤\ufe0f\u200d🔥 🏳\ufe0f\u200d🌈",
        "Persian keeps its ZWNJ: می\u200cخواهم",  # noqa: RUF001
        "Devanagari keeps its ZWJ: क्\u200dष",
    ],
)
def test_escape_keeps_ordinary_text_and_joiners_between_visible_characters(text: str) -> None:
    assert escape(text) == text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\u200d", "\\u200d"),
        ("a\u200d", "a\\u200d"),
        ("\u200cb", "\\u200cb"),
        ("a \u200d b", "a \\u200d b"),
        ("a\u200d\u200db", "a\\u200d\\u200db"),
        ("a\u200d\x1b", "a\\u200d\\x1b"),
        ("tag \U000e0041\U000e007f", "tag \\U000e0041\\U000e007f"),
        ("soft\u00adhyphen", "soft\\xadhyphen"),
        ("line\u2028sep", "line\\u2028sep"),
    ],
)
def test_escape_shows_joiners_out_of_context_and_astral_escapes_unambiguously(
    raw: str, shown: str
) -> None:
    assert escape(raw) == shown


def test_escape_is_idempotent() -> None:
    text = "a\u200d\x1b[2J\u202e\n\t👩\u200d💻\U000e0041\u3164"
    assert escape(escape(text)) == escape(text)


# --- message bodies: the page's markdown subset (securechat/web/markdown.js) ---------------


def _lines(body: str, style: str = "") -> list[str]:
    return ["".join(text for _, text, *_ in line) for line in body_lines(body, style)]


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ("plain words, no markup", ["plain words, no markup"]),
        ("one\ntwo", ["one", "two"]),
        ("**bold** *italic* ~~struck~~ `code`", ["bold italic struck code"]),
        ("[docs](https://example.com/a?b=1)", ["docs <https://example.com/a?b=1>"]),
        ("<https://example.com>", ["https://example.com"]),  # text and URL alike: once
        ("[mail me](mailto:bob@example.com)", ["mail me <mailto:bob@example.com>"]),
        ("[x](javascript:alert(1))", ["[x](javascript:alert(1))"]),  # never a link
        ("[rel](/etc/passwd) [ftp](ftp://h/f)", ["rel ftp"]),  # not shown as URLs
        ("> quoted\n> on", ["> quoted", "> on"]),
        ("- a\n- b", ["• a", "• b"]),
        ("3. c\n4. d", ["3. c", "4. d"]),
        ("- item\n  more", ["• item", "  more"]),
        ("```py\nif x:\n    y()\n```", ["  if x:", "      y()"]),
        ("see:\n```\ncode\n```\nafter", ["see:", "  code", "after"]),
        ("<b>raw html</b> &amp;", ["<b>raw html</b> &amp;"]),  # raw HTML and entities off
        ("# not a heading\n| a | b |", ["# not a heading", "| a | b |"]),
        ("\\*not italic\\*", ["*not italic*"]),
        ("", [""]),
    ],
)
def test_bodies_render_the_pages_commonmark_subset(body: str, shown: list[str]) -> None:
    assert _lines(body) == shown


def test_markup_becomes_styles_on_top_of_the_lines_own_style() -> None:
    line = body_lines("**b** *i* `c` [l](https://x.test)", "class:mention")[0]
    styles = {text: style for style, text, *_ in line}
    assert styles["b"] == "class:mention bold"
    assert styles["i"] == "class:mention italic"
    assert styles["c"] == "class:mention class:md.code"
    assert styles["l"] == "class:mention class:md.link"
    assert styles[" <https://x.test>"] == "class:mention class:md.url"


@pytest.mark.parametrize(
    "body",
    [
        "`\x1b[2J`", "**\x1b]0;t\x07**", "[\u202e](https://x.test/\x1b)", "> \x9b31m",
        "```\n\x1b[31m\n```", "a\rb\x00c", "- \u200b",
    ],
)  # fmt: skip
def test_control_characters_stay_escaped_inside_markup(body: str) -> None:
    text = "\n".join(_lines(body))
    assert escape(text, keep_newlines=True) == text  # nothing left to escape
    assert "\\x" in text or "\\u" in text  # and shown, not dropped


@given(st.text(max_size=80))
def test_no_body_renders_anything_a_terminal_would_obey(body: str) -> None:
    text = "\n".join(_lines(body))
    assert escape(text, keep_newlines=True) == text


def test_message_line_keeps_its_shape_with_markdown_bodies() -> None:
    line = message_line(_message("bob", "**look**\n- one\n- two"), "alice")
    assert _text(line).endswith("#general bob: look\n      • one\n      • two")
    edited = dataclasses.replace(_message("bob", "`x`"), edited="2026-03-01T09:31:00.000Z")
    assert _text(message_line(edited, "alice")).endswith("bob: x (edited)")


# --- edit and deletion notices name the message they change -------------------------------


def _edited(body: str, *, sender: str = "bob", room: str | None = "general") -> Edited:
    to = None if room else "alice"
    return Edited(id=9, target=1, sender=sender, body=body, ts="2026-03-01T09:31:00.000Z",
                  room=room, to=to)  # fmt: skip


def _deleted(by: str, *, room: str | None = "general") -> Deleted:
    return Deleted(id=9, target=1, by=by, ts="2026-03-01T09:31:00.000Z", room=room,
                   to=None if room else "alice")  # fmt: skip


@pytest.mark.parametrize(
    ("event", "before", "shown"),
    [
        (_edited("lunch at 1"), ("bob", "lunch at 12"), '#general bob edited "lunch at 12" → "lunch at 1"'),
        (_edited("lunch at 1"), None, '#general bob edited a message: "lunch at 1"'),
        (_edited("ok", sender="alice"), ("alice", "okk"), '#general you edited "okk" → "ok"'),
        (_edited("psst!", room=None), ("bob", "psst"), '(dm) bob edited "psst" → "psst!"'),
        (_deleted("bob"), ("bob", "lunch at 1"), '#general bob deleted their message "lunch at 1"'),
        (_deleted("carol"), ("bob", "spam"), "#general carol deleted bob's message \"spam\""),
        (_deleted("carol"), ("alice", "oops"), '#general carol deleted your message "oops"'),
        (_deleted("alice"), ("alice", "oops"), '#general you deleted your message "oops"'),
        (_deleted("alice"), ("bob", "spam"), "#general you deleted bob's message \"spam\""),
        (_deleted("bob"), None, "#general bob deleted a message"),
    ],
)  # fmt: skip
def test_edit_and_delete_notices_name_the_message(
    event: Edited | Deleted, before: tuple[str, str] | None, shown: str
) -> None:
    time, *rest = change_line(event, before, "alice")
    assert time[0] == "class:time"
    assert _text(FormattedText(rest)) == shown


def test_quoted_messages_are_one_short_escaped_line() -> None:
    assert quote("two\n  lines") == '"two lines"'
    long = quote("word " * 40)
    assert len(long) == QUOTE_MAX + 2
    assert long.endswith('…"')
    assert quote("bad\x1b[2J") == '"bad\\x1b[2J"'
    line = _text(change_line(_deleted("carol"), ("b\u202eob", "old\x1b]0;t\x07"), "alice"))
    assert line.endswith('carol deleted b\\u202eob\'s message "old\\x1b]0;t\\x07"')


def test_presence_text_names_a_few_and_counts_the_rest() -> None:
    assert presence_text(["bob"], []) == "bob is online"
    assert presence_text(["bob", "carol"], ["dave"]) == "bob and carol are online; dave is offline"
    many = [f"u{i}" for i in range(42)]
    assert presence_text(many, []) == "u0, u1, u2, u3, u4 and 37 others are online"
    assert presence_text([], many[:6]) == "u0, u1, u2, u3, u4 and 1 other are offline"
    assert presence_text([], []) is None
    assert presence_text(["\x1b[2Jx"], []) == "\\x1b[2Jx is online"


def test_presence_changes_leave_out_this_user_and_read_the_old_single_event() -> None:
    batch = PresenceBatch(online=("alice", "bob"), offline=("carol",))
    assert presence_changes(batch, me="alice") == (["bob"], ["carol"])
    assert presence_changes(Presence(user="bob", online=False), me="alice") == ([], ["bob"])
    assert presence_changes(Ping(), me="alice") is None
