"""The messages of shared files (#27) as bytes: no sockets (protocol/files.py, codec)."""

from __future__ import annotations

import json

import pytest

from securechat.errors import MalformedMessage
from securechat.protocol.files import AskFileTicket, Attachment, FileTicket, caption
from securechat.protocol.messages import Message, Send, decode_event, decode_request, encode

FILE_ID = "7kq2xm4v6c3j2h5n7p4r6t2w3y"


def _request(**fields: object) -> object:
    return decode_request(json.dumps(fields).encode())


def test_file_ticket_asks_for_an_upload_or_one_file() -> None:
    upload = _request(type="file_ticket", name="report.pdf", size=10, ref="f1")
    assert upload == AskFileTicket(name="report.pdf", size=10, ref="f1")
    download = _request(type="file_ticket", file=FILE_ID, thumbnail=True)
    assert download == AskFileTicket(file=FILE_ID, thumbnail=True)


@pytest.mark.parametrize(
    "fields",
    [
        {"file": "../../etc/passwd"},
        {"file": FILE_ID.upper()},
        {"file": FILE_ID, "name": "x", "size": 1},
        {"name": "x"},
        {"name": "", "size": 1},
        {"size": 1},
        {"name": "x", "size": -1},
    ],
)
def test_file_ticket_refuses_what_is_neither(fields: dict[str, object]) -> None:
    with pytest.raises(MalformedMessage):
        _request(type="file_ticket", **fields)


def test_a_send_carries_file_ids_and_may_then_have_no_caption() -> None:
    send = _request(type="send", room="general", body="", files=[FILE_ID])
    assert send == Send(body="", room="general", files=(FILE_ID,))
    for files in ([], ["nope"], [FILE_ID, FILE_ID], "x"):
        with pytest.raises(MalformedMessage):
            _request(type="send", room="general", body="hi", files=files)
    with pytest.raises(MalformedMessage):
        _request(type="send", room="general", body="")


def test_a_message_s_files_and_a_ticket_go_both_ways() -> None:
    file = Attachment(id=FILE_ID, name="a.png", size=5, type="image/png", width=2, height=1)
    message = Message(id=1, sender="alice", body="hi\n[file: a.png, 5 B, id x]", ts="t",
                      room="general", files=(file,))  # fmt: skip
    assert decode_event(encode(message)) == message
    ticket = FileTicket(ticket="s", method="GET", path=f"/files/{FILE_ID}", port=5443,
                        expires_in=60, file=file, ref="f2")  # fmt: skip
    assert json.loads(encode(ticket))["file"]["name"] == "a.png"
    assert decode_event(encode(ticket)) == ticket


def test_caption_drops_the_line_of_each_file() -> None:
    file = Attachment(id=FILE_ID, name="a", size=1, type="text/plain")
    assert caption("two\nlines\n[file: a, 1 B, id x]", (file,)) == "two\nlines"
    assert caption("[file: a, 1 B, id x]", (file,)) == ""
    assert caption("plain", None) == "plain"
