"""A plain blocking client for the few probe requests the parent makes itself.

The idle workload checks, at each level, that one more session still gets a quick
``pong`` and that a fresh login still succeeds. Those are single requests, timed from the
parent's side, so a blocking socket is simpler and more direct than a worker command.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from securechat.errors import ConnectionLost, FrameTooLarge
from securechat.protocol.frames import FrameDecoder, encode_frame
from securechat.tls import client_context


class ProbeClient:
    """One TLS session with blocking reads under a timeout."""

    def __init__(self, host: str, port: int, ca_file: Path, *, timeout: float = 10.0) -> None:
        self._started = time.monotonic()
        try:
            raw = socket.create_connection((host, port), timeout=timeout)
            self._sock = client_context(ca_file).wrap_socket(raw, server_hostname=host)
        except (OSError, ssl.SSLError) as exc:
            raise ConnectionLost(f"cannot connect to {host} port {port}: {exc}") from exc
        self._decoder = FrameDecoder(16 * 1024 * 1024)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def request(self, obj: dict[str, Any]) -> None:
        try:
            self._sock.sendall(encode_frame(json.dumps(obj).encode()))
        except (OSError, ssl.SSLError) as exc:
            raise ConnectionLost(f"send failed: {exc}") from exc

    def wait_for(self, kind: str) -> dict[str, Any]:
        """Read events until one of type ``kind`` arrives.

        Raises:
            ConnectionLost: an ``error`` or ``bye`` came instead, the connection ended, or
                the timeout passed.
        """
        while True:
            try:
                payload = self._decoder.next_frame()
            except FrameTooLarge as exc:
                raise ConnectionLost(str(exc)) from exc
            if payload is None:
                try:
                    data = self._sock.recv(65536)
                except (OSError, ssl.SSLError) as exc:
                    raise ConnectionLost(f"no {kind!r}: {exc}") from exc
                if not data:
                    raise ConnectionLost(f"closed by the server while waiting for {kind!r}")
                self._decoder.feed(data)
                continue
            event: dict[str, Any] = json.loads(payload)
            if event.get("type") == kind:
                return event
            if event.get("type") in ("error", "bye"):
                raise ConnectionLost(f"{event.get('type')}: {event.get('code') or ''} {event}")

    def login(self, user: str, password: str) -> float:
        """Log in; the seconds from TCP connect to ``welcome``."""
        self.request({"type": "auth", "user": user, "password": password})
        self.wait_for("welcome")
        return time.monotonic() - self._started

    def ping(self) -> float:
        """The round trip of one ``ping``, in seconds."""
        started = time.monotonic()
        self.request({"type": "ping", "ref": "probe"})
        self.wait_for("pong")
        return time.monotonic() - started

    def close(self) -> None:
        self._sock.close()
