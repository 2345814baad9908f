"""The securechat client: a blocking :class:`Client` API and the terminal UI built on it.

Example::

    from pathlib import Path
    from securechat.client import Client

    with Client("chat.example", ca_file=Path("ca.pem"), user="alice", password=pw) as client:
        client.send("backup finished", room="ops")
"""

from __future__ import annotations

from securechat.client.api import Client
from securechat.client.events import (
    Backoff,
    ClientEvent,
    Delivered,
    Disconnected,
    Reconnected,
    Reconnecting,
    SendFailed,
)
from securechat.client.outgoing import Outgoing

__all__ = [
    "Backoff",
    "Client",
    "ClientEvent",
    "Delivered",
    "Disconnected",
    "Outgoing",
    "Reconnected",
    "Reconnecting",
    "SendFailed",
]
