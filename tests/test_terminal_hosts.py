"""``securechat connect`` given a comma list of hosts (docs/client.md), in a real pty against
a real server: a first host that is down costs one refused connection, whether the password
comes from the environment or is typed at the hidden prompt, and when no host answers the
user is told about each of them."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, CliRunner, RunningServer, StartTerminal


@pytest.fixture
def dead_ports() -> Iterator[tuple[int, int]]:
    """Two loopback ports bound for the test but not listening: connections are refused."""
    with socket.socket() as first, socket.socket() as second:
        first.bind(("127.0.0.1", 0))
        second.bind(("127.0.0.1", 0))
        yield first.getsockname()[1], second.getsockname()[1]


@pytest.mark.parametrize("typed_password", [False, True], ids=["password-in-env", "typed"])
def test_connect_skips_a_first_host_that_is_down_and_chats_on_the_next(
    running_server: RunningServer,
    terminal: StartTerminal,
    dead_ports: tuple[int, int],
    typed_password: bool,
) -> None:
    live = running_server.address[1]
    bob = running_server.login("bob")
    hosts = f"127.0.0.1:{dead_ports[0]},127.0.0.1:{live}"

    alice = terminal(running_server, "alice", hosts=hosts, typed_password=typed_password)

    assert f"connected to 127.0.0.1:{live} as alice" in alice.text
    alice.line("typed in the pty, via the second host")
    alice.expect("#general alice: typed in the pty, via the second host")
    assert bob.expect("message", body="typed in the pty, via the second host")["from"] == "alice"
    bob.send(type="send", room="general", body="bob answers", ref="b1")
    bob.expect("ack")
    alice.expect(r"\d\d:\d\d #general bob: bob answers")
    assert PASSWORD not in alice.text


@pytest.mark.parametrize(
    ("command", "password"),
    [
        (["connect"], PASSWORD),  # straight to the login
        (["connect"], None),  # the server is checked before the password is asked
        (["send", "--room", "general", "hi"], PASSWORD),
    ],
    ids=["connect", "connect-before-the-prompt", "send"],
)
def test_when_no_host_answers_the_error_names_each_of_them(
    run_cli: CliRunner,
    certs_dir: Path,
    dead_ports: tuple[int, int],
    command: list[str],
    password: str | None,
) -> None:
    first, second = dead_ports
    verb, *rest = command
    env = {"SECURECHAT_CONFIG_DIR": "config"}
    if password is not None:
        env["SECURECHAT_PASSWORD"] = password
    result = run_cli(
        verb, f"127.0.0.1:{first},127.0.0.1:{second}", "--user", "alice",
        "--ca", str(certs_dir / "ca.pem"), *rest, env=env, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    hint = "connection refused; is the server running, and is the port open in the firewall?"
    assert result.stderr == (
        "securechat: error: none of the 2 servers answered:\n"
        f"  cannot reach 127.0.0.1:{first}: {hint}\n"
        f"  cannot reach 127.0.0.1:{second}: {hint}\n"
    )
    assert "Traceback" not in result.stderr
