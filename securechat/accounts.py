"""User accounts: the rules for who may log in, and the argon2 work behind them.

Passwords are hashed with argon2id (parameters in ``config.HashParams``, reasons in
docs/security.md) and checked against a NIST SP 800-63B policy: length, and how easily
they are guessed (zxcvbn, :mod:`securechat.password_strength`). Login failures are
indistinguishable: an unknown user, a wrong password and a disabled account raise the
same :class:`AuthenticationError`, and an unknown user is verified against a dummy hash
so the time taken matches too. Hashing never happens inside a database transaction.

A password check takes a while and runs outside any transaction, so ``passwd`` or
``disable`` may commit while it runs. A login therefore ends with one transaction that
succeeds only if the hash it verified and the credentials time it read are still the
stored ones, and the resume token, if any, is issued in that same transaction: a login
that raced a credential change gets neither a session nor a token.

The queries are in :mod:`securechat.store.users`; callers get its frozen :class:`Account`
values.
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
import hashlib
import logging
import secrets
import unicodedata

from argon2.exceptions import InvalidHashError, VerificationError

from securechat.config import HashParams, PasswordPolicy
from securechat.errors import (
    AuthenticationError,
    InvalidUserName,
    UserError,
    UserExistsError,
    WeakPassword,
)
from securechat.hashing import Hasher, make_hasher
from securechat.password_strength import estimate
from securechat.protocol.names import NAME_RULE, normalize_name
from securechat.store.database import Database
from securechat.store.directory import NO_LOCAL_PASSWORD
from securechat.store.users import Account, Credentials, NewToken, Standing, UserStore

__all__ = [
    "AUTH_FAILED",
    "DEFAULT_POLICY",
    "Account",
    "Accounts",
    "canonical_name",
    "new_resume_token",
]

log = logging.getLogger(__name__)

#: The one message for every failed login, whatever the reason.
AUTH_FAILED = "invalid user name or password"

DEFAULT_POLICY = PasswordPolicy()

#: What always passes, after zxcvbn's own suggestions.
_PASSPHRASE_ADVICE = "A longer passphrase of several unrelated words would pass."


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


@dataclasses.dataclass(frozen=True, slots=True)
class _Checked:
    """A verified password, and the stored credentials it was verified against."""

    seen: Credentials
    new_hash: str | None  # a rehash with the current parameters, if they changed


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_resume_token(*, ttl: float, keep: int) -> tuple[str, NewToken]:
    """A new resume token (256 bits) and what the store keeps of it: its hash, valid
    ``ttl`` seconds; the user's oldest beyond ``keep`` are revoked when it is stored."""
    token = secrets.token_urlsafe(32)
    return token, NewToken(_token_hash(token), ttl=ttl, keep=keep)


