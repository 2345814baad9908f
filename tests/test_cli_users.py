"""The user-management commands as real subprocesses against a real SQLite file."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from securechat.accounts import AUTH_FAILED, Accounts
from securechat.config import HashParams
from securechat.errors import AuthenticationError
from securechat.protocol.names import NAME_RULE
from securechat.store.database import Database
from tests.conftest import TIMEOUT, CliRunner
from tests.sql import rows

PASSWORD = "correct horse battery"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def _accounts(database: Database) -> Accounts:
    return Accounts(database, hash_params=HashParams())


def _add(run_cli: CliRunner, db_url: str, name: str, *flags: str) -> None:
    result = run_cli("adduser", name, *flags, "--password-stdin", "--db", db_url, input=PASSWORD)
    assert result.returncode == 0, result.stderr


def _assert_one_line_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr == f"securechat: error: {message}\n"


def test_adduser_reads_the_password_from_stdin(
    run_cli: CliRunner, db_url: str, users_db: Database
) -> None:
    result = run_cli(
        "adduser", "Alice", "--password-stdin", "--db", db_url, input="pass word 1\r\nignored\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "added user alice\n"
    assert _accounts(users_db).authenticate("alice", "pass word 1").name == "alice"


def test_adduser_admin_flag_makes_an_admin(
    run_cli: CliRunner, db_url: str, users_db: Database
) -> None:
    result = run_cli(
        "adduser", "root", "--admin", "--password-stdin", "--db", db_url, input=PASSWORD
    )
    assert result.stdout == "added admin root\nroot owns #general: the first admin\n"
    assert _accounts(users_db).get("root").is_admin


def test_the_first_admin_owns_general_and_a_later_one_does_not(
    run_cli: CliRunner, db_url: str
) -> None:
    """#26: the first admin owns #general, made for them on an empty server or handed over
    (joined) when the first login made it ownerless; the console's event and audit say so."""
    run_cli("room", "create", "general", "--db", db_url)  # ownerless, as a first login makes it
    result = run_cli(
        "adduser", "root", "--admin", "--password-stdin", "--db", db_url, input=PASSWORD
    )
    assert result.stdout.splitlines()[-1] == "root owns #general: the first admin"
    result = run_cli(
        "adduser", "boss", "--admin", "--password-stdin", "--db", db_url, input=PASSWORD
    )
    assert result.stdout == "added admin boss\n"  # not the first: #general stays root's
    owner = rows(
        db_url,
        "SELECT u.name FROM rooms r JOIN users u ON u.id = r.owner_id WHERE r.name = 'general'",
    )
    assert owner == [("root",)]
    member = rows(
        db_url,
        "SELECT u.name FROM memberships m JOIN users u ON u.id = m.user_id"
        " WHERE m.left_at_id IS NULL",
    )
    assert member == [("root",)]
    events = rows(
        db_url, "SELECT sender, action, subject FROM messages WHERE kind = 'event' ORDER BY id"
    )
    assert events == [("console", "create", None), ("console", "transfer", "root")]


def test_adduser_uses_the_database_from_the_environment(
    run_cli: CliRunner, users_db: Database, db_url: str
) -> None:
    result = run_cli(
        "adduser", "alice", "--password-stdin", input=PASSWORD, env={"SECURECHAT_DB": db_url}
    )
    assert result.returncode == 0, result.stderr
    assert _accounts(users_db).exists("alice")


def test_adduser_defaults_to_securechat_db_in_the_working_directory(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    result = run_cli("adduser", "alice", "--password-stdin", input=PASSWORD)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "securechat.db").is_file()


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [
        ("al ice", PASSWORD, f"invalid user name 'al ice': use {NAME_RULE}"),
        ("alice", "short", "password is too short: use at least 8 characters"),
        ("alice", "x" * 1025, "password is too long: at most 1024 characters"),
        ("alice", "", "no password on standard input"),
    ],
)
def test_adduser_mistakes_end_in_one_line(
    run_cli: CliRunner, db_url: str, users_db: Database, name: str, password: str, message: str
) -> None:
    result = run_cli("adduser", name, "--password-stdin", "--db", db_url, input=password)
    _assert_one_line_error(result, message)
    assert _accounts(users_db).list() == []


def test_adduser_refuses_an_existing_user(run_cli: CliRunner, db_url: str) -> None:
    _add(run_cli, db_url, "alice")
    result = run_cli("adduser", "ALICE", "--password-stdin", "--db", db_url, input="other password")
    _assert_one_line_error(result, "user alice already exists")


def test_adduser_without_a_terminal_asks_for_password_stdin(
    run_cli: CliRunner, db_url: str
) -> None:
    result = run_cli("adduser", "alice", "--db", db_url, input="")
    _assert_one_line_error(
        result, "standard input is not a terminal: pass --password-stdin to pipe a password"
    )


