"""The messages of "stay signed in on this device" (#26), both directions.

A password ``auth`` with ``remember`` is followed, on the web port, by a ``device_grant``
event just after ``welcome``; the page trades the grant for its cookie over HTTP
(docs/protocol.md, "Devices"). ``devices`` lists the user's signed-in devices,
``device_signout`` ends one, ``signout_everywhere`` ends them all with every resume token
and live session. The credential itself never appears in a message: it is the cookie.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from securechat.protocol.wire import WireMessage

# --- requests (client -> server) -----------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ListDevices(WireMessage):
    TYPE: ClassVar[str] = "devices"
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SignOutDevice(WireMessage):
    """End one of the user's devices (its ``id`` from a ``devices`` reply)."""

    TYPE: ClassVar[str] = "device_signout"
    id: int
    ref: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SignOutEverywhere(WireMessage):
    """End every device, resume token and live session of the user, this one included."""

    TYPE: ClassVar[str] = "signout_everywhere"
    ref: str | None = None


DeviceRequest = ListDevices | SignOutDevice | SignOutEverywhere

# --- events (server -> client) --------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceGrant(WireMessage):
    """A single-use grant, valid seconds, to trade for the device cookie."""

    TYPE: ClassVar[str] = "device_grant"
    grant: str = dataclasses.field(repr=False)
    expires_in: int


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceEntry:
    """One signed-in device: ``name`` from its browser, times in ISO 8601 UTC."""

    id: int
    name: str
    created: str
    last_used: str
    current: bool


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceList(WireMessage):
    TYPE: ClassVar[str] = "devices"
    devices: tuple[DeviceEntry, ...]
    ref: str | None = None


DeviceEvent = DeviceGrant | DeviceList
