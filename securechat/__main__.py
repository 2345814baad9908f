"""Allow ``python -m securechat``."""

from __future__ import annotations

from securechat.cli import main

main()
