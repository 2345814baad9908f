"""The configuration file (``--config``, ``SECURECHAT_CONFIG``): every ``serve`` option, the
precedence command line > environment > file > default, its errors, ``config show``, and
the admin commands finding the database through it."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from securechat.attachments.layout import file_path, new_file_id
from securechat.cli import _register_commands, app, configuration
from securechat.config import ServerConfig
from securechat.config_file import Key, Kind, toml_value
from securechat.errors import ConfigFileError
from tests.conftest import TIMEOUT, CliRunner

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def root() -> Any:
    _register_commands()
    return typer.main.get_command(app)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- every serve option, and the same ServerConfig from the file and the command line ---


def _sample(key: str, spec: Key) -> Any:
    """A value for ``key`` that is not its default and passes its checks."""
    if spec.choices is not None:
        return spec.choices[-1]
    match spec.kind:
        case Kind.BOOLEAN:
            return True
        case Kind.INTEGER | Kind.FLOAT:
            low = spec.minimum or 0
            value = min(int(low) + 1031, int(spec.maximum or 10**9))
            return float(value) if spec.kind is Kind.FLOAT else value
        case Kind.PATH:
            return f"/srv/chat/{key}.pem"
        case Kind.STRING_LIST:
            return ["10.9.8.7"]
        case Kind.STRING if key in ("max_file_size", "file_quota_per_day"):
            return "512KiB"  # a size (#27)
        case Kind.STRING:
            return f"sqlite:////srv/chat/{key}.db" if key == "db" else "127.0.0.9"


def _server_config(root: Any, args: list[str], monkeypatch: pytest.MonkeyPatch) -> ServerConfig:
    """The ServerConfig ``serve ARGS`` would run with (the server itself is not started)."""
    import securechat.server.runner as serve_module  # serve imports it when it runs

    seen: list[ServerConfig] = []
    monkeypatch.setattr(serve_module, "run_server", seen.append)
    monkeypatch.setattr(serve_module, "configure_logging", lambda level: None)
    for name in ("SECURECHAT_CONFIG", "SECURECHAT_CERTS", "SECURECHAT_DB"):
        monkeypatch.delenv(name, raising=False)
    root.main(["serve", *args], standalone_mode=False)
    (config,) = seen
    return config


def test_every_serve_option_can_be_set_in_the_file_with_the_same_effect(
    root: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = configuration.schema(root)
    serve = root.commands["serve"]
    keys = {key for key, _ in configuration.options(serve)}
    assert keys == set(schema[None]) - set(configuration.FILE_ONLY) | set(schema["serve"])
    assert {"port", "max_rooms_per_user", "trusted_proxy"} <= keys
    args: list[str] = []
    top: list[str] = []
    table: list[str] = ["[serve]"]
    for key, param in configuration.options(serve):
        spec = {**schema[None], **schema["serve"]}[key]
        value = _sample(key, spec)
        (top if key in configuration.TOP_LEVEL else table).append(f"{key} = {toml_value(value)}")
        option = next(opt for opt in param.opts if opt.startswith("--"))
        if spec.kind is Kind.BOOLEAN:
            args.append(option)
        else:
            for item in value if isinstance(value, list) else [value]:
                args += [option, str(item)]
    config_file = _write(tmp_path / "securechat.toml", "\n".join([*top, *table]) + "\n")
    from_file = _server_config(root, ["--config", str(config_file)], monkeypatch)
    from_command_line = _server_config(root, args, monkeypatch)
    assert from_file == from_command_line
    assert from_file != _server_config(root, [], monkeypatch)
    assert from_file.port == _sample("port", schema["serve"]["port"])


def test_every_command_with_a_database_or_certificates_reads_the_file(root: Any) -> None:
    def commands(group: Any, path: str) -> Iterator[tuple[str, Any]]:
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from commands(command, f"{path} {name}")
            else:
                yield f"{path} {name}".strip(), command

    readers = {
        path
        for path, command in commands(root, "")
        if {key for key, _ in configuration.options(command)} & set(configuration.TOP_LEVEL)
    }
    assert {"serve", "adduser", "users", "room create", "db upgrade", "backup", "doctor"} <= readers
    for path, command in commands(root, ""):
        if path in readers:
            option = next((p for p in command.params if p.name == "config"), None)
            assert option is not None, f"`securechat {path}` has --db or --certs but no --config"
            assert (option.is_eager, option.envvar) == (True, "SECURECHAT_CONFIG")


# --- real processes: serve, precedence, errors ---------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_listens_on_the_port_the_file_names(
    tmp_path: Path, certs_dir: Path, db_url: str
) -> None:
    port = _free_port()
    config_file = _write(
        tmp_path / "etc" / "securechat.toml",
        f'certs = "{certs_dir}"\ndb = "{db_url}"\n\n'
        f'[serve]\nhost = "127.0.0.1"\nport = {port}\nno_web = true\n',
    )
    env = {"PATH": "/usr/bin:/bin", "SECURECHAT_CONFIG": str(config_file)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "securechat", "serve"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "listening on" in line or "error" in line:
                break
        assert f"listening on 127.0.0.1 port {port}" in lines[-1], lines
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT):
            pass
    finally:
        proc.terminate()
        try:
            assert proc.wait(TIMEOUT) == 0, "serve did not stop on SIGTERM"
        finally:
            if proc.poll() is None:
                proc.kill()  # never left running, whatever failed
                proc.wait(TIMEOUT)
            if proc.stderr is not None:
                proc.stderr.close()


def _shown(output: str) -> dict[str, tuple[str, str]]:
    """``key -> (value, source)`` from ``config show``'s output."""
    found = {}
    for line in output.splitlines():
        if match := re.fullmatch(r"(\w+) = (.*)  # (.*)", line):
            found[match[1]] = (match[2], match[3])
    return found


