"""The threaded TLS chat server: a listener, one acceptor thread, a thread per connection.

Theory of operation: the object graph is built once, by the composition root
(``runner.build_server``), and handed over as :class:`ServerParts`; the server runs it.
The acceptor thread only accepts: each new socket is counted against the connection caps
(``admission.py``) and, if admitted, gets its own thread (``connection.py``), where
everything else, the TLS handshake included, happens. Browsers come in through the web
port (``web.py``), whose connections are admitted, capped and closed the same way. The
thread map of the whole server is in the package docstring (``securechat/server``).

:meth:`ChatServer.shutdown` stops accepting, stops the periodic threads and the bus, asks
every connection to say ``bye`` and close, joins their threads, stops the hashing process,
then lets the committer store and deliver whatever was already submitted: a clean shutdown
leaves nothing running (the connections' threads are daemons, but joined all the same).
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from typing import Self

from securechat.accounts import Accounts
from securechat.config import ServerConfig
from securechat.errors import ConfigError
from securechat.protocol.messages import Bye
from securechat.server.admission import Admission
from securechat.server.bus import Bus
from securechat.server.committer import Committer
from securechat.server.connection import ServerConnection
from securechat.server.files import FileService
from securechat.server.hashpool import HashPool
from securechat.server.hub import Hub
from securechat.server.listener import Acceptor, listen
from securechat.server.nodes import NodePresence
from securechat.server.peer import TrustedProxies
from securechat.server.periodic import Periodic
from securechat.server.renewal import CertificateRenewer, Credentials, CurrentCredentials
from securechat.server.service import ChatService
from securechat.server.web import WebServer

log = logging.getLogger("securechat.server")

__all__ = ["ChatServer", "ServerParts"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServerParts:
    """The object graph a :class:`ChatServer` runs, built by ``runner.build_server``."""

    origin: str  # this process's name on the journal rows it writes
    hub: Hub
    accounts: Accounts
    service: ChatService
    committer: Committer
    hash_pool: HashPool
    bus: Bus
    nodes: NodePresence | None  # PostgreSQL: the heartbeat shared with the other nodes
    admission: Admission
    proxies: TrustedProxies
    credentials: CurrentCredentials
    renewer: CertificateRenewer
    renewal: Periodic  # runs renewer.scheduled_check
    account_watcher: Periodic
    presence: Periodic
    directory_sync: Periodic | None  # runs a [directory]'s sync, if it has a sync_interval
    web: WebServer | None
    files: FileService  # shared files (#27), off without a files folder or a web port
    file_collector: Periodic | None  # runs files.collect, when files are on


class ChatServer:
    """Accepts on the chat port, and starts and stops every part. ``start()``, ``shutdown()``."""

    def __init__(self, config: ServerConfig, parts: ServerParts) -> None:
        self._config = config
        self.parts = parts
        self._acceptor: Acceptor | None = None
        self._stopping = threading.Event()
        self.password_checks = "not started"  # how argon2 runs, for the start-up log

    @property
    def origin(self) -> str:
        """This process's name on the journal rows it writes (see ``store/news.py``)."""
        return self.parts.origin

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Bind, listen and start the acceptor and committer threads.

        Raises:
            ConfigError: the address cannot be bound (in use, not local, no permission).
        """
        config = self._config
        listener = listen(config.host, config.port, config.listen_backlog, purpose="the chat port")
        self._acceptor = Acceptor(listener, self._admit, name="acceptor")
        parts = self.parts
        if parts.web is not None:
            try:
                parts.web.start()
            except ConfigError:
                self._acceptor.stop()  # closes the chat port's socket: nothing was accepted
                self._acceptor = None
                raise
            parts.files.set_port(parts.web.address[1])
        workers = parts.hash_pool.start()
        processes = len({pid for pid, _ in workers})
        scheduling = ", ".join(sorted({sched for _, sched in workers}))
        self.password_checks = f"{processes} process(es): {scheduling}"
        parts.committer.start()
        parts.bus.start()
        if parts.nodes is not None:
            parts.nodes.start()
        self._acceptor.start()
        for periodic in (parts.account_watcher, parts.renewal, parts.presence):
            periodic.start()
        if parts.directory_sync is not None:
            parts.directory_sync.start()
        parts.files.start()
        if parts.file_collector is not None:
            parts.file_collector.start()

    @property
    def address(self) -> tuple[str, int]:
        assert self._acceptor is not None, "not started"
        return self._acceptor.address

    @property
    def web_address(self) -> tuple[str, int] | None:
        """Where browsers connect, or None without a web port."""
        return None if self.parts.web is None else self.parts.web.address

    def wait(self, timeout: float | None = None) -> bool:
        """Block until shutdown has begun; True if it has."""
        return self._stopping.wait(timeout)

    def shutdown(self) -> None:
        """Stop accepting, say ``bye`` to everyone, join all threads. Idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        parts = self.parts
        parts.admission.stop_admitting()
        if self._acceptor is not None:
            self._acceptor.stop()
        for periodic in (parts.account_watcher, parts.renewal, parts.presence):
            periodic.stop()
        if parts.directory_sync is not None:
            parts.directory_sync.stop()
        parts.bus.stop()
        if parts.nodes is not None:
            parts.nodes.stop()
        connections = parts.admission.live()
        for connection in connections:
            connection.request_close("server shutting down", Bye(reason="shutting_down"))
        deadline = time.monotonic() + self._config.limits.shutdown_grace
        for connection in connections:
            connection.thread.join(max(deadline - time.monotonic(), 0.1))
        if parts.web is not None:
            parts.web.stop()  # cuts what did not close in time, joins the web threads
        if parts.file_collector is not None:
            parts.file_collector.stop()
        parts.files.stop()
        parts.hash_pool.close()  # a login still waiting for a check gets rate_limited
        parts.committer.stop()
        log.info("server stopped")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    # --- the certificate renewer: new TLS credentials for new connections ------------

    def reload_certificates(self) -> None:
        """Have the renewal thread load the certificate files now (on SIGHUP). Any thread."""
        self.parts.renewer.ask_reload()
        self.parts.renewal.wake()

    def _install(self, credentials: Credentials) -> None:
        """Hand ``credentials`` to every connection accepted from now on."""
        self.parts.credentials.install(credentials)

    # --- on the acceptor thread: applies the connection caps, starts threads -----------

    def _admit(self, sock: socket.socket, address: tuple[str, int]) -> None:
        """Start a connection on an accepted socket, or close it at once."""

        parts = self.parts

        def connection() -> ServerConnection:  # called by admit() with its lock held
            sock.setblocking(True)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            credentials = parts.credentials.get()
            return ServerConnection(
                sock,
                address=address,
                accepted_at=time.monotonic(),
                tls=credentials.context,
                service=parts.service,
                limits=self._config.limits,
                ca_pem=credentials.ca_pem,
                on_authenticated=parts.admission.authenticated,
                on_closed=parts.admission.closed,
                proxies=parts.proxies,
                on_proxied=parts.admission.proxied,
            )

        admitted = parts.admission.admit(address[0], connection)
        if admitted is None:
            sock.close()
            return
        try:
            admitted.thread.start()
        except RuntimeError as exc:  # the system refused another thread
            log.error("cannot start a thread for %s: %s", admitted.peer, exc)
            parts.admission.closed(admitted)
            sock.close()
