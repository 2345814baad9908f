"""Ending sessions whose account changed under them, and forgetting deleted users.

``passwd``, ``disable`` and ``deluser`` run in another process (the CLI); every
``account_check_interval`` the account watcher (a :class:`Periodic`) compares the live
sessions and the hub with the accounts in the database. That is how their effect reaches
sessions that are already logged in, and how a deleted user's name leaves the rooms it
was in.
"""

from __future__ import annotations

import logging

from securechat.accounts import Accounts
from securechat.errors import ErrorCode, StoreError
from securechat.protocol.messages import Error
from securechat.server.admission import Admission, LiveConnection
from securechat.server.hub import Hub
from securechat.server.service import ChatService
from securechat.store.users import Standing

log = logging.getLogger("securechat.server")

__all__ = ["AccountWatcher"]


class AccountWatcher:
    """One comparison per :meth:`check`; the account watcher thread runs it."""

    def __init__(
        self, accounts: Accounts, hub: Hub, service: ChatService, admission: Admission
    ) -> None:
        self._accounts = accounts
        self._hub = hub
        self._service = service
        self._admission = admission

    def check(self) -> None:
        """Forget deleted users, end changed sessions; a database error waits for the next.

        One read of the accounts serves both, after the hub's and the sessions' snapshots:
        a user the hub learns of meanwhile is in the database already (see Hub.forget).
        """
        owners = self._hub.owners()
        live = self._admission.logged_in()
        try:
            standings = self._accounts.standings()
        except StoreError as exc:
            log.warning("cannot check accounts of live sessions: %s", exc.message)
            return
        self._forget_deleted_users(owners, standings)
        self._end_changed_sessions(live, standings)

    def _forget_deleted_users(self, owners: dict[str, int], standings: dict[str, Standing]) -> None:
        """Drop the hub state of names whose account was deleted or replaced by a new one."""
        for name, user_id in owners.items():
            standing = standings.get(name)
            if standing is None or standing.id != user_id:
                log.info("user %s (id %d) deleted or replaced: leaving their rooms", name, user_id)
                self._service.forget_user(name, user_id)

    def _end_changed_sessions(
        self, live: list[LiveConnection], standings: dict[str, Standing]
    ) -> None:
        """End sessions whose account was deleted, replaced, disabled or given new credentials.

        A session's account holds the credentials time its login checked (a login that
        raced a change is refused), so any change since then shows up here.
        """
        for connection in live:
            account, now = connection.account, standings.get(connection.user)
            if (
                now is None
                or now.id != account.id
                or now.is_disabled
                or now.credentials_changed_at != account.credentials_changed_at
            ):
                log.info("ending session %s@%s: account changed", account.name, connection.peer)
                connection.request_close("account changed", Error(
                    code=ErrorCode.AUTH_FAILED,
                    message="your account was changed or disabled; log in again",
                ))  # fmt: skip
