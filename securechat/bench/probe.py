"""A plain blocking client for the few probe requests the parent makes itself.

The idle workload checks, at each level, that one more session still gets a quick
``pong`` and that a fresh login still succeeds. Those are single requests, timed from the
parent's side, so the product's own blocking steps (a :class:`ClientSession` driven by
:mod:`securechat.client.link`) are simpler and more direct than a worker command.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType
from typing import Self

from securechat.client.link import Endpoint, ask, log_in
from securechat.errors import ConnectionLost
from securechat.protocol.client import ClientSession
from securechat.protocol.messages import Ping
from securechat.tls import client_context
from securechat.transport import TlsStream


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
