"""``securechat doctor`` checks the shared files' folder: absent is fine, open or foreign is not."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from securechat.accounts import Accounts
from securechat.certs import init_certs
from securechat.config import HashParams
from securechat.doctor import Finding, Installation, Status
from securechat.doctor.files import CHECKS, FREE_FAIL, FREE_WARN, free_space
from securechat.store.database import open_database
from tests.conftest import PASSWORD, CliRunner


@pytest.fixture
def install(tmp_path: Path) -> Installation:
    url = f"sqlite:///{tmp_path / 'office.db'}"
    database = open_database(url)
    Accounts(database, hash_params=HashParams.for_tests()).add("alice", PASSWORD, admin=True)
    database.dispose()
    return Installation(certs_dir=tmp_path / "certs", db_url=url, port=1)


def finding(install: Installation) -> Finding:
    (only,) = (found for check in CHECKS for found in check(install))
    assert only.check == "files folder"
    return only


def test_a_folder_not_created_yet_is_fine(install: Installation, tmp_path: Path) -> None:
    found = finding(install)
    assert found.status is Status.OK
    assert found.detail == (
        f"{tmp_path / 'office-files'} does not exist yet "
        "(no file shared yet; serve creates it, mode 0700)"
    )


def test_a_folder_that_cannot_be_created_fails(install: Installation, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "files"
    found = finding(dataclasses.replace(install, files_dir=missing))
    assert found.status is Status.FAIL
    assert found.fix == f"mkdir -p {missing.parent}, or fix --files"


def test_a_private_folder_with_room_is_ok(install: Installation, tmp_path: Path) -> None:
    folder = tmp_path / "office-files"
    folder.mkdir(mode=0o700)
    found = finding(install)
    assert found.status is Status.OK
    assert found.detail.startswith(f"{folder}: mode 0700, ")
    assert found.detail.endswith(" free")


def test_a_folder_others_can_read_fails(install: Installation, tmp_path: Path) -> None:
    folder = tmp_path / "office-files"
    folder.mkdir()
    folder.chmod(0o755)
    found = finding(install)
    assert found.status is Status.FAIL
    assert found.detail == f"{folder} has mode 0755: it must be the server's alone"
    assert found.fix == f"chmod 700 {folder}"


def test_a_file_where_the_folder_should_be_fails(install: Installation, tmp_path: Path) -> None:
    (tmp_path / "office-files").write_bytes(b"")
    found = finding(install)
    assert found.status is Status.FAIL
    assert found.detail == f"{tmp_path / 'office-files'} is not a folder"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder away takes root")
def test_a_folder_owned_by_another_user_than_the_database_fails(
    install: Installation, tmp_path: Path
) -> None:
    folder = tmp_path / "office-files"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    found = finding(install)
    assert found.status is Status.FAIL
    assert "the server could not write one of them" in found.detail
    assert found.fix is not None
    assert found.fix.startswith("chown -R ")


def test_a_files_folder_is_named_on_postgresql(install: Installation) -> None:
    postgres = dataclasses.replace(install, db_url="postgresql+psycopg://chat@127.0.0.1/chat")
    assert finding(postgres).detail == "none to check: pass --files DIR if serve is given one"


def test_free_space_thresholds(tmp_path: Path) -> None:
    failed = free_space(tmp_path, FREE_FAIL - 1)
    warned = free_space(tmp_path, FREE_WARN - 1)
    assert failed is not None
    assert failed.status is Status.FAIL
    assert failed.detail == f"only 512.0 MiB free for {tmp_path}"
    assert warned is not None
    assert warned.status is Status.WARN
    assert free_space(tmp_path, FREE_WARN) is None


def test_doctor_cli_fails_on_an_open_files_folder(
    install: Installation, run_cli: CliRunner, tmp_path: Path
) -> None:
    init_certs(install.certs_dir, hosts=["localhost"])
    folder = tmp_path / "srv-files"
    folder.mkdir()
    folder.chmod(0o750)
    result = run_cli(
        "doctor", "--certs", str(install.certs_dir), "--db", install.db_url, "--no-web",
        "--port", "1", "--files", str(folder),
    )  # fmt: skip
    assert result.returncode == 1, result.stdout
    line = rf"^FAIL  files folder +{re.escape(str(folder))} has mode 0750: "
    assert re.search(line, result.stdout, re.MULTILINE), result.stdout
    assert f"fix: chmod 700 {folder}" in result.stdout
