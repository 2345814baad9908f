"""The browser's sans-I/O ChatSession (securechat/web/session.js) under Node's test runner.

tests/js/session.test.mjs holds the cases; this runs them with the suite. Without Node the
test is skipped with one line saying how to get it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TIMEOUT

ROOT = Path(__file__).resolve().parent.parent


def test_web_session_js_mirrors_the_client_session(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip(
            "JS SESSION TESTS SKIPPED: node not found; install with `apt-get install nodejs`"
        )
    module = tmp_path / "session.mjs"
    shutil.copy(ROOT / "securechat" / "web" / "session.js", module)
    result = subprocess.run(
        [node, "--test", str(ROOT / "tests" / "js" / "session.test.mjs")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 3,
        env={"SESSION_MODULE": module.as_uri(), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout
