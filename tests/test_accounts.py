"""Accounts against a real SQLite file, with the cheap argon2 profile unless timing matters."""

from __future__ import annotations

import datetime as dt
import statistics
import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import select

from securechat.accounts import AUTH_FAILED, Account, Accounts
from securechat.config import HashParams, PasswordPolicy
from securechat.errors import (
    AuthenticationError,
    InvalidUserName,
    UnknownUserError,
    UserExistsError,
    WeakPassword,
)
from securechat.protocol.names import NAME_RULE
from securechat.store.database import Database
from securechat.store.models import User

pytestmark = pytest.mark.postgresql

PASSWORD = "correct horse battery"


@pytest.fixture
def accounts(empty_db: Database) -> Accounts:
    return Accounts(empty_db, hash_params=HashParams.for_tests())


def _stored_hash(database: Database, name: str) -> str:
    with database.session() as session:
        return session.scalars(select(User.password_hash).where(User.name == name)).one()


def _refusal(accounts: Accounts, name: str, password: str) -> str:
    with pytest.raises(AuthenticationError) as info:
        accounts.authenticate(name, password)
    return info.value.message


def test_add_stores_a_canonical_name_and_an_argon2id_hash(
    empty_db: Database, accounts: Accounts
) -> None:
    account = accounts.add("  Alice ", PASSWORD, admin=True)
    assert account.name == "alice"
    assert account.is_admin
    assert not account.is_disabled
    assert account.last_login_at is None
    assert account.created_at.tzinfo is dt.UTC
    stored = _stored_hash(empty_db, "alice")
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert PASSWORD not in stored


def test_add_refuses_a_duplicate_name_in_any_case(accounts: Accounts) -> None:
    accounts.add("alice", PASSWORD)
    with pytest.raises(UserExistsError, match=r"^user alice already exists$"):
        accounts.add("ALICE", "another password")


def test_add_refuses_an_invalid_name_and_states_the_rule(accounts: Accounts) -> None:
    with pytest.raises(InvalidUserName) as info:
        accounts.add("al ice", PASSWORD)
    assert "'al ice'" in info.value.message
    assert NAME_RULE in info.value.message


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("x" * 7, "password is too short: use at least 8 characters"),
        ("x" * 1025, "password is too long: at most 1024 characters"),
    ],
)
def test_add_applies_the_password_length_limits(
    accounts: Accounts, password: str, message: str
) -> None:
    with pytest.raises(WeakPassword, match=f"^{message}$"):
        accounts.add("bobsmith1", password)
    assert not accounts.exists("bobsmith1")


def _weakness(accounts: Accounts, name: str, password: str) -> str:
    """Why adding ``name`` with ``password`` is refused; the refusal never quotes it."""
    with pytest.raises(WeakPassword) as info:
        accounts.add(name, password)
    assert not accounts.exists(name)
    message = info.value.message
    assert message.startswith("password is too easy to guess: ")
    assert message.endswith(" A longer passphrase of several unrelated words would pass.")
    return message


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("password", "This is a top-10 common password"),
        ("12345678", "This is a top-10 common password"),
        ("password1", "This is a very common password"),
        ("aaaaaaaa", 'Repeats like "aaa" are easy to guess'),
        ("abcdefgh", 'Sequences like "abc" or "6543" are easy to guess'),
        ("qwertyuiop", "This is a top-100 common password"),
    ],
)
def test_add_refuses_common_repetitive_and_sequential_passwords(
    accounts: Accounts, password: str, why: str
) -> None:
    message = _weakness(accounts, "alice", password)
    assert why in message
    assert "Add another word or two." in message  # zxcvbn's own suggestion


@pytest.mark.parametrize("password", ["BobSmith1", "bobsmith1!", "Bobsmith1#2024"])
def test_add_refuses_a_password_built_on_the_user_name(accounts: Accounts, password: str) -> None:
    message = _weakness(accounts, "bobsmith1", password)
    assert "it is based on the user name" in message
    assert password not in message


def test_a_password_is_weak_for_its_own_user_only(accounts: Accounts) -> None:
    assert "the user name" in _weakness(accounts, "kowalczyk", "Kowalczyk#2024")
    accounts.add("zofia", "Kowalczyk#2024")
    assert accounts.authenticate("zofia", "Kowalczyk#2024").name == "zofia"


