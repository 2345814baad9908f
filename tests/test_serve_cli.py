"""``securechat serve`` as a real subprocess: start-up checks, logging, signals, crashes."""

from __future__ import annotations

import shutil
import signal
import socket
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, TIMEOUT, CliRunner
from tests.peer import Peer
from tests.serve_process import ServeProcess
from tests.sql import value


def _start(started: list[ServeProcess], certs_dir: Path, db_url: str) -> ServeProcess:
    process = ServeProcess(certs_dir, db_url)
    started.append(process)
    return process.start()


def test_serve_logs_address_certificate_and_logins(
    serve: list[ServeProcess], certs_dir: Path, db_url: str
) -> None:
    server = _start(serve, certs_dir, db_url)
    server.wait_for(r"certificate for localhost, 127\.0\.0\.1, ::1, valid until \d{4}-")
    with Peer(server.address, certs_dir / "ca.pem") as peer:
        peer.login("alice", PASSWORD)
        server.wait_for(r"login alice from 127\.0\.0\.1:\d+")
    with Peer(server.address, certs_dir / "ca.pem") as peer:
        peer.expect("hello")
        peer.send(type="auth", user="alice", password="not the password")
        peer.expect_closed()
        server.wait_for(r"login failed for 'alice' from 127\.0\.0\.1")
    assert not any("not the password" in line or PASSWORD in line for line in server.lines)


def test_serve_sigterm_says_bye_and_exits_cleanly(
    serve: list[ServeProcess], certs_dir: Path, db_url: str
) -> None:
    server = _start(serve, certs_dir, db_url)
    with Peer(server.address, certs_dir / "ca.pem") as peer:
        peer.login("alice", PASSWORD)
        peer.send(type="send", room="general", body="before shutdown", ref="r1")
        peer.expect("ack")
        server.signal(signal.SIGTERM)
        events = peer.expect_closed()
        assert events[-1] == {"type": "bye", "reason": "shutting_down"}
        assert server.proc.wait(timeout=TIMEOUT) == 0  # within its 3 s grace, not hanging
    server.wait_for("server stopped")


def test_sigterm_during_start_up_logging_still_stops_serve(
    serve: list[ServeProcess], certs_dir: Path, db_url: str
) -> None:
    """SIGTERM the moment serve says it listens: it is then writing its start-up lines to
    stderr. Its handler once logged from inside that write, which raised (a reentrant
    write), so the signal was lost and serve ran on (about one start in ten); now the
    handler only notes the signal. Several starts, each must stop (a guard, not a proof:
    outside pytest a script saw 1 start in 10-15 hang before the fix, 0 in 45 after)."""
    for _ in range(4):
        server = ServeProcess(certs_dir, db_url)
        serve.append(server)
        server.start()
        socket.create_connection(server.address, timeout=TIMEOUT).close()  # more lines to log
        server.signal(signal.SIGTERM)
        assert server.proc.wait(timeout=TIMEOUT) == 0
        server.wait_for("received SIGTERM, shutting down")


def test_serve_sigint_exits_zero(serve: list[ServeProcess], certs_dir: Path, db_url: str) -> None:
    server = _start(serve, certs_dir, db_url)
    server.signal(signal.SIGINT)
    assert server.proc.wait(timeout=TIMEOUT) == 0


def test_ctrl_c_in_a_terminal_stops_cleanly(
    serve: list[ServeProcess], certs_dir: Path, db_url: str
) -> None:
    server = _start(serve, certs_dir, db_url)
    server.wait_for(r"password checks in 1 process")
    server.signal_group(signal.SIGINT)  # the server and its password hashing process
    assert server.proc.wait(timeout=TIMEOUT) == 0
    output = "\n".join(server.output())
    assert "server stopped" in output
    assert "Traceback" not in output
    assert "KeyboardInterrupt" not in output


