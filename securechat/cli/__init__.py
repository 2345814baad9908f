"""The ``securechat`` command line.

``cli`` is the only layer that turns errors into exit codes: a :class:`SecureChatError`
becomes one line on stderr and exit status 1, never a traceback. Its message may quote a
server (an error reply, a greeting), so it is escaped like chat text before printing.
Where a peer's text is quoted, it was escaped already, newlines included; the newlines
left are ours (the several-line refusal of a changed CA), so they are kept.

Start-up: every command module registers its commands at import, with their options and
help, and imports its machinery (the store, the server, the client, cryptography) only when
the command runs, so that ``--help`` and light commands do not load the whole product
(tests/test_cli_startup.py holds the list of what ``--help`` must not import).
"""

from __future__ import annotations

import sys

from securechat.cli.app import app
from securechat.errors import SecureChatError

__all__ = ["COMMAND_MODULES", "app", "main"]

#: The modules under securechat.cli that register commands on ``app`` when imported.
COMMAND_MODULES = (
    "certs",
    "users",
    "db",
    "room",
    "server",
    "client",
    "admin",
    "bench",
    "config",
    "directory",
)


def _register_commands() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"securechat.cli.{name}")


def main() -> None:
    """Console-script entry point."""
    _register_commands()
    try:
        app()
    except SecureChatError as exc:
        from securechat.client.escaping import escape

        print(f"securechat: error: {escape(exc.message, keep_newlines=True)}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("securechat: interrupted", file=sys.stderr)
        sys.exit(130)
