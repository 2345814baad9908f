"""User accounts: adding, authenticating and managing the people who may log in.

Passwords are hashed with argon2id (parameters in ``config.HashParams``, reasons in
docs/security.md) and checked against a NIST SP 800-63B policy: length only. Login failures
are indistinguishable: an unknown user, a wrong password and a disabled account raise the
same :class:`AuthenticationError`, and an unknown user is verified against a dummy hash so
the time taken matches too. Hashing never happens inside a database transaction.

Callers get frozen :class:`Account` values; ORM rows and sessions never leave this module.
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
import hashlib
import logging
import secrets
import unicodedata
from collections.abc import Iterable
from typing import Any

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Row, bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from securechat.config import HashParams, PasswordPolicy
from securechat.errors import (
    AuthenticationError,
    InvalidUserName,
    UnknownUserError,
    UserExistsError,
    WeakPassword,
)
from securechat.hashing import Hasher, make_hasher
from securechat.protocol.names import NAME_RULE, normalize_name
from securechat.store.database import Database
from securechat.store.models import ResumeToken, User, utcnow

log = logging.getLogger(__name__)

#: The one message for every failed login, whatever the reason.
AUTH_FAILED = "invalid user name or password"

DEFAULT_POLICY = PasswordPolicy()


@dataclasses.dataclass(frozen=True, slots=True)
class Account:
    """A user as the rest of securechat sees it: no password hash, no ORM state."""

    id: int
    name: str
    is_admin: bool
    is_disabled: bool
    created_at: dt.datetime
    last_login_at: dt.datetime | None
    credentials_changed_at: dt.datetime | None = None


def canonical_name(raw: str) -> str:
    """The stored (lowercase) form of a user name.

    Raises:
        InvalidUserName: ``raw`` breaks the name rule.
    """
    name = normalize_name(raw)
    if name is None:
        raise InvalidUserName(f"invalid user name {raw!r}: use {NAME_RULE}")
    return name


def _normalize_password(password: str) -> str:
    # NFKC, as SP 800-63B suggests, so the same password typed on two keyboards matches.
    return unicodedata.normalize("NFKC", password)


_ACCOUNT_COLUMNS = (
    User.id, User.name, User.is_admin, User.is_disabled, User.created_at, User.last_login_at,
    User.credentials_changed_at,
)  # fmt: skip


def _to_account(user: User | Row[*tuple[Any, ...]]) -> Account:
    return Account(
        id=user.id,
        name=user.name,
        is_admin=user.is_admin,
        is_disabled=user.is_disabled,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        credentials_changed_at=user.credentials_changed_at,
    )


# Built once: a token login is the hot path of a reconnect storm after a restart, where
# building the statement and loading an ORM object would cost more than the query itself.
_TOKEN_LOGIN = (
    select(*_ACCOUNT_COLUMNS, ResumeToken.expires_at)
    .join(ResumeToken, ResumeToken.user_id == User.id)
    .where(ResumeToken.token_hash == bindparam("token_hash"))
)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _credentials_changed(session: Session, user: User) -> None:
    # Live sessions opened before this time are ended by the server; tokens stop working.
    user.credentials_changed_at = utcnow()
    session.execute(delete(ResumeToken).where(ResumeToken.user_id == user.id))


def _find(session: Session, name: str) -> User | None:
    return session.scalars(select(User).where(User.name == name)).one_or_none()


def _require(session: Session, name: str) -> User:
    user = _find(session, name)
    if user is None:
        raise UnknownUserError(f"no user named {name}")
    return user


class Accounts:
    """The user store's API. Thread-safe: every call uses its own session."""

    def __init__(
        self,
        db: Database,
        *,
        hash_params: HashParams,
        policy: PasswordPolicy = DEFAULT_POLICY,
        hasher: Hasher | None = None,
    ) -> None:
        """``hasher``: where argon2 runs; by default in the calling thread (the server passes
        its pool of hashing processes, server/hashpool.py)."""
        self._db = db
        self._hasher: Hasher = hasher or make_hasher(hash_params)
        self._policy = policy
        self._dummy_hash: str | None = None

    def check_password(self, name: str, password: str) -> None:
        """Apply the password policy; ``name`` is the canonical user name.

        Raises:
            WeakPassword: too short, too long, or the user name itself.
        """
        if len(password) > self._policy.max_length:
            raise WeakPassword(
                f"password is too long: at most {self._policy.max_length} characters"
            )
        if len(password) < self._policy.min_length:
            raise WeakPassword(
                f"password is too short: use at least {self._policy.min_length} characters"
            )
        if password.casefold() == name.casefold():
            raise WeakPassword("password must not be the user name")

    def _new_hash(self, name: str, password: str) -> str:
        self.check_password(name, password)
        return self._hasher.hash(_normalize_password(password))

    def add(self, name: str, password: str, *, admin: bool = False) -> Account:
        """Create a user.

        Raises:
            InvalidUserName, WeakPassword, UserExistsError.
        """
        name = canonical_name(name)
        with self._db.session() as session:
            if _find(session, name) is not None:
                raise UserExistsError(f"user {name} already exists")
        password_hash = self._new_hash(name, password)
        try:
            with self._db.session() as session, session.begin():
                user = User(name=name, password_hash=password_hash, is_admin=admin)
                session.add(user)
                session.flush()
                return _to_account(user)
        except IntegrityError as error:
            raise UserExistsError(f"user {name} already exists") from error

    def authenticate(self, name: str, password: str, *, record_login: bool = True) -> Account:
        """Check a login, record its time and upgrade the hash if the parameters changed.

        The server passes ``record_login=False`` and records the time with its group commit.

        Raises:
            AuthenticationError: unknown user, wrong password or disabled account (one message).
        """
        if len(password) > self._policy.max_length:
            raise AuthenticationError(AUTH_FAILED)
        dummy = self._get_dummy_hash()
        canonical = normalize_name(name)
        with self._db.session() as session:
            user = _find(session, canonical) if canonical is not None else None
            found = (user.id, user.password_hash, user.is_disabled) if user else None
        user_id, stored_hash, is_disabled = found or (None, dummy, True)
        password = _normalize_password(password)
        if not self._verify(stored_hash, password) or is_disabled or user_id is None:
            raise AuthenticationError(AUTH_FAILED)
        new_hash = None
        if self._hasher.check_needs_rehash(stored_hash):
            new_hash = self._hasher.hash(password)
        # With nothing to change the ORM writes nothing: no write lock, no fsync.
        with self._db.session() as session, session.begin():
            row = session.get(User, user_id)
            if row is None or row.is_disabled:
                raise AuthenticationError(AUTH_FAILED)
            if record_login:
                row.last_login_at = utcnow()
            # Only upgrade the hash we verified: a concurrent passwd must win.
            if new_hash is not None and row.password_hash == stored_hash:
                row.password_hash = new_hash
            return _to_account(row)

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except VerificationError:
            return False
        except InvalidHashError:
            log.warning("a stored password hash is not a valid argon2 hash; login refused")
            return False

    def _get_dummy_hash(self) -> str:
        # Made on the first login attempt, whoever it is for, so no attempt stands out.
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(24))
        return self._dummy_hash

    def set_password(self, name: str, password: str) -> None:
        """Replace a user's password.

        Raises:
            InvalidUserName, UnknownUserError, WeakPassword.
        """
        name = canonical_name(name)
        with self._db.session() as session:
            _require(session, name)
        password_hash = self._new_hash(name, password)
        with self._db.session() as session, session.begin():
            user = _require(session, name)
            user.password_hash = password_hash
            _credentials_changed(session, user)

    def delete(self, name: str) -> None:
        """Remove a user.

        Raises:
            InvalidUserName, UnknownUserError.
        """
        name = canonical_name(name)
        with self._db.session() as session, session.begin():
            session.delete(_require(session, name))

    def set_disabled(self, name: str, disabled: bool) -> None:
        """Refuse (or allow again) a user's logins without deleting the account.

        Raises:
            InvalidUserName, UnknownUserError.
        """
        name = canonical_name(name)
        with self._db.session() as session, session.begin():
            user = _require(session, name)
            user.is_disabled = disabled
            if disabled:
                _credentials_changed(session, user)

    # --- resume tokens --------------------------------------------------------------

    def issue_token(self, account: Account, *, ttl: float) -> str:
        """A new random resume token for ``account``, valid ``ttl`` seconds; only its hash is kept."""
        token = secrets.token_urlsafe(32)  # 256 bits
        now = utcnow()
        with self._db.session() as session, session.begin():
            session.execute(
                delete(ResumeToken).where(
                    ResumeToken.user_id == account.id, ResumeToken.expires_at <= now
                )
            )
            session.add(ResumeToken(
                user_id=account.id, token_hash=_token_hash(token), created_at=now,
                expires_at=now + dt.timedelta(seconds=ttl),
            ))  # fmt: skip
        return token

    def authenticate_token(self, name: str, token: str) -> Account:
        """Log in with a resume token instead of the password; read-only.

        Only the server takes token logins, and it records their time with its group commit.

        Raises:
            AuthenticationError: unknown, expired or revoked token, or a disabled account.
        """
        canonical = normalize_name(name)
        with self._db.transaction() as connection:
            row = connection.execute(_TOKEN_LOGIN, {"token_hash": _token_hash(token)}).one_or_none()
            if row is None or canonical is None:
                raise AuthenticationError(AUTH_FAILED)
            if row.name != canonical or row.is_disabled or row.expires_at <= utcnow():
                raise AuthenticationError(AUTH_FAILED)
            return _to_account(row)

    def current(self, names: Iterable[str]) -> dict[str, Account]:
        """The accounts that exist now among ``names`` (to notice changes under live sessions)."""
        with self._db.session() as session:
            users = session.scalars(select(User).where(User.name.in_(set(names))))
            return {user.name: _to_account(user) for user in users}

    def exists(self, name: str) -> bool:
        """Whether a user of that name exists (False for an invalid name)."""
        canonical = normalize_name(name)
        if canonical is None:
            return False
        with self._db.session() as session:
            return _find(session, canonical) is not None

    def get(self, name: str) -> Account:
        """Look a user up by name.

        Raises:
            InvalidUserName, UnknownUserError.
        """
        name = canonical_name(name)
        with self._db.session() as session:
            return _to_account(_require(session, name))

    def list(self) -> builtins.list[Account]:
        """Every user, ordered by name."""
        with self._db.session() as session:
            return [_to_account(u) for u in session.scalars(select(User).order_by(User.name))]
