"""The web port: the browser client's files over HTTPS and protocol v1 over WebSocket.

Theory of operation: one listening socket and one acceptor thread. Each accepted socket
is admitted by the chat server (``admit``), so the caps on connections (overall, not yet
logged in, per address) count browsers and terminal clients together, and a refused
socket is closed before its TLS handshake. An admitted one gets a
:class:`ServerConnection` (connection.py), the chat port's own driver: one thread that
reads a trusted proxy's PROXY header, runs the TLS handshake with the chat server's
current credentials and then the port's :class:`WebFraming` (webframing.py): HTTP/1.1
for the shipped files, a WebSocket on ``/ws`` for a session. One thread per browser
session, as per terminal session; no thread touches another's socket except through
the driver's ``Turn`` (the fan-out's direct write).

:meth:`WebServer.stop` runs after the chat server has asked every connection, browsers
included, to say ``bye`` and close: it stops accepting, asks what is left to close and
joins every thread (each one's waits are bounded).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence

from securechat.accounts import Account
from securechat.config import Limits
from securechat.devices import Devices
from securechat.protocol.messages import Bye
from securechat.server.connection import ServerConnection
from securechat.server.devicerequests import DeviceSessions
from securechat.server.files import FileService
from securechat.server.framing import Framing
from securechat.server.listener import Acceptor, listen
from securechat.server.peer import TrustedProxies
from securechat.server.renewal import Credentials
from securechat.server.requests import RequestHandler
from securechat.server.service import ChatService
from securechat.server.webdevices import DevicePosts, StoredDeviceDoor
from securechat.server.webfiles import Origins, StaticFiles, load_package_files
from securechat.server.webframes import FramedOnce
from securechat.server.webframing import WebFraming

log = logging.getLogger("securechat.server")

#: How the chat server admits a connection: (source address, factory) -> it, or None.
Admit = Callable[[str, Callable[[], ServerConnection]], ServerConnection | None]


class WebServer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        credentials: Callable[[], Credentials],
        names: Sequence[str],
        service: ChatService,
        limits: Limits,
        admit: Admit,
        on_authenticated: Callable[[ServerConnection, Account], None],
        on_closed: Callable[[ServerConnection], None],
        listen_backlog: int = 1024,
        proxies: TrustedProxies | None = None,
        on_proxied: Callable[[ServerConnection], str | None] | None = None,
        devices: Devices | None = None,
        files: FileService | None = None,
    ) -> None:
        """``credentials()`` returns the chat server's current TLS context and CA;
        ``names`` are its certificate's DNS and IP names, which make the allowed origins.
        ``on_proxied`` is asked, once a trusted proxy's header has named the client,
        whether the connection may go on under that address: a refusal, or None.
        ``devices``: offer "stay signed in" (webdevices.py); ``files``: shared files
        (filerequests.py), when they are on."""
        self._host, self._port = host, port
        self._credentials = credentials
        self._names = tuple(names)
        self._service = service
        self._limits = limits
        self._admit = admit
        self._on_authenticated = on_authenticated
        self._on_closed = on_closed
        self._backlog = listen_backlog
        self._proxies = proxies or TrustedProxies()
        self._on_proxied = on_proxied
        self._acceptor: Acceptor | None = None
        self._stopped = False  # stop() has begun (called by the thread that stops the server)
        self._files = StaticFiles({})
        self._origins = Origins((), port)
        self._lock = threading.Lock()
        self._live: set[ServerConnection] = set()  # guarded by _lock: started, not yet ended
        self._framed = FramedOnce()  # a fan-out's blob framed once for all its browsers
        self._sessions = None if devices is None else DeviceSessions(devices, limits=limits)
        self._door = None if devices is None else StoredDeviceDoor(devices)
        self._posts: DevicePosts | None = None
        self._transfers = files

    def start(self) -> None:
        """Bind the web port and start accepting.

        Raises:
            ConfigError: the port cannot be bound.
        """
        listener = listen(self._host, self._port, self._backlog, purpose="the web client")
        port = listener.getsockname()[1]
        self._origins = Origins(self._names, port)
        self._files = StaticFiles(
            load_package_files(), connect_sources=self._origins.websocket_sources()
        )
        if self._door is not None:
            max_age = int(self._limits.device_idle_timeout)
            self._posts = DevicePosts(self._door, self._files, max_age=max_age)
        self._acceptor = Acceptor(listener, self._start, name="web-acceptor")
        self._acceptor.start()

    @property
    def address(self) -> tuple[str, int]:
        assert self._acceptor is not None, "not started"
        return self._acceptor.address

    @property
    def origins(self) -> frozenset[str]:
        return self._origins.exact

    def stop(self) -> None:
        """Stop accepting, close what is still open and join every thread. Idempotent."""
        if self._acceptor is None or self._stopped:
            return
        self._stopped = True
        self._acceptor.stop()
        with self._lock:
            left = list(self._live)
        for connection in left:
            connection.request_close("server shutting down", Bye(reason="shutting_down"))
        for connection in left:
            connection.thread.join()

    # --- on the acceptor thread ----------------------------------------------------

    def _start(self, sock: socket.socket, address: tuple[str, int]) -> None:
        """Admit an accepted socket and start its thread, or close it at once."""
        credentials = self._credentials()

        def connection() -> ServerConnection:  # called by admit() with the server's lock held
            sock.setblocking(True)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            made = ServerConnection(
                sock, address=address, accepted_at=time.monotonic(),
                tls=credentials.context, service=self._service, limits=self._limits,
                ca_pem=credentials.ca_pem, on_authenticated=self._on_authenticated,
                on_closed=self._closed, proxies=self._proxies, on_proxied=self._on_proxied,
                framing=self._framing, kind="web", devices=self._sessions,
            )  # fmt: skip
            with self._lock:
                self._live.add(made)
            try:  # here, so the server never counts a connection without a thread to join
                made.thread.start()
            except RuntimeError:
                with self._lock:
                    self._live.discard(made)
                raise
            return made

        try:
            admitted = self._admit(address[0], connection)
        except RuntimeError as exc:  # the system refused another thread
            log.error("cannot start a thread for a browser at %s: %s", address[0], exc)
            admitted = None
        if admitted is None:
            sock.close()

    def _framing(self, requests: RequestHandler) -> Framing:
        return WebFraming(
            session=requests.session, meter=requests.charge_control_frame,
            files=self._files, origins=self._origins, limits=self._limits,
            peer=lambda: requests.peer.described(), framed=self._framed,
            door=self._door, posts=self._posts, on_upgrade=requests.upgraded,
            transfers=self._transfers if self._transfers and self._transfers.enabled else None,
        )  # fmt: skip

    def _closed(self, connection: ServerConnection) -> None:
        with self._lock:
            self._live.discard(connection)
        self._on_closed(connection)
