"""``--help`` loads only the command line: each command imports its machinery when it runs.

Asserted on ``sys.modules`` in a fresh interpreter, not on a time, so that a module-level
import of the store, the server or cryptography in a command module fails here at once.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: What no ``--help`` may import: the database, migrations, the server, certificates, the
#: terminal UI, password hashing and strength, the bench's report, the directory client.
HEAVY = (
    "sqlalchemy",
    "alembic",
    "securechat.store.database",
    "securechat.server",
    "securechat.client.api",
    "cryptography",
    "prompt_toolkit",
    "argon2",
    "zxcvbn",
    "rich",
    "ldap3",
    "PIL",
)

_PROBE = """
import json, sys
sys.argv = ["securechat", *json.loads(sys.argv[1])]
from securechat.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def modules_after(*args: str) -> set[str]:
    """The modules loaded by ``securechat ARGS`` in a new interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    last = done.stdout.strip().splitlines()[-1]
    loaded: list[str] = json.loads(last)
    return set(loaded)


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("adduser", "--help"),
        ("serve", "--help"),
        ("init-certs", "--help"),
        ("connect", "--help"),
        ("bench", "--help"),
        ("room", "create", "--help"),
    ],
    ids=" ".join,
)
def test_help_imports_no_machinery(args: tuple[str, ...]) -> None:
    modules = modules_after(*args)
    assert "securechat.cli.users" in modules  # every command was registered
    assert heavy(modules) == []


def test_a_command_that_runs_still_imports_what_it_needs() -> None:
    """The probe sees imports at all: ``fingerprint`` of a missing folder reads certificates."""
    modules = modules_after("fingerprint", "--dir", "/nonexistent/securechat-certs")
    assert "cryptography.x509" in modules
