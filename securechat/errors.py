"""The exception tree and the stable error codes shared by the protocol and the CLI.

Every error securechat raises on purpose derives from :class:`SecureChatError` and carries
an :class:`ErrorCode`. The server turns an error into an ``error`` frame with that code;
the CLI turns it into one line on stderr and exit status 1. Third-party exceptions
(``OSError``, ``ssl.SSLError``, SQLAlchemy and argon2 errors) are translated once, at the
boundary that calls the library, with ``raise ... from exc``::

    SecureChatError
    ├── ProtocolError                 the peer broke the wire protocol
    │   ├── FrameTooLarge             frame_too_large (framing is lost: close)
    │   ├── MalformedMessage          bad_request
    │   ├── UnknownMessageType        unknown_type
    │   ├── UnexpectedMessage         auth_required (before login) / bad_request
    │   └── BadProxyHeader            never sent: the connection is dropped before TLS
    ├── RequestError                  a well-formed request that cannot be served
    │   ├── NotMember                 not_member
    │   ├── NoSuchUser                no_such_user
    │   ├── NoSuchRoom                no_such_room (also: a private room you may not see)
    │   ├── NoSuchMessage             no_such_message
    │   ├── NoSuchDevice              no_such_device (not one of your signed-in devices)
    │   ├── Forbidden                 forbidden (role too low, muted, banned)
    │   ├── RoomExists                room_exists
    │   ├── TooLarge                  too_large
    │   ├── TooManyRooms              too_many_rooms
    │   ├── NoSuchFile                no_such_file (also: a file you may not see)
    │   ├── FileTooLarge              file_too_large
    │   ├── QuotaExceeded             quota_exceeded (your uploads of the last 24 hours)
    │   ├── TooManyUploads            too_many_uploads (in flight)
    │   ├── FilesDisabled             files_disabled (the server has no files folder)
    │   ├── BadTicket                 bad_ticket (HTTP only: unknown, used or expired)
    │   └── RateLimited               rate_limited (carries retry_after)
    │       └── MentionLimited        mention_limited: @room/@here too often (not resent)
    ├── AuthenticationError           auth_failed
    ├── TooManySessions               too_many_sessions (at login: close)
    ├── UserError                     a local user-management mistake
    │   ├── InvalidUserName
    │   ├── WeakPassword
    │   ├── UserExistsError
    │   └── UnknownUserError
    ├── StoreError                    database unreachable, locked, full or read-only
    ├── CertificateError              missing, unreadable or mismatched certificate files
    │   ├── CertificatesMissing       no certificate folder (or no certificates in it)
    │   └── WrongCA                   the server's certificate is not from the trusted CA
    ├── ConnectionLost                the transport ended (closed, reset, TLS failure)
    │   └── HandshakeFailed           TCP connected, but no TLS 1.3 came of it
    ├── ServerError                   any other failure on the server side
    ├── DirectoryError                the office directory (LDAP, AD) cannot be used
    │   └── DirectoryUnavailable      not reachable, TLS refused, or the service bind failed
    └── ConfigError                   an option or setting that cannot work
        └── ConfigFileError           the configuration file is missing, not TOML, or
                                      holds an unknown key or a wrong value
"""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """The ``code`` of an ``error`` frame; stable, documented in docs/protocol.md."""

    BAD_REQUEST = "bad_request"
    UNKNOWN_TYPE = "unknown_type"
    AUTH_REQUIRED = "auth_required"
    AUTH_FAILED = "auth_failed"
    RATE_LIMITED = "rate_limited"
    NOT_MEMBER = "not_member"
    NO_SUCH_USER = "no_such_user"
    NO_SUCH_ROOM = "no_such_room"
    NO_SUCH_MESSAGE = "no_such_message"
    FORBIDDEN = "forbidden"
    ROOM_EXISTS = "room_exists"
    TOO_LARGE = "too_large"
    FRAME_TOO_LARGE = "frame_too_large"
    SLOW_CONSUMER = "slow_consumer"
    SERVER_ERROR = "server_error"
    SHUTTING_DOWN = "shutting_down"
    UNSUPPORTED_PROTOCOL = "unsupported_protocol"
    TOO_MANY_SESSIONS = "too_many_sessions"
    TOO_MANY_ROOMS = "too_many_rooms"
    NO_SUCH_DEVICE = "no_such_device"
    NO_SUCH_FILE = "no_such_file"
    FILE_TOO_LARGE = "file_too_large"
    QUOTA_EXCEEDED = "quota_exceeded"
    TOO_MANY_UPLOADS = "too_many_uploads"
    FILES_DISABLED = "files_disabled"
    BAD_TICKET = "bad_ticket"
    MENTION_LIMITED = "mention_limited"


class SecureChatError(Exception):
    """Root of every error securechat raises on purpose."""

    code: ErrorCode = ErrorCode.SERVER_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProtocolError(SecureChatError):
    """The peer broke the protocol. ``is_fatal`` errors end the connection.

    ``ref`` is the request's ``ref`` when it could be read, so the error reply can echo it.
    """

    code = ErrorCode.BAD_REQUEST
    is_fatal = False

    def __init__(self, message: str, *, ref: str | None = None) -> None:
        super().__init__(message)
        self.ref = ref


class FrameTooLarge(ProtocolError):
    """A frame header announced 0 bytes or more than max_frame; framing is lost."""

    code = ErrorCode.FRAME_TOO_LARGE
    is_fatal = True


