"""A raw WebSocket test client for the web port: one JSON object per text message.

The counterpart of tests/peer.py: it asserts exactly what goes over the wire, with the
browser's framing, independent of the JavaScript client.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
from pathlib import Path
from typing import TypedDict, Unpack

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from tests.conftest import TIMEOUT, WEB_OPENING_TIMEOUT
from tests.peer import Event, EventPeer


class ConnectOptions(TypedDict, total=False):
    """What a test may change in ``websockets.sync.client.connect``."""

    max_size: int | None
    max_queue: int | None


def origin_of(address: tuple[str, int], host: str = "localhost") -> str:
    return f"https://{host}:{address[1]}"


class WebPeer(EventPeer):
    closed_errors = (ConnectionClosed,)

    def __init__(
        self,
        address: tuple[str, int],
        ca_file: Path,
        *,
        origin: str | None = None,
        host: str = "localhost",
        source: str | None = None,
        prefix: bytes = b"",
        **options: Unpack[ConnectOptions],
    ) -> None:
        """``source``: a loopback address to connect from; ``prefix``: bytes sent before
        the TLS handshake (a PROXY header)."""
        super().__init__()
        context = ssl.create_default_context(cafile=str(ca_file))
        self._exit = contextlib.ExitStack()  # websockets wants connect() used as a context
        raw = None
        if source is not None or prefix:
            bind = None if source is None else (source, 0)
            raw = socket.create_connection(address, timeout=TIMEOUT, source_address=bind)
            self._exit.callback(raw.close)  # if the opening fails; else websockets closes it
            raw.sendall(prefix)
        try:
            self.ws: ClientConnection = self._exit.enter_context(connect(
                f"wss://{host}:{address[1]}/ws",
                sock=raw,
                ssl=context,
                origin=Origin(origin or origin_of(address, host)),
                open_timeout=WEB_OPENING_TIMEOUT,
                compression=None,
                **options,
            ))  # fmt: skip
        except BaseException:
            self._exit.close()
            raise

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._exit.close()

    def send(self, **fields: object) -> None:
        self.ws.send(json.dumps(fields))

    def recv(self, timeout: float = TIMEOUT) -> Event:
        """The next event; raises TimeoutError or ConnectionClosed."""
        data = self.ws.recv(timeout=timeout)
        event: Event = json.loads(data)
        return event
