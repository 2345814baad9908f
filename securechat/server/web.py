"""The web port: the browser client's files over HTTPS and protocol v1 over WebSocket.

Theory of operation: one listening socket, served by ``websockets``' threaded server with
the same certificate and TLS 1.3 profile as the chat port (a context that forwards every
handshake to the chat server's current one, see :func:`tls.forwarding_server_context`).
websockets starts a thread per accepted socket; before anything else that thread asks the
chat server to admit the connection, so the caps on connections (overall, not yet logged
in, per address) count browsers and terminal clients together, and a refused socket is
closed before its TLS handshake. It then learns who is at the other end (``peer.py``: from
a trusted proxy, the PROXY header, read in clear before websockets starts TLS) and runs
the TLS and HTTP handshakes.
``process_request`` answers every plain HTTP request from the allowlist of shipped files
(webfiles.py) and lets a WebSocket handshake through only on ``/ws`` and only from one of
the server's own origins (HTTP 403 otherwise; 400 for more than one ``Origin``). The
answers websockets makes itself (a request it cannot parse, a bad upgrade) carry the same
security headers, and each connection's pings and pongs are charged like requests:
``create_connection`` gives each connection a :class:`WebProtocol` (webprotocol.py). An
open WebSocket is served by :class:`WebConnection`.

:meth:`WebServer.stop` runs after the chat server has asked every connection, browsers
included, to say ``bye`` and close: it cuts whatever is left, stops websockets' server and
joins its accepting thread. websockets joins the connection threads itself.
"""

from __future__ import annotations

import http
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from websockets.datastructures import Headers
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.sync.server import Server, ServerConnection, serve

from securechat.accounts import Account
from securechat.config import Limits
from securechat.errors import BadProxyHeader, ConfigError, ConnectionLost, ErrorCode
from securechat.protocol.messages import Error, encode
from securechat.server.peer import TrustedProxies, identify
from securechat.server.renewal import Credentials
from securechat.server.service import ChatService
from securechat.server.webconnection import CLOSE_TIMEOUT, FramedOnce, WebConnection, WebSocket
from securechat.server.webfiles import (
    WEBSOCKET_PATH,
    Answer,
    Origins,
    StaticFiles,
    load_package_files,
)
from securechat.server.webprotocol import WebProtocol
from securechat.tls import forwarding_server_context

log = logging.getLogger("securechat.server")

#: How the chat server admits a connection: (source address, factory) -> it, or None.
Admit = Callable[[str, Callable[[], WebConnection]], WebConnection | None]


