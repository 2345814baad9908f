"""Devices that stay signed in: the reads and writes behind :mod:`securechat.devices`.

A device row is made with a grant (the hash of a short-lived, single-use secret the
server hands a page over its WebSocket) and no credential. Trading the grant sets the
credential hash and clears the grant in one conditional UPDATE, so a grant works once.
Only SHA-256 hashes are stored. Each call uses its own session; frozen values come back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import CursorResult, and_, delete, or_, select, update

from securechat.store.database import Database
from securechat.store.models import DEVICE_NAME_MAX, Device, User, utcnow
from securechat.store.users import Account, NewToken, _to_account, add_token


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A device as its user sees it in "your devices"."""

    id: int
    name: str
    created_at: dt.datetime
    last_used_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class StoredDevice:
    """A device credential as found, with the account it signs in."""

    device: DeviceInfo
    account: Account


def _info(row: Device) -> DeviceInfo:
    return DeviceInfo(row.id, row.name, row.created_at, row.last_used_at)


class DeviceStore:
    """The devices table. Thread-safe: every call uses its own session."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add_grant(
        self, user_id: int, grant_hash: str, *, name: str, ttl: float, idle: float, keep: int
    ) -> None:
        """Store a new device waiting for its grant to be traded (valid ``ttl`` seconds).

        Drops the user's untraded grants past their time and devices idle ``idle``
        seconds, then the least recently used beyond ``keep``.
        """
        now = utcnow()
        with self._db.session() as session, session.begin():
            session.execute(
                delete(Device).where(
                    Device.user_id == user_id,
                    or_(
                        and_(Device.credential_hash.is_(None), Device.grant_expires_at <= now),
                        Device.last_used_at <= now - dt.timedelta(seconds=idle),
                    ),
                )
            )
            session.add(Device(
                user_id=user_id, grant_hash=grant_hash, name=name[:DEVICE_NAME_MAX],
                grant_expires_at=now + dt.timedelta(seconds=ttl), created_at=now,
                last_used_at=now,
            ))  # fmt: skip
            session.flush()
            beyond = (
                select(Device.id)
                .where(Device.user_id == user_id)
                .order_by(Device.last_used_at.desc(), Device.id.desc())
                .offset(keep)
            )
            session.execute(delete(Device).where(Device.id.in_(beyond.scalar_subquery())))

    def redeem(self, grant_hash: str, credential_hash: str) -> bool:
        """Trade a grant for a credential; False: unknown, used or expired."""
        now = utcnow()
        with self._db.session() as session, session.begin():
            result = session.execute(
                update(Device)
                .where(
                    Device.grant_hash == grant_hash,
                    Device.credential_hash.is_(None),
                    Device.grant_expires_at > now,
                )
                .values(credential_hash=credential_hash, grant_hash=None, grant_expires_at=None,
                        last_used_at=now)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            return isinstance(result, CursorResult) and result.rowcount == 1

    def find(self, credential_hash: str) -> StoredDevice | None:
        """The device holding ``credential_hash``, with its account; read-only."""
        with self._db.session() as session:
            found = session.execute(
                select(Device, User)
                .join(User, User.id == Device.user_id)
                .where(Device.credential_hash == credential_hash)
            ).one_or_none()
            if found is None:
                return None
            device, user = found
            return StoredDevice(_info(device), _to_account(user))

    def use(self, device_id: int, token: NewToken) -> bool:
        """Record that the device signed in now (its idle time starts again) and store the
        session's resume ``token``, in one transaction; False: the device was revoked."""
        with self._db.session() as session, session.begin():
            result = session.execute(
                update(Device)
                .where(Device.id == device_id)
                .values(last_used_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            if not isinstance(result, CursorResult) or result.rowcount != 1:
                return False
            user_id = session.scalars(select(Device.user_id).where(Device.id == device_id)).one()
            add_token(session, user_id, token)
            return True

    def list(self, user_id: int) -> list[DeviceInfo]:
        """The user's signed-in devices (traded grants only), most recently used first."""
        with self._db.session() as session:
            rows = session.scalars(
                select(Device)
                .where(Device.user_id == user_id, Device.credential_hash.is_not(None))
                .order_by(Device.last_used_at.desc(), Device.id.desc())
            )
            return [_info(row) for row in rows]

    def delete(self, user_id: int, device_id: int) -> bool:
        """Sign one of the user's devices out; False: no such device of theirs."""
        with self._db.session() as session, session.begin():
            result = session.execute(
                delete(Device).where(Device.user_id == user_id, Device.id == device_id)
            )
            return isinstance(result, CursorResult) and result.rowcount == 1

    def delete_by_credential(self, credential_hash: str) -> None:
        """Forget the device holding ``credential_hash`` (its own sign-out); unknown: ignored."""
        with self._db.session() as session, session.begin():
            session.execute(delete(Device).where(Device.credential_hash == credential_hash))
