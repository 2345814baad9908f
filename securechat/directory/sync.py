"""The directory sync: directory accounts follow the directory, every ``sync_interval`` in
the server and on ``securechat directory sync``.

Theory of operation. One run reads everything first: the directory accounts here, then
every user the filter matches and which of them the directory has disabled, then the
members of every mapped group. Any failure while reading (the directory unreachable, a
mapped group missing) ends the run before anything is written: an unreachable directory
never disables anyone, and a half-read group never empties a room. Then it plans:

- an account whose person is gone from the directory, no longer matches the filter, or is
  disabled there, is disabled here (its tokens revoked; the server ends its live sessions
  right after its own sync, and after ``securechat directory sync`` within its account
  watcher's ``account_check_interval``); one the sync disabled comes back
  when the directory has the person enabled again (an admin's own ``disable`` stays);
- each enabled account gets the admin role and the room roles its groups map to.

The guard: a run that would disable more than ``max_disable_share`` of the enabled
directory accounts (and more than one: a small office's single leaver goes through)
applies nothing and says so, unless forced. Each change is an audit-log row by
``directory``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable

from securechat.directory.client import DirectoryClient, normal_dn
from securechat.directory.mapping import grants_for
from securechat.directory.placement import Perform, place_rooms
from securechat.directory.settings import DirectoryConfig
from securechat.errors import DirectoryError, StoreError
from securechat.store.database import Database
from securechat.store.directory import DirectoryStore
from securechat.store.users import Account

__all__ = ["DirectorySync", "ServerSync", "SyncReport", "server_sync"]

log = logging.getLogger("securechat.directory")

GONE = "not in the directory, or no longer matching its filter"
DISABLED = "disabled in the directory"


@dataclasses.dataclass(frozen=True, slots=True)
class SyncReport:
    """What a run changed (or, stopped, would have disabled)."""

    disabled: tuple[tuple[str, str], ...] = ()  # (name, why)
    enabled: tuple[str, ...] = ()
    admin: tuple[tuple[str, bool], ...] = ()
    rooms: tuple[tuple[str, str], ...] = ()  # (name, "+dev" / "-dev" / "dev: moderator")
    stopped: str | None = None  # why nothing was applied: the guard

    def lines(self) -> list[str]:
        """One line per change, for the log and the command line."""
        out = [f"disable {name}: {why}" for name, why in self.disabled]
        out += [f"enable {name}: enabled in the directory again" for name in self.enabled]
        out += [f"{'grant' if on else 'revoke'} admin: {name}" for name, on in self.admin]
        out += [f"room {change}: {name}" for name, change in self.rooms]
        return out


class DirectorySync:
    def __init__(self, config: DirectoryConfig, db: Database, perform: Perform) -> None:
        """``perform`` runs the room changes: the server's committer, or the command
        line's own transactions."""
        self._config = config
        self._client = DirectoryClient(config)
        self._store = DirectoryStore(db)
        self._perform = perform

    def run(self, *, force: bool = False) -> SyncReport:
        """Read the directory, then apply what it says.

        Raises:
            DirectoryUnavailable, DirectoryError: the directory could not be read;
                nothing was changed.
            StoreError: the database could not be written.
        """
        config = self._config
        accounts = self._store.accounts()
        if not accounts:
            return SyncReport()
        users, disabled_dns = self._client.users()
        members = self._client.members([group.dn for group in config.groups])
        by_id = {user.stable_id: user for user in users}
        ours = self._store.disabled_by_sync()
        to_disable: list[tuple[Account, str]] = []
        to_enable: list[Account] = []
        for account in accounts:
            user = by_id.get(account.directory_id or "")
            why = GONE if user is None else DISABLED if normal_dn(user.dn) in disabled_dns else None
            if why is not None and not account.is_disabled:
                to_disable.append((account, why))
            elif why is None and account.is_disabled and account.id in ours:
                to_enable.append(account)
        enabled = sum(not account.is_disabled for account in accounts)
        allowed = max(1, math.floor(config.max_disable_share * enabled))
        if len(to_disable) > allowed and not force:
            return SyncReport(
                disabled=tuple((account.name, why) for account, why in to_disable),
                stopped=(
                    f"the directory sync would disable {len(to_disable)} of {enabled} "
                    f"directory accounts, more than max_disable_share "
                    f"({config.max_disable_share:.0%}, at most {allowed}); nothing was "
                    "changed. Check the directory and the filter, then run "
                    "`securechat directory sync --force` to apply it"
                ),
            )
        disabled = self._store.set_disabled([a.id for a, _ in to_disable], True, "directory sync")
        why_of = {account.name: why for account, why in to_disable}
        back = self._store.set_disabled([a.id for a in to_enable], False, "directory sync")
        admin: list[tuple[str, bool]] = []
        rooms: list[tuple[str, str]] = []
        gone = {account.id for account, _ in to_disable}
        for account in accounts:
            user = by_id.get(account.directory_id or "")
            if (
                user is None
                or account.id in gone
                or (account.is_disabled and account not in to_enable)
            ):
                continue
            dn = normal_dn(user.dn)
            groups = {group for group, dns in members.items() if dn in dns}
            grants = grants_for(config, groups)
            if grants.is_admin is not None and self._store.set_admin(account.id, grants.is_admin):
                admin.append((account.name, grants.is_admin))
            rooms += [
                (account.name, change)
                for change in place_rooms(self._perform, account.name, grants)
            ]
        return SyncReport(
            disabled=tuple((name, why_of[name]) for name in disabled),
            enabled=tuple(back),
            admin=tuple(admin),
            rooms=tuple(rooms),
        )


class ServerSync:
    """The server's own sync, run by a periodic thread of the server's (at start too:
    whoever left while the server was down goes at once): logs what it changed, or why
    it changed nothing."""

    def __init__(self, sync: DirectorySync, on_disabled: Callable[[], None]) -> None:
        """``on_disabled`` runs after a sync disabled someone: the server ends their live
        sessions then, rather than at its account watcher's next look."""
        self._sync = sync
        self._on_disabled = on_disabled

    def run_once(self) -> None:
        try:
            report = self._sync.run()
            if report.disabled and report.stopped is None:
                self._on_disabled()
        except DirectoryError as exc:
            log.warning("directory sync skipped, nobody disabled: %s", exc.message)
            return
        except StoreError as exc:
            log.warning("directory sync could not write its changes: %s", exc.message)
            return
        if report.stopped is not None:
            log.warning("%s", report.stopped)
            return
        for line in report.lines():
            log.info("directory sync: %s", line)


def server_sync(
    config: DirectoryConfig | None,
    db: Database,
    perform: Perform,
    on_disabled: Callable[[], None],
) -> tuple[ServerSync, float] | None:
    """The server's sync and its interval in seconds, or None: no directory, or
    ``sync_interval = "off"``."""
    if config is None or config.sync_interval is None:
        return None
    return ServerSync(DirectorySync(config, db, perform), on_disabled), config.sync_interval
