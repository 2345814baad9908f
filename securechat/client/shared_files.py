"""Shared files (#27) as :class:`~securechat.client.api.Client` calls: ``upload`` a file,
then send its id with a message (``Client.send(..., files=[id])``); ``download`` one.

Each asks the session for a one-use ticket (``file_ticket``), which also tells a refusal
the server can give before a byte moves (too large, over the quota), then moves the bytes
over HTTPS on the web port (transfers.py). A download lands in the user's downloads folder
by default, under the sender's name made safe, and never over an existing file: the next
free ``name (1).ext`` is taken instead (attachments/downloads.py); a path given explicitly
is replaced only when ``overwrite`` says so. A failed download leaves no partial file.
"""

from __future__ import annotations

import abc
import contextlib
import os
import secrets
import ssl
from pathlib import Path
from typing import BinaryIO, TypeVar

from securechat.attachments.downloads import DOWNLOAD_MODE, downloads_dir, open_new
from securechat.attachments.sizes import too_large
from securechat.client import transfers
from securechat.client.link import Endpoint
from securechat.client.transfers import Progress
from securechat.errors import ConfigError, FileTooLarge
from securechat.protocol.files import AskFileTicket, Attachment, FileTicket
from securechat.protocol.messages import Asked, Event

__all__ = ["SharedFiles"]

T = TypeVar("T", bound=Event)


class SharedFiles(abc.ABC):
    """``upload`` and ``download``, for the ``Client`` that inherits it."""

    @abc.abstractmethod
    def _request(self, request: Asked, kind: type[T]) -> T:
        """Ask the server ``request`` and wait for its reply, of type ``kind``."""

    @abc.abstractmethod
    def _web_route(self) -> tuple[Endpoint, ssl.SSLContext, float]:
        """The node connected to, the TLS context that trusts it, and the I/O timeout."""

    @abc.abstractmethod
    def _max_file_size(self) -> int | None:
        """The largest file the server's hello says it takes (None: it did not say)."""

    def upload(
        self, path: Path, *, name: str | None = None, progress: Progress | None = None
    ) -> Attachment:
        """Upload the file at ``path`` (shown as ``name``, default its own name); the file
        as the server stored it, whose ``id`` a message may then carry.

        Raises:
            ConfigError: ``path`` cannot be read.
            FileTooLarge, QuotaExceeded, TooManyUploads, FilesDisabled: refused, before a
                byte is sent where the server can tell (size, quota); a size over the
                hello's ``max_file_size`` before a ticket is asked for.
            ConnectionLost: the server or its web port cannot be reached.
        """
        try:
            source = path.open("rb")
            size = os.fstat(source.fileno()).st_size
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
        with source:
            if (limit := self._max_file_size()) is not None and size > limit:
                raise FileTooLarge(too_large(size, limit))
            ticket = self._request(AskFileTicket(name=name or path.name, size=size), FileTicket)
            endpoint, context, timeout = self._web_route()
            return transfers.upload(
                endpoint, context, ticket, source, size, timeout=timeout, progress=progress
            )

    def download(
        self, file_id: str, out: Path | None = None, *, overwrite: bool = False,
        progress: Progress | None = None,
    ) -> Path:  # fmt: skip
        """Download file ``file_id``; the path it was saved at.

        ``out``: a folder (the sender's name is kept, made safe, numbered if taken), or a
        file path (replaced only with ``overwrite``); default: the downloads folder.

        Raises:
            NoSuchFile: no such file, or not one you may see (the same answer).
            ConfigError: ``out`` exists and ``overwrite`` is not set, or cannot be written.
            ConnectionLost: the server or its web port cannot be reached, or the transfer
                broke (nothing is left behind).
        """
        ticket = self._request(AskFileTicket(file=file_id), FileTicket)
        name = ticket.file.name if ticket.file is not None else file_id
        path, sink, final = _destination(out, name, overwrite=overwrite)
        endpoint, context, timeout = self._web_route()
        try:
            with sink:
                transfers.download(
                    endpoint, context, ticket, sink, timeout=timeout, progress=progress
                )
            if final is not None:
                os.replace(path, final)
                path = final
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            raise
        return path


def _destination(
    out: Path | None, name: str, *, overwrite: bool
) -> tuple[Path, BinaryIO, Path | None]:
    """Where to write: (the path written, the open file, the path to rename it to or None).

    Raises:
        ConfigError: the file exists (without ``overwrite``) or cannot be made.
    """
    try:
        if out is None or out.is_dir():
            path, sink = open_new(out if out is not None else downloads_dir(), name)
            return path, sink, None
        if not overwrite:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            return out, os.fdopen(os.open(out, flags, DOWNLOAD_MODE), "wb"), None
        partial = out.with_name(f".{out.name}.{secrets.token_hex(4)}.part")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        return partial, os.fdopen(os.open(partial, flags, DOWNLOAD_MODE), "wb"), out
    except FileExistsError as exc:
        raise ConfigError(f"{out or name} exists already; give --overwrite to replace it") from exc
    except OSError as exc:
        raise ConfigError(
            f"cannot save to {out or 'the downloads folder'}: {exc.strerror or exc}"
        ) from exc