class _TellingConnection(WebSocket):
    """Sends ``error`` ``frame_too_large`` before the close for an over-limit message.

    websockets refuses a message over ``max_size`` by its header alone and queues a close
    (1009) at once; the error goes out just ahead of it, as an uncompressed text frame
    (compression is off on this port).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limit = self.protocol.max_message_size
        self._too_big = Frame(Opcode.TEXT, encode(Error(
            code=ErrorCode.FRAME_TOO_LARGE, message=f"message larger than {limit} bytes",
        ))).serialize(mask=False)  # fmt: skip

    def send_data(self) -> None:
        close = self.protocol.close_sent
        if close is not None and close.code == CloseCode.MESSAGE_TOO_BIG and self._too_big:
            data, self._too_big = self._too_big, b""
            self.socket.sendall(data)
        super().send_data()


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
        on_authenticated: Callable[[WebConnection, Account], None],
        on_closed: Callable[[WebConnection], None],
        listen_backlog: int = 1024,
        proxies: TrustedProxies | None = None,
        on_proxied: Callable[[WebConnection], str | None] | None = None,
    ) -> None:
        """``credentials()`` returns the chat server's current TLS context and CA;
        ``names`` are its certificate's DNS and IP names, which make the allowed origins.
        ``on_proxied`` is asked, once a trusted proxy's header has named the client,
        whether the connection may go on under that address: a refusal, or None."""
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
        self._server: Server | None = None
        self._accept: Callable[[socket.socket, Any], None] | None = None  # websockets' handler
        self._thread = threading.Thread(target=self._serve_forever, name="web-acceptor")
        self._files = StaticFiles({})
        self._origins = Origins((), port)
        self._lock = threading.Lock()
        self._live: set[WebConnection] = set()  # guarded by _lock: admitted, not yet ended
        self._local = threading.local()  # .connection: the one this handler thread serves
        self._framed = FramedOnce()  # a fan-out's blob framed once for all its browsers

    def start(self) -> None:
        """Bind the web port and start accepting.

        Raises:
            ConfigError: the port cannot be bound.
        """
        listener = _listen(self._host, self._port, self._backlog)
        port = listener.getsockname()[1]
        self._origins = Origins(self._names, port)
        self._files = StaticFiles(
            load_package_files(), connect_sources=self._origins.websocket_sources()
        )
        limits = self._limits
        server = serve(
            self._handle,
            sock=listener,
            ssl=forwarding_server_context(lambda: self._credentials().context),
            compression=None,  # no compressed stream mixing tokens with others' text
            process_request=self._process_request,
            server_header=None,
            open_timeout=min(limits.handshake_timeout, limits.auth_timeout),
            ping_interval=None,  # protocol v1 has its own heartbeat (ping/pong messages)
            close_timeout=CLOSE_TIMEOUT,
            max_size=limits.max_frame,
            # A function, where serve() is typed for a class: it only ever calls it.
            create_connection=cast("type[ServerConnection]", self._create_connection),
        )
        self._accept = server.handler
        server.handler = self._admit_then_accept
        self._server = server
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None, "not started"
        host, port = self._server.socket.getsockname()[:2]
        return host, port

    @property
    def origins(self) -> frozenset[str]:
        return self._origins.exact

    def stop(self) -> None:
        """Cut what is still open, stop accepting and join every thread. Idempotent."""
        server = self._server
        if server is None:
            return
        with self._lock:
            left = list(self._live)
        for connection in left:
            connection.abort()
        server.shutdown()
        if self._thread.is_alive():
            self._thread.join()
        self._server = None

    # --- websockets' threads -------------------------------------------------------

    def _serve_forever(self) -> None:
        assert self._server is not None
        self._server.serve_forever()

    def _admit_then_accept(self, sock: socket.socket, address: Any) -> None:
        """A connection thread's first step: admission, then websockets' handshakes."""
        server, accept = self._server, self._accept
        assert server is not None
        assert accept is not None
        ca_pem = self._credentials().ca_pem  # read now: admit() runs the factory under a lock
        accepted_at = time.monotonic()
        connection = self._admit(address[0], lambda: self._connection(address, accepted_at, ca_pem))
        if connection is None:
            self._drop(sock)
            return
        connection.socket = sock
        with self._lock:
            self._live.add(connection)
        self._local.connection = connection
        try:
            if self._identify(connection, sock, address, accepted_at):
                accept(sock, address)
            else:
                self._drop(sock)
        finally:
            with self._lock:
                self._live.discard(connection)
            connection.release()
            self._on_closed(connection)

    def _drop(self, sock: socket.socket) -> None:
        """Close a socket websockets will not see (this thread's end, as its handler's)."""
        assert self._server is not None
        sock.close()
        with self._server.lock:  # websockets' own bookkeeping, as its handler would do
            self._server.handler_threads.discard(threading.current_thread())

    def _identify(
        self, connection: WebConnection, sock: socket.socket, address: Any, accepted_at: float
    ) -> bool:
        """Take the connection's address from a trusted proxy's header; False: drop it.

        The header's wait shares the TLS handshake's bound; request_close() ends it early
        (abort() shuts the socket down).
        """
        limits = self._limits
        deadline = accepted_at + min(limits.handshake_timeout, limits.auth_timeout)
        try:
            peer = identify(
                sock, (address[0], address[1]), proxies=self._proxies,
                max_header=limits.max_proxy_header, deadline=deadline,
            )  # fmt: skip
        except BadProxyHeader as exc:
            log.warning("dropped web connection from %s: %s", connection.peer, exc.message)
            return False
        except ConnectionLost as exc:
            log.debug("web connection from %s ended before TLS: %s", connection.peer, exc.message)
            return False
        if peer is None or peer.proxy is None:
            return peer is not None
        connection.readdress(peer)
        if peer.health_check:
            log.debug("web connection from %s", peer.described())
        return self._on_proxied is None or self._on_proxied(connection) is None

    def _connection(self, address: Any, accepted_at: float, ca_pem: str) -> WebConnection:
        return WebConnection(
            address=(address[0], address[1]),
            accepted_at=accepted_at,
            service=self._service,
            limits=self._limits,
            ca_pem=ca_pem,
            on_authenticated=self._on_authenticated,
            framed=self._framed,
        )

    def _create_connection(
        self, sock: socket.socket, built: ServerProtocol, server: Server, **options: Any
    ) -> WebSocket:
        """websockets' connection for an accepted socket, over a :class:`WebProtocol`.

        It replaces the protocol serve() ``built``, which has read nothing yet, with
        serve()'s only setting that applies here (``max_size``; no extension, subprotocol
        or origin list is configured), and meters control frames for the connection this
        handler thread serves.
        """
        connection: WebConnection = self._local.connection
        web = WebProtocol(
            max_size=self._limits.max_frame,
            headers=self._files.headers,
            meter=connection.charge_control_frame,
        )
        return _TellingConnection(sock, web, server, **options)

    def _handle(self, ws: ServerConnection) -> None:
        connection: WebConnection = self._local.connection
        connection.serve(ws)

    def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] == WEBSOCKET_PATH:
            origins = request.headers.get_all("Origin")
            origin = origins[0] if len(origins) == 1 else None
            if self._origins.allows(origin):
                return None
            peer = self._local.connection.peer
            if len(origins) > 1:
                log.warning("refused a WebSocket from %s: %d Origin headers", peer, len(origins))
                return _response(self._files.bad_request("more than one Origin header"))
            log.warning(
                "refused a WebSocket from %s: origin %r is not this server's",
                peer, (origin or "")[:100],
            )  # fmt: skip
            return _response(self._files.forbidden("this origin may not connect"))
        return _response(self._files.answer(request.method, request.path))


def _response(answer: Answer) -> Response:
    headers = Headers(answer.headers)
    headers["Connection"] = "close"
    status = http.HTTPStatus(answer.status)
    return Response(status.value, status.phrase, headers, answer.body)


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    """A blocking listening socket, as websockets' accepting thread wants it."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and host in ("::", ""):
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        listener.bind(address)
        listener.listen(backlog)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host} port {port} for the web client: {exc.strerror or exc}"
        ) from exc
    return listener
