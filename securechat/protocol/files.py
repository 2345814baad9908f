"""The messages of shared files (#27), both directions; docs/protocol.md "Files".

A message's files travel as :class:`Attachment` values in its ``files``; the bytes go over
HTTPS on the web port, one request per :class:`FileTicket` the session asks for with
:class:`AskFileTicket`: for an upload (``name`` and ``size``) or for one file (``file``,
and ``thumbnail`` for its preview).
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, ClassVar

from securechat.protocol.wire import Fields, WireMessage, dumps, wire_object

#: A file id: 26 characters of lower-case base32 (attachments/layout.py makes them).
FILE_ID = re.compile(r"[a-z2-7]{26}")
#: The longest file name a client may propose (the server cleans and caps it further).
MAX_UPLOAD_NAME = 1024
#: Ids in one send at most, before the server's own (smaller) limit.
MAX_SEND_FILES = 64


@dataclasses.dataclass(frozen=True, slots=True)
class Attachment:
    """One file of a message: ``type`` is the server-detected content type; ``width``,
    ``height`` and ``thumbnail`` only for an image the server previews."""

    id: str
    name: str
    size: int
    type: str
    width: int | None = None
    height: int | None = None
    thumbnail: bool | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class AskFileTicket(WireMessage):
    """A ticket for one upload (``name``, ``size``) or one download (``file``)."""

    TYPE: ClassVar[str] = "file_ticket"
    name: str | None = None
    size: int | None = None
    file: str | None = None
    thumbnail: bool | None = None
    ref: str | None = None

    @property
    def is_upload(self) -> bool:
        return self.file is None


@dataclasses.dataclass(frozen=True, slots=True)
class FileTicket(WireMessage):
    """The answer: send ``method`` ``path`` to the web ``port`` with
    ``Authorization: Bearer <ticket>`` within ``expires_in`` seconds; ``file`` for a download."""

    TYPE: ClassVar[str] = "file_ticket"
    ticket: str = dataclasses.field(repr=False)
    method: str
    path: str
    port: int
    expires_in: int
    file: Attachment | None = None
    ref: str | None = None


def attachments_json(files: tuple[Attachment, ...]) -> str:
    """``files`` as the store keeps them with their message (``messages.files``)."""
    return dumps([wire_object(file) for file in files])


def attachments_from_json(text: str | None) -> tuple[Attachment, ...] | None:
    """What :func:`attachments_json` made (the store's own JSON, trusted)."""
    return None if not text else tuple(attachment(o) for o in json.loads(text))


def caption(body: str, files: tuple[Attachment, ...] | None) -> str:
    """A message's caption: its body without the line the server wrote for each file
    (docs/protocol.md, "The attachments of a message"), for a client that shows ``files``."""
    if not files:
        return body
    lines = body.split("\n")
    return "\n".join(lines[: max(len(lines) - len(files), 0)])


def is_file_id(text: str) -> bool:
    return FILE_ID.fullmatch(text) is not None


def attachment(o: dict[str, Any]) -> Attachment:
    """One ``files`` item of a message."""
    f = Fields({"type": "file", **o})
    return Attachment(
        id=f.text("id", 26), name=f.text("name"), size=f.int("size"), type=f.text("type"),
        width=f.opt_int("width"), height=f.opt_int("height"),
        thumbnail=f.opt_boolean("thumbnail"),
    )  # fmt: skip


def attachments(f: Fields) -> tuple[Attachment, ...] | None:
    """A message's ``files``, if it has any."""
    items = f.opt_objects("files")
    return None if not items else tuple(attachment(o) for o in items)


def file_ids(f: Fields) -> tuple[str, ...] | None:
    """A send's ``files``: ids of the sender's uploads."""
    ids = f.opt_names("files")
    if ids is None:
        return None
    if not 1 <= len(ids) <= MAX_SEND_FILES or not all(map(is_file_id, ids)):
        raise f.fail(f"'files' must be 1 to {MAX_SEND_FILES} file ids")
    if len(set(ids)) != len(ids):
        raise f.fail("'files' names a file twice")
    return ids


def ask_file_ticket(f: Fields) -> AskFileTicket:
    file = f.opt_text("file", 64)
    name, size = f.opt_text("name", MAX_UPLOAD_NAME), f.opt_int("size")
    if file is not None:
        if name is not None or size is not None:
            raise f.fail("'file' asks for a download: no 'name' or 'size'")
        if not is_file_id(file):
            raise f.fail("'file' must be a file id")
        return AskFileTicket(file=file, thumbnail=f.opt_boolean("thumbnail") or None, ref=f.ref)
    if name is None or size is None or not name:
        raise f.fail("give 'file' (a download), or 'name' and 'size' (an upload)")
    return AskFileTicket(name=name, size=size, ref=f.ref)


def file_ticket(f: Fields) -> FileTicket:
    info = f.opt_object("file")
    return FileTicket(
        ticket=f.text("ticket"), method=f.text("method", 8), path=f.text("path", 200),
        port=f.int("port", minimum=1), expires_in=f.int("expires_in"),
        file=None if info is None else attachment(info), ref=f.ref,
    )  # fmt: skip
