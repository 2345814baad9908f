"""Devices that stay signed in (#26): the rules behind the "stay signed in" cookie.

After a password login that asked to be remembered, the server makes a *grant*: 256
random bits, valid ``device_grant_ttl`` seconds and once, handed to the page over its
WebSocket. The page trades it (an HTTP POST, server/webdevices.py) for a *credential*,
another 256 bits that only ever travel in an ``HttpOnly`` cookie. A credential signs its
user in while the account is enabled and the device was used within
``device_idle_timeout``; ``passwd``, ``disable``, ``deluser`` and "sign out everywhere"
delete every device (store/users.py), as they revoke resume tokens. Only SHA-256 hashes
are stored, and no secret is ever logged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets

from securechat.accounts import AUTH_FAILED, Account, new_resume_token
from securechat.errors import AuthenticationError
from securechat.store.database import Database
from securechat.store.devices import DeviceInfo, DeviceStore
from securechat.store.users import UserStore

__all__ = ["DeviceInfo", "DeviceLogin", "Devices", "secret_hash"]


def secret_hash(secret: str) -> str:
    """What the store keeps of a grant or credential."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceLogin:
    """A credential that signs in: the device and its account."""

    device: DeviceInfo
    account: Account


class Devices:
    """The signed-in devices' API. Thread-safe: every call uses its own session."""

    def __init__(self, db: Database, *, grant_ttl: float, idle_timeout: float, keep: int) -> None:
        self._store = DeviceStore(db)
        self._users = UserStore(db)
        self._grant_ttl = grant_ttl
        self._idle = idle_timeout
        self._keep = keep

    def grant(self, account: Account, *, name: str) -> str:
        """A new single-use grant for a device of ``account`` named ``name``."""
        grant = secrets.token_urlsafe(32)
        self._store.add_grant(
            account.id, secret_hash(grant), name=name or "a browser",
            ttl=self._grant_ttl, idle=self._idle, keep=self._keep,
        )  # fmt: skip
        return grant

    def redeem(self, grant: str) -> str | None:
        """Trade a grant for a new credential; None: unknown, used or expired."""
        credential = secrets.token_urlsafe(32)
        if not self._store.redeem(secret_hash(grant), secret_hash(credential)):
            return None
        return credential

    def check(self, credential: str) -> DeviceLogin:
        """The device a credential names, if it may sign in now; read-only.

        Raises:
            AuthenticationError: unknown or revoked credential, idle too long, or a
                disabled account.
        """
        found = self._store.find(secret_hash(credential))
        if found is None or found.account.is_disabled:
            raise AuthenticationError(AUTH_FAILED)
        idle_since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self._idle)
        if found.device.last_used_at <= idle_since:
            raise AuthenticationError(AUTH_FAILED)
        return DeviceLogin(found.device, found.account)

    def authenticate(
        self, name: str, credential: str, *, token_ttl: float, max_tokens: int
    ) -> tuple[DeviceLogin, str]:
        """Sign ``name`` in with a device credential: record its use and issue the
        session's resume token (as a password login does), in one transaction.

        Raises:
            AuthenticationError: see :meth:`check`, or the credential is another user's.
        """
        login = self.check(credential)
        if login.account.name != name.lower():
            raise AuthenticationError(AUTH_FAILED)
        token, new_token = new_resume_token(ttl=token_ttl, keep=max_tokens)
        if not self._store.use(login.device.id, new_token):
            raise AuthenticationError(AUTH_FAILED)  # revoked since the check
        return login, token

    def list(self, account: Account) -> list[DeviceInfo]:
        """The user's signed-in devices, most recently used first."""
        return self._store.list(account.id)

    def sign_out(self, account: Account, device_id: int) -> bool:
        """Sign one of the user's devices out; False: no such device of theirs."""
        return self._store.delete(account.id, device_id)

    def forget(self, credential: str) -> None:
        """Forget the device holding ``credential`` (it signs itself out)."""
        self._store.delete_by_credential(secret_hash(credential))

    def sign_out_everywhere(self, account: Account) -> None:
        """End every device, resume token and live session of the user, as ``passwd`` does."""
        self._users.change(account.name, credentials_changed=True)
