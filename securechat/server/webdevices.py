"""The web port's side of "stay signed in" (#26): the device cookie and the two POSTs.

The cookie cannot come with the 101 (the login happens after the upgrade), so a page
that logged in with ``remember`` gets a ``device_grant`` over its WebSocket and trades it
with ``POST /ws/device`` (body ``{"grant": "..."}``), whose 204 sets the cookie:
``HttpOnly`` (page scripts never see it), ``Secure``, ``SameSite=Strict`` and ``Path=/ws``
(sent only with the upgrade and these POSTs). ``POST /ws/device/forget`` deletes the
device the cookie names and clears it. Both must come from one of the server's origins,
as the upgrade must. The secrets are never logged. Pure: the :class:`DeviceDoor` given
does the store's work.
"""

from __future__ import annotations

import dataclasses
import http
import json
import logging
import re
from collections.abc import Iterable
from typing import Protocol

from securechat.devices import Devices
from securechat.errors import AuthenticationError, SecureChatError
from securechat.server.webfiles import WEBSOCKET_PATH, Answer, StaticFiles

log = logging.getLogger("securechat.server")

COOKIE_NAME = "securechat_device"
DEVICE_PATH = f"{WEBSOCKET_PATH}/device"
FORGET_PATH = f"{WEBSOCKET_PATH}/device/forget"
PATHS = frozenset({DEVICE_PATH, FORGET_PATH})
#: A grant is 43 characters of base64url; the body is a small JSON object.
MAX_BODY = 1024
_SECRET = re.compile(r"[A-Za-z0-9_-]{20,100}")


class DeviceDoor(Protocol):
    """What the web port needs of the devices store."""

    def redeem(self, grant: str) -> str | None: ...

    def valid(self, credential: str) -> bool: ...

    def forget(self, credential: str) -> None: ...


class StoredDeviceDoor:
    """:class:`DeviceDoor` over :class:`Devices`; a database failure refuses, and is logged."""

    def __init__(self, devices: Devices) -> None:
        self._devices = devices

    def redeem(self, grant: str) -> str | None:
        return self._devices.redeem(grant)

    def valid(self, credential: str) -> bool:
        try:
            self._devices.check(credential)
        except AuthenticationError:
            return False
        except SecureChatError as exc:
            log.warning("cannot check a device cookie: %s", exc.message)
            return False
        return True

    def forget(self, credential: str) -> None:
        self._devices.forget(credential)


def device_cookie(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The device credential among the request's cookies, if it is well formed."""
    for name, value in headers:
        if name.lower() != b"cookie":
            continue
        for pair in value.decode("latin-1").split(";"):
            key, _, found = pair.strip().partition("=")
            if key == COOKIE_NAME and _SECRET.fullmatch(found):
                return found
    return None


def cookie_header(credential: str, *, max_age: int) -> tuple[str, str]:
    return (
        "Set-Cookie",
        f"{COOKIE_NAME}={credential}; Path={WEBSOCKET_PATH}; Max-Age={max_age}; "
        "HttpOnly; Secure; SameSite=Strict",
    )


@dataclasses.dataclass(slots=True)
class DevicePost:
    """A device POST being read: its path, the device cookie it carried, its body so far."""

    path: str
    cookie: str | None
    body: bytes = b""


class DevicePosts:
    """The answers to ``POST /ws/device`` and ``POST /ws/device/forget``."""

    def __init__(self, door: DeviceDoor, files: StaticFiles, *, max_age: int) -> None:
        """``max_age``: the cookie's lifetime in seconds (the idle limit; each use of the
        device in the store restarts that, and the store is what decides)."""
        self._door = door
        self._files = files
        self._max_age = max_age

    def answer(self, path: str, body: bytes, cookie: str | None) -> tuple[Answer, str]:
        """The answer and a reason for the log (never a secret)."""
        if path == FORGET_PATH:
            if cookie is not None:
                self._door.forget(cookie)
            return self._no_content(cookie_header("", max_age=0)), "device forgotten"
        grant = _grant(body)
        if grant is None:
            return self._files.bad_request('expected {"grant": "..."}'), "bad device grant"
        credential = self._door.redeem(grant)
        if credential is None:
            refusal = self._files.forbidden("unknown, used or expired grant")
            return refusal, "refused a device grant"
        return self._no_content(cookie_header(credential, max_age=self._max_age)), "device added"

    def _no_content(self, cookie: tuple[str, str]) -> Answer:
        return Answer(http.HTTPStatus.NO_CONTENT, (*self._files.headers, cookie), b"")


def _grant(body: bytes) -> str | None:
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    grant = parsed.get("grant") if isinstance(parsed, dict) else None
    return grant if isinstance(grant, str) and _SECRET.fullmatch(grant) else None


_BROWSERS = (
    ("Edg/", "Edge"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Windows", "Windows"),
    ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"),
)  # fmt: skip


def device_name(user_agent: str) -> str:
    """A name a person recognises ("Firefox on Linux") from a browser's User-Agent."""
    browser = next((name for key, name in _BROWSERS if key in user_agent), "A browser")
    system = next((name for key, name in _SYSTEMS if key in user_agent), None)
    return browser if system is None else f"{browser} on {system}"
