"""Shared files in the database (#27): their rows, who may read them, their tickets, and
sending a message that carries them.

Who may download a file is decided here, in one query, by the rule that decides who may
read a message (:data:`securechat.store.search.READABLE`): the file must be carried by a
live message the user may read (a room they are in, or left after it; their own direct
conversation). Until a message carries it, only its uploader may. Anything else, a
missing id included, is the same None.

A message carrying files is written as a team operation (:func:`send_with_files`), not by
the group commit: it claims the files in the same transaction, so two messages can never
carry one file, and files are rare enough for the cost. Its body is the caption followed
by one line per file (:func:`file_lines`), which is what older clients show and what
search finds; ``messages.files`` holds the files' JSON for the clients that know them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, delete, func, insert, select, text, update

from securechat.attachments.sizes import format_size
from securechat.errors import NoSuchFile, NoSuchUser
from securechat.permissions import no_such_room
from securechat.protocol.files import Attachment, attachments_json
from securechat.store.database import Database
from securechat.store.file_models import FileTicket, StoredFile
from securechat.store.journal import Actor, Place, Tx
from securechat.store.mentions import add_mentions
from securechat.store.message_rows import NewMessage, StoredMessage
from securechat.store.models import ChatMessage, Room, User, utcnow
from securechat.store.search import READABLE

__all__ = [
    "FileInfo", "FileRecords", "Resent", "Ticket", "file_lines", "send_with_files",
    "ticket_hash", "with_file_lines",
]  # fmt: skip

_COLUMNS = (
    StoredFile.id, StoredFile.name, StoredFile.size, StoredFile.content_type, StoredFile.width,
    StoredFile.height, StoredFile.thumbnail, StoredFile.uploader_id, StoredFile.message_id,
)  # fmt: skip
_READABLE_FILE = text(
    "SELECT f.id FROM files AS f JOIN messages AS m ON m.id = f.message_id"
    " WHERE f.id = :file AND m.kind = 'message' AND NOT m.deleted"
    f" AND ({READABLE}) = 1"
)


@dataclasses.dataclass(frozen=True, slots=True)
class FileInfo:
    """One stored file's metadata (``message_id`` None: not sent yet)."""

    id: str
    name: str
    size: int
    content_type: str
    width: int | None = None
    height: int | None = None
    thumbnail: bool = False
    uploader_id: int | None = None
    message_id: int | None = None

    def attachment(self) -> Attachment:
        """As clients get it in a message."""
        return Attachment(
            id=self.id, name=self.name, size=self.size, type=self.content_type,
            width=self.width, height=self.height, thumbnail=self.thumbnail or None,
        )  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class Ticket:
    """What a ticket opens: an upload (``upload_size`` set) or ``file_id`` (its thumbnail)."""

    user_id: int
    file_id: str | None = None
    thumbnail: bool = False
    upload_name: str | None = None
    upload_size: int | None = None
    user: str = ""  # the user's name, filled in when the ticket is taken


@dataclasses.dataclass(frozen=True, slots=True)
class Resent:
    """A send whose files a message of the same sender already carries: its resend."""

    id: int
    ts_ms: int


def ticket_hash(ticket: str) -> str:
    """What the database keeps of a ticket."""
    return hashlib.sha256(ticket.encode()).hexdigest()


def file_lines(files: Iterable[Attachment]) -> str:
    """The line per file that every client shows: ``[file: NAME, SIZE, id ID]``."""
    return "\n".join(f"[file: {f.name}, {format_size(f.size)}, id {f.id}]" for f in files)


def with_file_lines(caption: str, files_json: str) -> str:
    """A caption and the lines of the files in ``files_json`` (``messages.files``)."""
    files = [Attachment(**o) for o in json.loads(files_json)]
    lines = file_lines(files)
    return f"{caption}\n{lines}" if caption else lines