def test_add_refuses_a_password_built_on_the_product_or_server_name(empty_db: Database) -> None:
    here = Accounts(
        empty_db,
        hash_params=HashParams.for_tests(),
        policy=PasswordPolicy(context_words=("securechat", "quillfeather")),
    )
    assert "it is based on 'securechat'" in _weakness(here, "bob", "securechat#2024")
    assert "it is based on 'quillfeather'" in _weakness(here, "bob", "Quillfeather#2024")
    elsewhere = Accounts(empty_db, hash_params=HashParams.for_tests())
    elsewhere.add("bob", "Quillfeather#2024")  # a rare word, unless it names this server


def test_add_states_the_score_when_zxcvbn_gives_no_warning(accounts: Accounts) -> None:
    message = _weakness(accounts, "bob", "bluefox77")
    assert (
        "it would be among the first hundred million guesses (strength 2 of 4, 3 needed)" in message
    )


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery",
        "Quillfeather#2024",
        "naïve café au lait",
        "пароль для офиса 7",
        "é⁂ж9 q€Ω#ø",
    ],
)
def test_add_accepts_strong_passwords_of_any_composition(accounts: Accounts, password: str) -> None:
    accounts.add("alice", password)
    assert accounts.authenticate("alice", password).name == "alice"


@pytest.mark.parametrize("length", [256, 1024])
def test_add_accepts_long_passwords_up_to_the_limit(accounts: Accounts, length: int) -> None:
    words = ["lantern", "orbit", "juniper", "velvet", "quarry", "mosaic", "tundra", "falcon"]
    password = " ".join(words[(n * 5) % len(words)] + str(n) for n in range(length))[:length]
    accounts.add("alice", password)
    assert accounts.authenticate("alice", password).name == "alice"


def test_authenticate_accepts_the_right_password_in_any_name_case(accounts: Accounts) -> None:
    added = accounts.add("alice", PASSWORD)
    assert accounts.authenticate("ALICE", PASSWORD).id == added.id


def test_authenticate_treats_unicode_forms_of_a_password_alike(accounts: Accounts) -> None:
    composed, decomposed = "caf\u00e9 au lait", "cafe\u0301 au lait"
    accounts.add("alice", composed)
    assert accounts.authenticate("alice", decomposed).name == "alice"


def test_authenticate_failures_are_indistinguishable(accounts: Accounts) -> None:
    accounts.add("alice", PASSWORD)
    accounts.add("bob", PASSWORD)
    accounts.set_disabled("bob", True)
    messages = {
        _refusal(accounts, "alice", "wrong password"),
        _refusal(accounts, "nobody", PASSWORD),
        _refusal(accounts, "not a valid name!", PASSWORD),
        _refusal(accounts, "bob", PASSWORD),
        _refusal(accounts, "alice", "x" * 1025),
    }
    assert messages == {AUTH_FAILED}


def test_authenticate_refuses_a_corrupt_stored_hash(empty_db: Database, accounts: Accounts) -> None:
    accounts.add("alice", PASSWORD)
    with empty_db.session() as session, session.begin():
        session.scalars(select(User)).one().password_hash = "not an argon2 hash"
    assert _refusal(accounts, "alice", PASSWORD) == AUTH_FAILED


def test_authenticate_records_the_login_time(accounts: Accounts) -> None:
    accounts.add("alice", PASSWORD)
    before = dt.datetime.now(dt.UTC)
    returned = accounts.authenticate("alice", PASSWORD)
    stored = accounts.get("alice").last_login_at
    assert stored is not None
    assert before <= stored <= dt.datetime.now(dt.UTC)
    assert returned.last_login_at == stored


def test_failed_login_does_not_record_a_login_time(accounts: Accounts) -> None:
    accounts.add("alice", PASSWORD)
    _refusal(accounts, "alice", "wrong password")
    assert accounts.get("alice").last_login_at is None


def test_authenticate_rehashes_when_the_parameters_changed(
    empty_db: Database, accounts: Accounts
) -> None:
    accounts.add("alice", PASSWORD)
    old_hash = _stored_hash(empty_db, "alice")
    stronger = Accounts(
        empty_db, hash_params=HashParams(time_cost=2, memory_cost_kib=2048, parallelism=1)
    )
    stronger.authenticate("alice", PASSWORD)
    new_hash = _stored_hash(empty_db, "alice")
    assert new_hash != old_hash
    assert new_hash.startswith("$argon2id$v=19$m=2048,t=2,p=1$")
    assert stronger.authenticate("alice", PASSWORD).name == "alice"
    assert _stored_hash(empty_db, "alice") == new_hash  # no needless rehash once current


