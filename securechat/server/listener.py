"""A listening socket and the one thread that accepts on it, for both ports.

The acceptor thread only accepts: it hands every new socket to ``on_accept`` (which admits
it and starts its connection thread, or closes it) and goes back to ``poll()``. ``stop()``
wakes it through a :class:`Waker`, joins it and closes the listening socket; sockets
already handed over belong to whoever ``on_accept`` gave them to.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from collections.abc import Callable

from securechat.errors import ConfigError
from securechat.transport import Waker

log = logging.getLogger("securechat.server")

#: Called on the acceptor thread with each accepted socket and its (host, port).
OnAccept = Callable[[socket.socket, tuple[str, int]], None]

#: How long the acceptor waits after accept() fails (EMFILE, ENOBUFS) before trying again.
_ACCEPT_BACKOFF = 0.05


def listen(host: str, port: int, backlog: int, *, purpose: str) -> socket.socket:
    """A non-blocking listening socket; ``::`` also accepts IPv4.

    Raises:
        ConfigError: the address cannot be bound (in use, not local, no permission);
            the message names ``purpose`` ("the chat port", "the web client").
    """
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
            f"cannot listen on {host} port {port} for {purpose}: {exc.strerror or exc}"
        ) from exc
    listener.setblocking(False)
    return listener


class Acceptor:
    """Owns a listening socket and the thread that accepts on it. ``start()``, ``stop()``."""

    def __init__(self, listener: socket.socket, on_accept: OnAccept, *, name: str) -> None:
        self._listener = listener
        self._on_accept = on_accept
        self._waker = Waker()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return host, port

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, join the thread and close the listening socket. Idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._waker.wake()
        if self._thread.is_alive():
            self._thread.join()
        self._listener.close()
        self._waker.close()

    def _run(self) -> None:
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
                    log.error("accept failed: %s (%s)", exc, self._thread.name)
                    time.sleep(_ACCEPT_BACKOFF)
                    break
                self._on_accept(sock, (address[0], address[1]))
