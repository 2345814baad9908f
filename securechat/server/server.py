"""The threaded TLS chat server: a listener, one acceptor thread, a thread per connection.

Theory of operation: the acceptor thread only accepts. It refuses at once (closes) a
connection over ``max_connections``. Connections that have not logged in yet are capped
overall and per source address, so a flood of silent sockets cannot crowd out real users,
and a full cap never refuses the newcomer: the longest waiting connection (from the same
address, for that address's cap) is closed instead, as one address may be a whole office
behind a NAT or a proxy, and refusing would let one silent host lock out all of them. Every
per-address count keys the peer by ``addresses.address_key`` (an IPv6 /64 is one address),
as the login throttle does. Everything else, including the TLS handshake, runs in the
connection's own thread (see ``connection.py``). Sends go to the :class:`Committer`, whose
thread stores them in batches and whose delivery thread then acks them and fans them out to
the recipients the :class:`Hub` names; the committer also runs every other write (joins,
moderation, edits: the team operations). The journal tail (``bus.py``) brings the rows that
``securechat room ...`` or another node writes to live sessions; on PostgreSQL the
heartbeat thread (``nodes.py``) shares who is online with the other nodes. Password checks
run in a separate process (``hashpool.py``). Three more threads wake now and then: the
account watcher, the certificate renewer and the presence announcer. The renewer
(``renewal.py``) may swap the server's :class:`Credentials`, a TLS context and the CA it
offers; each connection is handed the current ones when accepted and keeps them. Browsers
come in through the web port (``web.py``), whose connections are admitted, capped and
closed here like the others.

Behind a proxy (``--trusted-proxy``) a connection's address is the client's, from the
proxy's PROXY header (``peer.py``). The acceptor cannot know it yet: a connection from a
trusted proxy is admitted without a per-address count, and counted under the client's
address key by :meth:`ChatServer._proxied` once the header is read, in its own thread.

Logged-in sessions are capped too, per user and per address key: a login beyond
either cap is refused with ``too_many_sessions``, so neither a colleague with a resume
token (a login that costs nothing) nor one machine can take every place.

:meth:`ChatServer.shutdown` stops accepting, asks every connection to say ``bye`` and
close, joins their threads, stops the hashing process, then lets the committer store and
deliver whatever was already submitted. No thread is a daemon: a clean shutdown leaves
nothing running.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Protocol, Self, TypeVar

from securechat.accounts import DEFAULT_POLICY, Account, Accounts
from securechat.cert_files import read_ca_pem, server_cert_info
from securechat.certs import SERVER_CERT
from securechat.config import ServerConfig
from securechat.directory.login import DirectoryLogin
from securechat.directory.sync import directory_sync
from securechat.errors import ConfigError, ErrorCode, StoreError, TooManySessions
from securechat.protocol.messages import Bye, Error
from securechat.server.addresses import address_key
from securechat.server.bus import Bus, NotifyBus, PollingBus
from securechat.server.committer import Committer
from securechat.server.connection import ServerConnection
from securechat.server.effects import Effects
from securechat.server.hashpool import HashPool
from securechat.server.hub import Hub
from securechat.server.nodes import NodePresence
from securechat.server.peer import TrustedProxies
from securechat.server.renewal import CertificateRenewer, Credentials
from securechat.server.service import ChatService
from securechat.server.web import WebServer
from securechat.store.chat import ChatStore
from securechat.store.database import Database
from securechat.store.listener import JournalListener
from securechat.store.messages import StoredMessage
from securechat.store.news import News, Resync, RoomTouched
from securechat.store.nodes import NodeTable
from securechat.store.rooms import RoomState
from securechat.transport import Waker

log = logging.getLogger("securechat.server")


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


class ChatServer:
    def __init__(self, config: ServerConfig, *, tls: ssl.SSLContext, database: Database) -> None:
        self._config = config
        # ca_pem is public: offered for trust on first use.
        self._credentials = Credentials(tls, read_ca_pem(config.certs_dir))
        limits = config.limits
        origin = f"n-{secrets.token_hex(8)}"  # this process's name on its journal rows
        store = ChatStore(database, origin=origin, ref_window=limits.send_ref_window)
        self._store = store
        self._hash_pool = HashPool(config.hash_params, limits.hash_concurrency)
        self._accounts = Accounts(database, hash_params=config.hash_params, hasher=self._hash_pool)
        # Ids first: a name deleted and added again in between then looks replaced, not new.
        owners = self._accounts.ids()
        # The journal's end before the rooms: what is written meanwhile is applied again.
        tail_from = store.last_message_id()
        news_from = store.last_news_id()
        states = store.room_states()
        self._hub = Hub(
            {room: state.members for room, state in states.items()},
            owners,
            {room: state.meta for room, state in states.items()},
        )
        self._committer = Committer(store, self._hub, limits)
        self._effects = Effects(self._hub)
        self.origin = origin
        self._bus: Bus
        self._nodes: NodePresence | None = None
        if database.engine.dialect.name == "postgresql":  # possibly one node of several
            self._bus = NotifyBus(
                store, JournalListener(database.url, name=f"securechat {origin}"),
                origin=origin, after=tail_from, news_after=news_from,
                check_interval=limits.bus_check_interval,
                retry_interval=limits.bus_retry_interval,
            )  # fmt: skip
            table = NodeTable(database, origin, ttl=limits.node_ttl)
            self._nodes = NodePresence(table, self._hub, interval=limits.node_heartbeat_interval)
        else:
            self._bus = PollingBus(
                store, origin=origin, after=tail_from, interval=limits.journal_poll_interval
            )
        self._bus.subscribe(self._apply_external)
        self._bus.subscribe_news(self._apply_news)
        self._service = ChatService(
            store=store,
            accounts=self._accounts,
            hub=self._hub,
            committer=self._committer,
            hash_pool=self._hash_pool,
            limits=limits,
            throttle=config.throttle,
            default_rooms=config.default_rooms,
            directory=None if config.directory is None else DirectoryLogin(
                config.directory, database, max_password=DEFAULT_POLICY.max_length
            ),
        )  # fmt: skip
        self._proxies = TrustedProxies(config.trusted_proxies)
        self._listener: socket.socket | None = None
        self._waker = Waker()
        self._acceptor = threading.Thread(target=self._accept_loop, name="acceptor")
        self._watcher = threading.Thread(target=self._watch_accounts, name="account-watcher")
        self._renewer = CertificateRenewer(
            config.certs_dir, self._install, renew_before_days=config.renew_before_days,
            cert_file=config.cert_file, key_file=config.key_file,
        )  # fmt: skip
        self._renewal = threading.Thread(target=self._renew_certificate, name="cert-renewal")
        self._reload = threading.Event()  # set by reload_certificates() and shutdown()
        self._presence = threading.Thread(target=self._announce_presence, name="presence")
        self._directory_sync = directory_sync(
            config.directory, database, lambda op: self._committer.perform(op, origin=None),
            on_disabled=self._end_changed_sessions,
        )  # fmt: skip
        self._lock = threading.Lock()
        # Guarded by _lock: _credentials; every live connection; those not yet logged in,
        # oldest first, each with the address key it is counted under (None: a trusted
        # proxy's, whose header has not named the client yet); and how many of those each
        # address key has. Then the logged-in ones, each with its (user id, address key),
        # and how many each user id and each address key has.
        self._connections: set[LiveConnection] = set()
        self._waiting: dict[LiveConnection, str | None] = {}
        self._unauthenticated: dict[str, int] = {}
        self._logged_in: dict[LiveConnection, tuple[int, str]] = {}
        self._sessions_of: dict[int, int] = {}
        self._sessions_from: dict[str, int] = {}
        self._stopping = threading.Event()
        self.password_checks = "not started"  # how argon2 runs, for the start-up log
        self._web = (
            None
            if config.web_port is None
            else WebServer(
                host=config.host,
                port=config.web_port,
                credentials=self._current_credentials,
                names=server_cert_info(config.cert_file or config.certs_dir / SERVER_CERT).sans,
                service=self._service,
                limits=limits,
                admit=self.admit,
                on_authenticated=self._authenticated,
                on_closed=self._closed,
                listen_backlog=config.listen_backlog,
                proxies=self._proxies,
                on_proxied=self._proxied,
            )
        )

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Bind, listen and start the acceptor and committer threads.

        Raises:
            ConfigError: the address cannot be bound (in use, not local, no permission).
        """
        config = self._config
        try:
            infos = socket.getaddrinfo(
                config.host, config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
            family, _, _, _, address = infos[0]
            listener = socket.socket(family, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and config.host in ("::", ""):
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            listener.bind(address)
            listener.listen(config.listen_backlog)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {config.host} port {config.port}: {exc.strerror or exc}"
            ) from exc
        listener.setblocking(False)
        self._listener = listener
        if self._web is not None:
            try:
                self._web.start()
            except ConfigError:
                listener.close()
                raise
        workers = self._hash_pool.start()
        processes = len({pid for pid, _ in workers})
        scheduling = ", ".join(sorted({sched for _, sched in workers}))
        self.password_checks = f"{processes} process(es): {scheduling}"
        self._committer.start()
        self._bus.start()
        if self._nodes is not None:
            self._nodes.start()
        self._acceptor.start()
        self._watcher.start()
        if self._directory_sync is not None:
            self._directory_sync.start()
        self._renewal.start()
        self._presence.start()

    @property
    def address(self) -> tuple[str, int]:
        assert self._listener is not None, "not started"
        host, port = self._listener.getsockname()[:2]
        return host, port

    @property
    def web_address(self) -> tuple[str, int] | None:
        """Where browsers connect, or None without a web port."""
        return None if self._web is None else self._web.address

    def wait(self, timeout: float | None = None) -> bool:
        """Block until shutdown has begun; True if it has."""
        return self._stopping.wait(timeout)

    def shutdown(self) -> None:
        """Stop accepting, say ``bye`` to everyone, join all threads. Idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._reload.set()
        self._waker.wake()
        for thread in (self._acceptor, self._watcher, self._renewal, self._presence):
            if thread.is_alive():
                thread.join()
        if self._directory_sync is not None:
            self._directory_sync.stop()
        self._bus.stop()
        if self._nodes is not None:
            self._nodes.stop()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.request_close("server shutting down", Bye(reason="shutting_down"))
        deadline = time.monotonic() + self._config.limits.shutdown_grace
        for connection in connections:
            connection.thread.join(max(deadline - time.monotonic(), 0.1))
        if self._web is not None:
            self._web.stop()  # cuts what did not close in time, joins the web threads
        self._hash_pool.close()  # a login still waiting for a check gets rate_limited
        self._committer.stop()
        if self._listener is not None:
            self._listener.close()
        self._waker.close()
        log.info("server stopped")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    # --- bookkeeping, called from connection threads --------------------------------

    def _authenticated(self, connection: LiveConnection, account: Account) -> None:
        """Count ``connection`` as a logged-in session of ``account``.

        Raises:
            TooManySessions: the user or the address already has as many as allowed.
        """
        limits = self._config.limits
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

    def _closed(self, connection: LiveConnection) -> None:
        with self._lock:
            self._connections.discard(connection)
            self._stop_waiting(connection)
            counted = self._logged_in.pop(connection, None)
            if counted is not None:
                user_id, host = counted
                _decrement(self._sessions_of, user_id)
                _decrement(self._sessions_from, host)

    def _stop_waiting(self, connection: LiveConnection) -> None:
        """Stop counting ``connection`` as waiting to log in (call with _lock held)."""
        if connection in self._waiting:
            key = self._waiting.pop(connection)
            if key is not None:
                _decrement(self._unauthenticated, key)

    def _proxied(self, connection: LiveConnection) -> str | None:
        """Count a trusted proxy's connection under the client its header named (its
        ``peer_host`` now), making room as :meth:`admit` does; a refusal only if it was
        closed meanwhile."""
        key = address_key(connection.peer_host, self._config.limits.ipv6_prefix)
        with self._lock:
            if connection not in self._waiting:
                return "closed while its PROXY header came"  # evicted or shut down meanwhile
            evicted = self._make_room(key, overall=False)  # admit counted it overall
            self._waiting[connection] = key
            self._unauthenticated[key] = self._unauthenticated.get(key, 0) + 1
        if evicted is not None:
            _close_evicted(*evicted)
        return None

    # --- the account watcher: ends sessions whose account changed under them -------

    def _watch_accounts(self) -> None:
        """Every few seconds, compare live sessions and the hub with the accounts in the database.

        ``passwd``, ``disable`` and ``deluser`` run in another process (the CLI); this is
        how their effect reaches sessions that are already logged in, and how a deleted
        user's name leaves the rooms it was in.
        """
        while not self._stopping.wait(self._config.limits.account_check_interval):
            try:
                self._forget_deleted_users()
                self._end_changed_sessions()
            except StoreError as exc:
                log.warning("cannot check accounts of live sessions: %s", exc.message)

    def _forget_deleted_users(self) -> None:
        """Drop the hub state of names whose account was deleted or replaced by a new one."""
        owners = self._hub.owners()  # before the database: see Hub.forget
        ids = self._accounts.ids()
        for name, user_id in owners.items():
            if ids.get(name) != user_id:
                log.info("user %s (id %d) deleted or replaced: leaving their rooms", name, user_id)
                self._service.forget_user(name, user_id)

    def _end_changed_sessions(self) -> None:
        """End sessions whose account was deleted, replaced, disabled or given new credentials.

        A session's account holds the credentials time its login checked (a login that
        raced a change is refused), so any change since then shows up here.
        """
        with self._lock:
            live = [c for c in self._connections if c.is_authenticated]
        if not live:
            return
        current = self._accounts.current({c.user for c in live})
        for connection in live:
            account, now = connection.account, current.get(connection.user)
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

    # --- the journal tail: rows the command line (or another server) wrote ----------

    def _apply_external(self, rows: list[StoredMessage]) -> None:
        """Apply rows written elsewhere to the hub and deliver them (the tail's thread)."""
        self._committer.delivery.deliver(
            self._effects.external_rows((row, self._state_for(row)) for row in rows)
        )

    def _state_for(self, row: StoredMessage) -> RoomState | None:
        """The room of an event row as the store has it now (None: not an event, or gone)."""
        if row.kind != "event" or row.room is None:
            return None
        if row.action == "delete":
            self._store.forget_room(row.room)
            return None
        return self._store.room_state(row.room)

    def _apply_news(self, news: News) -> None:
        """Apply another node's news that has no journal row (the bus's thread)."""
        deliver = self._committer.delivery.deliver
        if isinstance(news, RoomTouched):
            deliver(self._effects.room_reloaded(news.room, self._store.room_state(news.room)))
        elif isinstance(news, Resync):
            states = self._store.room_states()
            for room in {*states, *self._hub.room_names()}:
                deliver(self._effects.room_reloaded(room, states.get(room)))
        else:
            deliver(self._effects.of(news, None))

    # --- the certificate renewer: new TLS credentials for new connections ------------

    def reload_certificates(self) -> None:
        """Have the renewal thread load the certificate files now (on SIGHUP). Any thread."""
        self._reload.set()

    def _install(self, credentials: Credentials) -> None:
        """Hand ``credentials`` to every connection accepted from now on (renewal thread)."""
        with self._lock:
            self._credentials = credentials

    def _current_credentials(self) -> Credentials:
        """What a connection accepted now is handed (any thread; the web port's handshakes)."""
        with self._lock:
            return self._credentials

    def _renew_certificate(self) -> None:
        """Check at start, then every certificate_check_interval, sooner after a failure.

        ``_reload`` is cleared only after a wait it ended, so a request that comes while a
        check runs is not lost: the next wait returns at once.
        """
        limits = self._config.limits
        reload = False
        while not self._stopping.is_set():
            healthy = self._renewer.check(dt.datetime.now(dt.UTC), reload=reload)
            interval = limits.certificate_check_interval
            if not healthy:
                interval = min(interval, limits.certificate_retry_interval)
            reload = self._reload.wait(interval)
            if reload:
                self._reload.clear()

    def _announce_presence(self) -> None:
        """The presence thread: flushes the hub's batched presence changes (see hub.py)."""
        while not self._stopping.wait(self._config.limits.presence_interval):
            self._hub.flush_presence()

    # --- the acceptor thread: accepts, applies the connection caps, starts threads ----

    def _accept_loop(self) -> None:
        assert self._listener is not None
        poller = select.poll()
        poller.register(self._listener, select.POLLIN)
        poller.register(self._waker, select.POLLIN)
        while not self._stopping.is_set():
            poller.poll()
            while not self._stopping.is_set():
                try:
                    sock, address = self._listener.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:  # EMFILE, ENOBUFS...: back off, keep serving
                    log.error("accept failed: %s", exc)
                    time.sleep(0.05)
                    break
                self._admit(sock, address)

    def _admit(self, sock: socket.socket, address: tuple[str, int]) -> None:
        """Start a connection on an accepted socket, or close it at once."""

        def connection() -> ServerConnection:  # called by admit() with _lock held
            sock.setblocking(True)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return ServerConnection(
                sock,
                address=address,
                accepted_at=time.monotonic(),
                tls=self._credentials.context,
                service=self._service,
                limits=self._config.limits,
                ca_pem=self._credentials.ca_pem,
                on_authenticated=self._authenticated,
                on_closed=self._closed,
                proxies=self._proxies,
                on_proxied=self._proxied,
            )

        admitted = self.admit(address[0], connection)
        if admitted is None:
            sock.close()
            return
        try:
            admitted.thread.start()
        except RuntimeError as exc:  # the system refused another thread
            log.error("cannot start a thread for %s: %s", admitted.peer, exc)
            self._closed(admitted)
            sock.close()

    def admit(self, host: str, make: Callable[[], _Connection]) -> _Connection | None:
        """Count a new connection from ``host`` against the caps: ``make()`` it, or None.

        Both ports admit through here. A full cap on connections not yet logged in, per
        address or overall, closes the one that has waited longest (from that address, or
        from anywhere) to make room: a real login takes milliseconds, so the oldest waiter
        is the least likely to be one, and the newcomer may be a colleague behind the
        same NAT. A trusted proxy's connection is not counted under ``host`` (the proxy's):
        :meth:`_proxied` counts it under its client's. ``make`` runs with ``_lock`` held.
        """
        limits = self._config.limits
        key = None if host in self._proxies else address_key(host, limits.ipv6_prefix)
        evicted: tuple[LiveConnection, str] | None = None
        with self._lock:
            refusal = (
                "server shutting down" if self._stopping.is_set()
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

    def _make_room(
        self, key: str | None, *, overall: bool = True
    ) -> tuple[LiveConnection, str] | None:
        """Stop counting the connection a newcomer from ``key`` replaces, if a cap is full
        (the cap per address key, and unless ``overall`` is False the overall one).

        Returns it and why, for the caller to close outside the lock (call with _lock held).
        """
        limits = self._config.limits
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
