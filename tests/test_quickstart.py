"""README's quickstart, run as written, so that the README cannot drift from the product.

A copy of this checkout goes into a temporary folder; README's block marked
``<!-- quickstart: server -->`` runs there, line by line, in one interactive bash in a
pseudo-terminal, with its own venv built by the block's own ``pip install .`` (the test's
venv is taken off PATH, so a bare ``securechat`` must come from the block). The passwords
that ``adduser`` asks for are typed at its prompts. Then the ``colleague`` block runs in
another folder holding only ``ca.pem``, and a real Chromium that trusts ``ca.crt`` (imported
by docs/deploy.md's Linux commands, run as written) opens the web client; the two chat.

The substitutions, and the only ones, because a test may reach loopback only and must not
take a port someone else uses:

- ``chat.office.lan`` becomes ``localhost`` and ``192.168.1.20`` becomes ``127.0.0.1``;
- ``securechat serve`` gets ``--host 127.0.0.1 --port P --web-port W`` (free ports), and the
  colleague's ``chat.office.lan`` becomes ``localhost:P``; the browser opens
  ``https://localhost:W/`` for ``https://chat.office.lan:5443/``;
- the colleague's securechat is the one the server block installed (their own install is a
  wheel or pipx, which README describes but a test machine need not have);
- docs/deploy.md's ``sudo apt-get install`` line is skipped (certutil is there already).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.conftest import CHROMIUM, PASSWORD, TIMEOUT, browser_missing, skip_or_fail
from tests.pty_terminal import Terminal

if (missing := browser_missing()) is not None:
    skip_or_fail(missing)

from playwright.sync_api import expect, sync_playwright

from tests.test_web_browser import CHROMIUM_ARGS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parent.parent
#: Building the venv is `pip install .` of the checkout: about a minute on a loaded 2-core
#: machine with a warm pip cache; generous, since a slow mirror is not a README bug.
INSTALL_TIMEOUT = 600.0
#: One command of the block other than the install (argon2 in adduser, key generation).
STEP_TIMEOUT = 6 * TIMEOUT
HOSTS = {"chat.office.lan": "localhost", "192.168.1.20": "127.0.0.1"}
_RC = re.compile(r"__rc=(\d+)__")


def readme_block(name: str) -> list[str]:
    """The lines of README's fenced ``sh`` block under ``<!-- quickstart: NAME ... -->``."""
    readme = (ROOT / "README.md").read_text("utf-8")
    found = re.search(rf"<!-- quickstart: {name}\b.*?-->\n```sh\n(.*?)```", readme, re.DOTALL)
    assert found is not None, f"README.md has no block marked quickstart: {name}"
    return [line for line in found.group(1).splitlines() if line.strip()]


def deploy_linux_browser_block() -> list[str]:
    """docs/deploy.md's commands that make Chromium on Linux trust the CA."""
    guide = (ROOT / "docs" / "deploy.md").read_text("utf-8")
    found = re.search(r"\*\*Linux\*\* \(Chrome and Chromium.*?```sh\n(.*?)```", guide, re.DOTALL)
    assert found is not None, "docs/deploy.md lost its Linux browser section"
    return [line for line in found.group(1).splitlines() if line.strip()]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _copy_checkout(dest: Path) -> None:
    """The files a fresh clone has (tracked or new, not ignored): no venv, certs or database."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True, timeout=TIMEOUT,
    )  # fmt: skip
    for name in listed.stdout.decode().split("\0"):
        source = ROOT / name
        if name and source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _shell_env(home: Path) -> dict[str, str]:
    """The environment of a new admin's shell: no securechat on PATH, no SECURECHAT_*."""
    ours = Path(sys.executable).parent
    path = [
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and Path(entry) != ours and not (Path(entry) / "securechat").exists()
    ]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SECURECHAT_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    env.update(PATH=os.pathsep.join(path), HOME=str(home), TERM="xterm", NO_COLOR="1")
    env.update(PROMPT_TOOLKIT_NO_CPR="1", PIP_CACHE_DIR=_pip_cache())
    return env


def _pip_cache() -> str:
    """pip's own cache folder, kept although HOME changes (a warm cache saves minutes)."""
    found = subprocess.run(
        [sys.executable, "-m", "pip", "cache", "dir"],
        capture_output=True, text=True, check=False, timeout=TIMEOUT * 3,
    )  # fmt: skip
    return found.stdout.strip() or str(Path.home() / ".cache" / "pip")


