"""The browser client's JavaScript without a browser: its pure modules under Node's test
runner, and a check of every script for ways to turn a string into markup.

tests/js/ holds the Node cases (session.test.mjs for ChatSession in session.js,
session_vectors.test.mjs for it against tests/vectors/session*.json, chat.test.mjs for the
page's rules in chat.js and commands.js, names.test.mjs for its name rule
against tests/vectors/names.json, state.test.mjs for the page's state updates in state.js,
drafts.test.mjs for the composer's checks in drafts.js, timeline.test.mjs for day
separators and shared headers in timeline.js, markdown.test.mjs for message bodies in
markdown.js with the vendored markdown-it, listwindow.test.mjs for the timeline's
window arithmetic in listwindow.js, files.test.mjs for captions and the upload state
machine in files.js); this runs them with the suite. Without Node
those are skipped with one line saying how to get it.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from securechat.server.webfiles import load_package_files
from tests.conftest import TIMEOUT, skip_or_fail

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "securechat" / "web"
#: Node test file -> the module it tests and the variable that points it at a copy.
NODE_SUITES = {
    "session.test.mjs": ("session.js", "SESSION_MODULE"),
    "session_vectors.test.mjs": ("session.js", "SESSION_MODULE"),
    "chat.test.mjs": ("chat.js", "CHAT_MODULE"),
    "names.test.mjs": ("names.js", "NAMES_MODULE"),
    "state.test.mjs": ("state.js", "STATE_MODULE"),
    "members.test.mjs": ("members.js", "MEMBERS_MODULE"),
    "drafts.test.mjs": ("drafts.js", "DRAFTS_MODULE"),
    "timeline.test.mjs": ("timeline.js", "TIMELINE_MODULE"),
    "markdown.test.mjs": ("markdown.js", "MARKDOWN_MODULE"),
    "listwindow.test.mjs": ("listwindow.js", "LISTWINDOW_MODULE"),
    "files.test.mjs": ("files.js", "FILES_MODULE"),
}
#: The vendored libraries (securechat/web/vendor/README.md) and their pinned SHA-256.
VENDORED = {
    "markdown-it.min.js": "494ba53db1aac9f676317dda7062bd9545b5f0bbe3f12b0ab1ab4f813825cfb0",
}
#: What would let text from the wire become markup or code in the page.
MARKUP_SINKS = re.compile(
    r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\s*\(|new\s+Function\b"
    r"|setAttribute\(\s*[\"']on|\.srcdoc\b|createContextualFragment"
)


@pytest.mark.parametrize("suite", sorted(NODE_SUITES))
def test_web_js_module_under_node(suite: str, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        skip_or_fail(
            "JS SESSION TESTS SKIPPED: node not found; install with `apt-get install nodejs`"
        )
    module, variable = NODE_SUITES[suite]
    # A copy of every script (modules import each other) in a folder that says its .js
    # files are ES modules, for Nodes that do not detect module syntax.
    for script in WEB.glob("*.js"):
        shutil.copy(script, tmp_path / script.name)
    shutil.copytree(WEB / "vendor", tmp_path / "vendor")
    (tmp_path / "package.json").write_text('{"type": "module"}\n')
    copy = tmp_path / module
    result = subprocess.run(
        [node, "--test", str(ROOT / "tests" / "js" / suite)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 3,
        env={variable: copy.as_uri(), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout


def test_web_scripts_never_turn_strings_into_markup() -> None:
    scripts = sorted(WEB.glob("*.js"))
    assert {path.name for path in scripts} >= {
        "app.js", "chat.js", "session.js", "state.js", "events.js", "connection.js",
        "messages.js", "sidebar.js", "search.js", "composer.js", "online.js", "dom.js",
    }  # fmt: skip
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in scripts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if MARKUP_SINKS.search(line)
    ]
    assert found == []


@pytest.mark.parametrize("name", sorted(VENDORED))
def test_vendored_library_matches_its_pinned_checksum_and_ships_its_licence(name: str) -> None:
    vendor = WEB / "vendor"
    assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == VENDORED[name]
    licence = vendor / name.replace(".min.js", ".LICENSE")
    assert "Permission is hereby granted" in licence.read_text()
    assert VENDORED[name] in (vendor / "README.md").read_text()


def test_vendored_libraries_are_served_and_nothing_else_of_their_folder() -> None:
    served = load_package_files()
    assert (
        served["/vendor/markdown-it.min.js"] == (WEB / "vendor" / "markdown-it.min.js").read_bytes()
    )
    assert {path for path in served if path.startswith("/vendor/")} == {
        f"/vendor/{name}" for name in VENDORED
    }
