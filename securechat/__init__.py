"""securechat: self-hosted, encrypted chat for an office LAN."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