def test_unreachable_database_ends_in_one_line(run_cli: CliRunner, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}"
    for args in (["users"], ["disable", "alice"], ["db", "current"]):
        result = run_cli(*args, "--db", url)
        _assert_one_line_error(result, f"cannot open database {url}: unable to open database file")


def test_commands_on_an_unknown_user_end_in_one_line(run_cli: CliRunner, db_url: str) -> None:
    for args in (
        ["passwd", "bob", "--password-stdin"],
        ["deluser", "bob", "--yes"],
        ["disable", "bob"],
        ["enable", "bob"],
    ):
        result = run_cli(*args, "--db", db_url, input=PASSWORD)
        _assert_one_line_error(result, "no user named bob")


def test_passwd_changes_the_password(run_cli: CliRunner, db_url: str, users_db: Database) -> None:
    _add(run_cli, db_url, "alice")
    result = run_cli(
        "passwd", "alice", "--password-stdin", "--db", db_url, input="a new password\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "changed the password of alice\n"
    accounts = _accounts(users_db)
    assert accounts.authenticate("alice", "a new password").name == "alice"
    with pytest.raises(AuthenticationError, match=AUTH_FAILED):
        accounts.authenticate("alice", PASSWORD)


def test_passwd_refuses_a_weak_password(
    run_cli: CliRunner, db_url: str, users_db: Database
) -> None:
    _add(run_cli, db_url, "alice")
    result = run_cli("passwd", "alice", "--password-stdin", "--db", db_url, input="alice\n")
    _assert_one_line_error(result, "password is too short: use at least 8 characters")
    assert _accounts(users_db).authenticate("alice", PASSWORD).name == "alice"


def _assert_too_guessable(result: subprocess.CompletedProcess[str], why: str) -> None:
    """One line on stderr that says why and what would pass, without quoting the password."""
    assert result.returncode == 1
    assert result.stdout == ""
    prefix = "securechat: error: password is too easy to guess: "
    assert result.stderr.startswith(prefix)
    assert result.stderr.count("\n") == 1
    assert why in result.stderr
    assert result.stderr.endswith("A longer passphrase of several unrelated words would pass.\n")


GUESSABLE = [
    ("password", "This is a top-10 common password"),
    ("12345678", "This is a top-10 common password"),
    ("password1", "This is a very common password"),
    ("aaaaaaaa", 'Repeats like "aaa" are easy to guess'),
]


@pytest.mark.parametrize(("password", "why"), GUESSABLE)
def test_adduser_refuses_a_guessable_password(
    run_cli: CliRunner, db_url: str, users_db: Database, password: str, why: str
) -> None:
    result = run_cli("adduser", "alice", "--password-stdin", "--db", db_url, input=password)
    _assert_too_guessable(result, why)
    assert _accounts(users_db).list() == []


@pytest.mark.parametrize(("password", "why"), GUESSABLE)
def test_passwd_refuses_a_guessable_password(
    run_cli: CliRunner, db_url: str, users_db: Database, password: str, why: str
) -> None:
    _add(run_cli, db_url, "alice")
    result = run_cli("passwd", "alice", "--password-stdin", "--db", db_url, input=password)
    _assert_too_guessable(result, why)
    assert _accounts(users_db).authenticate("alice", PASSWORD).name == "alice"


@pytest.mark.parametrize("command", ["adduser", "passwd"])
def test_a_password_built_on_the_user_name_is_refused(
    run_cli: CliRunner, db_url: str, users_db: Database, command: str
) -> None:
    if command == "passwd":
        _add(run_cli, db_url, "kowalczyk")
    result = run_cli(
        command, "Kowalczyk", "--password-stdin", "--db", db_url, input="Kowalczyk#2024\n"
    )
    _assert_too_guessable(result, "it is based on the user name")
    assert "Kowalczyk#2024" not in result.stderr
    result = run_cli(command, "kowalczyk", "--password-stdin", "--db", db_url, input=PASSWORD)
    assert result.returncode == 0, result.stderr


def test_the_commands_count_this_machines_name_as_a_context_word() -> None:
    from securechat.cli.users import password_policy

    policy = password_policy()
    assert policy.context_words[0] == "securechat"
    assert socket.gethostname().lower() in policy.context_words


def test_deluser_needs_yes_without_a_terminal(
    run_cli: CliRunner, db_url: str, users_db: Database
) -> None:
    _add(run_cli, db_url, "alice")
    result = run_cli("deluser", "alice", "--db", db_url)
    _assert_one_line_error(result, "not deleting alice without confirmation: pass --yes")
    assert _accounts(users_db).exists("alice")
    result = run_cli("deluser", "alice", "--yes", "--db", db_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "deleted user alice\n"
    assert not _accounts(users_db).exists("alice")


def test_disable_and_enable_toggle_logins(
    run_cli: CliRunner, db_url: str, users_db: Database
) -> None:
    _add(run_cli, db_url, "alice")
    result = run_cli("disable", "alice", "--db", db_url)
    assert (result.returncode, result.stdout) == (0, "disabled user alice\n")
    with pytest.raises(AuthenticationError):
        _accounts(users_db).authenticate("alice", PASSWORD)
    result = run_cli("enable", "ALICE", "--db", db_url)
    assert (result.returncode, result.stdout) == (0, "enabled user alice\n")
    assert _accounts(users_db).authenticate("alice", PASSWORD).name == "alice"


def test_users_prints_an_aligned_table(run_cli: CliRunner, db_url: str, users_db: Database) -> None:
    _add(run_cli, db_url, "alice", "--admin")
    _add(run_cli, db_url, "bartholomew")
    assert run_cli("disable", "bartholomew", "--db", db_url).returncode == 0
    _accounts(users_db).authenticate("alice", PASSWORD)
    result = run_cli("users", "--db", db_url)
    assert result.returncode == 0, result.stderr
    header, alice, bart = result.stdout.splitlines()
    assert header.split() == ["NAME", "ADMIN", "DISABLED", "CREATED", "LAST", "LOGIN"]
    assert alice.split()[:3] == ["alice", "yes", "no"]
    assert bart.split()[:3] == ["bartholomew", "no", "yes"]
    assert bart.endswith("  never")
    assert "never" not in alice
    assert alice.endswith(" UTC")
    for column in ("ADMIN", "DISABLED", "CREATED", "LAST LOGIN"):
        start = header.index(column)
        assert alice[start] != " "
        assert alice[start - 1] == " "
        assert bart[start] != " "
        assert bart[start - 1] == " "


def test_users_on_an_empty_database_says_how_to_add_one(run_cli: CliRunner, db_url: str) -> None:
    result = run_cli("users", "--db", db_url)
    assert result.returncode == 0
    assert result.stdout == "no users yet: add one with `securechat adduser NAME`\n"


def _spawn(tmp_path: Path, *args: str) -> pexpect.spawn[str]:
    return pexpect.spawn(
        sys.executable,
        ["-m", "securechat", *args],
        cwd=str(tmp_path),
        timeout=TIMEOUT * 3,
        encoding="utf-8",
    )


def test_adduser_prompts_twice_and_refuses_a_mismatch(
    tmp_path: Path, db_url: str, users_db: Database
) -> None:
    child = _spawn(tmp_path, "adduser", "alice", "--db", db_url)
    child.expect("Password: ")
    child.sendline(PASSWORD)
    child.expect("Repeat password: ")
    child.sendline(PASSWORD + "!")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert "securechat: error: the two passwords do not match" in (child.before or "")
    assert PASSWORD not in (child.before or "")
    assert not _accounts(users_db).exists("alice")


def test_adduser_refuses_a_guessable_password_before_asking_to_repeat_it(
    tmp_path: Path, db_url: str, users_db: Database
) -> None:
    child = _spawn(tmp_path, "adduser", "alice", "--db", db_url)
    child.expect("Password: ")
    child.sendline("password1")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    shown = child.before or ""
    assert "Repeat password" not in shown
    assert "securechat: error: password is too easy to guess: This is a very common" in shown
    assert "password1" not in shown
    assert not _accounts(users_db).exists("alice")


def test_adduser_prompts_and_adds_the_user(tmp_path: Path, db_url: str, users_db: Database) -> None:
    child = _spawn(tmp_path, "adduser", "alice", "--db", db_url)
    for prompt in ("Password: ", "Repeat password: "):
        child.expect(prompt)
        child.sendline(PASSWORD)
    child.expect("added user alice")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert _accounts(users_db).authenticate("alice", PASSWORD).name == "alice"


@pytest.mark.parametrize(("answer", "kept"), [("n", True), ("y", False)])
def test_deluser_asks_for_confirmation_on_a_terminal(
    tmp_path: Path, run_cli: CliRunner, db_url: str, users_db: Database, answer: str, kept: bool
) -> None:
    _add(run_cli, db_url, "alice")
    child = _spawn(tmp_path, "deluser", "alice", "--db", db_url)
    child.expect(r"Delete user alice\? \[y/N\]: ")
    child.sendline(answer)
    child.expect("kept user alice" if kept else "deleted user alice")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == (1 if kept else 0)
    assert _accounts(users_db).exists("alice") is kept
