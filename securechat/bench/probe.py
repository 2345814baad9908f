"""A plain blocking client for the few probe requests the parent makes itself.

The idle workload checks, at each level, that one more session still gets a quick
``pong`` and that a fresh login still succeeds. Those are single requests, timed from the
parent's side, so the product's own blocking steps (a :class:`ClientSession` driven by
:mod:`securechat.client.link`) are simpler and more direct than a worker command. On the
web port (``--transport ws``) the probe is a browser's session instead:
:class:`WebProbeClient`, on ``websockets``' own blocking client.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from securechat.bench.commands import Transport
from securechat.bench.target import Target
from securechat.bench.worker.framing import web_origin, web_uri
from securechat.bench.worker.wire import read_event
from securechat.client.link import Endpoint, ask, log_in
from securechat.errors import ConnectionLost, ProtocolError
from securechat.protocol.client import ClientSession
from securechat.protocol.messages import Auth, Error, Event, Ping, Pong, Welcome, encode
from securechat.tls import client_context
from securechat.transport import TlsStream

_E = TypeVar("_E", bound=Event)


def open_probe(target: Target, transport: Transport) -> ProbeClient | WebProbeClient:
    """A probe on the port the generator's sessions use."""
    if transport is Transport.WS:
        assert target.web_port is not None, "checked when the run's endpoint was made"
        return WebProbeClient(target.host, target.web_port, target.ca_file)
    return ProbeClient(target.host, target.port, target.ca_file)


class ProbeClient:
    """One logged-in TLS session with blocking requests under a timeout."""

    def __init__(self, host: str, port: int, ca_file: Path, *, timeout: float = 10.0) -> None:
        self._started = time.monotonic()
        self._endpoint = Endpoint(host, port, ca_file)
        self._context = client_context(ca_file)
        self._timeout = timeout
        self._session: ClientSession | None = None
        self._stream: TlsStream | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def login(self, user: str, password: str) -> float:
        """Log in; the seconds from this probe's creation (TCP connect follows) to ``welcome``."""
        self._session = ClientSession(user, password=password)
        self._stream, _ = log_in(
            self._endpoint, self._context, self._session, timeout=self._timeout
        )
        return time.monotonic() - self._started

    def ping(self) -> float:
        """The round trip of one ``ping``, in seconds.

        Raises:
            ConnectionLost: not logged in, or no ``pong`` in time.
        """
        if self._session is None or self._stream is None:
            raise ConnectionLost("the probe is not logged in")
        started = time.monotonic()
        ask(self._stream, self._session, Ping(), deadline=started + self._timeout,
            label=self._endpoint.label)  # fmt: skip
        return time.monotonic() - started

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()


class WebProbeClient:
    """One logged-in WebSocket session on the web port, as a browser has it."""

    def __init__(self, host: str, port: int, ca_file: Path, *, timeout: float = 10.0) -> None:
        self._started = time.monotonic()
        self._host, self._port = host, port
        self._context = client_context(ca_file)
        self._timeout = timeout
        self._exit = contextlib.ExitStack()  # websockets' connect() is closed as a context
        self._ws: ClientConnection | None = None
        self._pings = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def login(self, user: str, password: str) -> float:
        """Log in; the seconds from this probe's creation (TCP connect follows) to ``welcome``.

        Raises:
            ConnectionLost: no WebSocket, a refused login, or no ``welcome`` in time.
        """
        with self._translated():
            self._ws = self._exit.enter_context(connect(
                web_uri(self._host, self._port), ssl=self._context,
                origin=Origin(web_origin(self._host, self._port)), compression=None,
                open_timeout=self._timeout, ping_interval=None, max_size=None,
            ))  # fmt: skip
            self._ws.send(encode(Auth(user=user, password=password)).decode())
            self._await(Welcome, time.monotonic() + self._timeout)
        return time.monotonic() - self._started

    def ping(self) -> float:
        """The round trip of one ``ping``, in seconds.

        Raises:
            ConnectionLost: not logged in, or no ``pong`` in time.
        """
        if self._ws is None:
            raise ConnectionLost("the probe is not logged in")
        self._pings += 1
        ref = f"probe-{self._pings}"
        started = time.monotonic()
        with self._translated():
            self._ws.send(encode(Ping(ref=ref)).decode())
            while self._await(Pong, started + self._timeout).ref != ref:
                pass
        return time.monotonic() - started

    def _await(self, kind: type[_E], deadline: float) -> _E:
        """The next ``kind`` event; others are skipped, an ``error`` ends the wait."""
        assert self._ws is not None
        while True:
            data = self._ws.recv(timeout=max(deadline - time.monotonic(), 0.001), decode=False)
            event = read_event(data)
            if isinstance(event, kind):
                return event
            if isinstance(event, Error):
                raise ConnectionLost(f"the server answered {event.code}: {event.message}")

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        """websockets' and the socket's errors, as the ConnectionLost the caller handles."""
        label = f"{self._host} web port {self._port}"
        try:
            yield
        except TimeoutError as exc:
            raise ConnectionLost(f"{label}: no answer within {self._timeout:.0f} s") from exc
        except (ConnectionClosed, InvalidHandshake, ProtocolError, OSError) as exc:
            raise ConnectionLost(f"{label}: {exc}") from exc

    def close(self) -> None:
        with contextlib.suppress(OSError):  # already gone: nothing left to close
            self._exit.close()