class FileRecords:
    """The files' and tickets' rows; every method is its own transaction."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def add_ticket(self, ticket: str, spec: Ticket, *, expires_at: dt.datetime) -> None:
        with self._db.engine.begin() as conn:
            conn.execute(delete(FileTicket).where(FileTicket.expires_at < utcnow()))
            conn.execute(insert(FileTicket).values(
                ticket_hash=ticket_hash(ticket), user_id=spec.user_id, file_id=spec.file_id,
                thumbnail=spec.thumbnail, upload_name=spec.upload_name,
                upload_size=spec.upload_size, expires_at=expires_at,
            ))  # fmt: skip

    def take_ticket(self, ticket: str) -> Ticket | None:
        """Use up ``ticket``: what it opens, or None (unknown, used, expired, or its user
        disabled since)."""
        hashed = ticket_hash(ticket)
        with self._db.engine.begin() as conn:
            row = conn.execute(
                select(
                    FileTicket.user_id, FileTicket.file_id, FileTicket.thumbnail,
                    FileTicket.upload_name, FileTicket.upload_size, FileTicket.expires_at,
                    User.name, User.is_disabled,
                )
                .join(User, User.id == FileTicket.user_id)
                .where(FileTicket.ticket_hash == hashed)
            ).first()  # fmt: skip
            if row is None:
                return None
            gone = conn.execute(delete(FileTicket).where(FileTicket.ticket_hash == hashed))
        if gone.rowcount != 1 or row.expires_at < utcnow() or row.is_disabled:
            return None  # another node took it first, or too late
        return Ticket(
            row.user_id, row.file_id, row.thumbnail, row.upload_name, row.upload_size, row.name
        )

    def uploaded_since(self, user_id: int, since: dt.datetime) -> int:
        """Bytes ``user_id`` uploaded since ``since`` that are still stored."""
        with self._db.engine.connect() as conn:
            total = conn.execute(
                select(func.coalesce(func.sum(StoredFile.size), 0)).where(
                    StoredFile.uploader_id == user_id, StoredFile.created_at >= since
                )
            ).scalar_one()
        return int(total)

    def add_file(self, info: FileInfo, *, uploader_id: int, uploader: str) -> None:
        with self._db.engine.begin() as conn:
            conn.execute(insert(StoredFile).values(
                id=info.id, uploader_id=uploader_id, uploader=uploader, name=info.name,
                size=info.size, content_type=info.content_type, width=info.width,
                height=info.height, thumbnail=info.thumbnail, created_at=utcnow(),
            ))  # fmt: skip

    def readable(self, user_id: int, file_id: str) -> FileInfo | None:
        """The file if ``user_id`` may download it now (see the module docstring), else None."""
        with self._db.engine.connect() as conn:
            info = _file(conn, file_id)
            if info is None:
                return None
            if info.message_id is None:
                return info if info.uploader_id == user_id and not _sent(conn, file_id) else None
            found = conn.execute(_READABLE_FILE, {"file": file_id, "user": user_id}).first()
        return info if found is not None else None

    def set_preview(self, file_id: str, size: tuple[int, int] | None) -> None:
        """The thumbnailer's result: the image's width and height, and that it has a
        thumbnail; None: no preview. A message already carrying the file learns it too."""
        width, height = size if size is not None else (None, None)
        with self._db.engine.begin() as conn:
            conn.execute(
                update(StoredFile).where(StoredFile.id == file_id)
                .values(width=width, height=height, thumbnail=size is not None)
            )  # fmt: skip
            message_id = conn.execute(
                select(StoredFile.message_id).where(StoredFile.id == file_id)
            ).scalar()
            if message_id is not None:
                files = _files_of(conn, message_id)
                conn.execute(
                    update(ChatMessage).where(ChatMessage.id == message_id)
                    .values(files=attachments_json(tuple(f.attachment() for f in files)))
                )  # fmt: skip

    def collectable(self, *, unsent_before: dt.datetime) -> list[str]:
        """Files to remove: their message deleted or gone with its room, or never sent (in
        time, or by an uploader deleted since)."""
        with self._db.engine.connect() as conn:
            return list(conn.execute(
                select(StoredFile.id)
                .outerjoin(ChatMessage, ChatMessage.id == StoredFile.message_id)
                .where(
                    (StoredFile.sent_at.is_not(None) & (
                        ChatMessage.id.is_(None) | ChatMessage.deleted.is_(True)
                    ))
                    | (StoredFile.sent_at.is_(None) & (
                        (StoredFile.created_at < unsent_before) | StoredFile.uploader_id.is_(None)
                    ))
                )
            ).scalars())  # fmt: skip

    def forget(self, file_ids: Sequence[str]) -> None:
        """Delete the rows of files whose bytes are gone."""
        if file_ids:
            with self._db.engine.begin() as conn:
                conn.execute(delete(StoredFile).where(StoredFile.id.in_(file_ids)))


def send_with_files(
    tx: Tx, actor: Actor, message: NewMessage, file_ids: Sequence[str]
) -> StoredMessage | Resent:
    """Store ``message`` carrying the actor's unsent uploads ``file_ids``, in order.

    Raises:
        NoSuchFile: one of them is not the actor's, or another message carries it.
        NoSuchUser, NoSuchRoom: the recipient or the room is gone.
    """
    conn = tx.conn
    rows = {info.id: info for info in _files(conn, file_ids)}
    carriers = {info.message_id for info in rows.values()}
    if len(rows) != len(file_ids) or any(i.uploader_id != actor.id for i in rows.values()):
        raise NoSuchFile("no such file among your uploads")
    if carriers != {None}:
        if len(carriers) == 1 and None not in carriers and message.ref is not None:
            earlier = conn.execute(
                select(ChatMessage.id, ChatMessage.ts_ms).where(
                    ChatMessage.id == carriers.pop(), ChatMessage.ref == message.ref
                )
            ).first()
            if earlier is not None:  # the same send again (its ack was lost)
                return Resent(earlier.id, earlier.ts_ms)
        raise NoSuchFile("a file was sent already; upload it again to send it again")
    files = tuple(rows[i].attachment() for i in file_ids)
    files_json = attachments_json(files)
    place = _place(conn, message)
    entry = tx.append(place, actor, kind="message", body=with_file_lines(message.body, files_json))
    if message.ref is not None:  # the ref names this message now (as a send's does)
        conn.execute(
            update(ChatMessage)
            .where(ChatMessage.sender_id == actor.id, ChatMessage.ref == message.ref)
            .values(ref=None)
        )
    conn.execute(
        update(ChatMessage)
        .where(ChatMessage.id == entry.id)
        .values(files=files_json, ref=message.ref)
    )
    conn.execute(
        update(StoredFile).where(StoredFile.id.in_(file_ids))
        .values(message_id=entry.id, sent_at=utcnow())
    )  # fmt: skip
    mentioned = (entry.id, message.body, place.room_id, place.recipient_id, actor.id)
    add_mentions(conn, [(*mentioned, message.notify)])  # the caption's, not the file lines
    return dataclasses.replace(entry, files=files_json)


def _place(conn: Connection, message: NewMessage) -> Place:
    if message.room is not None:
        room_id = conn.execute(select(Room.id).where(Room.name == message.room)).scalar()
        if room_id is None:
            raise no_such_room(message.room)
        return Place(room_id=room_id, room=message.room)
    assert message.to is not None
    user_id = conn.execute(select(User.id).where(User.name == message.to)).scalar()
    if user_id is None:
        raise NoSuchUser(f"no user {message.to!r}")
    return Place(recipient_id=user_id, recipient=message.to)


def _info(row: tuple[object, ...]) -> FileInfo:
    return FileInfo(*row)  # type: ignore[arg-type]


def _file(conn: Connection, file_id: str) -> FileInfo | None:
    row = conn.execute(select(*_COLUMNS).where(StoredFile.id == file_id)).first()
    return None if row is None else _info(tuple(row))


def _files(conn: Connection, file_ids: Sequence[str]) -> list[FileInfo]:
    rows = conn.execute(select(*_COLUMNS).where(StoredFile.id.in_(file_ids))).all()
    return [_info(tuple(row)) for row in rows]


def _files_of(conn: Connection, message_id: int) -> list[FileInfo]:
    """The files a message carries, in the order sent (its JSON's order)."""
    order = conn.execute(select(ChatMessage.files).where(ChatMessage.id == message_id)).scalar()
    ids = [o["id"] for o in json.loads(order or "[]")]
    found = {info.id: info for info in _files(conn, ids)}
    return [found[i] for i in ids if i in found]


def _sent(conn: Connection, file_id: str) -> bool:
    sent_at = conn.execute(select(StoredFile.sent_at).where(StoredFile.id == file_id)).scalar()
    return sent_at is not None
