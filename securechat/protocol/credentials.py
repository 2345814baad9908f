"""What logs a client in on each connection, and which ``hello`` it refuses to log in to.

Pure bookkeeping for :class:`~securechat.protocol.client.ClientSession`. The password logs
in at first and is dropped at the first ``welcome``, token or not; from then on the resume
token from the last ``welcome`` logs in (with none, the next ``hello`` is a refused login).
Every login after the first is a resumption, which the session follows with a catch-up. A
server speaking another protocol version is refused before any login is tried.
"""

from __future__ import annotations

from securechat.errors import ErrorCode
from securechat.protocol.client_events import LoginRefused
from securechat.protocol.messages import PROTOCOL_VERSION, Auth, Error, Hello, Welcome

__all__ = ["NO_RESUME_TOKEN", "Credentials", "unsupported_protocol"]

#: Why a session whose first welcome brought no token cannot log in again.
NO_RESUME_TOKEN = Error(
    code=ErrorCode.AUTH_REQUIRED,
    message="the server gave no resume token at login, so the session cannot log in again",
)


def unsupported_protocol(hello: Hello) -> Error | None:
    """The refusal of a server that speaks another protocol version; None if it speaks ours."""
    if hello.protocol == PROTOCOL_VERSION:
        return None
    message = (
        f"the server speaks protocol version {hello.protocol} ({hello.server}), "
        f"this client speaks version {PROTOCOL_VERSION}"
    )
    return Error(code=ErrorCode.UNSUPPORTED_PROTOCOL, message=message)


class Credentials:
    """The password until the first ``welcome``, then the resume token the last one brought."""

    def __init__(self, password: str | None, token: str | None) -> None:
        self._password = password
        self.token = token
        self._logins = 0

    @property
    def is_usable(self) -> bool:
        """A password not used yet, or a token."""
        return self._password is not None or self.token is not None

    @property
    def holds_password(self) -> bool:
        return self._password is not None

    def auth(self, user: str) -> Auth:
        """The login to send: with the token when there is one, else with the password."""
        if self.token is not None:
            return Auth(user=user, password=None, token=self.token)
        return Auth(user=user, password=self._password, token=None)

    def refused(self, error: Error) -> LoginRefused:
        return LoginRefused(error, with_token=self.token is not None)

    def welcomed(self, welcome: Welcome) -> bool:
        """Logged in: the password goes, whatever came with the welcome (a token, or none).

        Returns whether this login resumed an earlier one.
        """
        resumed = self._logins > 0
        self._logins += 1
        self._password = None
        self.token = welcome.token or self.token
        return resumed
