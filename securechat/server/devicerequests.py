"""The requests of "stay signed in" (#26): a device login, its grant, and "your devices".

One :class:`DeviceSessions` is shared by the web port's connections (any thread: every
call goes to the store in its own transaction). A device login is treated like a resume
token's: the credential (256 bits, from the cookie the upgrade carried) cannot be guessed,
so it spends no argon2 check and no throttle attempt, and it issues the session's resume
token as a password login does.
"""

from __future__ import annotations

import datetime as dt

from securechat.accounts import AUTH_FAILED, Account
from securechat.config import Limits
from securechat.devices import DeviceInfo, Devices
from securechat.errors import AuthenticationError, NoSuchDevice
from securechat.protocol.devices import DeviceEntry, DeviceGrant, DeviceList, SignOutDevice
from securechat.server.webdevices import device_name


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class DeviceSessions:
    def __init__(self, devices: Devices, *, limits: Limits) -> None:
        self._devices = devices
        self._limits = limits

    def login(self, name: str, credential: str | None) -> tuple[Account, str, int]:
        """The account, its new resume token and the device's id.

        Raises:
            AuthenticationError: no valid cookie came with the upgrade, or it is another
                user's, or it was revoked or went idle since.
        """
        if credential is None:
            raise AuthenticationError(AUTH_FAILED)
        limits = self._limits
        login, token = self._devices.authenticate(
            name, credential, token_ttl=limits.token_ttl, max_tokens=limits.max_tokens_per_user
        )
        return login.account, token, login.device.id

    def grant(self, account: Account, user_agent: str) -> DeviceGrant:
        """A grant for a new device of ``account``, named after its browser."""
        grant = self._devices.grant(account, name=device_name(user_agent))
        return DeviceGrant(grant=grant, expires_in=int(self._limits.device_grant_ttl))

    def listing(self, account: Account, current: int | None, ref: str | None) -> DeviceList:
        found = self._devices.list(account)
        return DeviceList(devices=tuple(_entry(d, current) for d in found), ref=ref)

    def sign_out(self, account: Account, request: SignOutDevice, current: int | None) -> DeviceList:
        """End one device; the listing that is left.

        Raises:
            NoSuchDevice: not one of the user's.
        """
        if not self._devices.sign_out(account, request.id):
            raise NoSuchDevice(f"no signed-in device {request.id} of yours")
        return self.listing(account, current, request.ref)

    def sign_out_everywhere(self, account: Account) -> None:
        self._devices.sign_out_everywhere(account)


def _entry(device: DeviceInfo, current: int | None) -> DeviceEntry:
    return DeviceEntry(
        id=device.id, name=device.name, created=_iso(device.created_at),
        last_used=_iso(device.last_used_at), current=device.id == current,
    )  # fmt: skip
