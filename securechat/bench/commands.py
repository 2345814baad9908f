"""What the parent and a worker process pass each other over their pipe.

Commands go one way as ``(name, *args)`` tuples, replies the other as ``(name, value)``;
the values are these frozen dataclasses (pickled by :mod:`multiprocessing`). The
commands and their replies are listed in :mod:`securechat.bench.worker`.
"""

from __future__ import annotations

import dataclasses
import enum

from securechat.bench.stats import Samples


class Role(enum.StrEnum):
    RECEIVER = "receiver"
    SENDER = "sender"
    IDLE = "idle"
    ONESHOT = "oneshot"  # a storm login: closed right after welcome


class Transport(enum.StrEnum):
    """Which port the generator's sessions use."""

    TLS = "tls"  # the chat port: length-prefixed frames over TLS
    WS = "ws"  # the web port: one message per WebSocket text message, as browsers do


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int  # of the chat port, or of the web port for Transport.WS
    ca_file: str
    transport: Transport = Transport.TLS


@dataclasses.dataclass(frozen=True, slots=True)
class SessionSpec:
    """A persistent session; ``sender`` is its global index among all senders, or -1."""

    user: str
    password: str
    role: Role
    sender: int = -1
    port: int = 0  # another node's port (bench nodes); 0: the pool's endpoint


@dataclasses.dataclass(frozen=True, slots=True)
class LoginSpec:
    """A one-shot login with either a password or a resume token."""

    user: str
    password: str | None = None
    token: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class LoginResult:
    user: str
    ok: bool
    elapsed_ns: int
    token: str | None = None
    error: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class OpenResult:
    connect_ns: list[int]
    failures: list[str]


@dataclasses.dataclass(frozen=True, slots=True)
class FanoutPlan:
    """One fan-out run. ``rate`` None means window mode; ``messages`` None means open-ended."""

    tag: str
    body_bytes: int
    senders: int
    messages: int | None
    start_ns: int
    rate: float | None
    window: int
    grace_s: float
    max_samples: int


@dataclasses.dataclass(frozen=True, slots=True)
class FanoutResult:
    sent: int
    acked: int
    deliveries: int
    expected: int
    delivery_ns: Samples
    ack_ns: Samples
    first_send_ns: int
    last_event_ns: int
    failures: list[str]
