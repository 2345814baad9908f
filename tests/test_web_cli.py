"""``serve``'s web port and ``--cert/--key`` as a real subprocess; ``doctor``'s web check."""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
from pathlib import Path

from securechat.doctor import Installation, Status, examine
from tests.conftest import TIMEOUT, CliRunner, ServerFactory
from tests.serve_process import ServeProcess


def _get_root(port: int, ca_file: Path) -> http.client.HTTPResponse:
    context = ssl.create_default_context(cafile=str(ca_file))
    connection = http.client.HTTPSConnection("localhost", port, context=context, timeout=TIMEOUT)
    connection.request("GET", "/")
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_serve_logs_its_web_port_and_serves_the_page(
    serve: list[ServeProcess], certs_dir: Path, db_url: str
) -> None:
    process = ServeProcess(certs_dir, db_url)
    serve.append(process)
    process.start()
    port = int(process.wait_for(r"web client on port (\d+): https://localhost:\d+/").group(1))
    assert _get_root(port, certs_dir / "ca.pem").status == 200


def test_serve_with_no_web_opens_no_web_port(
    serve: list[ServeProcess], certs_dir: Path, db_url: str
) -> None:
    process = ServeProcess(certs_dir, db_url, "--no-web")
    serve.append(process)
    process.start()
    process.wait_for("password checks in")
    assert not any("web client" in line for line in process.lines)


def test_serve_uses_a_certificate_and_key_given_as_files(
    serve: list[ServeProcess], certs_dir: Path, db_url: str, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "pki"
    elsewhere.mkdir()
    shutil.copy(certs_dir / "server.pem", elsewhere / "chat.pem")
    shutil.copy(certs_dir / "server.key", elsewhere / "chat.key")
    folder = tmp_path / "certs"
    folder.mkdir()
    shutil.copy(certs_dir / "ca.pem", folder / "ca.pem")  # the CA that issued them, only
    process = ServeProcess(
        folder, db_url, "--cert", str(elsewhere / "chat.pem"), "--key", str(elsewhere / "chat.key")
    )
    serve.append(process)
    process.start()
    port = int(process.wait_for(r"web client on port (\d+)").group(1))
    assert _get_root(port, folder / "ca.pem").status == 200


def test_serve_refuses_cert_without_key_and_a_key_that_does_not_match(
    run_cli: CliRunner, certs_dir: Path, db_url: str, tmp_path: Path
) -> None:
    alone = run_cli("serve", "--port", "0", "--certs", str(certs_dir), "--db", db_url,
                    "--cert", str(certs_dir / "server.pem"))  # fmt: skip
    assert alone.returncode == 1
    assert alone.stderr == "securechat: error: --cert and --key go together\n"
    wrong = run_cli("serve", "--port", "0", "--certs", str(certs_dir), "--db", db_url,
                    "--cert", str(certs_dir / "server.pem"), "--key", str(certs_dir / "ca.key"))  # fmt: skip
    assert wrong.returncode == 1
    assert "does not match" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def _install(certs_dir: Path, db_url: str, web_port: int) -> Installation:
    return Installation(certs_dir=certs_dir, db_url=db_url, port=1, web_port=web_port)


def _web_finding(install: Installation) -> tuple[Status, str]:
    (finding,) = [f for f in examine(install) if f.check == "web port"]
    return finding.status, finding.detail


def test_doctor_recognizes_a_running_web_port(
    server_factory: ServerFactory, certs_dir: Path, db_url: str
) -> None:
    running = server_factory(web_port=0)
    assert running.web_address is not None
    status, detail = _web_finding(_install(certs_dir, db_url, running.web_address[1]))
    assert status is Status.OK
    assert "the web client is served" in detail


def test_doctor_web_port_free_or_held_by_another_program(certs_dir: Path, db_url: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert _web_finding(_install(certs_dir, db_url, free))[0] is Status.OK
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        status, detail = _web_finding(_install(certs_dir, db_url, other.getsockname()[1]))
    assert status is Status.FAIL
    assert "not securechat" in detail
