"""The ``[directory]`` table: the issue's key names, presets, and the refusals at start
(plain LDAP, a missing key, a bad group) as one line naming the file and the key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer.main

from securechat.cli import _register_commands, app
from securechat.config import ServerConfig
from securechat.directory.settings import GroupMapping, parse_duration
from tests.conftest import CliRunner

#: The issue's example, word for word but for the file names.
SAMPLE = """\
[directory]
preset = "active-directory"
url = ["ldaps://dc1.office.lan", "ldaps://dc2.office.lan"]
start_tls = false
ca = "directory-ca.pem"
bind_dn = "CN=securechat,OU=Service,DC=office,DC=lan"
bind_password_file = "directory.secret"
user_base = "OU=Staff,DC=office,DC=lan"
user_filter = "(objectClass=person)"
sync_interval = "15m"
max_disable_share = 0.10

[[directory.group]]
dn = "CN=dev,OU=Groups,DC=office,DC=lan"
rooms = ["dev"]
role = "member"

[[directory.group]]
dn = "CN=chat-admins,OU=Groups,DC=office,DC=lan"
admin = true
"""


@pytest.fixture(scope="module")
def root() -> Any:
    _register_commands()
    return typer.main.get_command(app)


def _serve_config(root: Any, config_file: Path, monkeypatch: pytest.MonkeyPatch) -> ServerConfig:
    import securechat.server.runner as serve_module  # serve imports it when it runs

    seen: list[ServerConfig] = []
    monkeypatch.setattr(serve_module, "run_server", seen.append)
    monkeypatch.setattr(serve_module, "configure_logging", lambda level: None)
    for name in ("SECURECHAT_CONFIG", "SECURECHAT_CERTS", "SECURECHAT_DB"):
        monkeypatch.delenv(name, raising=False)
    root.main(["serve", "--config", str(config_file)], standalone_mode=False)
    (config,) = seen
    return config


def _files(tmp_path: Path, text: str = SAMPLE) -> Path:
    (tmp_path / "directory.secret").write_text("service password\n")
    (tmp_path / "directory.secret").chmod(0o600)
    config_file = tmp_path / "securechat.toml"
    config_file.write_text(text)
    return config_file


def test_the_issues_sample_gives_the_active_directory_preset_and_the_groups(
    root: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = _serve_config(root, _files(tmp_path), monkeypatch).directory
    assert directory is not None
    assert directory.urls == ("ldaps://dc1.office.lan", "ldaps://dc2.office.lan")
    assert directory.ca_file == tmp_path / "directory-ca.pem"  # relative to the file
    assert directory.bind_password == "service password"
    assert "service password" not in repr(directory)
    assert directory.user_filter == "(objectClass=person)"
    assert (directory.login_attribute, directory.id_attribute) == ("sAMAccountName", "objectGUID")
    assert directory.disabled_filter == "(userAccountControl:1.2.840.113556.1.4.803:=2)"
    assert directory.nested_groups
    assert directory.sync_interval == 900.0
    assert directory.max_disable_share == 0.10
    assert directory.name_conflict == "local_wins"
    assert directory.groups == (
        GroupMapping("CN=dev,OU=Groups,DC=office,DC=lan", rooms=("dev",), role="member"),
        GroupMapping("CN=chat-admins,OU=Groups,DC=office,DC=lan", admin=True),
    )


def test_the_openldap_preset_keys_accounts_by_entryuuid(
    root: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = SAMPLE.replace('"active-directory"', '"openldap"').replace(
        'user_filter = "(objectClass=person)"\n', ""
    )
    directory = _serve_config(root, _files(tmp_path, text), monkeypatch).directory
    assert directory is not None
    assert (directory.login_attribute, directory.id_attribute) == ("uid", "entryUUID")
    assert directory.user_filter == "(objectClass=inetOrgPerson)"
    assert not directory.nested_groups


def test_no_directory_table_means_local_accounts_only(
    root: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        _serve_config(root, _files(tmp_path, "[serve]\nport = 6000\n"), monkeypatch).directory
        is None
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('url = ["ldaps://dc1.office.lan", "ldaps://dc2.office.lan"]',
          'url = ["ldap://dc1.office.lan"]'),
         "ldap://dc1.office.lan is plain LDAP: passwords would cross the network in clear"),
        (("start_tls = false", "start_tls = true"), "is LDAP over TLS already"),
        (('ca = "directory-ca.pem"\n', ""), "[directory] needs 'ca'"),
        (('sync_interval = "15m"', 'sync_interval = "soon"'), "sync_interval: 'soon' is not a duration"),
        (('role = "member"', 'role = "owner"'), "'role' in [[directory.group]] number 1 must be one of member, moderator"),
        (('rooms = ["dev"]', 'roms = ["dev"]'), "unknown key 'roms' in [[directory.group]] number 1"),
        (("max_disable_share = 0.10", "max_disable_share = 2"), "'max_disable_share' in [directory] must be from 0.0 to 1.0"),
        (('user_filter = "(objectClass=person)"', 'user_filter = "objectClass=person"'), "user_filter must be an LDAP filter in parentheses"),
    ],
    ids=["plain-ldap", "ldaps-and-starttls", "no-ca", "bad-interval", "bad-role", "unknown-group-key",
         "share-out-of-bounds", "filter-without-parentheses"],
)  # fmt: skip
def test_serve_refuses_a_directory_it_cannot_use_safely_in_one_line(
    run_cli: CliRunner, tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in SAMPLE
    config_file = _files(tmp_path, SAMPLE.replace(old, new))
    result = run_cli("serve", "--config", str(config_file))
    assert result.returncode == 1
    assert result.stderr.startswith(f"securechat: error: {config_file}: "), result.stderr
    assert message in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


def test_durations_read_as_an_admin_writes_them() -> None:
    assert [parse_duration(text) for text in ("90s", "15m", "1h", "30", "off")] == [
        90.0, 900.0, 3600.0, 30.0, None,
    ]  # fmt: skip
    for bad in ("0.5s", "15 minutes", "-1m", ""):
        with pytest.raises(ValueError, match=r"duration|shorter"):
            parse_duration(bad)


def test_the_examples_in_deploy_md_are_valid(
    root: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guide = (Path(__file__).resolve().parent.parent / "docs" / "deploy.md").read_text()
    section = guide[guide.index("## 14. Sign in with Active Directory or LDAP") :]
    examples = re.findall(r"```toml\n(\[directory\].*?)```", section, re.DOTALL)
    assert len(examples) == 2  # Active Directory, OpenLDAP
    for n, example in enumerate(examples):
        folder = tmp_path / str(n)
        folder.mkdir()
        config_file = _files(folder, example.replace("/etc/securechat/", f"{folder}/"))
        directory = _serve_config(root, config_file, monkeypatch).directory
        assert directory is not None
        assert directory.groups


def test_config_show_prints_the_directory_table_as_valid_toml(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    config_file = _files(tmp_path)
    result = run_cli("config", "show", "--config", str(config_file))
    assert result.returncode == 0, result.stderr
    shown = tomllib.loads(result.stdout)["directory"]
    written = tomllib.loads(SAMPLE)["directory"]
    assert shown["bind_password_file"] == str(tmp_path / "directory.secret")
    assert shown["ca"] == str(tmp_path / "directory-ca.pem")
    assert {k: v for k, v in shown.items() if k not in ("ca", "bind_password_file")} == {
        k: v for k, v in written.items() if k not in ("ca", "bind_password_file")
    }
    assert "service password" not in result.stdout
