"""Sizes as people write them (``25MiB``, ``10MB``, ``1000``) and as messages show them.

Small code rather than a library: the candidates either read ``Mb`` as megabits
(bitmath) or have not been released for years (humanfriendly), and the rule fits in a
table. Units are bytes only; ``KiB``/``MiB``/``GiB``/``TiB`` are powers of 1024 and
``kB``/``MB``/``GB``/``TB`` powers of 1000, case aside. A bare ``K`` or ``M`` is refused:
it could mean either.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"\s*(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[a-z]*)\s*", re.IGNORECASE)
_SHOWN_UNITS = ("KiB", "MiB", "GiB", "TiB")
_HINT = "a number of bytes, optionally with a unit: 1000, 512KiB, 25MiB, 1GiB, 10MB"


def parse_size(text: str) -> int:
    """The number of bytes ``text`` names; a fraction of a byte is dropped.

    Raises:
        ValueError: ``text`` is not a size (the message says what one looks like).
    """
    match = _SIZE.fullmatch(text)
    multiplier = _UNITS.get(match.group("unit").lower()) if match else None
    if match is None or multiplier is None:
        raise ValueError(f"not a size: {text!r} (expected {_HINT})")
    try:
        return int(Decimal(match.group("number")) * multiplier)
    except InvalidOperation as exc:  # only for numbers far beyond any disk
        raise ValueError(f"not a size: {text!r} (expected {_HINT})") from exc


def format_size(n: int) -> str:
    """``n`` bytes for a person: ``"512 B"``, ``"25.0 MiB"``, ``"1.5 GiB"``."""
    if abs(n) < 1024:
        return f"{n} B"
    value = float(n)
    for unit in _SHOWN_UNITS:
        value /= 1024
        if abs(value) < 1024 or unit == _SHOWN_UNITS[-1]:
            break
    return f"{value:.1f} {unit}"


def too_large(size: int, limit: int) -> str:
    """Why a file of ``size`` bytes is refused where files of ``limit`` bytes at most are
    taken: the server's ``file_too_large`` message, and the client's before it asks."""
    return f"the file is {format_size(size)}; this server takes files of up to {format_size(limit)}"
