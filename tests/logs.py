"""Waiting for a server's log lines: connection threads log after the client has seen the
result, so a test that checks a log line waits for it."""

from __future__ import annotations

import logging
import re

import pytest

from tests.conftest import TIMEOUT
from tests.eventually import eventually


def logged(
    caplog: pytest.LogCaptureFixture, pattern: str, timeout: float = TIMEOUT
) -> logging.LogRecord:
    """The first ``securechat.server`` log record matching ``pattern``, waiting for it."""
    regex = re.compile(pattern)

    def matching() -> logging.LogRecord | None:
        return next(
            (
                record
                for record in list(caplog.records)
                if record.name.startswith("securechat.server") and regex.search(record.getMessage())
            ),
            None,
        )

    return eventually(
        matching,
        lambda: f"a log line matching {pattern!r} in {[r.getMessage() for r in caplog.records]}",
        timeout=timeout,
        interval=0.02,
    )
