"""``securechat doctor`` against healthy and deliberately broken installations."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command

from securechat.accounts import Accounts
from securechat.certs import init_certs, load_ca
from securechat.config import HashParams
from securechat.doctor import Finding, Installation, Status, examine
from securechat.store.database import open_database
from securechat.store.migrate import alembic_config, current_revision, head_revision
from tests.conftest import PASSWORD, TIMEOUT, CliRunner, RunningServer, ServerFactory


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _free_web_port() -> list[str]:
    """doctor's --web-port on a free port: the default, 5443, may be a securechat that a
    developer runs (`make run`) beside the suite, whose certificate is another CA's."""
    return ["--web-port", str(_free_port())]


@pytest.fixture
def install(tmp_path: Path) -> Installation:
    """A healthy installation: certificates for localhost, an admin, a free port."""
    certs = tmp_path / "certs"
    init_certs(certs, hosts=["localhost", "127.0.0.1"])
    url = f"sqlite:///{tmp_path / 'office.db'}"
    database = open_database(url)
    Accounts(database, hash_params=HashParams.for_tests()).add("alice", PASSWORD, admin=True)
    database.dispose()
    return Installation(certs_dir=certs, db_url=url, port=_free_port())


def _by_check(findings: list[Finding]) -> dict[str, list[Finding]]:
    grouped: dict[str, list[Finding]] = {}
    for finding in findings:
        grouped.setdefault(finding.check, []).append(finding)
    return grouped


def _only(findings: list[Finding], check: str) -> Finding:
    (finding,) = _by_check(findings)[check]
    return finding


def _problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status is not Status.OK]


def _reissue(install: Installation, days: int, hosts: tuple[str, ...] = ("localhost",)) -> None:
    issued = load_ca(install.certs_dir).issue_server_cert(list(hosts), days=days)
    (install.certs_dir / "server.pem").write_bytes(issued.cert_pem())
    (install.certs_dir / "server.key").write_bytes(issued.key_pem())


def test_doctor_finds_nothing_wrong_with_a_healthy_installation(
    install: Installation, run_cli: CliRunner
) -> None:
    findings = examine(dataclasses.replace(install, hosts=("LOCALHOST", "127.0.0.1")))
    assert _problems(findings) == []
    assert [f.check for f in findings] == [
        "certificates", "key files", "expiry", "host names", "CA key", "database", "users",
        "database file", "files folder", "port",
    ]  # fmt: skip
    assert "free" in _only(findings, "port").detail
    result = run_cli(
        "doctor", "--certs", str(install.certs_dir), "--db", install.db_url,
        "--port", str(install.port), *_free_web_port(), "--host", "localhost",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0].startswith("OK    certificates  ")
    assert result.stdout.endswith("everything looks right\n")


def test_doctor_fails_on_missing_certificates_and_exits_1(
    install: Installation, run_cli: CliRunner
) -> None:
    (install.certs_dir / "server.pem").unlink()
    finding = _only(examine(install), "certificates")
    assert finding.status is Status.FAIL
    assert "server.pem not found; run `securechat init-certs" in finding.detail
    result = run_cli(
        "doctor", "--certs", str(install.certs_dir), "--db", install.db_url,
        "--port", str(install.port), *_free_web_port(),
    )  # fmt: skip
    assert result.returncode == 1
    assert "FAIL  certificates" in result.stdout
    assert result.stdout.endswith("1 failure, 0 warnings\n")
    assert result.stderr == ""


def test_doctor_fails_on_a_key_that_does_not_match(install: Installation, tmp_path: Path) -> None:
    init_certs(tmp_path / "other", hosts=["localhost"])
    shutil.copy(tmp_path / "other" / "server.key", install.certs_dir / "server.key")
    finding = _only(examine(install), "certificates")
    assert finding.status is Status.FAIL
    assert "server.key does not match" in finding.detail
    assert finding.fix is not None
    assert "init-certs --renew" in finding.fix


def test_doctor_fails_on_a_key_readable_by_others(install: Installation) -> None:
    key = install.certs_dir / "server.key"
    key.chmod(0o644)
    finding = _only(examine(install), "key files")
    assert finding.status is Status.FAIL
    assert finding.detail == f"{key} can be read by other users (mode 0644)"
    assert finding.fix == f"chmod 600 {key}"


def test_doctor_fails_on_an_expired_certificate(install: Installation) -> None:
    _reissue(install, days=0)
    findings = examine(install)
    expiry = _only(findings, "expiry")
    assert expiry.status is Status.FAIL
    assert "expired on" in expiry.detail
    assert expiry.fix is not None
    assert f"init-certs --renew --dir {install.certs_dir} --host localhost`" in expiry.fix