def test_authenticate_keeps_the_hash_when_the_parameters_are_unchanged(
    empty_db: Database, accounts: Accounts
) -> None:
    accounts.add("alice", PASSWORD)
    old_hash = _stored_hash(empty_db, "alice")
    accounts.authenticate("alice", PASSWORD)
    assert _stored_hash(empty_db, "alice") == old_hash


def _median_seconds(attempt: Callable[[], object]) -> float:
    times = []
    for _ in range(5):  # CPU time: the same work, whatever else the machine does
        start = time.process_time()
        with pytest.raises(AuthenticationError):
            attempt()
        times.append(time.process_time() - start)
    return statistics.median(times)


def test_unknown_user_costs_a_hash_and_overlong_password_does_not(empty_db: Database) -> None:
    # Parameters heavy enough (~tens of ms) that a verification dwarfs everything else.
    accounts = Accounts(
        empty_db, hash_params=HashParams(time_cost=3, memory_cost_kib=32768, parallelism=1)
    )
    accounts.add("alice", PASSWORD)
    wrong = _median_seconds(lambda: accounts.authenticate("alice", "wrong password"))
    unknown = _median_seconds(lambda: accounts.authenticate("nobody", PASSWORD))
    overlong = _median_seconds(lambda: accounts.authenticate("alice", "x" * 1025))
    assert unknown > wrong / 2
    assert overlong < wrong / 10


def test_set_password_replaces_the_old_one(accounts: Accounts) -> None:
    accounts.add("alice", PASSWORD)
    accounts.set_password("Alice", "a brand new secret")
    assert _refusal(accounts, "alice", PASSWORD) == AUTH_FAILED
    assert accounts.authenticate("alice", "a brand new secret").name == "alice"


def test_set_password_applies_the_policy_and_needs_a_known_user(accounts: Accounts) -> None:
    accounts.add("alice", PASSWORD)
    with pytest.raises(WeakPassword):
        accounts.set_password("alice", "short")
    with pytest.raises(WeakPassword, match="too easy to guess"):
        accounts.set_password("alice", "password1")
    with pytest.raises(UnknownUserError, match=r"^no user named bob$"):
        accounts.set_password("bob", "a brand new secret")
    assert accounts.authenticate("alice", PASSWORD).name == "alice"


def test_delete_removes_the_user(accounts: Accounts) -> None:
    accounts.add("alice", PASSWORD)
    accounts.delete("alice")
    assert not accounts.exists("alice")
    with pytest.raises(UnknownUserError):
        accounts.get("alice")
    assert _refusal(accounts, "alice", PASSWORD) == AUTH_FAILED
    with pytest.raises(UnknownUserError):
        accounts.delete("alice")


def test_user_ids_are_never_reused(accounts: Accounts) -> None:
    alice = accounts.add("alice", PASSWORD)
    first = accounts.add("bob", PASSWORD)  # the highest id, which SQLite would hand out again
    accounts.delete("bob")
    again = accounts.add("bob", PASSWORD)
    assert again.id > first.id
    assert accounts.ids() == {"alice": alice.id, "bob": again.id}


def test_disable_blocks_logins_and_enable_restores_them(accounts: Accounts) -> None:
    accounts.add("alice", PASSWORD)
    accounts.set_disabled("alice", True)
    assert accounts.get("alice").is_disabled
    assert _refusal(accounts, "alice", PASSWORD) == AUTH_FAILED
    accounts.set_disabled("alice", False)
    assert not accounts.get("alice").is_disabled
    assert accounts.authenticate("alice", PASSWORD).name == "alice"
    with pytest.raises(UnknownUserError):
        accounts.set_disabled("nobody", True)


def test_list_returns_frozen_accounts_ordered_by_name(accounts: Accounts) -> None:
    for name in ("carol", "alice", "bob"):
        accounts.add(name, PASSWORD, admin=name == "bob")
    listed = accounts.list()
    assert [a.name for a in listed] == ["alice", "bob", "carol"]
    assert [a.is_admin for a in listed] == [False, True, False]
    assert all(type(a) is Account for a in listed)
    with pytest.raises(AttributeError):
        setattr(listed[0], "name", "mallory")  # noqa: B010 (mypy refuses the plain assignment too)


def test_concurrent_logins_from_many_threads_all_succeed(accounts: Accounts) -> None:
    names = [f"user{i}" for i in range(8)]
    for name in names:
        accounts.add(name, PASSWORD)
    results: dict[str, Account] = {}
    errors: list[BaseException] = []

    def login(name: str) -> None:
        try:
            results[name] = accounts.authenticate(name, PASSWORD)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=login, args=(n,)) for n in names for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert sorted(results) == names
    assert all(accounts.get(n).last_login_at is not None for n in names)
