"""User and room names: one rule for both, shared by the wire protocol and the user store."""

from __future__ import annotations

import re

NAME_MIN = 2
NAME_MAX = 32
_NAME_RE = re.compile(rf"[a-z0-9._-]{{{NAME_MIN},{NAME_MAX}}}")

NAME_RULE = f"{NAME_MIN}-{NAME_MAX} characters: lowercase letters a-z, digits 0-9, '.', '_' or '-'"


def normalize_name(raw: str) -> str | None:
    """Return the canonical (lowercase) form of ``raw``, or None when it breaks NAME_RULE."""
    name = raw.strip().lower()
    return name if _NAME_RE.fullmatch(name) else None
