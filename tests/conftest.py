"""Fixtures shared by the whole suite. Area-specific fixtures live in their test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

#: Upper bound, in seconds, for any single wait in a test.
TIMEOUT = 10.0

CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_cli(tmp_path: Path) -> CliRunner:
    """Run ``python -m securechat ARGS`` as a real subprocess in ``tmp_path``."""

    def run(
        *args: str,
        input: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("SECURECHAT_")}
        full_env.update(env or {})
        argv: Sequence[str] = [sys.executable, "-m", "securechat", *args]
        return subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=full_env,
            timeout=timeout,
            check=False,
        )

    return run
