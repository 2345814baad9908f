"""Directory login against a real OpenLDAP (tests/slapd.py): terminal and browser, every way
a login must fail, StartTLS with the wrong CA, renames, local accounts, a directory that
went away."""

from __future__ import annotations

import dataclasses
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from securechat.accounts import Accounts
from securechat.certs import CertificateAuthority
from securechat.config import HashParams
from securechat.directory.client import DirectoryClient, stable_id_text
from securechat.errors import DirectoryUnavailable
from securechat.store.database import Database, open_database
from tests.conftest import PASSWORD, RunningServer, ServerFactory, StartTerminal, skip_or_fail
from tests.peer import EventPeer, Peer
from tests.serve_process import ServeProcess
from tests.slapd import PASSWORDS, Slapd, missing
from tests.web_peer import WebPeer


def _refusal(peer: EventPeer, user: str, password: str) -> str:
    """The error code a login attempt gets."""
    peer.expect("hello")
    peer.send(type="auth", user=user, password=password)
    reply = peer.recv()
    assert reply["type"] == "error", reply
    code: str = reply["code"]
    return code


AccountsOf = Callable[[RunningServer], Accounts]


@pytest.fixture
def accounts_of() -> Iterator[AccountsOf]:
    """The accounts API on a running server's database; the databases closed after."""
    opened: list[Database] = []

    def open_accounts(server: RunningServer) -> Accounts:
        opened.append(open_database(server.db_url))
        return Accounts(opened[-1], hash_params=HashParams.for_tests())

    yield open_accounts
    for database in opened:
        database.dispose()


def test_directory_user_logs_in_over_ldaps_and_gets_an_account_rooms_and_role(
    server_factory: ServerFactory, slapd: Slapd, accounts_of: AccountsOf
) -> None:
    server = server_factory(directory=slapd.config())
    assert server.peer().login("erin", PASSWORDS["erin"])["user"] == "erin"
    account = accounts_of(server).get("erin")
    assert account.directory_id is not None
    assert not account.is_admin
    assert server.peer().login("grace", PASSWORDS["grace"])["user"] == "grace"
    assert accounts_of(server).get("grace").is_admin  # chat-admins maps to admin


def test_directory_login_puts_a_group_member_in_the_mapped_private_room(
    server_factory: ServerFactory, slapd: Slapd
) -> None:
    server = server_factory(directory=slapd.config())
    peer = server.peer()
    welcome = peer.login("erin", PASSWORDS["erin"])
    assert "dev" in welcome["rooms"]
    heidi = server.peer()
    assert "dev" not in heidi.login("heidi", PASSWORDS["heidi"])["rooms"]


def test_directory_login_works_over_starttls(server_factory: ServerFactory, slapd: Slapd) -> None:
    server = server_factory(directory=slapd.config(start_tls=True))
    assert server.peer().login("frank", PASSWORDS["frank"])["user"] == "frank"


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("erin", "not erin's password"),
        ("erin", ""),
        ("*)(uid=*", "anything at all"),
        ("*", "anything at all"),
        ("nobody", "anything at all"),
    ],
    ids=["wrong-password", "empty-password", "filter-injection", "wildcard", "unknown-user"],
)
def test_directory_login_refusals_are_auth_failed(
    server_factory: ServerFactory, slapd: Slapd, user: str, password: str
) -> None:
    server = server_factory(directory=slapd.config())
    assert _refusal(server.peer(), user, password) == "auth_failed"


def test_directory_user_disabled_in_the_directory_cannot_log_in(
    server_factory: ServerFactory, slapd: Slapd
) -> None:
    server = server_factory(directory=slapd.config())
    slapd.lock("frank")
    assert _refusal(server.peer(), "frank", PASSWORDS["frank"]) == "auth_failed"


