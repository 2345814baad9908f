"""README's two commands: what ``make run`` and ``make check`` install, read with ``make -n``.

``make run`` needs only the server's dependencies (a plain ``pip install .``, about 120 MB);
``make check`` adds the test, lint and benchmark tools (about 580 MB). One venv serves both,
so the stamps must never leave it without the test tools after ``make run`` then ``make
check``, nor reinstall for ``make run`` after ``make check``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TIMEOUT

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _installs(venv: Path, *targets: str) -> list[str]:
    """The pip installs ``make -n TARGETS`` would run with the venv at ``venv``."""
    planned = subprocess.run(
        ["make", "-n", f"VENV={venv}", *targets],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=TIMEOUT * 3,
    )  # fmt: skip
    return [line.split("pip install --quiet ")[1] for line in planned.stdout.splitlines()
            if "pip install --quiet -e" in line]  # fmt: skip


def test_make_run_installs_only_what_the_server_needs(tmp_path: Path) -> None:
    assert _installs(tmp_path / "venv", "run") == ["-e ."]


def test_make_check_after_make_run_adds_the_test_tools(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".run-stamp").touch()  # what `make run` leaves
    assert _installs(venv, "lint") == ["-e '.[test,bench]'"]


def test_make_run_after_make_check_installs_nothing(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".run-stamp").touch()
    (venv / ".installed-stamp").touch()  # what `make check` leaves
    assert _installs(venv, "run") == []
    assert _installs(venv, "lint") == []