class Accounts:
    """The user accounts' API. Thread-safe: every call uses its own session."""

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
        self._store = UserStore(db)
        self._hasher: Hasher = hasher or make_hasher(hash_params)
        self._policy = policy
        self._dummy_hash: str | None = None

    def check_password(self, name: str, password: str) -> None:
        """Apply the password policy; ``name`` is the canonical user name.

        Raises:
            WeakPassword: too short, too long, or too easy to guess (zxcvbn's score below
                the policy's, counting the user name and the policy's context words); the
                message says why and what would pass, and never quotes the password.
        """
        if len(password) > self._policy.max_length:
            raise WeakPassword(
                f"password is too long: at most {self._policy.max_length} characters"
            )
        if len(password) < self._policy.min_length:
            raise WeakPassword(
                f"password is too short: use at least {self._policy.min_length} characters"
            )
        policy = self._policy
        strength = estimate(
            _normalize_password(password),
            (name, *policy.context_words),
            max_length=policy.estimated_length,
        )
        if strength.score < policy.min_score:
            advice = " ".join((*strength.suggestions, _PASSPHRASE_ADVICE))
            raise WeakPassword(
                f"password is too easy to guess: {strength.reason(name, policy.min_score)}. "
                + advice
            )

    def _new_hash(self, name: str, password: str) -> str:
        self.check_password(name, password)
        return self._hasher.hash(_normalize_password(password))

    def add(self, name: str, password: str, *, admin: bool = False) -> Account:
        """Create a user.

        Raises:
            InvalidUserName, WeakPassword, UserExistsError.
        """
        name = canonical_name(name)
        if self._store.exists(name):  # before the slow hash
            raise UserExistsError(f"user {name} already exists")
        return self._store.add(name, self._new_hash(name, password), admin=admin)

    def authenticate(self, name: str, password: str) -> Account:
        """Check a login, record its time and upgrade the hash if the parameters changed.

        Raises:
            AuthenticationError: unknown user, wrong password or disabled account (one message),
                or the credentials changed while they were being checked.
        """
        return self._confirm(self._check(name, password), record_time=True)

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
        token, new_token = new_resume_token(ttl=token_ttl, keep=max_tokens)
        return self._confirm(checked, record_time=False, token=new_token), token

    def _check(self, name: str, password: str) -> _Checked:
        """Verify ``password`` against the stored hash, outside any transaction.

        Raises:
            AuthenticationError: as :meth:`authenticate`.
        """
        if len(password) > self._policy.max_length:
            raise AuthenticationError(AUTH_FAILED)
        dummy = self._get_dummy_hash()
        canonical = normalize_name(name)
        seen = self._store.credentials(canonical) if canonical is not None else None
        password = _normalize_password(password)
        # A directory account has no local password: checked against the dummy, and refused.
        if seen is None or seen.password_hash == NO_LOCAL_PASSWORD:
            self._verify(dummy, password)
            raise AuthenticationError(AUTH_FAILED)
        stored_hash = seen.password_hash
        if not self._verify(stored_hash, password) or seen.is_disabled:
            raise AuthenticationError(AUTH_FAILED)
        if self._hasher.check_needs_rehash(stored_hash):
            return _Checked(seen, new_hash=self._hasher.hash(password))
        return _Checked(seen, new_hash=None)

    def _confirm(
        self, checked: _Checked, *, record_time: bool, token: NewToken | None = None
    ) -> Account:
        """The login stands only if the hash just verified is still the stored one, with the
        same credentials time, and the account is still enabled: checked and written (rehash,
        login time, token) in one transaction.

        Raises:
            AuthenticationError: the user was deleted, disabled, or given new credentials.
        """
        seen = checked.seen
        account = self._store.confirm_login(
            seen,
            password_hash=checked.new_hash or seen.password_hash,
            record_time=record_time,
            token=token,
        )
        if account is None:
            raise AuthenticationError(AUTH_FAILED)
        return account

    def spend_a_check(self, password: str) -> None:
        """Verify ``password`` against the dummy hash: a failed directory login then takes
        at least as long as a failed local one, so the time does not tell which names
        are local accounts."""
        self._verify(
            self._get_dummy_hash(), _normalize_password(password[: self._policy.max_length])
        )

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
        """Replace a user's password; live sessions end and resume tokens stop working.

        Raises:
            InvalidUserName, UnknownUserError, WeakPassword; UserError: a directory
                account, whose password is the directory's.
        """
        name = canonical_name(name)
        account = self._store.get(name)  # an unknown user is told so before the slow hash
        if account.directory_id is not None:
            raise UserError(f"{name} signs in through the directory: change the password there")
        password_hash = self._new_hash(name, password)
        self._store.change(name, password_hash=password_hash, credentials_changed=True)

    def delete(self, name: str) -> None:
        """Remove a user.

        Raises:
            InvalidUserName, UnknownUserError.
        """
        self._store.delete(canonical_name(name))

    def set_disabled(self, name: str, disabled: bool) -> None:
        """Refuse (or allow again) a user's logins without deleting the account.

        Disabling ends live sessions and revokes resume tokens, as a new password does.

        Raises:
            InvalidUserName, UnknownUserError.
        """
        self._store.change(canonical_name(name), disabled=disabled, credentials_changed=disabled)

    # --- resume tokens --------------------------------------------------------------

    def authenticate_token(self, name: str, token: str) -> Account:
        """Log in with a resume token instead of the password; read-only.

        Only the server takes token logins, and it records their time with its group commit.

        Raises:
            AuthenticationError: unknown, expired or revoked token, a disabled account, or a
                token issued before the user's credentials last changed.
        """
        canonical = normalize_name(name)
        stored = self._store.find_token(_token_hash(token))
        if stored is None or canonical is None:
            raise AuthenticationError(AUTH_FAILED)
        account = stored.account
        if account.name != canonical or account.is_disabled:
            raise AuthenticationError(AUTH_FAILED)
        if stored.expires_at <= dt.datetime.now(dt.UTC):
            raise AuthenticationError(AUTH_FAILED)
        changed_at = account.credentials_changed_at
        if changed_at is not None and stored.created_at < changed_at:
            raise AuthenticationError(AUTH_FAILED)
        return account

    def revoke_token(self, token: str) -> None:
        """Forget one resume token (the client said ``bye``); unknown tokens are ignored."""
        self._store.delete_token(_token_hash(token))

    def ids(self) -> dict[str, int]:
        """Every user's name and id (ids are never reused, so a new id means a new user)."""
        return self._store.ids()

    def standings(self) -> dict[str, Standing]:
        """Every account as it stands now, by name (to notice changes under live sessions)."""
        return self._store.standings()

    def exists(self, name: str) -> bool:
        """Whether a user of that name exists (False for an invalid name)."""
        canonical = normalize_name(name)
        return canonical is not None and self._store.exists(canonical)

    def get(self, name: str) -> Account:
        """Look a user up by name.

        Raises:
            InvalidUserName, UnknownUserError.
        """
        return self._store.get(canonical_name(name))

    def list(self) -> builtins.list[Account]:
        """Every user, ordered by name."""
        return self._store.list()
