"""The directory sync against a real OpenLDAP: deprovisioning ends live sessions and
tokens, groups move people in and out of mapped rooms and the admin role, the guard
against mass deactivation, an unreachable directory changing nothing; and the
``directory sync``, ``directory test`` and ``doctor`` commands."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from securechat.accounts import Accounts, new_resume_token
from securechat.config import HashParams
from securechat.directory.login import DirectoryLogin
from securechat.directory.placement import place_rooms
from securechat.directory.settings import DirectoryConfig
from securechat.directory.sync import DirectorySync
from securechat.errors import DirectoryError, DirectoryUnavailable, UserError
from securechat.store.chat import ChatStore
from securechat.store.database import Database, open_database
from tests.conftest import TIMEOUT, CliRunner, ServerFactory
from tests.slapd import ADMIN_GROUP, DEV_GROUP, PASSWORDS, Slapd

#: How long a test waits for the server's periodic sync (every second here) to act.
SYNC_WAIT = 6 * TIMEOUT


def _sign_in(db: Database, config: DirectoryConfig, *names: str) -> None:
    """Make directory accounts, with their rooms, as their first logins would."""
    login = DirectoryLogin(config, db, max_password=1024)
    for name in names:
        _token, new = new_resume_token(ttl=3600, keep=5)
        signed = login.log_in(name, PASSWORDS[name], new)
        assert signed is not None
        assert signed.grants is not None
        place_rooms(ChatStore(db).perform, name, signed.grants)


@pytest.fixture
def chat_db(db_url: str) -> Iterator[Database]:
    """The database of ``db_url`` (USERS in it), open."""
    database = open_database(db_url)
    yield database
    database.dispose()


def _accounts(db: Database) -> Accounts:
    return Accounts(db, hash_params=HashParams.for_tests())


def _sync(db: Database, config: DirectoryConfig, *, force: bool = False) -> list[str]:
    return DirectorySync(config, db, ChatStore(db).perform).run(force=force).lines()


def test_disabling_a_user_in_the_directory_ends_their_live_session_within_one_sync_and_refuses_their_token(
    server_factory: ServerFactory, slapd: Slapd
) -> None:
    # The account watcher would take an hour: the sync itself ends the session.
    server = server_factory(directory=slapd.config(sync_interval=1.0), account_check_interval=3600)
    erin = server.peer()
    token = erin.login("erin", PASSWORDS["erin"])["token"]
    slapd.lock("erin")
    events = erin.expect_closed(timeout=SYNC_WAIT)
    assert events[-1]["type"] == "error"
    assert events[-1]["code"] == "auth_failed"
    again = server.peer()
    again.expect("hello")
    again.send(type="auth", user="erin", token=token)
    assert again.recv()["code"] == "auth_failed"
    database = open_database(server.db_url)
    try:
        assert _accounts(database).get("erin").is_disabled
    finally:
        database.dispose()


def test_removing_a_user_from_a_group_takes_them_out_of_the_mapped_private_room(
    server_factory: ServerFactory, slapd: Slapd, run_cli: CliRunner, tmp_path: Path
) -> None:
    server = server_factory(directory=slapd.config(sync_interval=None))
    frank = server.peer()
    assert "dev" in frank.login("frank", PASSWORDS["frank"])["rooms"]
    erin = server.peer()
    erin.login("erin", PASSWORDS["erin"])
    slapd.remove_member(DEV_GROUP, "frank")
    result = run_cli("directory", "sync", "--config", str(slapd.config_file(tmp_path)),
                     "--db", server.db_url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "room -dev: frank" in result.stdout.splitlines()
    frank.expect("left", room="dev")  # the running server applied the console's row
    erin.expect("member_left", room="dev", user="frank")
    audit = run_cli("room", "audit", "dev", "--db", server.db_url).stdout
    assert "directory  kick  #dev  frank" in audit


def test_sync_follows_disable_enable_and_the_admin_group_with_an_audit_row_each(
    chat_db: Database, slapd: Slapd, run_cli: CliRunner
) -> None:
    config = slapd.config()
    _sign_in(chat_db, config, "erin", "frank", "grace", "heidi")
    assert _accounts(chat_db).get("grace").is_admin
    slapd.lock("heidi")
    slapd.modify(f"dn: {ADMIN_GROUP}\nchangetype: modify\nadd: member\n"
                 "member: uid=erin,ou=people,dc=office,dc=lan\n")  # fmt: skip
    slapd.remove_member(ADMIN_GROUP, "grace")
    assert sorted(_sync(chat_db, config)) == [
        "disable heidi: disabled in the directory",
        "grant admin: erin",
        "revoke admin: grace",
    ]
    assert _accounts(chat_db).get("heidi").is_disabled
    assert _sync(chat_db, config) == []  # nothing left to do
    slapd.unlock("heidi")
    assert _sync(chat_db, config) == ["enable heidi: enabled in the directory again"]
    assert not _accounts(chat_db).get("heidi").is_disabled
    store = ChatStore(chat_db)
    actions = [(e.action, e.target) for e in store.audit_log(None, limit=50) if e.room is None]
    assert actions[-4:] == [
        ("user_disabled", "heidi"),
        ("admin_granted", "erin"),
        ("admin_revoked", "grace"),
        ("user_enabled", "heidi"),
    ]


def test_an_admins_own_disable_is_not_undone_by_the_sync(chat_db: Database, slapd: Slapd) -> None:
    config = slapd.config()
    _sign_in(chat_db, config, "erin")
    _accounts(chat_db).set_disabled("erin", True)
    assert _sync(chat_db, config) == []
    assert _accounts(chat_db).get("erin").is_disabled


def test_a_user_removed_from_the_directory_is_disabled(chat_db: Database, slapd: Slapd) -> None:
    config = slapd.config()
    _sign_in(chat_db, config, "erin", "frank", "grace", "heidi", "ivan")
    slapd.delete("ivan")
    assert _sync(chat_db, config) == [
        "disable ivan: not in the directory, or no longer matching its filter"
    ]


def test_the_guard_stops_a_sync_that_would_disable_most_users(
    chat_db: Database, db_url: str, slapd: Slapd, run_cli: CliRunner, tmp_path: Path
) -> None:
    config = slapd.config()
    _sign_in(chat_db, config, "erin", "frank", "grace", "heidi")
    narrowed = slapd.config_file(tmp_path, 'user_filter = "(uid=erin)"')  # a filter typo
    result = run_cli("directory", "sync", "--config", str(narrowed), "--db", db_url)
    assert result.returncode == 1
    assert "would disable 3 of 4 directory accounts, more than max_disable_share (10%" in (
        result.stderr
    )
    assert "nothing was changed" in result.stderr
    assert "would disable frank: not in the directory" in result.stdout
    assert not any(a.is_disabled for a in _accounts(chat_db).list())
    forced = run_cli("directory", "sync", "--force", "--config", str(narrowed), "--db", db_url)
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.endswith("directory sync: 3 changes\n")
    assert [a.name for a in _accounts(chat_db).list() if a.is_disabled] == [
        "frank",
        "grace",
        "heidi",
    ]


def test_an_unreachable_directory_disables_nobody(
    chat_db: Database, db_url: str, slapd: Slapd, run_cli: CliRunner, tmp_path: Path
) -> None:
    config = slapd.config()
    _sign_in(chat_db, config, "erin", "frank")
    config_file = slapd.config_file(tmp_path)
    slapd.stop()
    with pytest.raises(DirectoryUnavailable, match="no directory server answered"):
        _sync(chat_db, config, force=True)
    result = run_cli("directory", "sync", "--force", "--config", str(config_file), "--db", db_url)
    assert result.returncode == 1
    assert "no directory server answered" in result.stderr
    assert not any(a.is_disabled for a in _accounts(chat_db).list())


def test_a_missing_mapped_group_changes_nothing(chat_db: Database, slapd: Slapd) -> None:
    config = slapd.config()
    _sign_in(chat_db, config, "erin")
    slapd.lock("erin")
    broken = dataclasses.replace(
        config,
        groups=(
            *config.groups,
            dataclasses.replace(config.groups[0], dn="cn=gone,dc=office,dc=lan"),
        ),
    )
    with pytest.raises(DirectoryError, match="noSuchObject"):
        _sync(chat_db, broken)
    assert not _accounts(chat_db).get("erin").is_disabled


def test_directory_test_shows_what_the_server_sees_for_one_person(
    db_url: str, slapd: Slapd, run_cli: CliRunner, tmp_path: Path
) -> None:
    config_file = slapd.config_file(tmp_path)
    result = run_cli("directory", "test", "erin", "--config", str(config_file), "--db", db_url)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert lines["dn"].strip() == "uid=erin,ou=people,dc=office,dc=lan"
    assert lines["mail"].strip() == "erin@office.lan"
    assert lines["groups"].strip() == DEV_GROUP
    assert lines["rooms"].strip() == "#dev (member)"
    assert lines["role"].strip() == "user"
    assert lines["account"].strip() == "none yet (made at the first login)"
    assert "TLSv1" in lines["server"]
    missing = run_cli("directory", "test", "*)(uid=*", "--config", str(config_file), "--db", db_url)
    assert missing.returncode == 1
    assert "no enabled user" in missing.stderr


def test_doctor_checks_the_directory_connection_and_certificate(
    certs_dir: Path, db_url: str, slapd: Slapd, run_cli: CliRunner, tmp_path: Path
) -> None:
    config_file = slapd.config_file(tmp_path)
    result = run_cli("doctor", "--config", str(config_file), "--certs", str(certs_dir),
                     "--db", db_url, "--port", "1", "--no-web")  # fmt: skip
    lines = [line for line in result.stdout.splitlines() if " directory" in line]
    assert lines[0].startswith("OK    directory ")
    assert f"{slapd.ldaps_url}: TLSv1.3, certificate from" in lines[0]
    assert lines[1].startswith("OK    directory users ")
    other = tmp_path / "other"
    other.mkdir()
    wrong = (
        slapd.config_file(other).read_text().replace(str(slapd.ca_file), str(certs_dir / "ca.pem"))
    )
    (other / "securechat.toml").write_text(wrong)
    result = run_cli("doctor", "--config", str(other / "securechat.toml"), "--certs",
                     str(certs_dir), "--db", db_url, "--port", "1", "--no-web")  # fmt: skip
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL  directory")]
    assert failed
    assert "CERTIFICATE_VERIFY_FAILED" in failed[0]


def test_the_servers_own_sync_takes_a_removed_member_out_of_the_room_live(
    server_factory: ServerFactory, slapd: Slapd
) -> None:
    server = server_factory(directory=slapd.config(sync_interval=1.0))
    frank = server.peer()
    assert "dev" in frank.login("frank", PASSWORDS["frank"])["rooms"]
    slapd.remove_member(DEV_GROUP, "frank")
    frank.expect("left", room="dev", timeout=SYNC_WAIT)
    reply = frank.ask("s", type="send", room="dev", body="still in?")
    assert reply["code"] == "no_such_room"  # a private room he is no longer in


def test_a_directory_accounts_password_is_the_directorys(chat_db: Database, slapd: Slapd) -> None:
    _sign_in(chat_db, slapd.config(), "erin")
    with pytest.raises(UserError, match="signs in through the directory"):
        _accounts(chat_db).set_password("erin", "a new long local passphrase")
