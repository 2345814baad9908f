"""The ``[directory]`` table of the configuration file: its keys, its presets, and the
frozen :class:`DirectoryConfig` the server and the ``directory`` commands run with.

A preset ("active-directory" or "openldap") fills in the attributes, the user filter, the
rule for a disabled account and how groups nest; any of them can be set in the table
instead. The checks that make a directory safe to use happen here, when the file is
read, so ``serve`` refuses to start rather than run half-protected: every URL is
``ldaps://``, or ``ldap://`` with ``start_tls = true``; a CA file is named (certificates
are always verified, against it alone); the service account's password comes from a file.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from securechat.config_file import Key, Kind, Settings, read_secret
from securechat.errors import ConfigFileError
from securechat.protocol.names import normalize_name

__all__ = [
    "PRESETS",
    "TABLE",
    "DirectoryConfig",
    "GroupMapping",
    "Preset",
    "from_settings",
    "parse_duration",
    "schema",
]

#: The table's name in the configuration file.
TABLE = "directory"
LOCAL_WINS = "local_wins"
DIRECTORY_WINS = "directory_wins"


@dataclasses.dataclass(frozen=True, slots=True)
class Preset:
    """What differs between directory products: attribute names and filters."""

    login_attribute: str
    display_name_attribute: str
    mail_attribute: str
    id_attribute: str  # stable across renames and moves: the account's key
    user_filter: str
    disabled_filter: str  # matches the accounts the directory has disabled
    nested_groups: bool  # group members found through LDAP_MATCHING_RULE_IN_CHAIN


PRESETS: Mapping[str, Preset] = {
    "active-directory": Preset(
        login_attribute="sAMAccountName",
        display_name_attribute="displayName",
        mail_attribute="mail",
        id_attribute="objectGUID",
        user_filter="(&(objectCategory=person)(objectClass=user))",
        disabled_filter="(userAccountControl:1.2.840.113556.1.4.803:=2)",  # ACCOUNTDISABLE
        nested_groups=True,
    ),
    "openldap": Preset(
        login_attribute="uid",
        display_name_attribute="cn",
        mail_attribute="mail",
        id_attribute="entryUUID",
        user_filter="(objectClass=inetOrgPerson)",
        disabled_filter="(pwdAccountLockedTime=*)",  # the ppolicy overlay's lock
        nested_groups=False,
    ),
}


@dataclasses.dataclass(frozen=True, slots=True)
class GroupMapping:
    """A directory group and what its members get here: rooms (as members or
    moderators) and, with ``admin``, the server admin role."""

    dn: str
    rooms: tuple[str, ...] = ()
    role: str = "member"
    admin: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class DirectoryConfig:
    """Directory login and sync, as the ``[directory]`` table sets them."""

    urls: tuple[str, ...]
    ca_file: Path
    bind_dn: str
    bind_password: str = dataclasses.field(repr=False)
    user_base: str
    preset: str = "openldap"
    start_tls: bool = False
    user_filter: str = ""
    login_attribute: str = ""
    display_name_attribute: str = ""
    mail_attribute: str = ""
    id_attribute: str = ""
    disabled_filter: str = ""
    nested_groups: bool = False
    groups: tuple[GroupMapping, ...] = ()
    sync_interval: float | None = 15 * 60.0  # seconds; None: only `directory sync`
    max_disable_share: float = 0.10
    name_conflict: str = LOCAL_WINS
    timeout: float = 10.0  # seconds, for each connection and each operation

    @property
    def directory_wins(self) -> bool:
        """A name both local and in the directory goes to the directory's person."""
        return self.name_conflict == DIRECTORY_WINS

    def mapped_rooms(self) -> tuple[str, ...]:
        """Every room some group maps to, sorted."""
        return tuple(sorted({room for group in self.groups for room in group.rooms}))


_GROUP_FIELDS: Mapping[str, Key] = {
    "dn": Key(Kind.STRING),
    "rooms": Key(Kind.STRING_LIST),
    "role": Key(Kind.STRING, choices=("member", "moderator")),
    "admin": Key(Kind.BOOLEAN),
}

_REQUIRED = ("url", "ca", "bind_dn", "bind_password_file", "user_base")


