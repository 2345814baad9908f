"""A raw WebSocket test client for the web port: one JSON object per text message.

The counterpart of tests/peer.py: it asserts exactly what goes over the wire, with the
browser's framing, independent of the JavaScript client.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import time
from pathlib import Path
from typing import Any, Self

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.conftest import TIMEOUT

Event = dict[str, Any]


def origin_of(address: tuple[str, int], host: str = "localhost") -> str:
    return f"https://{host}:{address[1]}"


class WebPeer:
    def __init__(
        self,
        address: tuple[str, int],
        ca_file: Path,
        *,
        origin: str | None = None,
        host: str = "localhost",
        **options: Any,
    ) -> None:
        context = ssl.create_default_context(cafile=str(ca_file))
        self._exit = contextlib.ExitStack()  # websockets wants connect() used as a context
        self.ws: ClientConnection = self._exit.enter_context(connect(
            f"wss://{host}:{address[1]}/ws",
            ssl=context,
            origin=origin or origin_of(address, host),  # type: ignore[arg-type]
            open_timeout=TIMEOUT,
            compression=None,
            **options,
        ))  # fmt: skip
        self.seen: list[Event] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._exit.close()

    def send(self, **fields: Any) -> None:
        self.ws.send(json.dumps(fields))

    def recv(self, timeout: float = TIMEOUT) -> Event:
        """The next event; raises TimeoutError or ConnectionClosed."""
        data = self.ws.recv(timeout=timeout)
        event: Event = json.loads(data)
        return event

    def expect(self, type_: str, timeout: float = TIMEOUT, **match: Any) -> Event:
        deadline = time.monotonic() + timeout
        while True:
            event = self.recv(max(deadline - time.monotonic(), 0.001))
            if event.get("type") == type_ and all(event.get(k) == v for k, v in match.items()):
                return event
            self.seen.append(event)

    def expect_closed(self, timeout: float = TIMEOUT) -> list[Event]:
        """Read until the server closes; return what came before."""
        events: list[Event] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                events.append(self.recv(max(deadline - time.monotonic(), 0.001)))
            except ConnectionClosed:
                return events

    def login(self, user: str, password: str) -> Event:
        hello = self.expect("hello")
        assert hello["protocol"] == 1
        self.send(type="auth", user=user, password=password)
        return self.expect("welcome")
