"""Waiting for a server's log lines: connection threads log after the client has seen the
result, so a test that checks a log line waits for it."""

from __future__ import annotations

import logging
import re
import time

import pytest

from tests.conftest import TIMEOUT


def logged(
    caplog: pytest.LogCaptureFixture, pattern: str, timeout: float = TIMEOUT
) -> logging.LogRecord:
    """The first ``securechat.server`` log record matching ``pattern``, waiting for it."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in list(caplog.records):
            if record.name.startswith("securechat.server") and regex.search(record.getMessage()):
                return record
        time.sleep(0.02)
    messages = [r.getMessage() for r in caplog.records]
    raise AssertionError(f"no log line matching {pattern!r} in {messages}")