@pytest.mark.postgresql
def test_acked_message_survives_kill_9(
    serve: list[ServeProcess], certs_dir: Path, db_url: str
) -> None:
    server = _start(serve, certs_dir, db_url)
    with Peer(server.address, certs_dir / "ca.pem") as peer:
        peer.login("alice", PASSWORD)
        peer.send(type="send", room="general", body="durable", ref="k1")
        ack = peer.expect("ack")
        server.proc.kill()  # SIGKILL, right after the ack
        server.proc.wait(timeout=5)
    restarted = _start(serve, certs_dir, db_url)
    with Peer(restarted.address, certs_dir / "ca.pem") as peer:
        peer.login("alice", PASSWORD)
        peer.send(type="history", room="general")
        messages = peer.expect("history")["messages"]
        assert [(m["id"], m["body"]) for m in messages] == [(ack["id"], "durable")]
        peer.send(type="send", room="general", body="durable", ref="k1")  # the client's resend
        assert peer.expect("ack")["id"] == ack["id"]
    assert value(db_url, "SELECT count(*) FROM messages WHERE kind = 'message'") == 1


def test_serve_refuses_missing_certificates(
    run_cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    result = run_cli("serve", "--port", "0", "--certs", str(tmp_path / "nowhere"), "--db", db_url)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("securechat: error: ")
    assert "init-certs" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_from_another_folder_names_the_path_and_warns_before_a_second_ca(
    run_cli: CliRunner, tmp_path: Path, db_url: str
) -> None:
    """Started where there is no certs/, serve must not send the admin to make a new CA
    that no colleague trusts: it says where it looked and how to point it elsewhere."""
    result = run_cli("serve", "--port", "0", "--no-web", "--db", db_url)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    looked_in = tmp_path / "certs"
    assert f"no certificates in {looked_in} (" in result.stderr
    assert "--certs DIR or SECURECHAT_CERTS" in result.stderr
    assert "init-certs --dir certs`" not in result.stderr
    assert (
        "already has 4 users: a new CA means every colleague must trust it again" in result.stderr
    )


def test_serve_on_a_new_installation_without_certificates_suggests_init_certs(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    result = run_cli("serve", "--port", "0", "--no-web")
    assert result.returncode == 1
    assert f"securechat init-certs --dir {tmp_path / 'certs'}`" in result.stderr
    assert "every colleague" not in result.stderr


def test_serve_refuses_key_that_does_not_match(
    run_cli: CliRunner, tmp_path: Path, certs_dir: Path, db_url: str
) -> None:
    from securechat.certs import CertificateAuthority

    broken = tmp_path / "broken"
    shutil.copytree(certs_dir, broken)
    other = CertificateAuthority.create().issue_server_cert(["localhost"])
    (broken / "server.key").write_bytes(other.key_pem())
    result = run_cli("serve", "--port", "0", "--certs", str(broken), "--db", db_url)
    assert result.returncode == 1
    assert "securechat: error:" in result.stderr
    assert "match" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_port_in_use(run_cli: CliRunner, certs_dir: Path, db_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--host", "127.0.0.1", "--port", str(port), "--web-port", "0",
                         "--certs", str(certs_dir), "--db", db_url)  # fmt: skip
    assert result.returncode == 1
    assert (
        f"cannot listen on 127.0.0.1 port {port} for the chat port: address already in use"
        in result.stderr.lower()
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("key", ["server.key", "ca.key"])
def test_serve_refuses_a_key_that_others_can_read(
    run_cli: CliRunner, tmp_path: Path, certs_dir: Path, db_url: str, key: str
) -> None:
    exposed = tmp_path / "exposed"
    shutil.copytree(certs_dir, exposed)
    (exposed / key).chmod(0o644)
    result = run_cli("serve", "--port", "0", "--certs", str(exposed), "--db", db_url, timeout=20)
    assert result.returncode == 1
    assert result.stderr == (
        f"securechat: error: {exposed / key} can be read by other users (mode 0644); "
        f"run `chmod 600 {exposed / key}`\n"
    )


def test_serve_max_sessions_per_user_refuses_one_more_login(
    serve: list[ServeProcess], certs_dir: Path, db_url: str
) -> None:
    server = ServeProcess(certs_dir, db_url, "--max-sessions-per-user", "1")
    serve.append(server)
    server.start()
    with Peer(server.address, certs_dir / "ca.pem") as first:
        token = first.login("alice", PASSWORD)["token"]
        with Peer(server.address, certs_dir / "ca.pem") as second:
            second.expect("hello")
            second.send(type="auth", user="alice", token=token)
            assert [e.get("code") for e in second.expect_closed()] == ["too_many_sessions"]
        server.wait_for(r"login refused for alice from 127\.0\.0\.1:\d+: alice already has 1 ")


def test_start_up_objects_leave_the_collectors_walks_and_new_cycles_are_still_collected() -> None:
    import gc
    import weakref

    from securechat.server.runner import freeze_start_up_objects

    class Node:
        partner: Node | None = None

    gc.unfreeze()
    try:
        freeze_start_up_objects()
        assert gc.get_freeze_count() > 1000  # this process's modules, at least
        a, b = Node(), Node()
        a.partner, b.partner = b, a  # a cycle made after start-up
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()


def test_serve_max_rooms_per_user_refuses_one_more_join(
    serve: list[ServeProcess], certs_dir: Path, db_url: str, run_cli: CliRunner
) -> None:
    assert "--max-rooms-per-user" in run_cli("serve", "--help").stdout
    server = ServeProcess(certs_dir, db_url, "--max-rooms-per-user", "2")
    serve.append(server)
    server.start()
    with Peer(server.address, certs_dir / "ca.pem") as alice:
        alice.login("alice", PASSWORD)  # and joins "general"
        alice.send(type="join", room="second", ref="j1")
        alice.expect("joined", ref="j1")
        alice.send(type="join", room="third", ref="j2")
        assert alice.expect("error", ref="j2")["code"] == "too_many_rooms"


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("10.0.0.1/8", "--trusted-proxy '10.0.0.1/8': host bits set; did you mean 10.0.0.0/8?"),
        ("haproxy.lan", "--trusted-proxy 'haproxy.lan': not an IP address or network (CIDR)"),
        ("10.0.0.0/33", "--trusted-proxy '10.0.0.0/33': not an IP address or network (CIDR)"),
    ],
)
def test_serve_refuses_a_trusted_proxy_that_is_not_an_address_or_network(
    run_cli: CliRunner, certs_dir: Path, db_url: str, given: str, said: str
) -> None:
    result = run_cli("serve", "--port", "0", "--certs", str(certs_dir), "--db", db_url,
                     "--trusted-proxy", "127.0.0.1", "--trusted-proxy", given)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith(f"securechat: error: {said}")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_serve_help_explains_trusted_proxy(run_cli: CliRunner) -> None:
    result = run_cli("serve", "--help", env={"COLUMNS": "200"})
    assert result.returncode == 0
    assert "--trusted-proxy ADDR|CIDR" in result.stdout
    assert "send-proxy-v2" in result.stdout


def test_serve_with_a_trusted_proxy_logs_the_client_its_header_names(
    serve: list[ServeProcess], certs_dir: Path, db_url: str
) -> None:
    from securechat.protocol.proxy import encode_v2

    server = ServeProcess(certs_dir, db_url, "--trusted-proxy", "127.0.0.0/30")
    serve.append(server)
    server.start()
    server.wait_for(r"PROXY protocol headers expected from \(and only from\) 127\.0\.0\.0/30")
    header = encode_v2(("198.51.100.7", 40001))
    with Peer(server.address, certs_dir / "ca.pem", source="127.0.0.2", prefix=header) as peer:
        peer.login("alice", PASSWORD)
        server.wait_for(r"login alice from 198\.51\.100\.7:40001 via 127\.0\.0\.2:\d+ \(password\)")