def schema() -> Mapping[str, Key]:
    """The keys of the ``[directory]`` table (docs/deploy.md, 'Sign in with Active
    Directory or LDAP')."""
    text = Key(Kind.STRING)
    return {
        "preset": Key(Kind.STRING, choices=tuple(PRESETS)),
        "url": Key(Kind.STRING_LIST),
        "start_tls": Key(Kind.BOOLEAN),
        "ca": Key(Kind.PATH),
        "bind_dn": text,
        "bind_password_file": Key(Kind.PATH),
        "user_base": text,
        "user_filter": text,
        "login_attribute": text,
        "display_name_attribute": text,
        "mail_attribute": text,
        "id_attribute": text,
        "disabled_filter": text,
        "sync_interval": text,
        "max_disable_share": Key(Kind.FLOAT, minimum=0.0, maximum=1.0),
        "name_conflict": Key(Kind.STRING, choices=(LOCAL_WINS, DIRECTORY_WINS)),
        "timeout": Key(Kind.FLOAT, minimum=1.0, maximum=300.0),
        "group": Key(Kind.TABLES, fields=_GROUP_FIELDS, required=("dn",)),
    }


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float | None:
    """Seconds in ``"90s"``, ``"15m"``, ``"1h"`` (a bare number is seconds); ``"off"``: None.

    Raises:
        ValueError: anything else, or less than a second.
    """
    if text.strip().lower() == "off":
        return None
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 90s, 15m or 1h (or off)")
    seconds = float(match[1]) * _UNITS[match[2]]
    if seconds < 1:
        raise ValueError(f"{text!r} is shorter than a second")
    return seconds


def from_settings(settings: Settings) -> DirectoryConfig | None:
    """The ``[directory]`` table of a checked file, or None when it has none.

    Raises:
        ConfigFileError: a required key is missing, a URL is plain ``ldap://`` without
            ``start_tls``, a duration is malformed, or the password file is unusable.
    """
    table: Mapping[str, Any] | None = settings.tables.get(TABLE)
    if table is None:
        return None
    where = f"{settings.path}: [{TABLE}]"
    missing = [key for key in _REQUIRED if key not in table]
    if missing:
        raise ConfigFileError(f"{where} needs {', '.join(map(repr, missing))}")
    preset_name = table.get("preset", "openldap")
    preset = PRESETS[preset_name]
    start_tls = bool(table.get("start_tls", False))
    urls = tuple(table["url"])
    _check_urls(where, urls, start_tls=start_tls)
    try:
        interval = parse_duration(table.get("sync_interval", "15m"))
    except ValueError as exc:
        raise ConfigFileError(f"{where}: sync_interval: {exc}") from exc
    password = read_secret(
        Path(table["bind_password_file"]), key="bind_password_file", settings=settings.path
    )
    user_filter = table.get("user_filter", preset.user_filter)
    disabled_filter = table.get("disabled_filter", preset.disabled_filter)
    for key, value in (("user_filter", user_filter), ("disabled_filter", disabled_filter)):
        if not (value.startswith("(") and value.endswith(")")):
            raise ConfigFileError(f"{where}: {key} must be an LDAP filter in parentheses")
    return DirectoryConfig(
        urls=urls,
        ca_file=Path(table["ca"]),
        bind_dn=table["bind_dn"],
        bind_password=password,
        user_base=table["user_base"],
        preset=preset_name,
        start_tls=start_tls,
        user_filter=user_filter,
        login_attribute=table.get("login_attribute", preset.login_attribute),
        display_name_attribute=table.get("display_name_attribute", preset.display_name_attribute),
        mail_attribute=table.get("mail_attribute", preset.mail_attribute),
        id_attribute=table.get("id_attribute", preset.id_attribute),
        disabled_filter=disabled_filter,
        nested_groups=preset.nested_groups,
        groups=tuple(_group(where, n, item) for n, item in enumerate(table.get("group", []), 1)),
        sync_interval=interval,
        max_disable_share=table.get("max_disable_share", 0.10),
        name_conflict=table.get("name_conflict", LOCAL_WINS),
        timeout=float(table.get("timeout", 10.0)),
    )


def _check_urls(where: str, urls: tuple[str, ...], *, start_tls: bool) -> None:
    if not urls:
        raise ConfigFileError(f"{where}: url names no server")
    for url in urls:
        scheme = url.partition("://")[0].lower()
        if scheme == "ldap" and not start_tls:
            raise ConfigFileError(
                f"{where}: {url} is plain LDAP: passwords would cross the network in clear. "
                "Use ldaps://, or set start_tls = true"
            )
        if scheme == "ldaps" and start_tls:
            raise ConfigFileError(
                f"{where}: {url} is LDAP over TLS already; start_tls goes with ldap:// URLs"
            )
        if scheme not in ("ldap", "ldaps"):
            raise ConfigFileError(f"{where}: {url} is not an ldaps:// or ldap:// URL")


def _group(where: str, n: int, item: Mapping[str, Any]) -> GroupMapping:
    rooms = tuple(item.get("rooms", ()))
    canonical = tuple(normalize_name(room) for room in rooms)
    bad = [room for room, name in zip(rooms, canonical, strict=True) if name is None]
    if bad:
        raise ConfigFileError(f"{where}: group number {n}: bad room name {bad[0]!r}")
    return GroupMapping(
        dn=item["dn"],
        rooms=tuple(name for name in canonical if name is not None),
        role=item.get("role", "member"),
        admin=bool(item.get("admin", False)),
    )
