"""Trust on first use: ``securechat connect`` without ``--ca``, against real and fake servers.

The real server (fixtures) shows the happy path. A small fake server with its own TLS
context plays the servers that must be refused: one whose CA changed after the pin, and one
that offers a CA which did not sign the certificate it presents.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import ssl
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pexpect
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from securechat.certs import CertificateAuthority, fingerprint
from securechat.client.trust import check_offer, pin_file
from securechat.errors import CertificateError
from securechat.tls import server_context
from tests.conftest import PASSWORD, TIMEOUT, CliRunner, RunningServer
from tests.pty_terminal import Terminal

if TYPE_CHECKING:
    from securechat.server.server import ChatServer
    from securechat.store.database import Database

DER = Encoding.DER
QUESTION = r'Trust this CA for localhost:\d+\? Type "yes" to continue: '


class ConnectCli(Protocol):
    """The ``connect_cli`` fixture: ``connect_cli(port, "--ca", path, password=None)``; ``host`` may
    be a comma list, whose first entry then takes ``port``."""

    def __call__(
        self, port: int, *args: str, password: str | None = PASSWORD, host: str = "localhost"
    ) -> Terminal: ...


class StartChatServer(Protocol):
    """The ``chat_server`` fixture: ``chat_server(certs_dir, port=0)`` -> the port."""

    def __call__(self, certs: Path, port: int = 0) -> int: ...


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return tmp_path / "config"


@pytest.fixture
def connect_cli(config_dir: Path, tmp_path: Path) -> Iterator[ConnectCli]:
    """Start ``securechat connect localhost --port PORT --user alice ARGS`` in a pty."""
    children: list[pexpect.spawn[str]] = []

    def start(
        port: int, *args: str, password: str | None = PASSWORD, host: str = "localhost"
    ) -> Terminal:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SECURECHAT_")}
        env.update(
            SECURECHAT_CONFIG_DIR=str(config_dir),
            TERM="xterm",
            NO_COLOR="1",
            PROMPT_TOOLKIT_NO_CPR="1",
        )
        if password is not None:
            env["SECURECHAT_PASSWORD"] = password
        argv = ["-m", "securechat", "connect", host, "--port", str(port), "--user"]
        child = pexpect.spawn(
            sys.executable,
            [*argv, "alice", *args],
            env=env,
            encoding="utf-8",
            dimensions=(30, 140),
            cwd=tmp_path,  # no ./certs/ca.pem here
        )
        children.append(child)
        return Terminal(child)

    yield start
    for child in children:
        child.terminate(force=True)
        child.close()


def _exit_status(term: Terminal) -> int | None:
    term.child.expect(pexpect.EOF, timeout=TIMEOUT)
    assert term.child.before is not None  # a str once EOF is seen
    term.text += term.child.before  # the last words, for assertions on the whole output
    term.child.close()
    status: int | None = term.child.exitstatus
    return status


# --- a fake server ------------------------------------------------------------------


class Deployment:
    """A CA and a server certificate for localhost signed by it, as files and a context."""

    def __init__(self, directory: Path) -> None:
        self.ca = CertificateAuthority.create()
        issued = self.ca.issue_server_cert(["localhost", "127.0.0.1"])
        directory.mkdir()
        (directory / "server.pem").write_bytes(issued.cert_pem())
        (directory / "server.key").write_bytes(issued.key_pem())
        self.context = server_context(directory / "server.pem", directory / "server.key")
        self.ca_pem = self.ca.cert_pem().decode()


class FakeServer:
    """Just enough protocol: ``hello``, then ``ca``, ``auth`` (always refused) and ``bye``.

    ``received`` lists the type of every request any client sent, in order. ``context``,
    ``ca_pem``, the ``hello`` fields and the ``auth_reply`` can be swapped between connections.
    """

    def __init__(self, context: ssl.SSLContext, ca_pem: str) -> None:
        self.context, self.ca_pem = context, ca_pem
        self.hello: dict[str, object] = {
            "protocol": 1, "server": "fake", "max_frame": 65536, "heartbeat": 30,
        }  # fmt: skip
        self.auth_reply: dict[str, object] = {
            "type": "error",
            "code": "auth_failed",
            "message": "no",
        }
        self.received: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-server")
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            raw.settimeout(TIMEOUT)
            try:
                with self.context.wrap_socket(raw, server_side=True) as conn:
                    self._talk(conn)
            except OSError:  # includes ssl.SSLError
                pass  # a client that refuses our certificate aborts the handshake or the read

    def _talk(self, conn: ssl.SSLSocket) -> None:
        self._send(conn, type="hello", **self.hello)
        while (request := self._receive(conn)) is not None:
            self.received.append(request["type"])
            if request["type"] == "ca":
                self._send(conn, type="ca", pem=self.ca_pem, ref=request.get("ref"))
            elif request["type"] == "auth":
                self._send(conn, **self.auth_reply)
                return
            else:
                self._send(conn, type="bye", reason="bye")
                return

    @staticmethod
    def _send(conn: ssl.SSLSocket, **fields: object) -> None:
        payload = json.dumps(fields).encode()
        conn.sendall(struct.pack(">I", len(payload)) + payload)

    @staticmethod
    def _receive(conn: ssl.SSLSocket) -> dict[str, str] | None:
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        result: dict[str, str] = json.loads(data[4:])
        return result


@pytest.fixture
def deployments(tmp_path: Path) -> tuple[Deployment, Deployment]:
    return Deployment(tmp_path / "a"), Deployment(tmp_path / "b")


@pytest.fixture
def fake_server() -> Iterator[Callable[[ssl.SSLContext, str], FakeServer]]:
    servers: list[FakeServer] = []

    def start(context: ssl.SSLContext, ca_pem: str) -> FakeServer:
        servers.append(FakeServer(context, ca_pem))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


# --- the real server -----------------------------------------------------------------


def test_first_connect_shows_the_admins_fingerprint_and_pins_on_yes(
    running_server: RunningServer,
    connect_cli: ConnectCli,
    run_cli: CliRunner,
    certs_dir: Path,
    config_dir: Path,
) -> None:
    published = run_cli("fingerprint", "--certs", str(certs_dir)).stdout.strip()
    port = running_server.address[1]
    term = connect_cli(port)
    shown = term.expect(r"SHA-256 fingerprint: ([0-9A-F:]+)").group(1)
    assert shown == published
    term.expect(QUESTION)
    term.child.sendline("YES")
    term.expect(r"\[general\] alice>")
    pinned = pin_file(config_dir, "localhost", port)
    assert pinned.read_bytes() == running_server.ca_file.read_bytes()
    assert pinned.stat().st_mode & 0o777 == 0o644
    remembered = json.loads((config_dir / "client.json").read_text())
    assert remembered["ca_file"] == str(pinned)
    assert remembered["trusted"][f"localhost:{port}"]["fingerprint"] == published
    term.line("/quit")
    assert _exit_status(term) == 0

    again = connect_cli(port)
    again.expect(r"\[general\] alice>")
    assert "Trust this CA" not in again.text
    again.line("/quit")
    assert _exit_status(again) == 0


def test_first_use_with_a_host_list_asks_the_first_host_that_answers(
    running_server: RunningServer, connect_cli: ConnectCli, config_dir: Path
) -> None:
    live = running_server.address[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))  # bound, not listening: refused
        dead = probe.getsockname()[1]
        hosts = f"127.0.0.1:{dead},127.0.0.1:{live}"
        term = connect_cli(dead, password=None, host=hosts)
        term.expect(f"127.0.0.1:{live} is new to this computer")
        term.expect(r"SHA-256 fingerprint: ")
        term.expect(re.escape(f'Trust this CA for {hosts}? Type "yes" to continue: '))
        term.child.sendline("yes")
        term.expect(re.escape(f"Password for alice on {hosts}: "))
        term.child.sendline(PASSWORD)
        term.expect(r"\[general\] alice>")
    assert f"connected to 127.0.0.1:{live} as alice" in term.text
    # The pin belongs to the list's first entry, the key a later connect to the list uses.
    remembered = json.loads((config_dir / "client.json").read_text())
    assert list(remembered["trusted"]) == [f"127.0.0.1:{dead}"]
    assert (remembered["host"], remembered["port"]) == (f"127.0.0.1,127.0.0.1:{live}", dead)
    assert pin_file(config_dir, "127.0.0.1", dead).read_bytes() == (
        running_server.ca_file.read_bytes()
    )
    term.line("/quit")
    assert _exit_status(term) == 0


@pytest.mark.parametrize("answer", ["no", "y", ""])
def test_anything_but_yes_pins_nothing_and_fails(
    running_server: RunningServer, connect_cli: ConnectCli, config_dir: Path, answer: str
) -> None:
    term = connect_cli(running_server.address[1])
    term.expect(QUESTION)
    term.child.sendline(answer)
    term.expect(r"securechat: error: the CA of localhost:\d+ was not trusted and nothing was saved")
    assert _exit_status(term) == 1
    assert "[general]" not in term.text
    assert not (config_dir / "trusted").exists()
    assert not (config_dir / "client.json").exists()


@pytest.mark.parametrize("command", ["send", "connect"])
def test_without_a_terminal_nothing_is_trusted_on_first_use(
    running_server: RunningServer, run_cli: CliRunner, config_dir: Path, command: str
) -> None:
    port = str(running_server.address[1])
    args = ["--room", "general", "localhost", "hi"] if command == "send" else ["localhost"]
    env = {"SECURECHAT_PASSWORD": PASSWORD, "SECURECHAT_CONFIG_DIR": str(config_dir)}
    result = run_cli(command, "--port", port, "--user", "alice", *args, env=env, input="")
    assert result.returncode == 1
    assert result.stderr == (
        f"securechat: error: no CA certificate for localhost:{port}: pass --ca FILE (get ca.pem "
        f"from your admin), or run `securechat connect localhost --port {port}` in a terminal "
        "once to compare the server's CA fingerprint with your admin's and trust it\n"
    )
    assert not config_dir.exists()


def test_forget_without_a_pin_says_so(run_cli: CliRunner, config_dir: Path) -> None:
    env = {"SECURECHAT_CONFIG_DIR": str(config_dir)}
    result = run_cli("connect", "chat.example", "--forget-ca", env=env)
    assert result.returncode == 1
    assert result.stderr == (
        "securechat: error: no CA is pinned for chat.example:5050 (pinned: none)\n"
    )


# --- servers that must be refused ----------------------------------------------------


def _pin_through_first_use(term: Terminal, fingerprint_shown: str) -> None:
    """Answer yes, then give a password the fake server refuses."""
    assert term.expect(r"SHA-256 fingerprint: ([0-9A-F:]+)").group(1) == fingerprint_shown
    term.expect(QUESTION)
    term.child.sendline("yes")
    for _ in range(3):  # a typed password is asked again, three tries in all
        term.expect("Password for alice")
        term.child.sendline("whatever")
        term.expect("wrong user name or password")
    assert _exit_status(term) == 1


@pytest.mark.parametrize("password", [None, PASSWORD], ids=["prompted", "from-env"])
def test_a_different_ca_after_pinning_is_refused_before_any_password(
    deployments: tuple[Deployment, Deployment],
    fake_server: Callable[[ssl.SSLContext, str], FakeServer],
    connect_cli: ConnectCli,
    config_dir: Path,
    password: str | None,
) -> None:
    honest, impostor = deployments
    server = fake_server(honest.context, honest.ca_pem)
    _pin_through_first_use(connect_cli(server.port, password=None), honest.ca.fingerprint())
    assert server.received == ["ca", "bye", "auth", "auth", "auth"]  # three tries

    server.received.clear()
    server.context, server.ca_pem = impostor.context, impostor.ca_pem
    term = connect_cli(server.port, password=password)
    term.expect(rf"REFUSING TO CONNECT to localhost:{server.port}: .* DIFFERENT CA")
    term.expect(re.escape(honest.ca.fingerprint()))
    term.expect(rf"securechat connect localhost --port {server.port} --forget-ca")
    assert _exit_status(term) == 1
    assert "Password for" not in term.text
    assert "Traceback" not in term.text
    assert server.received == []  # not even a hello back, let alone a password

    forgot = connect_cli(server.port, "--forget-ca")
    forgot.expect(f"Forgot the CA trusted for localhost:{server.port}")
    assert _exit_status(forgot) == 0
    assert not pin_file(config_dir, "localhost", server.port).exists()
    assert "trusted" not in json.loads((config_dir / "client.json").read_text())

    asked_again = connect_cli(server.port)
    shown = asked_again.expect(r"SHA-256 fingerprint: ([0-9A-F:]+)").group(1)
    assert shown == impostor.ca.fingerprint()


def test_a_ca_that_did_not_sign_the_servers_certificate_is_refused(
    deployments: tuple[Deployment, Deployment],
    fake_server: Callable[[ssl.SSLContext, str], FakeServer],
    connect_cli: ConnectCli,
    config_dir: Path,
) -> None:
    honest, impostor = deployments
    server = fake_server(impostor.context, honest.ca_pem)  # shows one CA, uses another
    term = connect_cli(server.port)
    term.expect(
        rf"securechat: error: the certificate localhost:{server.port} presented is not signed "
        "by the CA it offers: something is wrong"
    )
    assert _exit_status(term) == 1
    assert "Trust this CA" not in term.text
    assert server.received == ["ca", "bye"]
    assert not config_dir.exists()


# --- the checks, without sockets -----------------------------------------------------


def test_check_offer_accepts_the_ca_that_signed_a_leaf_naming_the_host() -> None:
    ca = CertificateAuthority.create()
    leaf = ca.issue_server_cert(["chat.office.lan", "10.0.0.5"]).cert.public_bytes(DER)
    for host in ("chat.office.lan", "CHAT.office.lan", "10.0.0.5"):
        offered = check_offer(ca.cert_pem().decode(), leaf, host=host, label="x")
        assert offered.fingerprint == fingerprint(ca.cert)
        assert offered.pem == ca.cert_pem().decode()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not a ca", "is not a CA"),
        ("other ca", "is not signed by the CA it offers"),
        ("other host", "does not include the name 'chat2.office.lan'"),
        ("garbage", "cannot be read"),
    ],
)
def test_check_offer_refuses(case: str, message: str) -> None:
    ca, other = CertificateAuthority.create(), CertificateAuthority.create()
    issued = ca.issue_server_cert(["chat.office.lan"])
    leaf, host, pem = issued.cert.public_bytes(DER), "chat.office.lan", ca.cert_pem().decode()
    if case == "not a ca":
        pem = issued.cert_pem().decode()
    elif case == "other ca":
        pem = other.cert_pem().decode()
    elif case == "other host":
        host = "chat2.office.lan"
    else:
        pem = "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"
    with pytest.raises(CertificateError, match=message):
        check_offer(pem, leaf, host=host, label="chat:5050")


def test_pin_file_names_are_safe_for_ipv6_and_distinct() -> None:
    names = {pin_file(Path("c"), host, 5050).name for host in ("::1", "__1", "..1", "Chat")}
    assert names == {"%3A%3A1-5050.pem", "__1-5050.pem", "..1-5050.pem", "chat-5050.pem"}


# --- what a hostile server says reaches the terminal escaped --------------------------

FAKE_FINGERPRINT = "SHA-256 fingerprint: " + ":".join(["AA", "BB"] * 16)


def _hostile_ca() -> CertificateAuthority:
    """A CA whose O and OU hold a newline, a fake fingerprint line and "conceal" (ESC[8m)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"securechat\n  {FAKE_FINGERPRINT}"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "\n\x1b[8m"),
            x509.NameAttribute(NameOID.COMMON_NAME, "securechat CA"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(cert=cert, key=key)


@pytest.fixture
def chat_server(db_url: str) -> Iterator[StartChatServer]:
    """Start real ChatServers with the certificates in a given folder; returns the port."""
    from securechat.config import HashParams, ServerConfig
    from securechat.server.runner import build_server
    from securechat.store.database import open_database

    started: list[tuple[ChatServer, Database]] = []

    def start(certs: Path, port: int = 0) -> int:
        database = open_database(db_url)
        config = ServerConfig(
            port=port, certs_dir=certs, db_url=db_url, hash_params=HashParams.for_tests()
        )
        tls = server_context(certs / "server.pem", certs / "server.key")
        server = build_server(config, tls=tls, database=database)
        server.start()
        started.append((server, database))
        return server.address[1]

    yield start
    for server, database in started:
        server.shutdown()
        database.dispose()


@pytest.fixture
def hostile_server(tmp_path: Path, chat_server: StartChatServer) -> tuple[int, str]:
    """A real ChatServer whose certificate is from :func:`_hostile_ca`: (port, CA fingerprint)."""
    ca = _hostile_ca()
    issued = ca.issue_server_cert(["localhost", "127.0.0.1"])
    certs = tmp_path / "hostile-certs"
    certs.mkdir()
    for name, data in [
        ("ca.pem", ca.cert_pem()), ("ca.key", ca.key_pem()),
        ("server.pem", issued.cert_pem()), ("server.key", issued.key_pem()),
    ]:  # fmt: skip
        (certs / name).write_bytes(data)
    return chat_server(certs), ca.fingerprint()


def test_first_use_prompt_escapes_the_ca_subject_and_shows_the_real_fingerprint_last(
    hostile_server: tuple[int, str], connect_cli: ConnectCli, config_dir: Path
) -> None:
    port, real = hostile_server
    term = connect_cli(port)
    term.expect(QUESTION)
    prompt = term.raw[: term.raw.index("Trust this CA for")]
    assert "\x1b" not in prompt
    lines = [line.strip() for line in prompt.replace("\r", "").splitlines()]
    shown = [line for line in lines if line.startswith("SHA-256 fingerprint")]
    assert shown == [f"SHA-256 fingerprint: {real}"]
    assert lines[-1] == shown[0]  # right above the question
    subject = next(line for line in lines if line.startswith("Subject:"))
    assert f"securechat\\x0a  {FAKE_FINGERPRINT}" in subject  # shown, but visibly escaped
    assert "\\x0a\\x1b[8m" in subject
    term.child.sendline("no")
    term.expect("was not trusted and nothing was saved")
    assert _exit_status(term) == 1
    assert not config_dir.exists()


HOSTILE_TEXT = "\x1b]0;owned\x07\x1b[2J\nsecurechat: error: none of this is ours\u202e"


@pytest.mark.parametrize("command", ["send", "connect"])
@pytest.mark.parametrize("where", ["error message", "error code", "hello.server"])
def test_server_supplied_text_in_an_error_reaches_stderr_escaped_on_one_line(
    deployments: tuple[Deployment, Deployment],
    fake_server: Callable[[ssl.SSLContext, str], FakeServer],
    run_cli: CliRunner,
    tmp_path: Path,
    command: str,
    where: str,
) -> None:
    honest, _ = deployments
    server = fake_server(honest.context, honest.ca_pem)
    if where == "hello.server":
        server.hello.update(protocol=2, server=HOSTILE_TEXT)
    else:
        field = "message" if where == "error message" else "code"
        server.auth_reply = {"type": "error", "code": "weird", "message": "no"}
        server.auth_reply[field] = HOSTILE_TEXT
    (tmp_path / "ca.pem").write_text(honest.ca_pem)
    args = ["--room", "general", "localhost", "hi"] if command == "send" else ["localhost"]
    result = run_cli(
        command, "--port", str(server.port), "--user", "alice", "--ca", "ca.pem", *args,
        env={"SECURECHAT_PASSWORD": PASSWORD, "SECURECHAT_CONFIG_DIR": str(tmp_path / "cfg")},
        input="",
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("securechat: error: ")
    assert result.stderr.count("\n") == 1, result.stderr  # one line: the peer's \n is escaped
    assert "\\x1b]0;owned\\x07\\x1b[2J\\x0asecurechat: error: none of this is ours\\u202e" in (
        result.stderr
    )
    assert not set(result.stderr) & {"\x1b", "\x07", "\u202e"}


# --- which CA file is read, and how -----------------------------------------------------


@pytest.mark.parametrize("command", ["send", "connect"])
def test_a_ca_pem_in_the_current_directory_is_never_used(
    running_server: RunningServer, run_cli: CliRunner, tmp_path: Path, command: str
) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_bytes(running_server.ca_file.read_bytes())
    port = str(running_server.address[1])
    args = ["--room", "general", "localhost", "hi"] if command == "send" else ["localhost"]
    env = {"SECURECHAT_PASSWORD": PASSWORD, "SECURECHAT_CONFIG_DIR": str(tmp_path / "cfg")}
    result = run_cli(command, "--port", port, "--user", "alice", *args, env=env, input="")
    assert result.returncode == 1
    assert result.stderr.startswith(f"securechat: error: no CA certificate for localhost:{port}")
    assert not (tmp_path / "cfg").exists()


def _quit(term: Terminal) -> None:
    term.expect(r"\[general\] alice>")
    term.line("/quit")
    assert _exit_status(term) == 0


def test_connect_with_ca_copies_and_pins_it_so_later_runs_need_no_file(
    running_server: RunningServer,
    connect_cli: ConnectCli,
    config_dir: Path,
    tmp_path: Path,
) -> None:
    port = running_server.address[1]
    handed_out = tmp_path / "from-the-admin.pem"
    handed_out.write_bytes(running_server.ca_file.read_bytes())
    _quit(connect_cli(port, "--ca", str(handed_out)))
    pinned = pin_file(config_dir, "localhost", port)
    assert pinned.read_bytes() == handed_out.read_bytes()
    remembered = json.loads((config_dir / "client.json").read_text())
    assert remembered["ca_file"] == str(pinned)
    trusted = remembered["trusted"][f"localhost:{port}"]
    assert (trusted["ca_file"], trusted["fingerprint"]) == (str(pinned), _fingerprint_of(pinned))

    handed_out.unlink()
    again = connect_cli(port)
    _quit(again)
    assert "Trust this CA" not in again.text


def test_a_ca_file_remembered_by_an_older_version_is_pinned_after_login(
    running_server: RunningServer,
    connect_cli: ConnectCli,
    config_dir: Path,
    tmp_path: Path,
) -> None:
    port = running_server.address[1]
    old = tmp_path / "ca.pem"
    old.write_bytes(running_server.ca_file.read_bytes())
    config_dir.mkdir()
    remembered = {"host": "localhost", "port": port, "user": "alice", "ca_file": str(old)}
    (config_dir / "client.json").write_text(json.dumps(remembered))
    _quit(connect_cli(port))
    saved = json.loads((config_dir / "client.json").read_text())
    assert saved["trusted"][f"localhost:{port}"]["fingerprint"] == _fingerprint_of(old)
    assert pin_file(config_dir, "localhost", port).read_bytes() == old.read_bytes()


def test_a_ca_given_with_ca_replaces_the_pinned_one_after_login_and_says_so(
    running_server: RunningServer,
    chat_server: StartChatServer,
    connect_cli: ConnectCli,
    config_dir: Path,
    tmp_path: Path,
) -> None:
    from securechat.certs import init_certs

    port = running_server.address[1]
    _quit(connect_cli(port, "--ca", str(running_server.ca_file)))
    first = json.loads((config_dir / "client.json").read_text())["trusted"][f"localhost:{port}"]
    running_server.server.shutdown()
    init_certs(tmp_path / "new", hosts=["localhost", "127.0.0.1"])
    chat_server(tmp_path / "new", port=port)
    term = connect_cli(port, "--ca", str(tmp_path / "new" / "ca.pem"))
    new = _fingerprint_of(tmp_path / "new" / "ca.pem")
    term.expect(rf"The CA in .*new/ca\.pem \(fingerprint {new}\) replaces the one")
    term.expect(rf"trusted for localhost:{port} since .* \(fingerprint {first['fingerprint']}\)")
    _quit(term)
    trusted = json.loads((config_dir / "client.json").read_text())["trusted"]
    assert trusted[f"localhost:{port}"]["fingerprint"] == new


def test_a_pinned_ca_file_that_was_changed_is_refused_before_any_password(
    deployments: tuple[Deployment, Deployment],
    fake_server: Callable[[ssl.SSLContext, str], FakeServer],
    connect_cli: ConnectCli,
    config_dir: Path,
) -> None:
    honest, impostor = deployments
    server = fake_server(honest.context, honest.ca_pem)
    _pin_through_first_use(connect_cli(server.port, password=None), honest.ca.fingerprint())
    pinned = pin_file(config_dir, "localhost", server.port)
    pinned.write_text(impostor.ca_pem)  # e.g. by malware, or a careless script
    server.received.clear()
    server.context, server.ca_pem = impostor.context, impostor.ca_pem

    term = connect_cli(server.port, password=PASSWORD)
    term.expect(
        rf"securechat: error: {re.escape(str(pinned))}, the CA you trusted for "
        rf"localhost:{server.port} on .* \(fingerprint {honest.ca.fingerprint()}\), now holds "
        rf"another certificate \(fingerprint {impostor.ca.fingerprint()}\)"
    )
    term.expect(rf"securechat connect localhost --port {server.port} --forget-ca")
    assert _exit_status(term) == 1
    assert server.received == []  # no password went anywhere


ONLY_ONE = "a CA file must hold exactly one, the server's CA (ca.pem from your admin)"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("two CAs", f"holds 2 certificates: {ONLY_ONE}"),
        ("CA and leaf", f"holds 2 certificates: {ONLY_ONE}"),
        ("nothing", f"holds no certificates: {ONLY_ONE}"),
        ("leaf", "holds a certificate that is not a CA (the server's own certificate?): "
         "get ca.pem from your admin"),
    ],
)  # fmt: skip
def test_a_ca_file_must_hold_exactly_one_ca_certificate(
    running_server: RunningServer,
    run_cli: CliRunner,
    certs_dir: Path,
    tmp_path: Path,
    content: str,
    message: str,
) -> None:
    real, leaf = running_server.ca_file.read_bytes(), (certs_dir / "server.pem").read_bytes()
    data = {
        "two CAs": real + CertificateAuthority.create().cert_pem(),
        "CA and leaf": real + leaf,
        "nothing": b"not a certificate\n",
        "leaf": leaf,
    }[content]
    (tmp_path / "bundle.pem").write_bytes(data)
    result = run_cli(
        "send", "--port", str(running_server.address[1]), "--user", "alice",
        "--ca", "bundle.pem", "--room", "general", "localhost", "hi",
        env={"SECURECHAT_PASSWORD": PASSWORD, "SECURECHAT_CONFIG_DIR": str(tmp_path / "cfg")},
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (1, f"securechat: error: bundle.pem {message}\n")


def _fingerprint_of(pem_file: Path) -> str:
    return fingerprint(x509.load_pem_x509_certificate(pem_file.read_bytes()))
