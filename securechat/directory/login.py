"""Directory login: which logins are the directory's, and how one is checked.

A name that is a local account stays local (break-glass admins) unless the configuration
says ``name_conflict = "directory_wins"`` and the directory has that name too. Every other
login is the directory's: an empty password is refused before any bind (an empty
password is an anonymous bind, which servers accept: RFC 4513 section 5.1.2); the service
account searches for the name (escaped per RFC 4515); the password is checked by binding
as the DN found. An unknown name still costs a bind (to a DN that does not exist), so the
answer's time does not tell who exists. Every failure is the one ``AuthenticationError``
of local logins; the chat's login throttle counts it like any other. A directory that
cannot be reached is :class:`DirectoryUnavailable` instead, which the throttle does not
count and which leaves everyone already logged in (and their resume tokens) alone.
"""

from __future__ import annotations

import dataclasses
import logging

from securechat.accounts import AUTH_FAILED
from securechat.directory.client import DirectoryClient, DirectoryUser
from securechat.directory.mapping import Grants, grants_for
from securechat.directory.settings import DirectoryConfig
from securechat.errors import AuthenticationError, DirectoryError, DirectoryUnavailable
from securechat.protocol.names import normalize_name
from securechat.store.database import Database
from securechat.store.directory import DirectoryStore, Person
from securechat.store.users import Account, NewToken

__all__ = ["DirectoryLogin", "DirectorySignIn"]

log = logging.getLogger("securechat.directory")


@dataclasses.dataclass(frozen=True, slots=True)
class DirectorySignIn:
    """A directory login that stood: the account, its former name if renamed, and the
    room roles its groups give (None: groups could not be read, leave rooms as they are)."""

    account: Account
    renamed_from: str | None
    grants: Grants | None


class DirectoryLogin:
    def __init__(self, config: DirectoryConfig, db: Database, *, max_password: int) -> None:
        """Raises:
        CertificateError: the directory's CA file is unusable."""
        self.config = config
        self.client = DirectoryClient(config)
        self._store = DirectoryStore(db)
        self._max_password = max_password

    def log_in(self, name: str, password: str, token: NewToken) -> DirectorySignIn | None:
        """Check a login with the directory; None when it is a local account's to check.

        Raises:
            AuthenticationError: wrong or empty password, unknown or disabled in the
                directory, or disabled here.
            DirectoryUnavailable: the directory cannot be asked now.
        """
        canonical = normalize_name(name)
        if canonical is None:
            return None  # the local check refuses it, as for any bad name
        kind = self._store.kind_of(canonical)
        if kind == "local" and not self.config.directory_wins:
            return None
        if not password or len(password) > self._max_password:
            raise AuthenticationError(AUTH_FAILED)
        try:
            found = self.client.find_user(canonical)
        except DirectoryUnavailable:
            if kind == "local":  # directory_wins, but a local account must still get in
                log.warning("directory unreachable: %s logs in as a local account", canonical)
                return None
            raise
        if found is None or normalize_name(found.login) != canonical:
            self.client.check_password(None, password)  # as long as a real check
            if kind == "local":
                return None  # directory_wins, but the directory has no such person
            raise AuthenticationError(AUTH_FAILED)
        if not self.client.check_password(found.dn, password):
            raise AuthenticationError(AUTH_FAILED)
        grants = self._grants(found)
        person = Person(found.stable_id, canonical, None if grants is None else grants.is_admin)
        signed = self._store.sign_in(person, token=token, link_local=kind == "local")
        if signed is None:
            log.warning(
                "directory login of %s refused: the account is disabled here, or the name "
                "belongs to another account", canonical,
            )  # fmt: skip
            raise AuthenticationError(AUTH_FAILED)
        if signed.renamed_from is not None:
            log.info("%s was renamed in the directory to %s", signed.renamed_from, canonical)
        return DirectorySignIn(signed.account, signed.renamed_from, grants)

    def _grants(self, user: DirectoryUser) -> Grants | None:
        """The grants of ``user``'s groups; None (logged) when the groups cannot be read."""
        if not self.config.groups:
            return grants_for(self.config, ())
        try:
            groups = self.client.groups_of(user.dn, [group.dn for group in self.config.groups])
        except DirectoryError as exc:
            log.warning("cannot read the groups of %s, rooms left as they are: %s", user.dn, exc)
            return None
        return grants_for(self.config, groups)
