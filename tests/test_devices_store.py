"""Devices that stay signed in (#26), against a real database: grants trade once, only
hashes are stored, and passwd, disable, deluser, sign out and idle time end a device."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from securechat.accounts import Accounts
from securechat.config import HashParams
from securechat.devices import DeviceLogin, Devices, secret_hash
from securechat.errors import AuthenticationError
from securechat.store.database import Database
from securechat.store.directory import DirectoryStore
from securechat.store.models import Device, User

pytestmark = pytest.mark.postgresql

PASSWORD = "correct horse battery"
IDLE = 30 * 24 * 3600.0


@pytest.fixture
def accounts(empty_db: Database) -> Accounts:
    accounts = Accounts(empty_db, hash_params=HashParams.for_tests())
    accounts.add("alice", PASSWORD)
    accounts.add("bob", PASSWORD)
    return accounts


@pytest.fixture
def devices(empty_db: Database) -> Devices:
    return Devices(empty_db, grant_ttl=60.0, idle_timeout=IDLE, keep=3)


def _signed_in(accounts: Accounts, devices: Devices, name: str = "alice") -> str:
    grant = devices.grant(accounts.get(name), name="Firefox on Linux")
    credential = devices.redeem(grant)
    assert credential is not None
    return credential


def _authenticate(devices: Devices, name: str, credential: str) -> DeviceLogin:
    login, _ = devices.authenticate(name, credential, token_ttl=3600.0, max_tokens=8)
    return login


def test_device_login_issues_a_resume_token(accounts: Accounts, devices: Devices) -> None:
    credential = _signed_in(accounts, devices)
    _, token = devices.authenticate("alice", credential, token_ttl=3600.0, max_tokens=8)
    assert accounts.authenticate_token("alice", token).name == "alice"


def test_device_grant_trades_once_for_a_credential_that_signs_in(
    accounts: Accounts, devices: Devices
) -> None:
    grant = devices.grant(accounts.get("alice"), name="Chrome on Windows")
    credential = devices.redeem(grant)
    assert credential is not None
    assert devices.redeem(grant) is None  # single use
    login = _authenticate(devices, "alice", credential)
    assert login.account.name == "alice"
    assert [d.name for d in devices.list(accounts.get("alice"))] == ["Chrome on Windows"]


def test_device_store_keeps_only_hashes(
    accounts: Accounts, devices: Devices, empty_db: Database
) -> None:
    credential = _signed_in(accounts, devices)
    with empty_db.session() as session:
        row = session.scalars(select(Device)).one()
        assert row.credential_hash == secret_hash(credential)
        assert credential not in (row.credential_hash, row.grant_hash)


def test_device_refuses_forged_expired_grants_and_other_users(
    accounts: Accounts, devices: Devices, empty_db: Database
) -> None:
    assert devices.redeem("forged" * 8) is None
    grant = devices.grant(accounts.get("alice"), name="x")
    with empty_db.session() as session, session.begin():
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        session.execute(update(Device).values(grant_expires_at=past))
    assert devices.redeem(grant) is None
    credential = _signed_in(accounts, devices)
    with pytest.raises(AuthenticationError):
        _authenticate(devices, "bob", credential)
    with pytest.raises(AuthenticationError):
        _authenticate(devices, "alice", "not" + credential)


@pytest.mark.parametrize("action", ["passwd", "disable", "deluser", "everywhere"])
def test_device_is_ended_by_credential_changes(
    accounts: Accounts, devices: Devices, action: str
) -> None:
    credential = _signed_in(accounts, devices)
    bobs = _signed_in(accounts, devices, "bob")
    if action == "passwd":
        accounts.set_password("alice", "another horse battery staple")
    elif action == "disable":
        accounts.set_disabled("alice", True)
        accounts.set_disabled("alice", False)  # enabling again does not bring devices back
    elif action == "deluser":
        accounts.delete("alice")
    else:
        devices.sign_out_everywhere(accounts.get("alice"))
    with pytest.raises(AuthenticationError):
        _authenticate(devices, "alice", credential)
    assert _authenticate(devices, "bob", bobs).account.name == "bob"


def test_device_sign_out_everywhere_revokes_resume_tokens(
    accounts: Accounts, devices: Devices
) -> None:
    _, token = accounts.log_in("alice", PASSWORD, token_ttl=3600.0, max_tokens=8)
    devices.sign_out_everywhere(accounts.get("alice"))
    with pytest.raises(AuthenticationError):
        accounts.authenticate_token("alice", token)


def test_device_signs_out_one_device_of_its_own_user_only(
    accounts: Accounts, devices: Devices
) -> None:
    first, second = _signed_in(accounts, devices), _signed_in(accounts, devices)
    alice = accounts.get("alice")
    device = devices.check(first).device
    assert not devices.sign_out(accounts.get("bob"), device.id)
    assert devices.sign_out(alice, device.id)
    with pytest.raises(AuthenticationError):
        devices.check(first)
    assert devices.check(second).account.name == "alice"


def test_device_idle_past_the_limit_is_refused_and_use_restarts_the_clock(
    accounts: Accounts, devices: Devices, empty_db: Database
) -> None:
    credential = _signed_in(accounts, devices)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=IDLE - 60)
    with empty_db.session() as session, session.begin():
        session.execute(update(Device).values(last_used_at=old))
    _authenticate(devices, "alice", credential)  # still within: used now
    assert devices.check(credential).device.last_used_at > old
    with empty_db.session() as session, session.begin():
        session.execute(update(Device).values(last_used_at=old - dt.timedelta(seconds=120)))
    with pytest.raises(AuthenticationError):
        devices.check(credential)


def test_device_count_per_user_keeps_the_most_recently_used(
    accounts: Accounts, devices: Devices
) -> None:
    credentials = [_signed_in(accounts, devices) for _ in range(4)]  # keep=3
    with pytest.raises(AuthenticationError):
        devices.check(credentials[0])
    assert len(devices.list(accounts.get("alice"))) == 3


def test_device_is_ended_when_the_directory_sync_disables_its_account(
    accounts: Accounts, devices: Devices, empty_db: Database
) -> None:
    credential = _signed_in(accounts, devices)
    with empty_db.session() as session, session.begin():  # alice becomes a directory account
        session.execute(update(User).where(User.name == "alice").values(directory_id="guid-a"))
    directory, alice = DirectoryStore(empty_db), accounts.get("alice").id
    directory.set_disabled([alice], True, "left the company")
    directory.set_disabled([alice], False, "came back")  # the devices do not come back
    with pytest.raises(AuthenticationError):
        devices.check(credential)
