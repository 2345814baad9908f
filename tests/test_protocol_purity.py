"""securechat.protocol stays sans-I/O: no sockets, threads, clocks, logging or database."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import securechat.protocol

PROTOCOL_DIR = Path(securechat.protocol.__file__).parent
FORBIDDEN = {"socket", "ssl", "threading", "time", "select", "selectors", "logging", "sqlalchemy"}
ALLOWED_OWN = ("securechat.protocol", "securechat.errors")


def imported_modules(source: str) -> set[str]:
    """Absolute names of every module imported by ``source`` (a protocol/ module)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against securechat.protocol
                base = "securechat.protocol".rsplit(".", node.level - 1)[0]
                modules.add(f"{base}.{node.module}" if node.module else base)
            else:
                modules.add(node.module or "")
    return modules


def violations(modules: set[str]) -> set[str]:
    bad = {m for m in modules if m.split(".")[0] in FORBIDDEN}
    own = {m for m in modules if m == "securechat" or m.startswith("securechat.")}
    return bad | {m for m in own if not any(m == a or m.startswith(a + ".") for a in ALLOWED_OWN)}


def test_protocol_package_has_the_expected_modules() -> None:
    names = {path.stem for path in PROTOCOL_DIR.glob("*.py")}
    assert {"__init__", "frames", "messages", "session", "names"} <= names


@pytest.mark.parametrize("path", sorted(PROTOCOL_DIR.glob("*.py")), ids=lambda p: p.name)
def test_protocol_module_imports_no_io_or_outside_modules(path: Path) -> None:
    assert violations(imported_modules(path.read_text(encoding="utf-8"))) == set()


@pytest.mark.parametrize(
    ("source", "culprit"),
    [
        ("import socket", "socket"),
        ("import ssl as _ssl", "ssl"),
        ("from time import monotonic", "time"),
        ("from logging.handlers import QueueHandler", "logging.handlers"),
        ("import sqlalchemy.orm", "sqlalchemy.orm"),
        ("def f():\n    import threading", "threading"),
        ("from securechat.server import hub", "securechat.server"),
        ("from .. import config", "securechat"),
        ("from ..store import models", "securechat.store"),
        ("import securechat", "securechat"),
    ],
)
def test_purity_check_catches_forbidden_import(source: str, culprit: str) -> None:
    assert violations(imported_modules(source)) == {culprit}


def test_purity_check_allows_protocol_and_errors() -> None:
    source = (
        "import json\nfrom securechat.errors import FrameTooLarge\n"
        "from securechat.protocol.names import normalize_name\nfrom .frames import HEADER\n"
    )
    assert violations(imported_modules(source)) == set()
