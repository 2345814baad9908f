"""Allow ``python -m securechat``."""

from __future__ import annotations

from securechat.cli import main

if __name__ == "__main__":  # not when a hashing process (spawn) imports it
    main()