def test_command_line_beats_environment_beats_file_beats_default(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    config_file = _write(
        tmp_path / "chat.toml",
        'certs = "/srv/chat/certs"\ndb = "sqlite:////srv/chat/file.db"\n\n'
        "[serve]\nport = 6001\nweb_port = 6002\n",
    )
    result = run_cli(
        "config", "show", "--port", "7001",
        env={"SECURECHAT_CONFIG": str(config_file), "SECURECHAT_DB": "sqlite:////srv/env.db"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = _shown(result.stdout)
    assert shown["port"] == ("7001", "command line")
    assert shown["db"] == ('"sqlite:////srv/env.db"', "environment SECURECHAT_DB")
    assert shown["web_port"] == ("6002", "file")
    assert shown["certs"] == ('"/srv/chat/certs"', "file")
    assert shown["max_frame"] == ("65536", "default")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[serve]\nprot = 6000\n",
            "chat.toml: unknown key 'prot' in [serve]; did you mean 'port'?",
        ),
        ("port = 6000\n", "chat.toml: 'port' belongs in [serve]"),
        ("[serve]\nport = 6000\nhost = 127.0.0.1\n", "chat.toml: not valid TOML: "),
        ('[serve]\nport = "6000"\n', "'port' in [serve] must be an integer, not \"6000\""),
        ("[serve]\nport = 70000\n", "'port' in [serve] must be from 0 to 65535, not 70000"),
        ('[serve]\nlog_level = "loud"\n', "must be one of debug, info, warning, error"),
        ("[directroy]\nurl = 1\n", "chat.toml: unknown table [directroy]; known tables: [serve]"),
        (
            'db_password_file = "nowhere"\n',
            "db_password_file is set, but it is for a PostgreSQL database",
        ),
    ],
)
def test_a_bad_file_is_one_line_naming_the_file_and_key(
    run_cli: CliRunner, tmp_path: Path, text: str, message: str
) -> None:
    config_file = _write(tmp_path / "etc" / "chat.toml", text)
    result = run_cli("serve", "--config", str(config_file))
    assert result.returncode == 1
    assert result.stderr.startswith(f"securechat: error: {config_file}: "), result.stderr
    assert message in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_a_toml_syntax_error_says_where(run_cli: CliRunner, tmp_path: Path) -> None:
    _write(tmp_path / "chat.toml", "[serve]\nport = 6000\nhost = 127.0.0.1\n")
    result = run_cli("users", "--config", "chat.toml")
    assert result.returncode == 1
    assert "(at line 3, column" in result.stderr, result.stderr


def test_a_missing_file_is_named(run_cli: CliRunner) -> None:
    result = run_cli("users", env={"SECURECHAT_CONFIG": "/etc/securechat/nowhere.toml"})
    assert result.returncode == 1
    assert result.stderr == (
        "securechat: error: no configuration file /etc/securechat/nowhere.toml "
        "(from --config or SECURECHAT_CONFIG)\n"
    )


# --- config show: masks, round-trips ------------------------------------------------