class Shell:
    """One interactive bash in a pty, as the admin's terminal: lines typed, output read."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.child = pexpect.spawn(
            "bash", ["--norc", "--noprofile", "-i"], cwd=cwd, env=env, encoding="utf-8",
            dimensions=(50, 200), timeout=STEP_TIMEOUT,
        )  # fmt: skip
        self.screen = Terminal(self.child)

    def run(self, line: str, timeout: float = STEP_TIMEOUT, answers: int = 0) -> None:
        """Type ``line``; answer ``answers`` password prompts; it must exit with status 0."""
        self.screen.line(line)
        for _ in range(answers):
            self.screen.expect(r"[Pp]assword: ", timeout)
            self.screen.line(PASSWORD)
        self.screen.line('echo "__rc=$?__"')
        status = self.screen.expect(_RC.pattern, timeout)
        assert status.group(1) == "0", f"{line!r} failed:\n{self.screen.text[-3000:]}"

    def children(self) -> list[int]:
        """The processes bash started that still run (the server in the foreground)."""
        pid = self.child.pid
        try:
            text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except OSError:
            return []
        return [int(child) for child in text.split()]

    def close(self) -> None:
        """Stop what bash still runs (by its pid), then bash."""
        for pid in self.children():
            with_signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + TIMEOUT
        while self.children() and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in self.children():
            with_signal(pid, signal.SIGKILL)
        self.child.terminate(force=True)
        self.child.close()


def with_signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile: nothing to stop
        os.kill(pid, signum)


@pytest.fixture
def shells() -> Iterator[list[Shell]]:
    started: list[Shell] = []
    yield started
    for shell in started:
        shell.close()


def _substituted(line: str, port: int, web_port: int) -> str:
    line = line.replace(
        "securechat serve", f"securechat serve --host 127.0.0.1 --port {port} --web-port {web_port}"
    )
    for name, loopback in HOSTS.items():
        line = line.replace(name, loopback)
    return line


def test_readme_quickstart_as_written_serves_a_terminal_client_and_a_browser(
    tmp_path: Path, shells: list[Shell]
) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("copies the checkout with git ls-files: needs a git clone, not an sdist")
    checkout, home = tmp_path / "securechat", tmp_path / "admin-home"
    checkout.mkdir()
    home.mkdir()
    _copy_checkout(checkout)
    port, web_port = _free_port(), _free_port()
    admin = Shell(checkout, _shell_env(home))
    shells.append(admin)

    *setup, serve = readme_block("server")
    assert serve.startswith("securechat serve"), serve
    for line in setup:
        line = _substituted(line, port, web_port)
        slow = "pip install" in line or "venv" in line
        answers = 2 if " adduser " in f" {line}" else 0
        admin.run(line, INSTALL_TIMEOUT if slow else STEP_TIMEOUT, answers)
    for made in ("venv/bin/securechat", "certs/ca.pem", "certs/ca.crt", "securechat.db"):
        assert (checkout / made).exists(), f"the quickstart did not make {made}"
    admin.screen.line(_substituted(serve, port, web_port))
    admin.screen.expect(rf"web client on port {web_port}", STEP_TIMEOUT)
    admin.screen.expect(r"password checks in ", STEP_TIMEOUT)

    # A colleague: a folder with ca.pem only, and securechat on PATH.
    colleague = tmp_path / "colleague"
    colleague.mkdir()
    shutil.copy(checkout / "certs" / "ca.pem", colleague / "ca.pem")
    (connect,) = readme_block("colleague")
    env = _shell_env(tmp_path / "colleague-home")
    env["PATH"] = f"{checkout / 'venv' / 'bin'}{os.pathsep}{env['PATH']}"
    Path(env["HOME"]).mkdir()
    line = connect.replace("chat.office.lan", f"localhost:{port}")
    bob = Terminal(
        pexpect.spawn(
            "bash", ["-c", line], cwd=colleague, env=env, encoding="utf-8", dimensions=(30, 120)
        )
    )
    try:
        bob.expect(r"Password for bob on \S+: ", STEP_TIMEOUT)
        bob.line(PASSWORD)
        bob.expect(r"\[general\] bob>", STEP_TIMEOUT)
        _browser_chats_with(bob, checkout, tmp_path, web_port)
    finally:
        bob.child.terminate(force=True)
        bob.child.close()

    admin.child.sendintr()  # Ctrl-C, as README says
    admin.screen.expect(r"server stopped", STEP_TIMEOUT)


def _browser_chats_with(bob: Terminal, checkout: Path, tmp_path: Path, web_port: int) -> None:
    """alice in Chromium, trusting ca.crt the way docs/deploy.md says, chats with bob."""
    home = tmp_path / "browser-home"
    home.mkdir()
    shutil.copy(checkout / "certs" / "ca.crt", home / "ca.crt")
    env = {**os.environ, "HOME": str(home)}
    for line in deploy_linux_browser_block():
        if line.startswith("sudo "):
            continue
        subprocess.run(["bash", "-c", line], cwd=home, env=env, check=True, timeout=TIMEOUT * 3)
    with sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            env={**os.environ, "HOME": str(home)},  # Chromium reads $HOME/.pki/nssdb
        )
        context.set_default_timeout(STEP_TIMEOUT * 1000)
        try:
            page = context.new_page()
            page.goto(f"https://localhost:{web_port}/")
            page.fill("#login-user", "alice")
            page.fill("#login-password", PASSWORD)
            page.press("#login-password", "Enter")
            expect(page.locator("#connection-status")).to_have_text(
                "Online", timeout=STEP_TIMEOUT * 1000
            )
            bob.line("hello from the terminal")
            messages = page.locator("#messages li.message")
            expect(messages.filter(has_text="hello from the terminal")).to_have_count(
                1, timeout=STEP_TIMEOUT * 1000
            )
            composer = page.get_by_label("Message", exact=True)
            composer.fill("hello from the browser")
            composer.press("Enter")
            bob.expect(r"alice: hello from the browser", STEP_TIMEOUT)
        finally:
            context.close()
