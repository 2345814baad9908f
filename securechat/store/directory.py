"""Directory accounts: the writes behind directory login and the directory sync.

A directory account is a row of ``users`` whose ``directory_id`` holds the directory's
stable id for the person; its ``password_hash`` is :data:`NO_LOCAL_PASSWORD`, which no
password matches, so only the directory can log it in. The account is found by that id
first, so a person renamed in the directory keeps their account (their rooms, messages
and direct conversations, all keyed by user id) under the new name. Every change the
directory makes to an account is written to the audit log, by the actor ``directory``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from securechat.store.database import Database
from securechat.store.journal import Actor
from securechat.store.models import AuditEntry, Device, ResumeToken, User, utcnow
from securechat.store.users import Account, NewToken, _to_account, add_token

__all__ = ["DIRECTORY", "NO_LOCAL_PASSWORD", "DirectoryStore", "Person", "SignedIn"]

#: Who the directory's changes are by, in the audit log and on room events.
DIRECTORY = Actor(None, "directory", is_admin=True)
#: The password hash of a directory account: not an argon2 hash, so nothing matches it.
NO_LOCAL_PASSWORD = "!directory"


@dataclasses.dataclass(frozen=True, slots=True)
class Person:
    """Someone the directory vouches for: their stable id, canonical name, and admin
    role (None: the configuration maps no group to admin, so it is left as it is)."""

    stable_id: str
    name: str
    is_admin: bool | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SignedIn:
    """A directory login's account, and its former name if the directory renamed it."""

    account: Account
    renamed_from: str | None = None


def _audit(session: Session, action: str, target: str, detail: str | None = None) -> None:
    session.add(
        AuditEntry(at=utcnow(), actor=DIRECTORY.name, action=action, room=None, target=target,
                   detail=detail)
    )  # fmt: skip


class DirectoryStore:
    """Directory accounts in the users table. Thread-safe: every call has its own session."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def kind_of(self, name: str) -> str | None:
        """``"local"``, ``"directory"`` or None (no account of that canonical name)."""
        with self._db.session() as session:
            row = session.execute(select(User.directory_id).where(User.name == name)).first()
        if row is None:
            return None
        return "local" if row[0] is None else "directory"

    def sign_in(self, person: Person, *, token: NewToken, link_local: bool) -> SignedIn | None:
        """In one transaction: find the account by stable id (renaming it if the directory
        did), or link the local account of that name (``link_local``: the configuration
        says the directory wins), or create it; apply the admin role; store ``token``.

        Returns None, writing nothing, when the account is disabled here or the name is
        held by another account.
        """
        try:
            return self._sign_in(person, token=token, link_local=link_local)
        except IntegrityError:  # the same person's first login from two places at once
            return self._sign_in(person, token=token, link_local=link_local)

    def _sign_in(self, person: Person, *, token: NewToken, link_local: bool) -> SignedIn | None:
        with self._db.session() as session, session.begin():
            by_id = session.scalars(
                select(User).where(User.directory_id == person.stable_id)
            ).one_or_none()
            by_name = session.scalars(select(User).where(User.name == person.name)).one_or_none()
            renamed_from = None
            if by_id is not None:
                if by_id.name != person.name:
                    if by_name is not None:
                        return None  # the new name is taken: an admin must sort it out
                    renamed_from = by_id.name
                    _audit(session, "user_renamed", person.name, f"was {by_id.name}")
                    by_id.name = person.name
                user = by_id
            elif by_name is not None:
                if by_name.directory_id is not None or not link_local:
                    return None  # another directory person's, or a local one that wins
                by_name.directory_id = person.stable_id
                by_name.password_hash = NO_LOCAL_PASSWORD
                by_name.credentials_changed_at = utcnow()  # the local password's tokens go
                session.execute(delete(ResumeToken).where(ResumeToken.user_id == by_name.id))
                session.execute(delete(Device).where(Device.user_id == by_name.id))
                _audit(session, "user_linked", person.name, "local account now the directory's")
                user = by_name
            else:
                user = User(
                    name=person.name, password_hash=NO_LOCAL_PASSWORD,
                    directory_id=person.stable_id, is_admin=bool(person.is_admin),
                )  # fmt: skip
                session.add(user)
                session.flush()
                _audit(session, "user_created", person.name)
            if user.is_disabled:
                return None
            if person.is_admin is not None and user.is_admin != person.is_admin:
                user.is_admin = person.is_admin
                _audit(session, "admin_granted" if person.is_admin else "admin_revoked", user.name)
            user.last_login_at = utcnow()
            session.flush()
            add_token(session, user.id, token)
            return SignedIn(_to_account(user), renamed_from)

    def accounts(self) -> list[Account]:
        """Every directory account, by name."""
        with self._db.session() as session:
            rows = session.scalars(
                select(User).where(User.directory_id.is_not(None)).order_by(User.name)
            )
            return [_to_account(row) for row in rows]

    def disabled_by_sync(self) -> set[int]:
        """The ids of accounts the sync disabled (and may enable again)."""
        with self._db.session() as session:
            return set(session.scalars(select(User.id).where(User.directory_disabled)))

    def set_disabled(self, user_ids: Sequence[int], disabled: bool, reason: str) -> list[str]:
        """Disable (ending sessions, revoking tokens) or enable accounts for the sync;
        only accounts the sync disabled are enabled again. Their names, as changed."""
        changed: list[str] = []
        with self._db.session() as session, session.begin():
            for user_id in user_ids:
                user = session.get(User, user_id)
                if user is None or user.directory_id is None or user.is_disabled == disabled:
                    continue
                if not disabled and not user.directory_disabled:
                    continue  # an admin disabled it: not ours to undo
                user.is_disabled = disabled
                user.directory_disabled = disabled
                if disabled:
                    user.credentials_changed_at = utcnow()
                    session.execute(delete(ResumeToken).where(ResumeToken.user_id == user.id))
                    session.execute(delete(Device).where(Device.user_id == user.id))
                _audit(session, "user_disabled" if disabled else "user_enabled", user.name, reason)
                changed.append(user.name)
        return changed

    def set_admin(self, user_id: int, is_admin: bool) -> bool:
        """Give or take the admin role of a directory account; True if it changed."""
        with self._db.session() as session, session.begin():
            user = session.get(User, user_id)
            if user is None or user.directory_id is None or user.is_admin == is_admin:
                return False
            user.is_admin = is_admin
            _audit(session, "admin_granted" if is_admin else "admin_revoked", user.name)
            return True