def test_doctor_warns_about_a_certificate_that_expires_soon(
    install: Installation, run_cli: CliRunner
) -> None:
    _reissue(install, days=10)
    expiry = _only(examine(install), "expiry")
    assert expiry.status is Status.WARN
    assert "expires in 9 days" in expiry.detail or "expires in 10 days" in expiry.detail
    result = run_cli(
        "doctor", "--certs", str(install.certs_dir), "--db", install.db_url,
        "--port", str(install.port), *_free_web_port(),
    )  # fmt: skip
    assert result.returncode == 0  # a warning is not a failure
    assert result.stdout.endswith("0 failures, 1 warning\n")


def test_doctor_fails_when_the_certificate_lacks_a_host_name(install: Installation) -> None:
    finding = _only(
        examine(dataclasses.replace(install, hosts=("localhost", "chat.office.lan"))),
        "host names",
    )
    assert finding.status is Status.FAIL
    assert "does not name chat.office.lan (it names localhost, 127.0.0.1)" in finding.detail
    assert finding.fix is not None
    assert "--host localhost --host 127.0.0.1 --host chat.office.lan`" in finding.fix


def test_doctor_warns_when_the_ca_key_is_absent(install: Installation) -> None:
    (install.certs_dir / "ca.key").unlink()
    findings = examine(install)
    finding = _only(findings, "CA key")
    assert finding.status is Status.WARN
    assert "cannot be renewed" in finding.detail
    assert _problems(findings) == [finding]


