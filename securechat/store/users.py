"""Users and resume tokens: the reads and writes behind :mod:`securechat.accounts`.

The rules (names, the password policy, argon2, which login stands, what revokes a token)
live in accounts.py; this module only runs the queries, each call in its own session or
transaction, so one ``UserStore`` may be shared by all threads. It hands back frozen
values: no ORM row or session leaves it. Timestamps it writes are taken here, in UTC.
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Row,
    Table,
    bindparam,
    delete,
    false,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from securechat.errors import UnknownUserError, UserExistsError
from securechat.store.database import Database
from securechat.store.models import Device, ResumeToken, User, utcnow


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
    directory_id: str | None = None  # a directory account's stable id; None: a local one


@dataclasses.dataclass(frozen=True, slots=True)
class Credentials:
    """What a password is checked against, as read before the (slow, untransacted) check."""

    user_id: int
    password_hash: str
    changed_at: dt.datetime | None
    is_disabled: bool


@dataclasses.dataclass(frozen=True, slots=True)
class NewToken:
    """A resume token to store: its hash, its lifetime, and how many the user may keep."""

    token_hash: str
    ttl: float  # seconds
    keep: int


@dataclasses.dataclass(frozen=True, slots=True)
class StoredToken:
    """A stored resume token and the account it logs in."""

    account: Account
    created_at: dt.datetime
    expires_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class UserCounts:
    users: int
    enabled_admins: int


_ACCOUNT_COLUMNS = (
    User.id, User.name, User.is_admin, User.is_disabled, User.created_at, User.last_login_at,
    User.credentials_changed_at, User.directory_id,
)  # fmt: skip

# Built once: a token login is the hot path of a reconnect storm after a restart, where
# building the statement and loading an ORM object would cost more than the query itself.
_TOKEN_LOGIN = (
    select(
        *_ACCOUNT_COLUMNS, ResumeToken.created_at.label("token_created_at"), ResumeToken.expires_at
    )
    .join(ResumeToken, ResumeToken.user_id == User.id)
    .where(ResumeToken.token_hash == bindparam("token_hash"))
)

# What the account watcher compares live sessions with, every few seconds: the whole table
# in one Core query (no ORM objects), which at 5,000 users costs a few milliseconds.
_STANDINGS = select(User.name, User.id, User.is_disabled, User.credentials_changed_at)


@dataclasses.dataclass(frozen=True, slots=True)
class Standing:
    """An account as the account watcher sees it: a session logged in under another id,
    or before ``credentials_changed_at``, or of a disabled account, must end."""

    id: int
    is_disabled: bool
    credentials_changed_at: dt.datetime | None


# Plain SQL on the two columns it needs: it also reads a database at an older revision.
_COUNTS = text(
    "SELECT count(*), coalesce(sum(CASE WHEN is_admin AND NOT is_disabled "
    "THEN 1 ELSE 0 END), 0) FROM users"
)


def _to_account(user: User | Row[*tuple[Any, ...]]) -> Account:
    return Account(
        id=user.id,
        name=user.name,
        is_admin=user.is_admin,
        is_disabled=user.is_disabled,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        credentials_changed_at=user.credentials_changed_at,
        directory_id=user.directory_id,
    )


def _find(session: Session, name: str) -> User | None:
    return session.scalars(select(User).where(User.name == name)).one_or_none()


def _require(session: Session, name: str) -> User:
    user = _find(session, name)
    if user is None:
        raise UnknownUserError(f"no user named {name}")
    return user


# The table, not the entity: on a Session too these run as Core, without the ORM's bulk path.
_TOKENS = cast(Table, ResumeToken.__table__)
_ADD_TOKEN = insert(_TOKENS).values(
    user_id=bindparam("t_user"), token_hash=bindparam("t_hash"),
    created_at=bindparam("t_now"), expires_at=bindparam("t_expires"),
)  # fmt: skip
_NEWEST_TOKENS = (
    select(_TOKENS.c.id)
    .where(_TOKENS.c.user_id == bindparam("t_user"))
    .order_by(_TOKENS.c.created_at.desc(), _TOKENS.c.id.desc())
    .limit(bindparam("t_keep"))
)
_PRUNE_TOKENS = delete(_TOKENS).where(
    _TOKENS.c.user_id == bindparam("t_user"),
    (_TOKENS.c.expires_at <= bindparam("t_now"))
    | _TOKENS.c.id.not_in(_NEWEST_TOKENS.scalar_subquery()),
)


def add_token(conn: Session | Connection, user_id: int, token: NewToken) -> None:
    """Store a new token; drop the user's expired ones and the oldest beyond ``token.keep``.

    Core statements built once (a password login's hot path), on a session or a connection.
    """
    now = utcnow()
    expires = now + dt.timedelta(seconds=token.ttl)
    values = {"t_user": user_id, "t_hash": token.token_hash, "t_now": now, "t_expires": expires}
    conn.execute(_ADD_TOKEN, values)
    conn.execute(_PRUNE_TOKENS, {"t_user": user_id, "t_now": now, "t_keep": token.keep})


# A password login's check-and-write, built once: the user still has the credentials the
# hash was checked against (same hash, same change time) and is enabled. Two variants:
# with and without recording the login time.
_CONFIRM_LOGIN = {
    record_time: update(User)
    .where(
        User.id == bindparam("c_user"),
        User.password_hash == bindparam("c_seen_hash"),
        User.credentials_changed_at.is_not_distinct_from(bindparam("c_seen_changed")),
        User.is_disabled == false(),
    )
    .values(
        password_hash=bindparam("c_hash"),
        **({"last_login_at": bindparam("c_now")} if record_time else {}),
    )
    .returning(*_ACCOUNT_COLUMNS)
    for record_time in (False, True)
}


class UserStore:
    """The users and resume tokens tables. Thread-safe: every call uses its own session.

    Names given here are canonical already (accounts.py makes them so).
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, name: str, password_hash: str, *, admin: bool) -> Account:
        """Create a user.

        Raises:
            UserExistsError: the name is taken.
        """
        try:
            with self._db.session() as session, session.begin():
                user = User(name=name, password_hash=password_hash, is_admin=admin)
                session.add(user)
                session.flush()
                return _to_account(user)
        except IntegrityError as error:
            raise UserExistsError(f"user {name} already exists") from error

    def credentials(self, name: str) -> Credentials | None:
        """The stored hash and state a password login is checked against (None: no such user)."""
        with self._db.session() as session:
            user = _find(session, name)
            if user is None:
                return None
            changed_at = user.credentials_changed_at
            return Credentials(user.id, user.password_hash, changed_at, user.is_disabled)

    def confirm_login(
        self,
        seen: Credentials,
        *,
        password_hash: str,
        record_time: bool,
        token: NewToken | None = None,
    ) -> Account | None:
        """In one transaction, if the user is enabled and still has exactly the credentials
        ``seen`` (same hash, same change time): store ``password_hash`` (a rehash, or the
        same), the login time if ``record_time``, and ``token``; then return the account.
        Otherwise write nothing and return None.

        The conditional UPDATE comes first, so it also takes the write lock: no other
        write can commit between the check and the end of the transaction (SQLite starts
        a transaction at its first write).
        """
        values = {
            "c_user": seen.user_id, "c_seen_hash": seen.password_hash,
            "c_seen_changed": seen.changed_at, "c_hash": password_hash, "c_now": utcnow(),
        }  # fmt: skip
        with self._db.transaction() as conn:
            row = conn.execute(_CONFIRM_LOGIN[record_time], values).one_or_none()
            if row is None:
                return None
            if token is not None:
                add_token(conn, seen.user_id, token)
            return _to_account(row)

    def change(
        self,
        name: str,
        *,
        password_hash: str | None = None,
        disabled: bool | None = None,
        credentials_changed: bool = False,
    ) -> None:
        """Update a user; ``credentials_changed`` stamps the time and deletes every token and
        signed-in device.

        Raises:
            UnknownUserError: no user of that name.
        """
        with self._db.session() as session, session.begin():
            user = _require(session, name)
            if password_hash is not None:
                user.password_hash = password_hash
            if disabled is not None:
                user.is_disabled = disabled
                user.directory_disabled = False  # an admin's word: the sync leaves it be
            if credentials_changed:
                user.credentials_changed_at = utcnow()
                session.execute(delete(ResumeToken).where(ResumeToken.user_id == user.id))
                session.execute(delete(Device).where(Device.user_id == user.id))

    def delete(self, name: str) -> None:
        """Remove a user (and, by cascade, their tokens, devices and memberships).

        Raises:
            UnknownUserError: no user of that name.
        """
        with self._db.session() as session, session.begin():
            session.delete(_require(session, name))

    def find_token(self, token_hash: str) -> StoredToken | None:
        """The token stored under ``token_hash``, with its account; read-only."""
        with self._db.transaction() as connection:
            row = connection.execute(_TOKEN_LOGIN, {"token_hash": token_hash}).one_or_none()
        if row is None:
            return None
        return StoredToken(_to_account(row), row.token_created_at, row.expires_at)

    def delete_token(self, token_hash: str) -> None:
        """Forget one token; an unknown hash is ignored."""
        with self._db.session() as session, session.begin():
            session.execute(delete(ResumeToken).where(ResumeToken.token_hash == token_hash))

    def get(self, name: str) -> Account:
        """Look a user up by name.

        Raises:
            UnknownUserError: no user of that name.
        """
        with self._db.session() as session:
            return _to_account(_require(session, name))

    def exists(self, name: str) -> bool:
        with self._db.session() as session:
            return _find(session, name) is not None

    def ids(self) -> dict[str, int]:
        """Every user's name and id."""
        with self._db.session() as session:
            return {name: user_id for name, user_id in session.execute(select(User.name, User.id))}

    def standings(self) -> dict[str, Standing]:
        """Every user's id, whether disabled, and when the credentials last changed, by name."""
        with self._db.transaction() as conn:
            return {
                name: Standing(id_, bool(off), at)
                for name, id_, off, at in conn.execute(_STANDINGS)
            }

    def list(self) -> builtins.list[Account]:
        """Every user, ordered by name."""
        with self._db.session() as session:
            return [_to_account(u) for u in session.scalars(select(User).order_by(User.name))]

    def counts(self) -> UserCounts:
        """How many users there are, and how many of them are enabled administrators."""
        with self._db.session() as session:
            users, admins = session.execute(_COUNTS).one()
        return UserCounts(users, admins)


@dataclasses.dataclass(frozen=True, slots=True)
class Person:
    """An active user in the people list: ``last_seen``, the later of the last login and
    the last session end (None: never logged in)."""

    name: str
    last_seen: dt.datetime | None


def people(conn: Connection, *, after: str | None, limit: int) -> tuple[list[Person], bool]:
    """Every user who is not disabled, in name order after ``after``: at most ``limit``,
    and True if more follow."""
    query = (
        select(User.name, User.last_login_at, User.last_seen_at)
        .where(User.is_disabled == false(), User.name > (after or ""))
        .order_by(User.name)
        .limit(limit + 1)
    )
    found = [
        Person(name, max((t for t in (login, seen) if t is not None), default=None))
        for name, login, seen in conn.execute(query)
    ]
    return found[:limit], len(found) > limit
