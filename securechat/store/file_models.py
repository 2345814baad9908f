"""The tables of shared files (#27): each file's metadata, and the tickets that open one
HTTP request to upload or download. The bytes live in the files folder
(``attachments/layout.py``), never in the database.

A file belongs to its uploader until a message carries it (``message_id``, ``sent_at``);
from then on whoever may see that message may download it. ``sent_at`` without a
``message_id`` is a file whose message went with its room: both such files and files
of deleted messages are removed from the folder, then their rows, by the collector
(``store/attachments.py``). Tickets keep only a SHA-256 of the secret.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, String, false
from sqlalchemy.orm import Mapped, mapped_column

from securechat.protocol.names import NAME_MAX
from securechat.store.models import Base, utcnow

#: A cleaned file name is at most this long (attachments/names.py caps it).
FILE_NAME_MAX = 255
CONTENT_TYPE_MAX = 100


class StoredFile(Base):
    """One uploaded file: who uploaded it, what it is, and the message that carries it."""

    __tablename__ = "files"
    __table_args__ = (Index("ix_files_uploader_id_created_at", "uploader_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    uploader_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    uploader: Mapped[str] = mapped_column(String(NAME_MAX))
    name: Mapped[str] = mapped_column(String(FILE_NAME_MAX))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(CONTENT_TYPE_MAX))
    width: Mapped[int | None]
    height: Mapped[int | None]
    thumbnail: Mapped[bool] = mapped_column(default=False, server_default=false())
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]


class FileTicket(Base):
    """A one-use ticket for one HTTP request: an upload (``upload_size`` and ``upload_name``
    set) or a download of ``file_id`` (its ``thumbnail`` if set)."""

    __tablename__ = "file_tickets"

    ticket_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    file_id: Mapped[str | None] = mapped_column(String(26))
    thumbnail: Mapped[bool] = mapped_column(default=False, server_default=false())
    upload_name: Mapped[str | None] = mapped_column(String(1024))
    upload_size: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[dt.datetime]
