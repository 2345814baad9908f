"""Hand-over points between caller threads and the client's I/O thread.

A :class:`Slot` waits for the reply to one request; an :class:`Outgoing` is one chat
message from submission to its ``ack``. Both are filled by the I/O thread and read by the
caller once their ``threading.Event`` is set, so they need no lock of their own.
"""

from __future__ import annotations

import dataclasses
import threading

from securechat.client.escaping import escape
from securechat.errors import (
    BadTicket,
    ConnectionLost,
    ErrorCode,
    FilesDisabled,
    FileTooLarge,
    Forbidden,
    MalformedMessage,
    NoSuchFile,
    NoSuchMessage,
    NoSuchRoom,
    NoSuchUser,
    NotMember,
    QuotaExceeded,
    RateLimited,
    RoomExists,
    SecureChatError,
    ServerError,
    TooLarge,
    TooManyRooms,
    TooManyUploads,
)
from securechat.protocol.messages import Error, Event, Journal, Message, Send

_BY_CODE: dict[str, type[SecureChatError]] = {
    ErrorCode.NOT_MEMBER: NotMember,
    ErrorCode.NO_SUCH_USER: NoSuchUser,
    ErrorCode.NO_SUCH_ROOM: NoSuchRoom,
    ErrorCode.NO_SUCH_MESSAGE: NoSuchMessage,
    ErrorCode.FORBIDDEN: Forbidden,
    ErrorCode.ROOM_EXISTS: RoomExists,
    ErrorCode.TOO_LARGE: TooLarge,
    ErrorCode.TOO_MANY_ROOMS: TooManyRooms,
    ErrorCode.BAD_REQUEST: MalformedMessage,
    ErrorCode.SHUTTING_DOWN: ConnectionLost,
    ErrorCode.NO_SUCH_FILE: NoSuchFile,
    ErrorCode.FILE_TOO_LARGE: FileTooLarge,
    ErrorCode.QUOTA_EXCEEDED: QuotaExceeded,
    ErrorCode.TOO_MANY_UPLOADS: TooManyUploads,
    ErrorCode.FILES_DISABLED: FilesDisabled,
    ErrorCode.BAD_TICKET: BadTicket,
}


def request_error(error: Error) -> SecureChatError:
    """The exception a caller sees for an ``error`` reply; the server's text comes escaped."""
    if error.code == ErrorCode.RATE_LIMITED:
        wait = error.retry_after or 1.0
        return RateLimited(f"rate limited by the server: wait {wait:g} s", retry_after=wait)
    return _BY_CODE.get(error.code, ServerError)(escape(error.message))


@dataclasses.dataclass(eq=False, slots=True)
class Slot:
    """Where the reply to one ``ref`` lands; ``messages`` holds a sync's messages."""

    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    reply: Event | None = None
    error: Error | None = None
    messages: list[Journal] = dataclasses.field(default_factory=list)

    def resolve(self, reply: Event) -> None:
        self.reply = reply
        self.done.set()

    def fail(self, error: Error) -> None:
        self.error = error
        self.done.set()


class Outgoing:
    """One submitted message: ``wait()`` for it to be stored, or watch ``events()``."""

    def __init__(self, request: Send) -> None:
        assert request.ref is not None
        self.ref: str = request.ref
        self.request = request
        self.message: Message | None = None  # as stored, once acknowledged
        self.error: Error | None = None
        self._done = threading.Event()

    @property
    def is_done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> Message:
        """The message as stored, once the server has acknowledged it.

        Raises:
            ConnectionLost: no ack within ``timeout`` (the message stays queued) or the
                client closed first.
            RequestError: the server refused it (not_member, no_such_user, too_large).
        """
        if not self._done.wait(timeout):
            raise ConnectionLost(f"the server did not acknowledge the message within {timeout} s")
        if self.error is not None:
            raise request_error(self.error)
        assert self.message is not None
        return self.message

    def deliver(self, message: Message) -> None:
        self.message = message
        self._done.set()

    def fail(self, error: Error) -> None:
        self.error = error
        self._done.set()
