"""A terminal program as a user sees it, in a pseudo-terminal (pexpect): its output with
escape sequences removed, and the keys typed into it. The ``terminal`` fixture
(tests/conftest.py) starts ``securechat connect`` in one."""

from __future__ import annotations

import re
import time

import pexpect

from tests.conftest import TIMEOUT

# CSI/OSC sequences and the carriage returns prompt_toolkit uses to redraw.
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-Za-z]|\x1b[=>]|\r")


class Terminal:
    """One ``securechat connect`` as a user sees it: output with escape sequences removed."""

    def __init__(self, child: pexpect.spawn[str]) -> None:
        self.child = child
        self.text = ""
        self.raw = ""  # exactly what reached the terminal
        self._pos = 0

    def _read(self, timeout: float) -> None:
        try:
            data = self.child.read_nonblocking(65536, timeout=timeout)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            if not self.child.isalive():
                raise
            return
        self.raw += data
        self.text += data
        self.text = _CONTROL.sub("", self.text)

    def expect(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """Wait for ``pattern`` (a regex) after the last match; fail with the screen so far."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            match = regex.search(self.text, self._pos)
            if match:
                self._pos = match.end()
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{pattern!r} not seen; output was:\n{self.text[-3000:]}")
            try:
                self._read(min(remaining, 0.2))
            except pexpect.EOF:
                raise AssertionError(f"exited before {pattern!r}:\n{self.text[-3000:]}") from None

    def settle(self, quiet: float = 0.5) -> str:
        """Read until nothing arrives for ``quiet`` seconds; the new text."""
        start = len(self.text)
        before = -1
        while before != len(self.text):
            before = len(self.text)
            self._read(quiet)
        return self.text[start:]

    def type(self, text: str) -> None:
        self.child.send(text)

    def line(self, text: str) -> None:
        self.child.send(text + "\r")
