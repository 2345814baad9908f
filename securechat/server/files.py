"""The server's side of shared files (#27): tickets, uploads, downloads, and collecting
the files nobody may download any more.

Theory of operation: a session asks for a ticket over the chat protocol
(:meth:`FileService.ticket`); the limits a client can learn before sending a byte (size,
quota) are checked there. The ticket goes to the database, so the HTTP request may reach
any node. The web port's :class:`~securechat.server.filerequests.FileExchange` redeems it
(:meth:`redeem`) and then, for an upload, holds an :class:`UploadSlot` (the limits again,
now from ``Content-Length``, and the uploads in flight), or, for a download, opens the
file after checking again that the user may see it. Finished uploads are detected from
their first bytes (attachments/detect.py), their names cleaned (attachments/names.py),
and images handed to the background thumbnailer.

Files are removed by :meth:`collect`: after a message or a room is deleted (the service
calls it), and every ``collect_interval`` seconds for deletions made elsewhere (another
node, the command line) and uploads never sent. The bytes go first, then the rows: a crash
between the two leaves rows that the next pass removes again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import os
import secrets
import threading
from collections.abc import Callable
from typing import BinaryIO, Protocol

from securechat.attachments.detect import HEAD_BYTES, FileType, detect
from securechat.attachments.layout import new_file_id
from securechat.attachments.names import clean_name
from securechat.attachments.sizes import format_size, too_large
from securechat.attachments.storage import FileStorage, Upload
from securechat.attachments.thumbnails import Thumbnail
from securechat.config import Limits
from securechat.errors import (
    FilesDisabled,
    FileTooLarge,
    NoSuchFile,
    QuotaExceeded,
    StoreError,
    TooManyUploads,
)
from securechat.protocol.files import AskFileTicket, FileTicket
from securechat.store.attachments import FileInfo, FileRecords, Ticket
from securechat.store.models import utcnow

log = logging.getLogger("securechat.server")

DAY = dt.timedelta(days=1)
UPLOAD_PATH = "/files"


def download_path(file_id: str, *, thumbnail: bool = False) -> str:
    return f"{UPLOAD_PATH}/{file_id}" + ("/thumbnail" if thumbnail else "")


@dataclasses.dataclass(frozen=True, slots=True)
class Download:
    """An open file to send: what it is, how to label it, its bytes and how many."""

    info: FileInfo
    file_type: FileType  # detected from the bytes sent (the file's, or its thumbnail's)
    stream: BinaryIO
    size: int
    thumbnail: bool = False


class Thumbnails(Protocol):
    """The background thumbnailer (attachments/thumbnails.py): what the service needs."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def submit(self, file_id: str, on_done: Callable[[Thumbnail | None], None]) -> None: ...


class UploadSlot:
    """One upload in flight: writes each chunk, and gives its place back when done."""

    def __init__(
        self, service: FileService, file_id: str, upload: Upload, ticket: Ticket, length: int
    ) -> None:
        self._service, self._upload, self._ticket = service, upload, ticket
        self.file_id, self._length = file_id, length
        self._head = bytearray()
        self._done = False

    def write(self, data: bytes) -> None:
        """Raises: FileTooLarge past the announced length (nothing is kept); StoreError."""
        if self._upload.size + len(data) > self._length:
            self.abort()
            raise FileTooLarge("the body is longer than its Content-Length")
        if len(self._head) < HEAD_BYTES:
            self._head += data[: HEAD_BYTES - len(self._head)]
        self._upload.write(data)

    def finish(self) -> FileInfo:
        """The whole body has come: store the file and its row.

        Raises:
            QuotaExceeded: uploads finished meanwhile took the quota (nothing is kept).
            StoreError: the folder or the database failed (nothing is kept).
        """
        try:
            return self._service.finished(self, self._upload, bytes(self._head), self._ticket)
        except BaseException:
            self._upload.abort()
            raise
        finally:
            self._release()

    def abort(self) -> None:
        """Drop the upload (a lost connection, a refusal); idempotent."""
        self._upload.abort()
        self._release()

    def _release(self) -> None:
        if not self._done:
            self._done = True
            self._service.released(self._ticket.user_id)


