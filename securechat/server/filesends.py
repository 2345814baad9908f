"""The chat requests of shared files (#27): ``file_ticket``, and a ``send`` carrying files.

A send with files is a team operation (``store/attachments.py`` says why): the committer
runs it in its own transaction, in commit order with every other write, and its
:class:`~securechat.server.effects.Effects` deliver the message like any other, to every
session of the conversation but the sender's, which gets its ``ack`` here. A resend whose
files a message of the sender already carries is acknowledged with that message's id and
delivered to nobody again, as a resent ref is.
"""

from __future__ import annotations

import functools
import logging
from typing import Protocol

from securechat.accounts import Account
from securechat.config import Limits
from securechat.errors import FilesDisabled, MalformedMessage, StoreError, TooLarge
from securechat.protocol.clocks import server_hello
from securechat.protocol.events import Hello
from securechat.protocol.files import AskFileTicket
from securechat.protocol.messages import Ack, Event, Send
from securechat.server.committer import Committer
from securechat.server.delivery import format_ts
from securechat.server.files import FileService
from securechat.server.hub import Member
from securechat.store.attachments import send_with_files
from securechat.store.journal import Actor
from securechat.store.message_rows import NewMessage

log = logging.getLogger("securechat.server")


class Caller(Member, Protocol):
    @property
    def account(self) -> Account: ...

    @property
    def user(self) -> str: ...


class FileRequests:
    """Answers ``file_ticket`` and sends with files; collects files after deletions."""

    def __init__(
        self,
        files: FileService | None,
        *,
        committer: Committer,
        limits: Limits,
    ) -> None:
        self._files, self._committer = files, committer
        self._max_body, self._max_files = limits.max_body, limits.max_files_per_message
        self._limits = limits

    def hello(self, server: str) -> Hello:
        """The ``hello`` a session opens with: it names the file limits when files are on
        (asked per session: the web port is bound after the service is built)."""
        limits = self._limits
        files_on = self._files is not None and self._files.enabled
        return server_hello(
            server=server, max_frame=limits.max_frame, heartbeat=limits.heartbeat,
            max_body=limits.max_body,
            max_file_size=limits.max_file_size if files_on else None,
            max_files_per_message=self._max_files if files_on else None,
        )  # fmt: skip

    def ticket(self, caller: Caller, request: AskFileTicket) -> list[Event]:
        """Raises: see :meth:`FileService.ticket`."""
        if self._files is None:
            raise FilesDisabled("this server keeps no files")
        return [self._files.ticket(caller.account.id, request)]

    def send(self, caller: Caller, request: Send, *, notify: tuple[str, ...] = ()) -> list[Event]:
        """Store and deliver a message carrying the caller's uploads; its ``ack``.
        ``notify``: whom its caption's granted ``@room``/``@here`` reaches (broadcasts.py).

        Raises:
            TooLarge, MalformedMessage: the caption or the number of files.
            NoSuchRoom, Forbidden: the room is gone or the caller was removed meanwhile
                (the caller, ChatService._send, has checked membership already).
            NoSuchFile, NoSuchUser: see :func:`send_with_files`.
        """
        files = request.files or ()
        if len(request.body) > self._max_body:
            raise TooLarge(f"message body longer than {self._max_body} characters")
        if len(files) > self._max_files:
            raise MalformedMessage(f"send: at most {self._max_files} files in a message")
        account = caller.account
        message = NewMessage(
            sender_id=account.id, sender=account.name, body=request.body, ref=request.ref,
            room=request.room, to=request.to, notify=notify,
        )  # fmt: skip
        actor = Actor(account.id, account.name, account.is_admin)
        operation = functools.partial(send_with_files, actor=actor, message=message, file_ids=files)
        stored = self._committer.perform(operation, origin=caller)
        return [Ack(id=stored.id, ts=format_ts(stored.ts_ms), ref=request.ref)]

    def collect(self) -> None:
        """A message or a room was deleted: remove the files nobody may download now."""
        if self._files is None:
            return
        try:
            self._files.collect()
        except StoreError as exc:  # the periodic pass tries again
            log.warning("cannot remove deleted files yet: %s", exc.message)
