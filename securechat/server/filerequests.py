"""One file request on the web port (#27): ``POST /files`` or ``GET /files/ID[/thumbnail]``.

Theory of operation: the web port's framing (webframing.py) hands a request for a path
under ``/files`` to a :class:`FileExchange`, with the ``h11`` connection that parsed its
head. The exchange checks the ``Origin`` (if any), the method and the ``Authorization:
Bearer`` ticket, which it redeems (used up, whatever follows). An upload then needs a
``Content-Length`` within ``max_file_size`` (413 before a byte of the body is read) and a
place among the uploads in flight; each ``h11`` ``Data`` event of its body is written to
the files folder as it comes (:class:`UploadSlot`), and the answer is ``201`` with the
file as JSON. A download answers with the file's headers (attachments/serving.py), then
its body is *pulled*: the connection's driver asks :meth:`FileExchange.pull` for the next
chunk only while its write queue has room, so a file is never read faster than the
client takes it, and the server holds at most a chunk or two of it. Every refusal is
a JSON ``{"code", "message"}`` with its status; a missing file and a file the user may not
see are the same 404. One request per connection, as everywhere on this port.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Callable, Sequence

import h11

from securechat.attachments.serving import download_headers, thumbnail_headers
from securechat.errors import (
    BadTicket,
    ErrorCode,
    FilesDisabled,
    FileTooLarge,
    NoSuchFile,
    QuotaExceeded,
    RequestError,
    SecureChatError,
    TooManyUploads,
)
from securechat.protocol.files import is_file_id
from securechat.protocol.wire import dumps, wire_object
from securechat.server.files import UPLOAD_PATH, Download, FileService, UploadSlot
from securechat.server.webfiles import Origins

log = logging.getLogger("securechat.server")

Headers = Sequence[tuple[bytes, bytes]]

_STATUS: dict[type[RequestError], http.HTTPStatus] = {
    BadTicket: http.HTTPStatus.UNAUTHORIZED,
    NoSuchFile: http.HTTPStatus.NOT_FOUND,
    FileTooLarge: http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    QuotaExceeded: http.HTTPStatus.TOO_MANY_REQUESTS,
    TooManyUploads: http.HTTPStatus.TOO_MANY_REQUESTS,
    FilesDisabled: http.HTTPStatus.SERVICE_UNAVAILABLE,
}
_NO_TICKET = BadTicket("this request needs a valid ticket (Authorization: Bearer ...)")


class FileExchange:
    """The server's side of one file request, on the h11 connection that read its head."""

    def __init__(
        self,
        conn: h11.Connection,
        service: FileService,
        origins: Origins,
        peer: Callable[[], str],
    ) -> None:
        """``peer`` names the connection in log lines."""
        self._conn, self._service, self._origins = conn, service, origins
        self._chunk, self._peer = service.chunk, peer
        self._out: list[bytes] = []
        self._upload: UploadSlot | None = None
        self._download: Download | None = None
        self.ending: str | None = None  # set once the answer is complete

    @property
    def pending(self) -> bool:
        """A download's body is still to be pulled."""
        return self._download is not None

    def data_to_send(self) -> list[bytes]:
        out, self._out = self._out, []
        return out

    def start(self, request: h11.Request) -> None:
        """Answer or accept the request whose head h11 has just read."""
        try:
            self._start(request)
        except RequestError as exc:
            self._refuse(exc)
        except SecureChatError as exc:  # the folder or the database: the detail is for the log
            log.error("file request from %s failed: %s", self._peer(), exc.message)
            self._answer_json(http.HTTPStatus.INTERNAL_SERVER_ERROR, {
                "code": ErrorCode.SERVER_ERROR, "message": "the server could not do that just now",
            }, "server error")  # fmt: skip

    def receive(self) -> None:
        """Take the events h11 has after new bytes arrived (an upload's body)."""
        try:
            self._receive()
        except RequestError as exc:
            self._refuse(exc)
        except SecureChatError as exc:
            self.abort()
            log.error("upload from %s failed: %s", self._peer(), exc.message)
            self._answer_json(http.HTTPStatus.INTERNAL_SERVER_ERROR, {
                "code": ErrorCode.SERVER_ERROR, "message": "the server could not store the file",
            }, "server error")  # fmt: skip

    def pull(self) -> None:
        """Queue the download's next chunk (the driver asks while its queue has room)."""
        download = self._download
        if download is None:
            return
        data = download.stream.read(self._chunk)
        if data:
            self._out.append(self._conn.send(h11.Data(data=data)) or b"")
            return
        download.stream.close()
        self._download = None
        self._out.append(self._conn.send(h11.EndOfMessage()) or b"")
        self.ending = f"sent file {download.info.id} ({download.size} bytes)"

    def abort(self) -> None:
        """The connection ends: drop a half-written upload, close an open file."""
        if self._upload is not None:
            self._upload.abort()
            self._upload = None
        if self._download is not None:
            self._download.stream.close()
            self._download = None

    # --- inside --------------------------------------------------------------------------

    def _start(self, request: h11.Request) -> None:
        method, path = request.method.decode("ascii"), request.target.decode("ascii")
        path = path.split("?", 1)[0]
        origins = [v.decode("latin-1") for n, v in request.headers if n == b"origin"]
        if len(origins) > 1 or (origins and not self._origins.allows(origins[0])):
            self._answer_json(http.HTTPStatus.FORBIDDEN, {
                "code": ErrorCode.FORBIDDEN, "message": "this origin may not use files",
            }, "refused a file request: origin")  # fmt: skip
            return
        upload = path == UPLOAD_PATH
        want = "POST" if upload else "GET"
        if method != want:
            self._answer_json(http.HTTPStatus.METHOD_NOT_ALLOWED, {
                "code": ErrorCode.BAD_REQUEST, "message": f"use {want} for {path[:100]}",
            }, f"refused a file request: {method}", extra=[(b"Allow", want.encode())])  # fmt: skip
            return
        file_id, thumbnail = None, False
        if not upload:
            file_id, thumbnail = _download_target(path)
        ticket = self._service.redeem(_bearer(request.headers.raw_items()) or "")
        if ticket is None:
            raise _NO_TICKET
        if upload:
            if ticket.upload_size is None:
                raise _NO_TICKET
            length = _content_length(request.headers.raw_items())
            if length is None:
                self._answer_json(http.HTTPStatus.LENGTH_REQUIRED, {
                    "code": ErrorCode.BAD_REQUEST, "message": "an upload needs a Content-Length",
                }, "refused an upload: no Content-Length")  # fmt: skip
                return
            self._upload = self._service.start_upload(ticket, length)
            self._receive()
            return
        if ticket.file_id is None:  # an upload's ticket
            raise _NO_TICKET
        if file_id is None:
            raise NoSuchFile("no such file")
        download = self._service.open_download(ticket, file_id, thumbnail=thumbnail)
        info = download.info
        if download.thumbnail:
            headers = thumbnail_headers(download.size, download.file_type.content_type)
        else:
            headers = download_headers(info.name, download.file_type, download.size)
        headers = [*headers, (b"Connection", b"close")]
        self._out.append(self._conn.send(h11.Response(status_code=200, headers=headers)) or b"")
        self._download = download

    def _receive(self) -> None:
        upload = self._upload
        while upload is not None:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError as exc:
                self.abort()
                log.info("bad upload from %s: %s", self._peer(), exc)
                self.ending = f"bad upload: {exc}"
                return
            if event is h11.NEED_DATA:
                return
            if isinstance(event, h11.Data):
                upload.write(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                self._upload = None
                info = upload.finish()
                log.info("stored file %s (%d bytes) from %s", info.id, info.size, self._peer())
                body = wire_object(info.attachment())
                self._answer_json(http.HTTPStatus.CREATED, body, f"stored file {info.id}")
                return

    def _refuse(self, exc: RequestError) -> None:
        self.abort()
        status = _STATUS.get(type(exc), http.HTTPStatus.BAD_REQUEST)
        log.info("refused a file request from %s: %s", self._peer(), exc.message)
        body = {"code": exc.code, "message": exc.message}
        self._answer_json(status, body, f"refused a file request: {exc.code}")

    def _answer_json(
        self, status: http.HTTPStatus, body: object, reason: str,
        extra: Headers = (),
    ) -> None:  # fmt: skip
        data = dumps(body).encode()
        headers = [
            (b"Content-Type", b"application/json"), (b"Content-Length", str(len(data)).encode()),
            (b"X-Content-Type-Options", b"nosniff"), (b"Cache-Control", b"no-store"),
            (b"Content-Security-Policy", b"default-src 'none'; sandbox"),
            (b"Connection", b"close"), *extra,
        ]  # fmt: skip
        conn = self._conn
        for event in (
            h11.Response(status_code=status, headers=headers, reason=status.phrase),
            h11.Data(data=data),
            h11.EndOfMessage(),
        ):
            self._out.append(conn.send(event) or b"")
        self.ending = reason


def is_file_path(path: str) -> bool:
    """Whether a request for ``path`` is a file request (one for this module)."""
    return path == UPLOAD_PATH or path.startswith(UPLOAD_PATH + "/")


def _bearer(headers: Headers) -> str | None:
    values = [v for n, v in headers if n.lower() == b"authorization"]
    if len(values) != 1:
        return None
    scheme, _, token = values[0].decode("latin-1").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _content_length(headers: Headers) -> int | None:
    """The body's length; None for none or a chunked body (h11 has checked the number)."""
    values = [v for n, v in headers if n.lower() == b"content-length"]
    return int(values[0]) if values else None


def _download_target(path: str) -> tuple[str | None, bool]:
    """``/files/ID`` or ``/files/ID/thumbnail`` -> (ID, thumbnail); (None, False) else."""
    parts = path[len(UPLOAD_PATH) + 1 :].split("/")
    if len(parts) == 1 and is_file_id(parts[0]):
        return parts[0], False
    if len(parts) == 2 and parts[1] == "thumbnail" and is_file_id(parts[0]):
        return parts[0], True
    return None, False