class MalformedMessage(ProtocolError):
    """The frame is not a UTF-8 JSON object with valid fields."""

    code = ErrorCode.BAD_REQUEST


class UnknownMessageType(ProtocolError):
    code = ErrorCode.UNKNOWN_TYPE


class UnexpectedMessage(ProtocolError):
    """A valid message that the session's state does not allow now."""

    def __init__(
        self, message: str, *, code: ErrorCode = ErrorCode.BAD_REQUEST, ref: str | None = None
    ) -> None:
        super().__init__(message, ref=ref)
        self.code = code
        self.is_fatal = code is ErrorCode.AUTH_REQUIRED


class BadProxyHeader(ProtocolError):
    """A PROXY protocol header that is malformed, too long, missing (from a trusted proxy)
    or not allowed (from any other address). It comes before TLS, so nothing is sent back:
    the connection is dropped."""

    is_fatal = True


class RequestError(SecureChatError):
    """A well-formed request the server refuses; the connection stays open."""


class NotMember(RequestError):
    code = ErrorCode.NOT_MEMBER


class NoSuchUser(RequestError):
    code = ErrorCode.NO_SUCH_USER


class NoSuchRoom(RequestError):
    code = ErrorCode.NO_SUCH_ROOM


class NoSuchMessage(RequestError):
    """No message of that id that you may see (or the id is an edit, a deletion, an event)."""

    code = ErrorCode.NO_SUCH_MESSAGE


class NoSuchDevice(RequestError):
    """No signed-in device of that id among yours."""

    code = ErrorCode.NO_SUCH_DEVICE


class Forbidden(RequestError):
    """Your role in the room is too low, or you are muted or banned there; says which."""

    code = ErrorCode.FORBIDDEN


class RoomExists(RequestError):
    """``create`` of a name that is taken (the one way to learn a private room's name)."""

    code = ErrorCode.ROOM_EXISTS


class TooLarge(RequestError):
    code = ErrorCode.TOO_LARGE


class TooManyRooms(RequestError):
    """A join or a creation past the rooms one user may hold (``max_rooms_per_user``)."""

    code = ErrorCode.TOO_MANY_ROOMS


class NoSuchFile(RequestError):
    """No file of that id that you may see: missing and forbidden are the same answer."""

    code = ErrorCode.NO_SUCH_FILE


class FileTooLarge(RequestError):
    code = ErrorCode.FILE_TOO_LARGE


class QuotaExceeded(RequestError):
    """The file would take the user's uploads of the last 24 hours past the daily quota."""

    code = ErrorCode.QUOTA_EXCEEDED


class TooManyUploads(RequestError):
    """More uploads in flight than allowed, for the user or for the node."""

    code = ErrorCode.TOO_MANY_UPLOADS


class FilesDisabled(RequestError):
    """The server has no files folder (PostgreSQL without ``serve --files``)."""

    code = ErrorCode.FILES_DISABLED


class BadTicket(RequestError):
    """A file request whose ticket is missing, unknown, used, expired or for another request."""

    code = ErrorCode.BAD_TICKET


class RateLimited(RequestError):
    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MentionLimited(RateLimited):
    """``@room`` or ``@here`` again too soon (``Limits.room_mention_interval``): a final
    refusal, not resent by the client as a ``rate_limited`` send is."""

    code = ErrorCode.MENTION_LIMITED


class AuthenticationError(SecureChatError):
    """Unknown user, wrong password or disabled account: deliberately indistinguishable."""

    code = ErrorCode.AUTH_FAILED


class TooManySessions(SecureChatError):
    """A login that would exceed the logged-in sessions allowed per user or per address."""

    code = ErrorCode.TOO_MANY_SESSIONS


class UserError(SecureChatError):
    """A user-management mistake made by the admin at the command line."""

    code = ErrorCode.BAD_REQUEST


class InvalidUserName(UserError):
    pass


class WeakPassword(UserError):
    """A new password the policy refuses (too short, too long, too easy to guess); the
    message says why and what would pass, and never quotes the password."""


class UserExistsError(UserError):
    pass


class UnknownUserError(UserError):
    code = ErrorCode.NO_SUCH_USER


class StoreError(SecureChatError):
    """The database cannot be reached or written (locked, full, read-only, bad URL)."""

    code = ErrorCode.SERVER_ERROR


class CertificateError(SecureChatError):
    """Certificate or key files are missing, unreadable, expired or do not match."""


class CertificatesMissing(CertificateError):
    """No certificates where the server looked: often the wrong folder, not a new install."""


class WrongCA(CertificateError):
    """The server's certificate is not signed by the CA we trust (or by any CA we know)."""


class ConnectionLost(SecureChatError):
    """The transport ended: closed by the peer, reset, timed out or a TLS failure."""


class HandshakeFailed(ConnectionLost):
    """Something answered on the port, but the TLS handshake failed: not a TLS 1.3 server."""


class ServerError(SecureChatError):
    """A failure on the server side that the client can only report."""


class DirectoryError(SecureChatError):
    """The office directory (LDAP or Active Directory) answered with something unusable."""

    code = ErrorCode.SERVER_ERROR


class DirectoryUnavailable(DirectoryError):
    """The directory cannot be reached or trusted: no server answered, TLS failed (an
    unknown CA, no StartTLS), or the service account's bind was refused. Never a reason
    to disable anyone."""


class ConfigError(SecureChatError):
    """An option, setting or environment value that cannot work."""


class ConfigFileError(ConfigError):
    """The configuration file (``--config``) cannot be used; the message names the file and,
    where there is one, the key."""