def test_doctor_warns_about_an_old_schema_and_does_not_migrate(
    install: Installation, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    database = open_database(url, migrate=False)
    with database.engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0001")
    findings = examine(dataclasses.replace(install, db_url=url))
    finding = _by_check(findings)["database"][0]
    assert finding.status is Status.WARN
    assert f"at schema revision 0001; this securechat's newest is {head_revision()}" in (
        finding.detail
    )
    assert current_revision(database.engine) == "0001"
    database.dispose()


def test_doctor_fails_on_a_missing_or_empty_database(install: Installation, tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    finding = _only(
        examine(dataclasses.replace(install, db_url=f"sqlite:///{missing}")), "database"
    )
    assert finding.status is Status.FAIL
    assert finding.detail == f"no database at {missing}"
    assert not missing.exists()
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_database(url).dispose()  # at head, no users
    finding = _only(examine(dataclasses.replace(install, db_url=url)), "users")
    assert finding.status is Status.FAIL
    assert finding.fix is not None
    assert "securechat adduser NAME --admin" in finding.fix


def test_doctor_warns_when_no_user_is_an_admin(install: Installation, db_url: str) -> None:
    finding = _only(examine(dataclasses.replace(install, db_url=db_url)), "users")
    assert finding.status is Status.WARN
    assert finding.detail == "4 user(s) but no enabled administrator"


@pytest.fixture
def plain_listener() -> Iterator[int]:
    """A TCP server that answers every connection with an HTTP error, like a stray web app."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)

    def answer() -> None:
        try:
            connection, _ = listener.accept()
        except OSError:
            return  # closed by the fixture before anyone connected
        with connection:
            connection.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=answer)
    thread.start()
    yield listener.getsockname()[1]
    listener.close()
    thread.join(TIMEOUT)


def test_doctor_fails_when_another_program_holds_the_port(
    install: Installation, plain_listener: int
) -> None:
    finding = _only(examine(dataclasses.replace(install, port=plain_listener)), "port")
    assert finding.status is Status.FAIL
    assert (
        finding.detail == f"another program (not securechat) holds 127.0.0.1 port {plain_listener}"
    )
    assert finding.fix is not None
    assert "another port" in finding.fix


def test_doctor_recognizes_a_running_securechat(
    running_server: RunningServer, certs_dir: Path, db_url: str
) -> None:
    port = running_server.address[1]
    install = Installation(certs_dir=certs_dir, db_url=db_url, port=port)
    finding = _only(examine(install), "port")
    assert finding.status is Status.OK
    assert finding.detail.startswith(f"securechat is running on 127.0.0.1 port {port} (securechat ")
    with running_server.peer() as peer:  # the probe left the server healthy
        peer.login("alice", PASSWORD)


def test_doctor_says_reload_when_the_server_runs_an_older_certificate(
    running_server: RunningServer, certs_dir: Path, db_url: str, tmp_path: Path
) -> None:
    copy = tmp_path / "certs"
    shutil.copytree(certs_dir, copy)
    init_certs(copy, hosts=["localhost"], renew=True)
    install = Installation(certs_dir=copy, db_url=db_url, port=running_server.address[1])
    finding = _only(examine(install), "port")
    assert finding.status is Status.WARN
    assert "with another certificate" in finding.detail
    assert finding.fix is not None
    assert "`systemctl reload securechat`" in finding.fix


def test_doctor_fails_when_a_tls_server_with_another_ca_holds_the_port(
    running_server: RunningServer, install: Installation
) -> None:
    port = running_server.address[1]
    finding = _only(examine(dataclasses.replace(install, port=port)), "port")
    assert finding.status is Status.FAIL
    assert "certificate not signed by" in finding.detail


def test_doctor_fails_on_a_database_file_others_can_read(install: Installation) -> None:
    path = Path(install.db_url.removeprefix("sqlite:///"))
    path.chmod(0o644)  # as a umask of 022 made it before securechat created it 0600
    findings = examine(install)
    finding = _only(findings, "database file")
    assert finding.status is Status.FAIL
    assert finding.detail == f"{path} can be read by other users (mode 0644)"
    assert finding.fix == f"chmod 600 {path}"
    path.chmod(0o600)
    assert _only(examine(install), "database file").status is Status.OK


@pytest.mark.postgresql
@pytest.mark.postgresql_only
def test_doctor_warns_when_every_postgresql_role_may_connect(
    install: Installation, db_url: str, database_kind: str
) -> None:
    from sqlalchemy import make_url

    from tests.sql import execute

    name = make_url(db_url).database
    on_postgresql = dataclasses.replace(install, db_url=db_url)
    finding = _only(examine(on_postgresql), "database access")  # as createdb leaves it
    assert finding.status is Status.WARN
    assert f'REVOKE CONNECT ON DATABASE "{name}" FROM PUBLIC' in (finding.fix or "")
    execute(db_url, f'REVOKE CONNECT ON DATABASE "{name}" FROM PUBLIC')
    try:
        assert _only(examine(on_postgresql), "database access").status is Status.OK
    finally:  # the pooled database goes back as it came
        execute(db_url, f'GRANT CONNECT ON DATABASE "{name}" TO PUBLIC')
    assert "database access" not in _by_check(examine(install))  # nothing to say on SQLite


DEPLOY_GUIDE = Path(__file__).resolve().parent.parent / "docs" / "deploy.md"


def _shape(line: str) -> str:
    """A doctor line without what differs between installations: paths, dates, numbers."""
    line = re.sub(r"\S*/\S*", "PATH", line)
    line = re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "DATE", line)
    line = re.sub(r"\b[KMGT]iB\b", "UNIT", line)  # free space
    return " ".join(re.sub(r"\d+(\.\d+)*", "N", line).split())


def test_the_deploy_guides_sample_output_is_what_doctor_prints(
    server_factory: ServerFactory, certs_dir: Path, db_url: str, run_cli: CliRunner
) -> None:
    """docs/deploy.md shows doctor on a healthy installation: the same lines, in the same
    order, as doctor prints for one here, with the schema revision of this version."""
    sample = re.search(
        r"```\n(OK    certificates .*?everything looks right)\n```",
        DEPLOY_GUIDE.read_text("utf-8"),
        re.DOTALL,
    )
    assert sample is not None, "the sample output of doctor is gone from docs/deploy.md"
    documented = sample.group(1).replace("chat.office.lan, 192.168.1.20", "localhost, 127.0.0.1")
    revision = re.search(r"at schema revision (\S+) \(the newest\)", documented)
    assert revision is not None
    assert revision.group(1) == head_revision()
    database = open_database(db_url)
    Accounts(database, hash_params=HashParams.for_tests()).add("root", PASSWORD, admin=True)
    database.dispose()
    db_file = Path(db_url.removeprefix("sqlite:///"))
    os.chmod(db_file, 0o600)
    db_file.with_name(db_file.stem + "-files").mkdir(mode=0o700, exist_ok=True)
    running = server_factory(web_port=0)
    assert running.web_address is not None
    result = run_cli(
        "doctor", "--certs", str(certs_dir), "--db", db_url,
        "--port", str(running.address[1]), "--web-port", str(running.web_address[1]),
        "--host", "localhost", "--host", "127.0.0.1",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    assert [_shape(line) for line in result.stdout.splitlines()] == [
        _shape(line) for line in documented.splitlines()
    ]