class FileService:
    def __init__(
        self,
        *,
        records: FileRecords,
        storage: FileStorage | None,
        limits: Limits,
        web_port: int | None,
        thumbnails: Thumbnails | None = None,
    ) -> None:
        """``storage`` None: files are off (``files_disabled``); ``web_port``: where tickets
        send clients (None: no web port, so files are off too)."""
        self._records, self._storage, self._limits = records, storage, limits
        self._port = web_port
        self._thumbnails = thumbnails
        self._lock = threading.Lock()  # guards the two counts of uploads in flight
        self._in_flight: dict[int, int] = {}
        self._total = 0

    def start(self) -> None:
        if self._thumbnails is not None and self.enabled:
            self._thumbnails.start()

    def stop(self) -> None:
        if self._thumbnails is not None:
            self._thumbnails.stop()

    @property
    def chunk(self) -> int:
        """A download is read and queued this many bytes at a time."""
        return self._limits.file_chunk

    @property
    def enabled(self) -> bool:
        return self._storage is not None and self._port is not None

    def set_port(self, port: int) -> None:
        """The web port, once bound (``--web-port 0`` in tests)."""
        self._port = port

    # --- the chat protocol's side ------------------------------------------------------

    def ticket(self, user_id: int, request: AskFileTicket) -> FileTicket:
        """A one-use ticket for the upload or the download ``request`` asks for.

        Raises:
            FilesDisabled, FileTooLarge, QuotaExceeded, NoSuchFile: see docs/protocol.md.
            StoreError: the database failed.
        """
        if not self.enabled:
            raise FilesDisabled("this server keeps no files (start it with --files DIR)")
        assert self._port is not None
        ttl = self._limits.file_ticket_ttl
        secret = secrets.token_urlsafe(32)
        expires_at = utcnow() + dt.timedelta(seconds=ttl)
        if request.is_upload:
            assert request.name is not None
            assert request.size is not None
            self._check_size(user_id, request.size)
            spec = Ticket(user_id, upload_name=request.name, upload_size=request.size)
            self._records.add_ticket(secret, spec, expires_at=expires_at)
            return FileTicket(
                ticket=secret, method="POST", path=UPLOAD_PATH, port=self._port,
                expires_in=int(ttl), ref=request.ref,
            )  # fmt: skip
        assert request.file is not None
        info = self._records.readable(user_id, request.file)
        thumbnail = bool(request.thumbnail)
        if info is None or (thumbnail and not info.thumbnail):
            raise NoSuchFile(f"no file {request.file}")
        spec = Ticket(user_id, file_id=info.id, thumbnail=thumbnail)
        self._records.add_ticket(secret, spec, expires_at=expires_at)
        return FileTicket(
            ticket=secret, method="GET", path=download_path(info.id, thumbnail=thumbnail),
            port=self._port, expires_in=int(ttl), file=info.attachment(), ref=request.ref,
        )  # fmt: skip

    def _check_size(self, user_id: int, size: int) -> None:
        limits = self._limits
        if size > limits.max_file_size:
            raise FileTooLarge(too_large(size, limits.max_file_size))
        used = self._records.uploaded_since(user_id, utcnow() - DAY)
        if used + size > limits.file_quota_per_day:
            raise QuotaExceeded(
                f"the file ({format_size(size)}) would take your uploads of the last 24 hours"
                f" past {format_size(limits.file_quota_per_day)} ({format_size(used)} used)"
            )

    # --- the web port's side -----------------------------------------------------------

    def redeem(self, ticket: str) -> Ticket | None:
        """What ``ticket`` opens and for whom, using it up; None if it opens nothing."""
        return self._records.take_ticket(ticket) if self.enabled else None

    def start_upload(self, ticket: Ticket, length: int) -> UploadSlot:
        """Raises: FilesDisabled, FileTooLarge, QuotaExceeded, TooManyUploads, StoreError."""
        storage = self._storage
        if storage is None:
            raise FilesDisabled("this server keeps no files")
        limits, user_id = self._limits, ticket.user_id
        with self._lock:
            mine = self._in_flight.get(user_id, 0)
            if mine >= limits.max_uploads_per_user or self._total >= limits.max_uploads:
                raise TooManyUploads("too many uploads at once; wait for one to finish")
            self._in_flight[user_id] = mine + 1
            self._total += 1
        try:
            self._check_size(user_id, length)
            file_id = new_file_id()
            upload = storage.begin(file_id)
        except BaseException:
            self.released(user_id)
            raise
        return UploadSlot(self, file_id, upload, ticket, length)

    def released(self, user_id: int) -> None:
        """An upload ended, one way or the other."""
        with self._lock:
            left = self._in_flight.get(user_id, 1) - 1
            if left:
                self._in_flight[user_id] = left
            else:
                self._in_flight.pop(user_id, None)
            self._total -= 1

    def finished(self, slot: UploadSlot, upload: Upload, head: bytes, ticket: Ticket) -> FileInfo:
        """Store a complete upload: detect its type, clean its name, add its row, queue its
        thumbnail. Raises: QuotaExceeded, StoreError."""
        used = self._records.uploaded_since(ticket.user_id, utcnow() - DAY)
        if used + upload.size > self._limits.file_quota_per_day:
            raise QuotaExceeded("uploads finished meanwhile took your quota for the day")
        file_type = detect(head)
        info = FileInfo(
            id=slot.file_id, name=clean_name(ticket.upload_name or ""), size=upload.size,
            content_type=file_type.content_type,
        )  # fmt: skip
        upload.commit()
        try:
            self._records.add_file(info, uploader_id=ticket.user_id, uploader=ticket.user)
        except StoreError:
            self._delete(info.id)
            raise
        if file_type.inline_image and self._thumbnails is not None:
            self._thumbnails.submit(info.id, functools.partial(self._preview_made, info.id))
        return info

    def _preview_made(self, file_id: str, thumbnail: Thumbnail | None) -> None:
        """The thumbnailer's answer (on its thread)."""
        size = None if thumbnail is None else (thumbnail.width, thumbnail.height)
        try:
            self._records.set_preview(file_id, size)
        except StoreError as exc:
            log.warning("cannot record the thumbnail of file %s: %s", file_id, exc.message)

    def open_download(self, ticket: Ticket, file_id: str, *, thumbnail: bool) -> Download:
        """The file (or thumbnail) the ticket opens, if its user may see it now.

        Raises:
            NoSuchFile: not this ticket's file, not there, or not the user's to see (the
                same answer for each). StoreError: the folder or the database failed.
        """
        missing = NoSuchFile(f"no file {file_id}")
        if ticket.file_id != file_id or ticket.thumbnail != thumbnail or self._storage is None:
            raise missing
        info = self._records.readable(ticket.user_id, file_id)
        if info is None:
            raise missing
        stream = self._storage.open(file_id, thumbnail=thumbnail)
        if stream is None:
            raise missing
        try:
            size = os.fstat(stream.fileno()).st_size
            file_type = detect(stream.read(HEAD_BYTES))
            stream.seek(0)
        except OSError as exc:
            stream.close()
            raise StoreError(f"cannot read from the files folder: {exc}") from exc
        return Download(info, file_type, stream, size, thumbnail)

    # --- collecting --------------------------------------------------------------------

    def collect(self) -> int:
        """Remove files nobody may download any more; how many. Raises: StoreError."""
        if self._storage is None:
            return 0
        unsent_before = utcnow() - dt.timedelta(seconds=self._limits.file_unsent_ttl)
        doomed = self._records.collectable(unsent_before=unsent_before)
        for file_id in doomed:
            self._delete(file_id)
        self._records.forget(doomed)
        if doomed:
            log.info("removed %d file(s) no message carries any more", len(doomed))
        return len(doomed)

    def collect_now(self) -> None:
        """:meth:`collect`, every few minutes (periodic.py), the database's trouble logged."""
        try:
            self.collect()
        except StoreError as exc:
            log.warning("cannot remove deleted files yet: %s", exc.message)

    def _delete(self, file_id: str) -> None:
        assert self._storage is not None
        self._storage.delete(file_id)