def test_config_show_masks_a_password_in_the_database_url(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    _write(tmp_path / "chat.toml", 'db = "postgresql+psycopg://chat:hunter2@db.office.lan/chat"\n')
    result = run_cli("config", "show", "--config", "chat.toml")
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout
    assert _shown(result.stdout)["db"] == (
        '"postgresql+psycopg://chat:***@db.office.lan/chat"',
        "file",
    )


def test_config_show_round_trips(run_cli: CliRunner, tmp_path: Path) -> None:
    _write(tmp_path / "db.password", "hunter2\n")
    _write(
        tmp_path / "first.toml",
        'certs = "certs"\ndb = "postgresql+psycopg://chat@db.office.lan/chat"\n'
        'db_password_file = "db.password"\n\n'
        '[serve]\nport = 6001\ntrusted_proxy = ["10.0.0.5", "10.0.1.0/24"]\n'
        'log_level = "debug"\nrate = 50\n',
    )
    first = run_cli("config", "show", "--config", "first.toml")
    assert first.returncode == 0, first.stderr
    assert "hunter2" not in first.stdout
    tomllib.loads(first.stdout)  # valid TOML
    _write(tmp_path / "second.toml", first.stdout)
    second = run_cli("config", "show", "--config", "second.toml")
    assert second.returncode == 0, second.stderr
    values = {key: value for key, (value, _) in _shown(first.stdout).items()}
    assert {key: value for key, (value, _) in _shown(second.stdout).items()} == values
    assert _shown(first.stdout)["db_password_file"] == (f'"{tmp_path / "db.password"}"', "file")
    assert _shown(first.stdout)["db"][0] == '"postgresql+psycopg://chat@db.office.lan/chat"'


def test_db_password_file_puts_the_password_in_the_url(tmp_path: Path) -> None:
    secret = _write(tmp_path / "db.password", "s3cr:et@/x\n")
    source = tmp_path / "chat.toml"
    url = configuration.add_password("postgresql+psycopg://chat@db/chat", secret, source)
    from sqlalchemy.engine import make_url

    assert make_url(url).password == "s3cr:et@/x"
    with pytest.raises(ConfigFileError, match="has a password already"):
        configuration.add_password("postgresql+psycopg://chat:pw@db/chat", secret, source)
    _write(secret, "")
    with pytest.raises(ConfigFileError, match="the file is empty"):
        configuration.add_password("postgresql+psycopg://chat@db/chat", secret, source)


# --- admin commands, the unit, the docs --------------------------------------------------


def test_admin_commands_find_the_database_through_the_file(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    """A relative database path in the file is from the file's folder, so an admin with
    SECURECHAT_CONFIG set reaches the same database from any folder."""
    config_file = _write(tmp_path / "etc" / "securechat.toml", 'db = "sqlite:///chat.db"\n')
    env = {"SECURECHAT_CONFIG": str(config_file)}
    added = run_cli("adduser", "erin", "--password-stdin", input="correct horse battery\n", env=env)
    assert added.returncode == 0, added.stderr
    assert (tmp_path / "etc" / "chat.db").is_file()
    assert not (tmp_path / "chat.db").exists()
    listed = run_cli("users", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "erin" in listed.stdout
    elsewhere = run_cli("users", "--db", f"sqlite:///{tmp_path / 'other.db'}", env=env)
    assert "erin" not in elsewhere.stdout  # the command line wins over the file


def _deploy_sample() -> str:
    text = (REPO / "docs" / "deploy.md").read_text()
    section = text.split("### Configuration file", 1)[1]
    match = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match[1]


def test_the_sample_file_in_deploy_md_is_valid(run_cli: CliRunner, tmp_path: Path) -> None:
    _write(tmp_path / "securechat.toml", _deploy_sample())
    result = run_cli("config", "show", "--config", "securechat.toml")
    assert result.returncode == 0, result.stderr
    shown = _shown(result.stdout)
    assert shown["certs"] == ('"/var/lib/securechat/certs"', "file")
    assert shown["db"] == ('"sqlite:////var/lib/securechat/securechat.db"', "file")


def test_the_files_folder_named_in_the_file_is_the_one_backup_copies(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    """``files`` sits at the top level beside ``db``: serve and the admin commands share it."""
    shared = tmp_path / "shared"
    file_id = new_file_id()
    stored = file_path(shared, file_id)
    stored.parent.mkdir(parents=True)
    shared.chmod(0o700)
    stored.write_bytes(b"the report")
    stored.chmod(0o600)
    config_file = _write(
        tmp_path / "etc" / "securechat.toml", f'db = "sqlite:///chat.db"\nfiles = "{shared}"\n'
    )
    env = {"SECURECHAT_CONFIG": str(config_file)}
    added = run_cli("adduser", "erin", "--password-stdin", input="correct horse battery\n", env=env)
    assert added.returncode == 0, added.stderr
    backed_up = run_cli("backup", str(tmp_path / "b.db"), env=env)
    assert backed_up.returncode == 0, backed_up.stderr
    assert file_path(tmp_path / "b-files", file_id).read_bytes() == b"the report"
