"""User accounts: adding, authenticating and managing the people who may log in.

Passwords are hashed with argon2id (parameters in ``config.HashParams``, reasons in
docs/security.md) and checked against a NIST SP 800-63B policy: length only. Login failures
are indistinguishable: an unknown user, a wrong password and a disabled account raise the
same :class:`AuthenticationError`, and an unknown user is verified against a dummy hash so
the time taken matches too. Hashing never happens inside a database transaction.

A password check takes a while and runs outside any transaction, so ``passwd`` or
``disable`` may commit while it runs. A login therefore ends with one transaction that
succeeds only if the hash it verified and the credentials time it read are still the
stored ones, and the resume token, if any, is issued in that same transaction: a login
that raced a credential change gets neither a session nor a token.

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
from sqlalchemy import CursorResult, Row, bindparam, delete, false, select, update
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


@dataclasses.dataclass(frozen=True, slots=True)
class _Checked:
    """A verified password, and the stored state the verification was made against."""

    user_id: int
    password_hash: str
    credentials_changed_at: dt.datetime | None
    new_hash: str | None  # a rehash with the current parameters, if they changed


# Built once: a token login is the hot path of a reconnect storm after a restart, where
# building the statement and loading an ORM object would cost more than the query itself.
_TOKEN_LOGIN = (
    select(
        *_ACCOUNT_COLUMNS, ResumeToken.created_at.label("token_created_at"), ResumeToken.expires_at
    )
    .join(ResumeToken, ResumeToken.user_id == User.id)
    .where(ResumeToken.token_hash == bindparam("token_hash"))
)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _credentials_changed(session: Session, user: User) -> None:
    # Live sessions opened before this time are ended by the server; tokens stop working.
    user.credentials_changed_at = utcnow()
    session.execute(delete(ResumeToken).where(ResumeToken.user_id == user.id))


def _add_token(session: Session, user_id: int, token_hash: str, *, ttl: float, keep: int) -> None:
    """Store a new token; drop the user's expired ones and the oldest beyond ``keep``."""
    now = utcnow()
    session.add(ResumeToken(
        user_id=user_id, token_hash=token_hash, created_at=now,
        expires_at=now + dt.timedelta(seconds=ttl),
    ))  # fmt: skip
    session.flush()
    newest = (
        select(ResumeToken.id)
        .where(ResumeToken.user_id == user_id)
        .order_by(ResumeToken.created_at.desc(), ResumeToken.id.desc())
        .limit(keep)
    )
    session.execute(
        delete(ResumeToken).where(
            ResumeToken.user_id == user_id,
            (ResumeToken.expires_at <= now) | ResumeToken.id.not_in(newest.scalar_subquery()),
        )
    )


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

    def authenticate(self, name: str, password: str) -> Account:
        """Check a login, record its time and upgrade the hash if the parameters changed.

        Raises:
            AuthenticationError: unknown user, wrong password or disabled account (one message),
                or the credentials changed while they were being checked.
        """
        checked = self._check(name, password)
        with self._db.session() as session, session.begin():
            row = self._confirm(session, checked, last_login_at=utcnow())
            return _to_account(row)

    def log_in(
        self, name: str, password: str, *, token_ttl: float, max_tokens: int
    ) -> tuple[Account, str]:
        """The server's password login: check it and issue a resume token in one transaction.

        The token is valid ``token_ttl`` seconds; the user's oldest tokens beyond
        ``max_tokens`` are revoked. The server records the login time with its group commit.

        Raises:
            AuthenticationError: as :meth:`authenticate`.
        """
        checked = self._check(name, password)
        token = secrets.token_urlsafe(32)  # 256 bits
        with self._db.session() as session, session.begin():
            row = self._confirm(session, checked, last_login_at=None)
            _add_token(session, row.id, _token_hash(token), ttl=token_ttl, keep=max_tokens)
            return _to_account(row), token

    def _check(self, name: str, password: str) -> _Checked:
        """Verify ``password`` against the stored hash, outside any transaction.

        Raises:
            AuthenticationError: as :meth:`authenticate`.
        """
        if len(password) > self._policy.max_length:
            raise AuthenticationError(AUTH_FAILED)
        dummy = self._get_dummy_hash()
        canonical = normalize_name(name)
        found: _Checked | None = None
        with self._db.session() as session:
            user = _find(session, canonical) if canonical is not None else None
            if user is not None:
                changed_at = user.credentials_changed_at
                found = _Checked(user.id, user.password_hash, changed_at, new_hash=None)
            is_disabled = user is None or user.is_disabled
        password = _normalize_password(password)
        stored_hash = dummy if found is None else found.password_hash
        if not self._verify(stored_hash, password) or is_disabled or found is None:
            raise AuthenticationError(AUTH_FAILED)
        if self._hasher.check_needs_rehash(stored_hash):
            return dataclasses.replace(found, new_hash=self._hasher.hash(password))
        return found

    def _confirm(
        self, session: Session, checked: _Checked, *, last_login_at: dt.datetime | None
    ) -> User:
        """In the login's transaction: the user, if nothing changed since ``checked`` was read.

        The conditional UPDATE comes first, so it also takes the write lock: no ``passwd``
        can commit between this check and the end of the transaction (SQLite starts a
        transaction at its first write). It stores the rehash, if any, in the same step.

        Raises:
            AuthenticationError: the user was deleted, disabled, or given new credentials.
        """
        changed_at = User.credentials_changed_at
        values: dict[str, object] = {"password_hash": checked.new_hash or checked.password_hash}
        if last_login_at is not None:
            values["last_login_at"] = last_login_at
        result = session.execute(
            update(User)
            .where(
                User.id == checked.user_id,
                User.password_hash == checked.password_hash,
                changed_at.is_(None)
                if checked.credentials_changed_at is None
                else changed_at == checked.credentials_changed_at,
                User.is_disabled == false(),
            )
            .values(values)
            .execution_options(synchronize_session=False)
        )
        if not isinstance(result, CursorResult) or result.rowcount != 1:
            raise AuthenticationError(AUTH_FAILED)
        row = session.get(User, checked.user_id)
        assert row is not None  # updated a moment ago, under this transaction's write lock
        return row

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

    def authenticate_token(self, name: str, token: str) -> Account:
        """Log in with a resume token instead of the password; read-only.

        Only the server takes token logins, and it records their time with its group commit.

        Raises:
            AuthenticationError: unknown, expired or revoked token, a disabled account, or a
                token issued before the user's credentials last changed.
        """
        canonical = normalize_name(name)
        with self._db.transaction() as connection:
            row = connection.execute(_TOKEN_LOGIN, {"token_hash": _token_hash(token)}).one_or_none()
            if row is None or canonical is None:
                raise AuthenticationError(AUTH_FAILED)
            if row.name != canonical or row.is_disabled or row.expires_at <= utcnow():
                raise AuthenticationError(AUTH_FAILED)
            changed_at = row.credentials_changed_at
            if changed_at is not None and row.token_created_at < changed_at:
                raise AuthenticationError(AUTH_FAILED)
            return _to_account(row)

    def revoke_token(self, token: str) -> None:
        """Forget one resume token (the client said ``bye``); unknown tokens are ignored."""
        with self._db.session() as session, session.begin():
            session.execute(delete(ResumeToken).where(ResumeToken.token_hash == _token_hash(token)))

    def ids(self) -> dict[str, int]:
        """Every user's name and id (ids are never reused, so a new id means a new user)."""
        with self._db.session() as session:
            return {name: user_id for name, user_id in session.execute(select(User.name, User.id))}

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