def test_starttls_to_a_directory_with_a_certificate_from_another_ca_is_refused(
    server_factory: ServerFactory, slapd: Slapd, tmp_path: Path
) -> None:
    other = tmp_path / "other-ca.pem"
    other.write_bytes(CertificateAuthority.create("another CA").cert_pem())
    for start_tls in (True, False):
        config = dataclasses.replace(slapd.config(start_tls=start_tls), ca_file=other)
        with pytest.raises(DirectoryUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            DirectoryClient(config).probe()
    server = server_factory(
        directory=dataclasses.replace(slapd.config(start_tls=True), ca_file=other)
    )
    assert _refusal(server.peer(), "erin", PASSWORDS["erin"]) == "server_error"


def test_a_rename_in_the_directory_keeps_the_account_and_its_history(
    server_factory: ServerFactory, slapd: Slapd, accounts_of: AccountsOf
) -> None:
    server = server_factory(directory=slapd.config())
    erin = server.peer()
    erin.login("erin", PASSWORDS["erin"])
    erin.send(type="send", room="dev", body="before the rename", ref="r1")
    erin.expect("ack", ref="r1")
    before = accounts_of(server).get("erin")
    erin.close()
    slapd.rename("erin", "erin.smith")
    renamed = server.peer()
    welcome = renamed.login("erin.smith", PASSWORDS["erin"])
    assert "dev" in welcome["rooms"]
    after = accounts_of(server).get("erin.smith")
    assert (after.id, after.directory_id) == (before.id, before.directory_id)
    assert not accounts_of(server).exists("erin")
    page = renamed.ask("h", type="history", room="dev")
    assert [m["body"] for m in page["messages"]] == ["before the rename"]


def test_local_accounts_still_log_in_beside_the_directory(
    server_factory: ServerFactory, slapd: Slapd
) -> None:
    server = server_factory(directory=slapd.config())
    assert server.peer().login("alice", PASSWORD)["user"] == "alice"  # local_wins by default
    assert _refusal(server.peer(), "erin", PASSWORD) == "auth_failed"


def test_a_name_both_local_and_in_the_directory_follows_name_conflict(
    server_factory: ServerFactory, slapd: Slapd, accounts_of: AccountsOf
) -> None:
    _local_accounts(server_factory, accounts_of).add("heidi", PASSWORD)
    local = server_factory(directory=slapd.config())
    assert local.peer().login("heidi", PASSWORD)["user"] == "heidi"
    assert _refusal(local.peer(), "heidi", PASSWORDS["heidi"]) == "auth_failed"
    local.server.shutdown()
    wins = server_factory(directory=slapd.config(name_conflict="directory_wins"))
    assert wins.peer().login("heidi", PASSWORDS["heidi"])["user"] == "heidi"
    assert accounts_of(wins).get("heidi").directory_id is not None
    assert _refusal(wins.peer(), "heidi", PASSWORD) == "auth_failed"  # the local one is gone
    accounts_of(wins).add("root", PASSWORD, admin=True)  # not in the directory: stays local
    assert wins.peer().login("root", PASSWORD)["user"] == "root"
    slapd.stop()  # break glass: the local admin gets in without the directory
    assert wins.peer().login("root", PASSWORD)["user"] == "root"


def _local_accounts(server_factory: ServerFactory, accounts_of: AccountsOf) -> Accounts:
    server = server_factory()
    accounts = accounts_of(server)
    server.server.shutdown()
    return accounts


def test_the_directory_going_away_leaves_everyone_logged_in_and_working(
    server_factory: ServerFactory, slapd: Slapd
) -> None:
    server = server_factory(directory=slapd.config())
    erin = server.peer()
    token = erin.login("erin", PASSWORDS["erin"])["token"]
    frank = server.peer()
    frank.login("frank", PASSWORDS["frank"])
    slapd.stop()
    erin.send(type="send", room="dev", body="still here", ref="r1")
    erin.expect("ack", ref="r1")
    frank.expect("message", body="still here")
    again = server.peer()
    again.expect("hello")
    again.send(type="auth", user="erin", token=token)
    assert again.expect("welcome")["user"] == "erin"  # the resume token still works
    assert _refusal(server.peer(), "heidi", PASSWORDS["heidi"]) == "server_error"
    assert server.peer().login("alice", PASSWORD)["user"] == "alice"  # local accounts too


def test_directory_user_logs_in_from_the_browser(
    server_factory: ServerFactory, slapd: Slapd
) -> None:
    server = server_factory(web_port=0, directory=slapd.config())
    assert server.web_address is not None
    with WebPeer(server.web_address, server.ca_file) as peer:
        assert "dev" in peer.login("erin", PASSWORDS["erin"])["rooms"]


def test_directory_user_logs_in_from_the_terminal(
    server_factory: ServerFactory, slapd: Slapd, terminal: StartTerminal
) -> None:
    server = server_factory(directory=slapd.config())
    watcher = server.peer()
    watcher.login("frank", PASSWORDS["frank"])  # in general, the default room
    term = terminal(server, "ivan")  # ivan's directory password is PASSWORD
    term.line("hello from the directory")
    assert watcher.expect("message", body="hello from the directory")["from"] == "ivan"


def test_serve_with_a_directory_table_logs_it_and_lets_a_directory_user_in(
    certs_dir: Path, db_url: str, slapd: Slapd, serve: list[ServeProcess], tmp_path: Path
) -> None:
    """The whole way: the file's [directory] through the CLI into a real ``serve``."""
    config_file = slapd.config_file(tmp_path)
    process = ServeProcess(certs_dir, db_url, "--config", str(config_file))
    serve.append(process)
    process.start()
    process.wait_for(rf"directory login \(openldap\) through {slapd.ldaps_url}; sync every off")
    peer = Peer(process.address, certs_dir / "ca.pem")
    try:
        assert "dev" in peer.login("erin", PASSWORDS["erin"])["rooms"]
    finally:
        peer.close()


def test_the_servers_are_tried_in_turn(server_factory: ServerFactory, slapd: Slapd) -> None:
    with socket.socket() as unused:  # a port nobody listens on: the first server is down
        unused.bind(("127.0.0.1", 0))
        down = f"ldaps://127.0.0.1:{unused.getsockname()[1]}"
    config = dataclasses.replace(slapd.config(), urls=(down, slapd.ldaps_url))
    assert DirectoryClient(config).probe().url == slapd.ldaps_url
    server = server_factory(directory=config)
    assert server.peer().login("erin", PASSWORDS["erin"])["user"] == "erin"


def test_an_active_directory_object_guid_reads_as_the_guid_admins_see() -> None:
    """objectGUID comes as 16 bytes, the GUID's first three fields little-endian."""
    guid = uuid.UUID("0f9c2a5e-6d1b-4b8e-9a55-1c3f0e2d7b44")
    assert stable_id_text(guid.bytes_le) == "0f9c2a5e-6d1b-4b8e-9a55-1c3f0e2d7b44"
    assert stable_id_text(b"AC497032-869A-1041-87E1-7D8505D624DF") == (
        "ac497032-869a-1041-87e1-7d8505d624df"  # an entryUUID, as text
    )


def test_openldap_without_ppolicy_still_lets_people_in(
    server_factory: ServerFactory, tmp_path: Path, directory_ca: CertificateAuthority
) -> None:
    """The openldap preset's disabled rule names ppolicy's attribute; where the overlay is
    not loaded the rule matches nobody, and must not hide everyone either."""
    reason = missing()
    if reason is not None:
        skip_or_fail(reason)
    plain = Slapd(tmp_path / "plain", directory_ca, ppolicy=False)
    try:
        plain.start()
        server = server_factory(directory=plain.config())
        assert server.peer().login("erin", PASSWORDS["erin"])["user"] == "erin"
    finally:
        plain.stop()
