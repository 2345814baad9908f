"""Who may connect and log in: the caps on connections and sessions, counted under one lock.

Theory of operation: both ports admit every accepted connection through :meth:`Admission.admit`,
which refuses one over ``max_connections`` (or while shutting down). Connections that have
not logged in yet are capped overall and per source address, so a flood of silent sockets
cannot crowd out real users, and a full cap never refuses the newcomer: the longest waiting
connection (from the same address, for that address's cap) is closed instead, as one
address may be a whole office behind a NAT or a proxy, and refusing would let one silent
host lock out all of them. A real login takes milliseconds, so the oldest waiter is the
least likely to be one. Every per-address count keys the peer by
``addresses.address_key`` (an IPv6 /64 is one address), as the login throttle does.

Behind a proxy (``--trusted-proxy``) a connection's address is the client's, from the
proxy's PROXY header (``peer.py``). The acceptor cannot know it yet: a connection from a
trusted proxy is admitted without a per-address count, and counted under the client's
address key by :meth:`Admission.proxied` once the header is read, in its own thread.

Logged-in sessions are capped too, per user and per address key: a login beyond either cap
is refused with ``too_many_sessions`` (:meth:`Admission.authenticated`), so neither a
colleague with a resume token (a login that costs nothing) nor one machine can take every
place. A connection is closed outside the lock, never under it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol, TypeVar

from securechat.accounts import Account
from securechat.config import Limits
from securechat.errors import TooManySessions
from securechat.protocol.messages import Bye, Error
from securechat.server.addresses import address_key
from securechat.server.peer import TrustedProxies

log = logging.getLogger("securechat.server")

__all__ = ["Admission", "LiveConnection"]


class LiveConnection(Protocol):
    """A connection of either kind (chat port or web port), as the server tracks it."""

    @property
    def peer_host(self) -> str: ...

    @property
    def peer(self) -> str: ...

    @property
    def thread(self) -> threading.Thread: ...

    @property
    def is_authenticated(self) -> bool: ...

    @property
    def account(self) -> Account: ...

    @property
    def user(self) -> str: ...

    def request_close(self, reason: str, final: Error | Bye | None = None) -> None: ...


_Connection = TypeVar("_Connection", bound=LiveConnection)


class Admission:
    """The live connections and the caps they count against; every method, any thread."""

    def __init__(self, limits: Limits, proxies: TrustedProxies) -> None:
        self._limits = limits
        self._proxies = proxies
        self._lock = threading.Lock()
        # Guarded by _lock: every live connection; those not yet logged in, oldest first,
        # each with the address key it is counted under (None: a trusted proxy's, whose
        # header has not named the client yet); and how many of those each address key
        # has. Then the logged-in ones, each with its (user id, address key), and how many
        # each user id and each address key has. And whether admitting has ended.
        self._connections: set[LiveConnection] = set()
        self._waiting: dict[LiveConnection, str | None] = {}
        self._unauthenticated: dict[str, int] = {}
        self._logged_in: dict[LiveConnection, tuple[int, str]] = {}
        self._sessions_of: dict[int, int] = {}
        self._sessions_from: dict[str, int] = {}
        self._closed_for_good = False

    def admit(self, host: str, make: Callable[[], _Connection]) -> _Connection | None:
        """Count a new connection from ``host`` against the caps: ``make()`` it, or None.

        A full cap on connections not yet logged in closes the one that has waited longest
        to make room (see above). A trusted proxy's connection is not counted under
        ``host`` (the proxy's): :meth:`proxied` counts it under its client's. ``make`` runs
        with the lock held, so it must not block.
        """
        limits = self._limits
        key = None if host in self._proxies else address_key(host, limits.ipv6_prefix)
        evicted: tuple[LiveConnection, str] | None = None
        with self._lock:
            refusal = (
                "server shutting down" if self._closed_for_good
                else "too many connections" if len(self._connections) >= limits.max_connections
                else None
            )  # fmt: skip
            if refusal is None:
                evicted = self._make_room(key)
                connection = make()
                self._connections.add(connection)
                self._waiting[connection] = key
                if key is not None:
                    self._unauthenticated[key] = self._unauthenticated.get(key, 0) + 1
        if evicted is not None:
            _close_evicted(*evicted)
        if refusal is not None:
            log.warning("refused connection from %s: %s", host, refusal)
            return None
        return connection

    def proxied(self, connection: LiveConnection) -> str | None:
        """Count a trusted proxy's connection under the client its header named (its
        ``peer_host`` now), making room as :meth:`admit` does; a refusal only if it was
        closed meanwhile."""
        key = address_key(connection.peer_host, self._limits.ipv6_prefix)
        with self._lock:
            if connection not in self._waiting:
                return "closed while its PROXY header came"  # evicted or shut down meanwhile
            evicted = self._make_room(key, overall=False)  # admit counted it overall
            self._waiting[connection] = key
            self._unauthenticated[key] = self._unauthenticated.get(key, 0) + 1
        if evicted is not None:
            _close_evicted(*evicted)
        return None

    def authenticated(self, connection: LiveConnection, account: Account) -> None:
        """Count ``connection`` as a logged-in session of ``account``.

        Raises:
            TooManySessions: the user or the address already has as many as allowed.
        """
        limits = self._limits
        host = address_key(connection.peer_host, limits.ipv6_prefix)
        with self._lock:
            if self._sessions_of.get(account.id, 0) >= limits.max_sessions_per_user:
                raise TooManySessions(
                    f"{account.name} already has {limits.max_sessions_per_user} sessions "
                    "open; close one first"
                )
            if self._sessions_from.get(host, 0) >= limits.max_sessions_per_address:
                raise TooManySessions(
                    f"too many sessions from your address ({limits.max_sessions_per_address})"
                )
            self._stop_waiting(connection)
            self._logged_in[connection] = (account.id, host)
            self._sessions_of[account.id] = self._sessions_of.get(account.id, 0) + 1
            self._sessions_from[host] = self._sessions_from.get(host, 0) + 1

    def closed(self, connection: LiveConnection) -> None:
        """Stop counting ``connection``: its thread is ending (or never started)."""
        with self._lock:
            self._connections.discard(connection)
            self._stop_waiting(connection)
            counted = self._logged_in.pop(connection, None)
            if counted is not None:
                user_id, host = counted
                _decrement(self._sessions_of, user_id)
                _decrement(self._sessions_from, host)

    def stop_admitting(self) -> None:
        """Refuse every connection from now on (the server is shutting down)."""
        with self._lock:
            self._closed_for_good = True

    def live(self) -> list[LiveConnection]:
        """Every live connection, now."""
        with self._lock:
            return list(self._connections)

    def logged_in(self) -> list[LiveConnection]:
        """The live connections that have logged in, now."""
        with self._lock:
            return [c for c in self._connections if c.is_authenticated]

    def waiting(self) -> int:
        """How many connections are waiting to log in, now."""
        with self._lock:
            return len(self._waiting)

    def waiting_by_address(self) -> dict[str, int]:
        """How many connections wait to log in from each address key, now."""
        with self._lock:
            return dict(self._unauthenticated)

    def _stop_waiting(self, connection: LiveConnection) -> None:
        """Stop counting ``connection`` as waiting to log in (call with _lock held)."""
        if connection in self._waiting:
            key = self._waiting.pop(connection)
            if key is not None:
                _decrement(self._unauthenticated, key)

    def _make_room(
        self, key: str | None, *, overall: bool = True
    ) -> tuple[LiveConnection, str] | None:
        """Stop counting the connection a newcomer from ``key`` replaces, if a cap is full
        (the cap per address key, and unless ``overall`` is False the overall one).

        Returns it and why, for the caller to close outside the lock (call with _lock held).
        """
        limits = self._limits
        if (
            key is not None
            and self._unauthenticated.get(key, 0) >= limits.max_unauthenticated_per_ip
        ):
            reason = "too many connections from one address waiting to log in"
            oldest = next((c for c, k in self._waiting.items() if k == key), None)
        elif overall and len(self._waiting) >= limits.max_unauthenticated:
            reason = "too many connections waiting to log in"
            oldest = next(iter(self._waiting), None)
        else:
            return None
        if oldest is None:  # a cap of 0: nobody to close
            return None
        self._stop_waiting(oldest)
        return oldest, reason


def _close_evicted(oldest: LiveConnection, reason: str) -> None:
    log.warning("closing %s: waited longest to log in, and %s", oldest.peer, reason)
    oldest.request_close(f"{reason}: waited longest to log in")


_K = TypeVar("_K")


def _decrement(counts: dict[_K, int], key: _K) -> None:
    """Count one less for ``key``, forgetting it at zero (so the tables stay small)."""
    left = counts[key] - 1
    if left > 0:
        counts[key] = left
    else:
        del counts[key]
