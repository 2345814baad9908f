"""``securechat adduser --from-file``: many users at once, as a real subprocess."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from securechat.accounts import Accounts
from securechat.cli.users import generate_password, password_policy
from securechat.config import HashParams
from securechat.store.database import Database
from tests.conftest import PASSWORD, CliRunner

GENERATED = re.compile(r"[a-hjkmnp-z2-9]{4}(-[a-hjkmnp-z2-9]{4}){3}")


def _table(stdout: str) -> dict[str, str]:
    header, *rows = stdout.splitlines()
    assert header.split() == ["NAME", "PASSWORD"]
    pairs = [row.split() for row in rows]
    assert all(len(pair) == 2 for pair in pairs), rows
    assert len({row.index(pair[1]) for row, pair in zip(rows, pairs, strict=True)}) == 1
    return {name: password for name, password in pairs}


def test_adduser_from_file_gives_each_user_a_password_printed_once(
    run_cli: CliRunner, db_url: str, users_db: Database, tmp_path: Path
) -> None:
    people = tmp_path / "people.txt"
    people.write_text("# the new team\nErin\n\n  frank  # sales\ngrace.hopper\n")
    result = run_cli("adduser", "--from-file", str(people), "--db", db_url)
    assert result.returncode == 0, result.stderr
    table = _table(result.stdout)
    assert list(table) == ["erin", "frank", "grace.hopper"]
    assert all(GENERATED.fullmatch(password) for password in table.values()), table
    assert len(set(table.values())) == 3
    accounts = Accounts(users_db, hash_params=HashParams.for_tests())
    for name, password in table.items():
        assert accounts.authenticate(name, password).is_admin is False
    assert "added 3 user(s); hand each password over privately" in result.stderr


def test_adduser_from_file_skips_bad_lines_reports_them_and_fails_at_the_end(
    run_cli: CliRunner, db_url: str, users_db: Database, tmp_path: Path
) -> None:
    people = tmp_path / "people.txt"
    people.write_text("erin\nbob\nnot a name\nfrank\nERIN\n")
    result = run_cli("adduser", "--from-file", str(people), "--db", db_url)
    assert result.returncode == 1
    assert list(_table(result.stdout)) == ["erin", "frank"]
    lines = result.stderr.splitlines()
    assert lines[0] == f"securechat: {people}:2: user bob already exists; skipped"
    assert lines[1].startswith(f"securechat: {people}:3: invalid user name 'not a name'")
    assert lines[2] == f"securechat: {people}:5: user erin is listed twice; skipped"
    assert lines[-1] == "securechat: error: 3 of 5 user(s) not added (see above)"
    accounts = Accounts(users_db, hash_params=HashParams.for_tests())
    assert accounts.authenticate("bob", PASSWORD).name == "bob"  # untouched
    assert {a.name for a in accounts.list()} >= {"erin", "frank"}


def test_adduser_from_stdin(run_cli: CliRunner, db_url: str, users_db: Database) -> None:
    result = run_cli("adduser", "--from-file", "-", "--db", db_url, input="heidi\nivan\n")
    assert result.returncode == 0, result.stderr
    table = _table(result.stdout)
    accounts = Accounts(users_db, hash_params=HashParams.for_tests())
    assert accounts.authenticate("ivan", table["ivan"]).name == "ivan"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (
            ("--from-file", "missing.txt"),
            None,
            "cannot read missing.txt: No such file or directory",
        ),
        (("--from-file", "-"), "# nobody\n\n", "standard input names no users"),
        (("erin", "--from-file", "-"), "", "give either NAME or --from-file, not both"),
        (("--from-file", "-", "--admin"), "", "--admin cannot be combined with --from-file"),
        ((), None, "name the user to add: `securechat adduser NAME`"),
    ],
)
def test_adduser_from_file_mistakes_are_one_line_errors(
    run_cli: CliRunner,
    db_url: str,
    users_db: Database,
    args: tuple[str, ...],
    stdin: str | None,
    message: str,
) -> None:
    result = run_cli("adduser", *args, "--db", db_url, input=stdin)
    assert result.returncode == 1
    assert result.stderr.startswith("securechat: error: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stdout == ""
    assert len(Accounts(users_db, hash_params=HashParams.for_tests()).list()) == 4


def test_generated_passwords_pass_the_strength_policy(users_db: Database) -> None:
    """The file holds names only: each password is generated (about 79 random bits) and
    goes through the same policy as a typed one, which it must always pass."""
    accounts = Accounts(users_db, hash_params=HashParams.for_tests(), policy=password_policy())
    for n in range(200):
        accounts.check_password(f"user{n}", generate_password())
