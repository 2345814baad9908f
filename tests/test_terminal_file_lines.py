"""Shared files on the terminal, the pure parts: a message's files shown once each, hostile
names shown harmlessly, the progress line, cancelling, and the /upload argument."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from securechat.client.events import SendFailed
from securechat.client.terminal.commands import UserCompleter
from securechat.client.terminal.file_commands import split_path
from securechat.client.terminal.file_transfers import Transfer, TransferCancelled, progress_line
from securechat.client.terminal.render import (
    file_line,
    message_line,
    send_failed_text,
    split_files,
)
from securechat.client.terminal.screen import Screen
from securechat.protocol.files import Attachment
from securechat.protocol.messages import Message

TS = "2026-12-07T10:00:00.000Z"
REPORT = Attachment(id="a" * 26, name="report.pdf", size=1_258_291, type="application/pdf")
LOG = Attachment(id="b" * 26, name="db1.log", size=300, type="text/plain")


def _text(message: Message) -> str:
    return "".join(fragment[1] for fragment in message_line(message, "bob"))


def _server_body(caption: str, *files: Attachment) -> str:
    """What the server sends older clients (docs/protocol.md "Files")."""
    lines = [file_line(f) for f in files]
    return "\n".join([caption, *lines] if caption else lines)


def test_each_file_shows_once_after_its_caption() -> None:
    body = _server_body("the report and the log", REPORT, LOG)
    message = Message(id=1, sender="alice", body=body, ts=TS, room="general", files=(REPORT, LOG))
    text = _text(message)
    assert text.count("[file: report.pdf, 1.2 MiB, id " + "a" * 26 + "]") == 1
    assert text.count("[file: db1.log, 300 B, id " + "b" * 26 + "]") == 1
    assert text.index("the report and the log") < text.index("[file: report.pdf")
    assert split_files(message) == ("the report and the log", (REPORT, LOG))


def test_a_file_without_caption_shows_its_line_only() -> None:
    message = Message(id=1, sender="alice", body=_server_body("", LOG), ts=TS, files=(LOG,))
    assert split_files(message) == ("", (LOG,))
    assert _text(message).endswith(f"alice: [file: db1.log, 300 B, id {'b' * 26}]")


def test_our_own_delivered_message_has_no_file_lines_and_still_shows_its_files() -> None:
    """The ack's message carries the caption only: nothing is taken off it."""
    message = Message(id=1, sender="bob", body="[file: looks like one]", ts=TS, files=(LOG,))
    assert split_files(message) == ("[file: looks like one]", (LOG,))
    assert _text(message).count("[file: ") == 2


def test_a_caption_line_naming_another_id_is_not_taken_for_a_file_line() -> None:
    forged = f"[file: x, 1 B, id {'c' * 26}]"
    message = Message(id=1, sender="alice", body=f"hi\n{forged}", ts=TS, files=(LOG,))
    assert split_files(message) == (f"hi\n{forged}", (LOG,))


def test_a_hostile_name_is_shown_escaped_and_never_as_markdown() -> None:
    hostile = Attachment(
        id="d" * 26, name="x\x1b[2J\u202etxt.exe](https://evil.example)\nnext", size=5,
        type="application/octet-stream",
    )  # fmt: skip
    message = Message(id=1, sender="alice", body="see", ts=TS, room="general", files=(hostile,))
    fragments = message_line(message, "bob")
    text = "".join(fragment[1] for fragment in fragments)
    assert "\x1b" not in text
    assert "\u202e" not in text
    assert "x\\x1b[2J\\u202etxt.exe](https://evil.example)\\x0anext" in text
    assert not any("md." in fragment[0] for fragment in fragments)  # no link was made


def test_the_progress_line_says_how_far_and_how_to_stop() -> None:
    transfer = Transfer("upload", "big\x1b.bin", on_change=lambda: None)
    assert "starting…" in "".join(f[1] for f in progress_line(transfer))
    transfer.progress(3 * 1024 * 1024, 8 * 1024 * 1024)
    text = "".join(f[1] for f in progress_line(transfer))
    assert "↑ upload big\\x1b.bin  3.0 MiB of 8.0 MiB (37%)" in text
    assert "/cancel or Ctrl-C stops it" in text
    assert "\n" not in text


def test_a_cancelled_transfer_stops_at_its_next_progress_report() -> None:
    redraws: list[int] = []
    transfer = Transfer("download", "a" * 26, on_change=lambda: redraws.append(1))
    transfer.progress(1, 10)
    transfer.cancel()
    assert "cancelling…" in "".join(f[1] for f in progress_line(transfer))
    with pytest.raises(TransferCancelled):
        transfer.progress(2, 10)
    assert (transfer.done, len(redraws)) == (1, 1)


@pytest.mark.parametrize(
    ("arg", "parts"),
    [
        ("report.pdf", ("report.pdf", "")),
        ("~/report.pdf the Q3 report", ("~/report.pdf", "the Q3 report")),
        ('"my file.pdf" see page 2', ("my file.pdf", "see page 2")),
        ("'it is.txt'", ("it is.txt", "")),
        ('"unclosed quote', ('"unclosed', "quote")),
        ("", ("", "")),
    ],
)
def test_upload_takes_a_path_quoted_or_not_then_the_caption(
    arg: str, parts: tuple[str, str]
) -> None:
    assert split_path(arg) == parts


def test_tab_completes_the_path_of_an_upload(tmp_path: Path) -> None:
    (tmp_path / "quarterly.pdf").write_bytes(b"")
    (tmp_path / "notes").mkdir()
    completer = UserCompleter(cast(Screen, object()))  # paths need nothing of the screen
    typed = Document(f"/upload {tmp_path}/q")
    assert [c.text for c in completer.get_completions(typed, CompleteEvent())] == ["uarterly.pdf"]


def test_a_refused_message_with_a_file_says_which_file_to_upload_again() -> None:
    event = SendFailed("r1", "", "ops", None, "not_member", "you are not in #ops")
    assert send_failed_text(event, ["q3\x1b.pdf"]) == (
        "not delivered to #ops: you are not in #ops (your file q3\\x1b.pdf: /upload it again)"
    )
    texted = SendFailed("r2", "hi", None, "bob", "no_such_user", "no user bob")
    assert send_failed_text(texted) == "not delivered to @bob: no user bob (your text: hi)"
