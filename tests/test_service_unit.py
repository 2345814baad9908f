"""``securechat service-unit``: the hardened systemd unit, as printed, verified and shipped."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from securechat.deploy import MALLOC_TUNABLES
from tests.conftest import PASSWORD, TIMEOUT, CliRunner
from tests.peer import Peer

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "securechat" / "deploy" / "securechat.service"

HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallFilter": "@system-service",
    "UMask": "0077",
    "KillSignal": "SIGTERM",
    "TimeoutStopSec": "10",
    "LimitNOFILE": "65536",
    "Restart": "on-failure",
    "ExecReload": "/bin/kill -HUP $MAINPID",  # serve loads new certificate files on SIGHUP
}


def _directives(unit: str) -> dict[str, str]:
    """``Key=value`` lines of a unit; every key securechat uses appears once."""
    pairs = [
        line.split("=", 1) for line in unit.splitlines() if "=" in line and line[0] not in "#;"
    ]
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), keys
    return dict(pairs)


def test_service_unit_runs_serve_unprivileged_with_the_state_paths(run_cli: CliRunner) -> None:
    result = run_cli("service-unit", "--bin", "/opt/securechat/bin/securechat", "--user", "chat")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    unit = _directives(result.stdout)
    assert unit["ExecStart"] == (
        "/opt/securechat/bin/securechat serve --config /etc/securechat/securechat.toml"
    )
    assert (unit["User"], unit["Group"]) == ("chat", "chat")
    assert unit["StateDirectory"] == "securechat"
    assert unit["WorkingDirectory"] == "/var/lib/securechat"
    assert unit["WantedBy"] == "multi-user.target"
    assert {key: unit.get(key) for key in HARDENING} == HARDENING
    assert unit["Environment"] == f"GLIBC_TUNABLES={MALLOC_TUNABLES}"
    assert "${" not in result.stdout


def test_service_unit_defaults_to_the_running_securechat(run_cli: CliRunner) -> None:
    result = run_cli("service-unit")
    assert result.returncode == 0, result.stderr
    program = Path(sys.executable).parent / "securechat"
    assert _directives(result.stdout)["ExecStart"].startswith(f"{program} serve ")


def test_service_unit_outside_var_lib_gets_a_writable_path(run_cli: CliRunner) -> None:
    result = run_cli("service-unit", "--bin", "/usr/bin/securechat", "--state-dir", "/srv/chat")
    assert result.returncode == 0, result.stderr
    unit = _directives(result.stdout)
    assert "StateDirectory" not in unit  # systemd only makes those under /var/lib
    assert unit["ReadWritePaths"] == "/srv/chat"
    assert unit["WorkingDirectory"] == "/srv/chat"


def test_service_unit_runs_serve_with_the_configuration_file_given(run_cli: CliRunner) -> None:
    result = run_cli("service-unit", "--bin", "/usr/bin/securechat", "--config", "/srv/chat.toml")
    assert result.returncode == 0, result.stderr
    assert (
        _directives(result.stdout)["ExecStart"]
        == "/usr/bin/securechat serve --config /srv/chat.toml"
    )
    assert "config show --config /srv/chat.toml" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--user", "root user"), "--user 'root user' is not a valid system user name"),
        (("--state-dir", "chat"), "--state-dir 'chat' must be an absolute path"),
        (("--bin", "/opt/my apps/securechat"), "must be an absolute path without spaces"),
        (("--state-dir", "/var/lib/chat%i"), "without spaces, quotes, % or $"),
        (("--config", "securechat.toml"), "--config 'securechat.toml' must be an absolute path"),
    ],
)
def test_service_unit_refuses_values_systemd_would_misread(
    run_cli: CliRunner, args: tuple[str, ...], message: str
) -> None:
    result = run_cli("service-unit", *args)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("securechat: error: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


def test_service_unit_warns_when_protect_home_hides_the_program(run_cli: CliRunner) -> None:
    result = run_cli("service-unit", "--bin", "/home/ann/.local/bin/securechat")
    assert result.returncode == 0
    assert "ExecStart=/home/ann/.local/bin/securechat serve" in result.stdout
    assert "ProtectHome=yes hides /home and /root" in result.stderr


@pytest.mark.parametrize("folder", ["/tmp", "/var/tmp"])
def test_service_unit_warns_when_private_tmp_hides_the_program(
    run_cli: CliRunner, folder: str
) -> None:
    result = run_cli("service-unit", "--bin", f"{folder}/try/venv/bin/securechat")
    assert result.returncode == 0
    assert result.stderr == (
        f"securechat: warning: the service cannot see {folder}/try/venv/bin/securechat: "
        "PrivateTmp=yes gives it an empty /tmp and /var/tmp of its own; install securechat "
        "under /opt (see docs/deploy.md) or pass --bin\n"
    )


def test_service_unit_is_quiet_for_a_program_under_opt(run_cli: CliRunner) -> None:
    result = run_cli("service-unit", "--bin", "/opt/securechat/bin/securechat")
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (apt-get install systemd)",
)
def test_service_unit_passes_systemd_analyze_verify(run_cli: CliRunner, tmp_path: Path) -> None:
    def verify(unit: str) -> subprocess.CompletedProcess[str]:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        (folder / "securechat.service").write_text(unit)
        return subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(folder / "securechat.service")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    unit = run_cli("service-unit").stdout
    result = verify(unit)
    assert result.returncode == 0, result.stderr
    assert "securechat.service" not in result.stdout + result.stderr, result.stderr
    # The check can fail: verify does report a directive it cannot parse.
    broken = verify(unit.replace("ProtectHome=yes", "ProtectHome=sometimes"))
    assert "securechat.service" in broken.stdout + broken.stderr


# Run ``securechat serve`` with MemoryDenyWriteExecute's kernel twin, PR_SET_MDWE.
_UNDER_MDWE = """
import ctypes, runpy, sys
if ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) != 0:
    sys.exit(100 + ctypes.get_errno())
sys.argv = ["securechat", *sys.argv[1:]]
runpy.run_module("securechat", run_name="__main__")
"""


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_MDWE is Linux-only")
def test_server_works_when_memory_cannot_be_writable_and_executable(
    certs_dir: Path, db_url: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECURECHAT_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", _UNDER_MDWE, "serve", "--host", "127.0.0.1", "--port", "0",
         "--web-port", "0", "--certs", str(certs_dir), "--db", db_url],
        stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        if not line and proc.wait(TIMEOUT) == 100 + errno.EINVAL:
            pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3 or newer needed)")
        assert "listening on 127.0.0.1 port" in line, line  # the first line, if all went well
        port = int(line.rsplit(" ", 1)[1])
        with Peer(("127.0.0.1", port), certs_dir / "ca.pem") as peer:
            # TLS 1.3 and an argon2id verify (and rehash) at the production cost: slow on a
            # loaded machine, so not bounded by the suite's usual step time.
            peer.login("alice", PASSWORD, timeout=3 * TIMEOUT)
            peer.send(type="send", room="general", body="no W+X needed", ref="w1")
            assert peer.expect("ack", ref="w1")["id"] >= 1
    finally:
        proc.terminate()
        proc.wait(TIMEOUT)
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_wheel_ships_the_service_unit(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("securechat/deploy/securechat.service") == UNIT.read_bytes()
        assert "securechat/deploy/__init__.py" in archive.namelist()
