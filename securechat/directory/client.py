"""The one module that speaks LDAP: ldap3 behind the few questions securechat asks.

Theory of operation. Each question opens a connection to the first of the configured
servers that answers, over TLS made by :func:`securechat.tls.directory_context` (the
configured CA only, host names checked): ``ldaps://`` from the first byte, or ``ldap://``
upgraded by StartTLS before anything else is sent, and refused if the upgrade fails.
It binds as the service account, asks, and closes; nothing is kept between questions,
so a directory that went away and came back needs no reconnect logic. A user's name is
escaped per RFC 4515 (``escape_filter_chars``) before it goes into a filter, and a
password is only ever sent in a bind to the DN the search found. Every failure of the
network, TLS or the service bind becomes :class:`DirectoryUnavailable`; ldap3's own
exceptions never leave this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import math
import secrets
import ssl
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from securechat.directory.settings import DirectoryConfig
from securechat.errors import DirectoryError, DirectoryUnavailable
from securechat.tls import directory_context

with warnings.catch_warnings():
    # ldap3 2.9 imports pyasn1's old names, which pyasn1 0.6 warns about (harmless).
    warnings.simplefilter("ignore", DeprecationWarning)
    import ldap3
    from ldap3.core.exceptions import LDAPException
    from ldap3.utils.conv import escape_filter_chars
    from ldap3.utils.dn import parse_dn

__all__ = [
    "DirectoryClient",
    "DirectoryUser",
    "Probe",
    "escape_filter_chars",
    "normal_dn",
    "stable_id_text",
]

#: LDAP_MATCHING_RULE_IN_CHAIN: Active Directory's "member, directly or through groups".
IN_CHAIN = "1.2.840.113556.1.4.1941"
_PAGE = 500


@dataclasses.dataclass(frozen=True, slots=True)
class DirectoryUser:
    """A person as the directory has them."""

    dn: str
    login: str
    stable_id: str  # objectGUID or entryUUID, as text: the same across renames and moves
    display_name: str | None = None
    mail: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Probe:
    """What a connection showed: for ``doctor`` and ``directory test``."""

    url: str
    tls_version: str
    issuer: str
    not_after: dt.datetime


def normal_dn(dn: str) -> str:
    """A DN in one spelling (case and spaces), to compare DNs from different answers."""
    try:
        parts = parse_dn(dn, escape=False, strip=True)
    except LDAPException:
        return dn.strip().lower()
    return ",".join(f"{attr.lower()}={value.lower()}" for attr, value, _sep in parts)


class _Tls(ldap3.Tls):
    """ldap3's TLS hook, handed our context: ldap3's own check of host names uses
    ``ssl.match_hostname`` (deprecated, gone in Python 3.12); the context checks them."""

    def __init__(self, context: ssl.SSLContext, host: str) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED)
        self._context = context
        self._host = host

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        connection.socket = self._context.wrap_socket(
            connection.socket, do_handshake_on_connect=do_handshake, server_hostname=self._host
        )


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300]


class DirectoryClient:
    """The questions securechat asks the directory. Thread-safe: no state between calls."""

    def __init__(self, config: DirectoryConfig) -> None:
        """Raises:
        CertificateError: the CA file is unusable."""
        self._config = config
        self._context = directory_context(config.ca_file)

    # --- connections ------------------------------------------------------------------

    @contextmanager
    def _session(self) -> Iterator[tuple[ldap3.Connection, str]]:
        """A connection bound as the service account, and the URL it went to.

        Raises:
            DirectoryUnavailable: no server answered over verified TLS, or the service
                account's bind was refused.
        """
        failures: list[str] = []
        for url in self._config.urls:
            try:
                connection = self._open(url)
            except (LDAPException, OSError) as exc:
                failures.append(f"{url}: {_reason(exc)}")
                continue
            try:
                yield connection, url
            except (LDAPException, OSError) as exc:
                raise DirectoryUnavailable(f"{url}: {_reason(exc)}") from exc
            finally:
                _close(connection)
            return
        raise DirectoryUnavailable("no directory server answered: " + "; ".join(failures))

    def _open(self, url: str) -> ldap3.Connection:
        config = self._config
        scheme, _, rest = url.partition("://")
        host = rest.split("/")[0].rsplit(":", 1)[0].strip("[]")
        server = ldap3.Server(
            url, use_ssl=scheme.lower() == "ldaps", tls=_Tls(self._context, host),
            connect_timeout=config.timeout, get_info=ldap3.NONE,
        )  # fmt: skip
        connection = ldap3.Connection(
            server, user=config.bind_dn, password=config.bind_password,
            receive_timeout=math.ceil(config.timeout), read_only=True, auto_referrals=False,
            raise_exceptions=False,
        )  # fmt: skip
        try:
            connection.open(read_server_info=False)
            if scheme.lower() == "ldap" and not (connection.start_tls() and connection.tls_started):
                raise DirectoryUnavailable(f"{url}: StartTLS failed: {connection.last_error}")
            if not connection.bind():
                raise DirectoryUnavailable(
                    f"{url}: the service account's bind was refused: "
                    f"{connection.result.get('description')}"
                )
        except BaseException:
            _close(connection)
            raise
        return connection

    # --- questions --------------------------------------------------------------------

    def _search(
        self, connection: ldap3.Connection, base: str, query: str, attributes: Sequence[str],
        *, scope: str = ldap3.SUBTREE,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Every entry found, paged; a missing base is an error (not an empty answer).

        Raises:
            DirectoryError: the directory refused the search.
        """
        found = connection.extend.standard.paged_search(
            base, query, search_scope=scope, attributes=list(attributes), paged_size=_PAGE,
            generator=False,
        )  # fmt: skip
        result = connection.result or {}
        if result.get("result", 0) != 0:
            raise DirectoryError(
                f"search under {base} failed: {result.get('description')} "
                f"{result.get('message') or ''}".strip()
            )
        return [entry for entry in found if entry.get("type") == "searchResEntry"]

    def _user_attributes(self) -> tuple[str, ...]:
        config = self._config
        return (
            config.login_attribute, config.id_attribute, config.display_name_attribute,
            config.mail_attribute,
        )  # fmt: skip

    def _to_user(self, entry: dict[str, Any]) -> DirectoryUser | None:
        config = self._config
        raw = {key.lower(): value for key, value in entry["raw_attributes"].items()}
        login = _first_text(raw.get(config.login_attribute.lower()))
        stable = raw.get(config.id_attribute.lower()) or []
        if login is None or not stable:
            return None
        return DirectoryUser(
            dn=entry["dn"],
            login=login,
            stable_id=stable_id_text(stable[0]),
            display_name=_first_text(raw.get(config.display_name_attribute.lower())),
            mail=_first_text(raw.get(config.mail_attribute.lower())),
        )

    def find_user(self, name: str) -> DirectoryUser | None:
        """The enabled user whose login name is ``name``, or None (unknown, disabled, or
        not matching the filter, or more than one match).

        Raises:
            DirectoryUnavailable, DirectoryError.
        """
        config = self._config
        query = f"(&{config.user_filter}({config.login_attribute}={escape_filter_chars(name)}))"
        with self._session() as (connection, _url):
            entries = self._search(connection, config.user_base, query, self._user_attributes())
            users = [user for user in map(self._to_user, entries) if user is not None]
            if len(users) != 1:
                return None
            # Asked apart, not as (!disabled) in the query: where the directory does not know
            # the disabled rule's attribute (OpenLDAP without ppolicy), the rule is Undefined,
            # and so is its negation, which would hide everyone (RFC 4511 4.5.1.7).
            disabled = self._search(
                connection, users[0].dn, config.disabled_filter, ["1.1"], scope=ldap3.BASE
            )
        return None if disabled else users[0]

    def check_password(self, dn: str | None, password: str) -> bool:
        """Whether ``password`` binds as ``dn``. ``dn`` None binds as a name that does not
        exist, so an unknown user costs the round trip a known one does.

        Raises:
            DirectoryUnavailable: no server answered.
        """
        if not password:  # an empty password would be an anonymous bind (RFC 4513 5.1.2)
            return False
        who = dn or f"cn=securechat-{secrets.token_hex(8)},{self._config.user_base}"
        with self._session() as (connection, _url):
            bound = connection.rebind(user=who, password=password)
            if not bound and connection.result.get("result") not in (49, 32, 53):
                raise DirectoryUnavailable(
                    f"bind as {who} failed: {connection.result.get('description')}"
                )
            return bool(bound) and dn is not None

    def users(self) -> tuple[list[DirectoryUser], set[str]]:
        """Every user matching the filter, and the DNs (normal) of the disabled among them.

        Raises:
            DirectoryUnavailable, DirectoryError.
        """
        config = self._config
        with self._session() as (connection, _url):
            entries = self._search(
                connection, config.user_base, config.user_filter, self._user_attributes()
            )
            disabled = self._search(
                connection, config.user_base,
                f"(&{config.user_filter}{config.disabled_filter})", ["1.1"],
            )  # fmt: skip
        users = [user for user in map(self._to_user, entries) if user is not None]
        return users, {normal_dn(entry["dn"]) for entry in disabled}

    def members(self, group_dns: Sequence[str]) -> dict[str, set[str]]:
        """Each group's members' DNs (normal); through nested groups where the preset says.

        Raises:
            DirectoryUnavailable; DirectoryError: a group does not exist.
        """
        config = self._config
        found: dict[str, set[str]] = {}
        with self._session() as (connection, _url):
            for group in group_dns:
                if config.nested_groups:
                    query = f"(&{config.user_filter}(memberOf:{IN_CHAIN}:={escape_filter_chars(group)}))"
                    self._search(connection, group, "(objectClass=*)", ["1.1"], scope=ldap3.BASE)
                    entries = self._search(connection, config.user_base, query, ["1.1"])
                    found[group] = {normal_dn(entry["dn"]) for entry in entries}
                else:
                    entries = self._search(
                        connection, group, "(objectClass=*)", ["member"], scope=ldap3.BASE
                    )
                    values = entries[0]["raw_attributes"].get("member", []) if entries else []
                    found[group] = {normal_dn(value.decode("utf-8")) for value in values}
        return found

    def groups_of(self, dn: str, group_dns: Sequence[str]) -> set[str]:
        """Which of ``group_dns`` have ``dn`` as a member (nested, where the preset says):
        one small search per group, as at each login.

        Raises:
            DirectoryUnavailable; DirectoryError: a group does not exist.
        """
        rule = f"member:{IN_CHAIN}:" if self._config.nested_groups else "member"
        query = f"({rule}={escape_filter_chars(dn)})"
        found: set[str] = set()
        with self._session() as (connection, _url):
            for group in group_dns:
                self._search(connection, group, "(objectClass=*)", ["1.1"], scope=ldap3.BASE)
                if self._search(connection, group, query, ["1.1"], scope=ldap3.BASE):
                    found.add(group)
        return found

    def probe(self) -> Probe:
        """Connect and bind as the service account; what the TLS connection showed.

        Raises:
            DirectoryUnavailable.
        """
        with self._session() as (connection, url):
            sock = connection.socket
            assert isinstance(sock, ssl.SSLSocket)
            cert = sock.getpeercert() or {}
            version = sock.version() or "?"
        issuer = ", ".join(
            f"{pair[0]}={pair[1]}" for part in cert.get("issuer", ()) for pair in part
        )
        not_after = dt.datetime.fromtimestamp(
            ssl.cert_time_to_seconds(str(cert.get("notAfter"))), dt.UTC
        )
        return Probe(url=url, tls_version=version, issuer=issuer, not_after=not_after)


def _close(connection: ldap3.Connection) -> None:
    """Unbind and close, whatever state a failure left the connection in."""
    sock = connection.socket
    with contextlib.suppress(LDAPException, OSError):  # a broken connection: closed below
        connection.unbind()
    if sock is not None:
        sock.close()


def _first_text(values: list[bytes] | None) -> str | None:
    if not values:
        return None
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        return None


def stable_id_text(raw: bytes) -> str:
    """objectGUID is 16 bytes (little-endian GUID); entryUUID is text already."""
    if len(raw) == 16:
        return str(uuid.UUID(bytes_le=raw))
    return raw.decode("utf-8").lower()
