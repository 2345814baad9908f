"""Resume tokens, login throttling, and live sessions ended by account changes."""

from __future__ import annotations

import contextlib
import datetime as dt
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import update

from securechat.accounts import Accounts
from securechat.config import HashParams, ThrottlePolicy
from securechat.errors import AuthenticationError, RateLimited
from securechat.hashing import Hasher
from securechat.server.addresses import address_key
from securechat.server.throttle import LoginThrottle
from securechat.store.database import Database, open_database
from securechat.store.models import User, utcnow
from tests.conftest import PASSWORD, TIMEOUT, LimitOverrides, RunningServer, ServerFactory
from tests.eventually import eventually
from tests.peer import Peer
from tests.sql import rows, value

pytestmark = pytest.mark.postgresql

FAST_CHECKS: LimitOverrides = {"account_check_interval": 0.2}


def _auth(running: RunningServer, *, source: str | None = None, **fields: str) -> dict[str, object]:
    """One login attempt; the welcome, or the error the server closed with."""
    peer = running.peer(source)
    peer.expect("hello")
    peer.send(type="auth", **fields)
    event = peer.recv()
    if event["type"] != "welcome":
        assert peer.expect_closed() == []
    return event


AccountsOf = Callable[[RunningServer], Accounts]


@pytest.fixture
def accounts_of() -> Iterator[AccountsOf]:
    """Accounts on a running server's database, as an admin's command line has them; their
    connections are closed when the test ends (PostgreSQL's would linger otherwise)."""
    databases: list[Database] = []

    def accounts(running: RunningServer) -> Accounts:
        databases.append(open_database(running.db_url))
        return Accounts(databases[-1], hash_params=HashParams.for_tests())

    yield accounts
    for database in databases:
        database.dispose()


def _token_count(running: RunningServer, user: str) -> int:
    query = "SELECT count(*) FROM resume_tokens JOIN users ON users.id = user_id WHERE name = :user"
    count: int = value(running.db_url, query, user=user)
    return count


class _HeldHasher:
    """The server's hasher, except that verify() waits for the test: a check held open."""

    def __init__(self, inner: Hasher) -> None:
        self._inner = inner
        self.checking = threading.Event()
        self.go_on = threading.Event()

    def hash(self, password: str) -> str:
        return self._inner.hash(password)

    def verify(self, hash: str, password: str) -> bool:
        self.checking.set()
        assert self.go_on.wait(TIMEOUT)
        return self._inner.verify(hash, password)

    def check_needs_rehash(self, hash: str) -> bool:
        return self._inner.check_needs_rehash(hash)


def _hold_password_checks(running: RunningServer) -> _HeldHasher:
    """Make the running server's password checks wait for ``go_on`` (a test-only hook)."""
    accounts = running.server.parts.accounts
    held = _HeldHasher(accounts._hasher)
    accounts._hasher = held
    return held


# --- resume tokens -------------------------------------------------------------------


def test_token_from_welcome_logs_in_without_password(running_server: RunningServer) -> None:
    token = _auth(running_server, user="alice", password=PASSWORD)["token"]
    assert isinstance(token, str)
    again = _auth(running_server, user="alice", token=token)
    assert (again["type"], again["user"], again["token"]) == ("welcome", "alice", token)


def test_password_and_token_logins_record_the_login_time(
    running_server: RunningServer, accounts_of: AccountsOf
) -> None:
    accounts = accounts_of(running_server)
    assert accounts.get("alice").last_login_at is None
    token = str(_auth(running_server, user="alice", password=PASSWORD)["token"])
    first = _wait_for_login_time(accounts, "alice", after=None)
    time.sleep(0.01)
    assert _auth(running_server, user="alice", token=token)["type"] == "welcome"
    assert _wait_for_login_time(accounts, "alice", after=first) > first


def _wait_for_login_time(accounts: Accounts, user: str, *, after: object) -> dt.datetime:
    """The login time, once the server's group commit has written one newer than ``after``."""

    def changed() -> dt.datetime | None:
        when = accounts.get(user).last_login_at
        return when if when is not None and when != after else None

    return eventually(changed, f"last_login_at of {user} changed from {after}")


@pytest.mark.parametrize("who", ["bob", "nobody"])
def test_token_is_refused_for_another_user(running_server: RunningServer, who: str) -> None:
    token = _auth(running_server, user="alice", password=PASSWORD)["token"]
    assert _auth(running_server, user=who, token=str(token))["code"] == "auth_failed"


def test_unknown_token_is_auth_failed(running_server: RunningServer) -> None:
    assert _auth(running_server, user="alice", token="x" * 43)["code"] == "auth_failed"


def test_only_the_token_hash_is_stored(running_server: RunningServer) -> None:
    token = str(_auth(running_server, user="alice", password=PASSWORD)["token"])
    stored = [h for (h,) in rows(running_server.db_url, "SELECT token_hash FROM resume_tokens")]
    assert len(stored) == 1
    assert token not in stored[0]
    assert len(stored[0]) == 64


def test_expired_token_is_refused(server_factory: ServerFactory) -> None:
    running = server_factory(token_ttl=0.5)
    token = str(_auth(running, user="alice", password=PASSWORD)["token"])
    time.sleep(1.0)
    assert _auth(running, user="alice", token=token)["code"] == "auth_failed"


def test_token_older_than_the_last_credential_change_is_refused(
    running_server: RunningServer,
) -> None:
    token = str(_auth(running_server, user="alice", password=PASSWORD)["token"])
    # A change whose revocation missed this token (say, a login that raced passwd before
    # the login transaction checked for that): the token predates it, so it is dead.
    database = open_database(running_server.db_url)
    with database.session() as session, session.begin():
        session.execute(
            update(User).where(User.name == "alice").values(credentials_changed_at=utcnow())
        )
    database.dispose()
    assert _token_count(running_server, "alice") == 1
    assert _auth(running_server, user="alice", token=token)["code"] == "auth_failed"


@pytest.mark.parametrize("how", ["password", "token"])
def test_bye_revokes_the_token_of_that_session_only(
    running_server: RunningServer, how: str
) -> None:
    token = str(_auth(running_server, user="alice", password=PASSWORD)["token"])
    other = str(_auth(running_server, user="alice", password=PASSWORD)["token"])
    peer = running_server.peer()
    peer.expect("hello")
    if how == "password":
        peer.send(type="auth", user="alice", password=PASSWORD)
        token = str(peer.expect("welcome")["token"])
    else:
        peer.send(type="auth", user="alice", token=token)
        assert peer.expect("welcome")["token"] == token
    peer.send(type="bye", ref="b")
    assert peer.expect("bye") == {"type": "bye", "reason": "bye", "ref": "b"}
    assert peer.expect_closed() == []
    assert _auth(running_server, user="alice", token=token)["code"] == "auth_failed"
    assert _auth(running_server, user="alice", token=other)["type"] == "welcome"


def test_a_login_past_the_token_cap_revokes_the_oldest_tokens(
    server_factory: ServerFactory,
) -> None:
    running = server_factory(max_tokens_per_user=3)
    tokens = [str(_auth(running, user="alice", password=PASSWORD)["token"]) for _ in range(5)]
    bobs = str(_auth(running, user="bob", password=PASSWORD)["token"])
    assert _token_count(running, "alice") == 3
    results = [_auth(running, user="alice", token=token)["type"] for token in tokens]
    assert results == ["error", "error", "welcome", "welcome", "welcome"]
    assert _auth(running, user="bob", token=bobs)["type"] == "welcome"  # others keep theirs


# --- account changes end live sessions -------------------------------------------------


@pytest.mark.parametrize("change", ["passwd", "disable", "deluser"])
def test_account_change_ends_live_sessions_and_revokes_tokens(
    server_factory: ServerFactory, change: str, accounts_of: AccountsOf
) -> None:
    running = server_factory(**FAST_CHECKS)
    bob = running.peer()
    token = str(bob.login("bob", PASSWORD)["token"])
    alice = running.login("alice")
    accounts = accounts_of(running)
    if change == "passwd":
        accounts.set_password("bob", "a brand new password")
    elif change == "disable":
        accounts.set_disabled("bob", True)
    else:
        accounts.delete("bob")
    events = bob.expect_closed(timeout=TIMEOUT)  # ended by the account watcher's next look
    assert events[-1]["code"] == "auth_failed"
    assert _auth(running, user="bob", token=token)["code"] == "auth_failed"
    alice.send(type="ping", ref="still")  # other users are untouched
    assert alice.expect("pong")["ref"] == "still"


def test_unrelated_account_changes_leave_sessions_alone(
    server_factory: ServerFactory, accounts_of: AccountsOf
) -> None:
    running = server_factory(**FAST_CHECKS)
    bob = running.login("bob")
    accounts_of(running).set_password("carol", "carol's new password")
    time.sleep(0.8)
    bob.send(type="ping", ref="p")
    assert bob.expect("pong")["ref"] == "p"


@pytest.mark.parametrize("change", ["passwd", "disable and enable"])
def test_login_racing_a_credential_change_is_refused_and_leaves_no_token(
    server_factory: ServerFactory, change: str, accounts_of: AccountsOf
) -> None:
    running = server_factory(**FAST_CHECKS)
    held = _hold_password_checks(running)
    bob = running.peer()
    bob.expect("hello")
    bob.send(type="auth", user="bob", password=PASSWORD)
    assert held.checking.wait(TIMEOUT)  # the server is now checking bob's current password
    accounts = accounts_of(running)
    if change == "passwd":
        accounts.set_password("bob", "a brand new password")
    else:
        accounts.set_disabled("bob", True)
        accounts.set_disabled("bob", False)
    held.go_on.set()
    refusal = bob.recv()
    assert (refusal["type"], refusal.get("code")) == ("error", "auth_failed")
    assert bob.expect_closed() == []
    assert _token_count(running, "bob") == 0


def _join(peer: Peer, room: str) -> None:
    peer.send(type="join", room=room, ref=f"join {room}")
    peer.expect("joined", room=room)


def _members(peer: Peer, room: str) -> int:
    peer.send(type="rooms", ref="r")
    rooms = peer.expect("rooms", ref="r")["rooms"]
    members: int = next(info["members"] for info in rooms if info["name"] == room)
    return members


def test_a_re_added_user_does_not_inherit_the_deleted_users_rooms_or_messages(
    server_factory: ServerFactory, accounts_of: AccountsOf
) -> None:
    running = server_factory()  # no wait for the account watcher: the login itself checks
    alice, old_bob = running.login("alice"), running.login("bob")
    _join(alice, "secret")
    _join(old_bob, "secret")
    old_bob.close()
    accounts = accounts_of(running)
    accounts.delete("bob")
    accounts.add("bob", "the new bob's password")
    new_bob = running.login("bob", "the new bob's password")
    assert new_bob.seen == []
    new_bob.send(type="rooms", ref="r")
    assert {"name": "secret", "members": 1, "joined": False} in new_bob.expect("rooms")["rooms"]
    alice.send(type="send", room="secret", body="for the old bob only", ref="s1")
    alice.send(type="send", room="general", body="hello everyone", ref="s2")
    assert new_bob.expect("message")["body"] == "hello everyone"
    new_bob.send(type="send", room="secret", body="let me in", ref="s3")
    assert new_bob.expect("error", ref="s3")["code"] == "not_member"
    assert [e for e in new_bob.seen if e["type"] == "message"] == []


def test_a_deleted_users_name_leaves_the_rooms_it_was_in(
    server_factory: ServerFactory, accounts_of: AccountsOf
) -> None:
    running = server_factory(**FAST_CHECKS)
    alice, carol = running.login("alice"), running.login("carol")
    _join(alice, "secret")
    _join(carol, "secret")
    carol.close()
    assert _members(alice, "secret") == 2
    accounts_of(running).delete("carol")
    assert alice.expect("member_left", room="secret", timeout=TIMEOUT) == {
        "type": "member_left", "room": "secret", "user": "carol"
    }  # fmt: skip
    assert _members(alice, "secret") == 1


# --- throttling ----------------------------------------------------------------------


def test_repeated_failures_are_throttled_even_for_the_right_password(
    running_server: RunningServer,
) -> None:
    for _ in range(5):
        assert _auth(running_server, user="alice", password="wrong guess")["code"] == "auth_failed"
    assert _auth(running_server, user="alice", password="wrong guess")["code"] == "auth_failed"
    limited = _auth(running_server, user="alice", password=PASSWORD)
    assert limited["code"] == "rate_limited"
    assert isinstance(limited["retry_after"], int | float)
    assert 0 < limited["retry_after"] <= 2
    # The same user from another address is not locked out ...
    assert _auth(running_server, source="127.0.0.2", user="alice", password=PASSWORD)["type"] == (
        "welcome"
    )
    # ... and after the delay the right password works again and clears the record.
    time.sleep(float(limited["retry_after"]) + 0.1)
    assert _auth(running_server, user="alice", password=PASSWORD)["type"] == "welcome"
    assert _auth(running_server, user="alice", password="one typo")["code"] == "auth_failed"
    assert _auth(running_server, user="alice", password=PASSWORD)["type"] == "welcome"


def test_failures_with_made_up_names_behind_one_address_lock_out_no_known_user(
    server_factory: ServerFactory,
) -> None:
    """The review's office NAT (or HAProxy in TCP mode): everyone shares one address."""
    nat = "127.0.0.5"
    # 25 failures, the 25th starting a delay long enough to outlast the test however slow.
    running = server_factory(throttle=ThrottlePolicy(free_failures_per_address=24, first_delay=300))
    assert _auth(running, source=nat, user="alice", password=PASSWORD)["type"] == "welcome"
    token = _auth(running, source=nat, user="bob", password=PASSWORD)["token"]
    assert isinstance(token, str)
    for n in range(25):
        guess = _auth(running, source=nat, user=f"nobody{n}", password="summer2026!")
        assert guess["code"] == "auth_failed"
    assert _auth(running, source=nat, user="alice", password=PASSWORD)["type"] == "welcome"
    assert _auth(running, source=nat, user="bob", token=token)["type"] == "welcome"
    # Guessing from the address stays delayed: a 26th made-up name, and a name (or a
    # right password) the address has never logged in as.
    for user, password in (("nobody25", "summer2026!"), ("carol", PASSWORD)):
        limited = _auth(running, source=nat, user=user, password=password)
        assert limited["code"] == "rate_limited"
        assert 0 < float(limited["retry_after"]) <= 300  # type: ignore[arg-type]
    assert _auth(running, source="127.0.0.6", user="carol", password=PASSWORD)["type"] == (
        "welcome"
    )


def test_token_logins_are_never_delayed_by_failures(server_factory: ServerFactory) -> None:
    running = server_factory(throttle=ThrottlePolicy(free_failures_per_address=3, first_delay=300))
    token = _auth(running, user="bob", password=PASSWORD)["token"]
    assert isinstance(token, str)
    for _ in range(8):  # a 256-bit token is not guessed: wrong ones are refused, not delayed
        assert _auth(running, user="bob", token="guess" * 9)["code"] == "auth_failed"
    for _ in range(6):  # bob's password, guessed from his own address: that pair is delayed
        assert _auth(running, user="bob", password="wrong guess")["code"] == "auth_failed"
    assert _auth(running, user="bob", password=PASSWORD)["code"] == "rate_limited"
    for n in range(4):  # and made-up names delay the address
        assert _auth(running, user=f"nobody{n}", password="wrong guess")["code"] == "auth_failed"
    assert _auth(running, user="carol", password=PASSWORD)["code"] == "rate_limited"
    # A token is checked all the same, from the same address and from a new one.
    assert _auth(running, user="bob", token=token)["type"] == "welcome"
    assert _auth(running, source="127.0.0.7", user="bob", token=token)["type"] == "welcome"


def test_one_address_spraying_many_users_is_throttled(
    server_factory: ServerFactory,
) -> None:
    running = server_factory(throttle=ThrottlePolicy(free_failures_per_address=4))
    for user in ("alice", "bob", "carol", "dave"):
        assert _auth(running, user=user, password="summer2026!")["code"] == "auth_failed"
    assert _auth(running, user="nobody", password="summer2026!")["code"] == "auth_failed"
    assert _auth(running, user="dave", password=PASSWORD)["code"] == "rate_limited"
    assert _auth(running, source="127.0.0.3", user="dave", password=PASSWORD)["type"] == "welcome"


def test_parallel_guesses_from_one_address_get_no_more_checks_than_one_after_another(
    server_factory: ServerFactory,
) -> None:
    running = server_factory()
    allowance = ThrottlePolicy().free_failures + 1  # the checks a key gets before its delay
    peers = [running.peer("127.0.0.5") for _ in range(32)]
    for peer in peers:
        peer.expect("hello")
    answers: dict[int, str] = {}
    # Hold the one argon2 slot, so that every attempt the throttle lets through waits for
    # it at the same time: nothing can be settled before all 32 have arrived.
    with running.server.parts.hash_pool.slot(TIMEOUT):
        for peer in peers:
            peer.send(type="auth", user="alice", password="wrong guess")
        deadline = time.monotonic() + 3
        while len(answers) < len(peers) - allowance and time.monotonic() < deadline:
            for index, peer in enumerate(peers):
                if index not in answers:
                    with contextlib.suppress(TimeoutError):
                        answers[index] = peer.recv(timeout=0.01)["code"]
    for index, peer in enumerate(peers):
        if index not in answers:
            answers[index] = peer.recv()["code"]
    assert Counter(answers.values()) == {
        "auth_failed": allowance, "rate_limited": len(peers) - allowance
    }  # fmt: skip


def test_an_account_guessed_from_many_addresses_slows_down_but_spares_known_addresses(
    server_factory: ServerFactory,
) -> None:
    running = server_factory(throttle=ThrottlePolicy(free_failures_per_account=3))
    assert _auth(running, source="127.0.0.2", user="alice", password=PASSWORD)["type"] == "welcome"
    for n in range(4):  # one guess from each of four addresses alice never logged in from
        guess = _auth(running, source=f"127.0.0.{10 + n}", user="alice", password="summer2026!")
        assert guess["code"] == "auth_failed"
    limited = _auth(running, source="127.0.0.20", user="alice", password=PASSWORD)
    assert (limited["type"], limited.get("code")) == ("error", "rate_limited")
    assert _auth(running, source="127.0.0.2", user="alice", password=PASSWORD)["type"] == "welcome"
    assert _auth(running, source="127.0.0.20", user="bob", password=PASSWORD)["type"] == "welcome"


def _fail(throttle: LoginThrottle, user: str, address: str, now: float) -> None:
    throttle.failed(throttle.reserve(user, address, now), now)


def _succeed(throttle: LoginThrottle, user: str, address: str, now: float) -> None:
    throttle.succeeded(throttle.reserve(user, address, now), now, user_id=1)


def test_throttle_counts_an_ipv6_source_by_its_64_and_a_mapped_ipv4_by_itself() -> None:
    """The throttle (and every per-address cap) counts a peer by its address key."""
    keys = {
        "10.0.0.1": "10.0.0.1",
        "::ffff:10.0.0.1": "10.0.0.1",  # a dual-stack listener's IPv4 client
        "2001:db8:1:2::1": "2001:db8:1:2::/64",
        "2001:db8:1:2:ffff:ffff:ffff:9": "2001:db8:1:2::/64",
        "2001:db8:1:3::1": "2001:db8:1:3::/64",
        "fe80::1%eth0": "fe80::/64",
        "": "",  # not an IP address: its own key
    }
    assert {host: address_key(host, 64) for host in keys} == keys


def test_throttle_counts_a_known_pair_under_its_own_key_only() -> None:
    throttle = LoginThrottle(ThrottlePolicy(free_failures=2, free_failures_per_address=2))
    _succeed(throttle, "alice", "10.0.0.5", 100.0)
    for n in range(3):  # made-up names: the address is delayed for names it never logged in as
        _fail(throttle, f"nobody{n}", "10.0.0.5", 100.0)
    assert throttle.retry_after("bob", "10.0.0.5", 100.0) == 1.0
    assert throttle.retry_after("alice", "10.0.0.5", 100.0) == 0.0  # but not for alice
    for _ in range(3):  # alice's own pair is still bounded
        _fail(throttle, "alice", "10.0.0.5", 100.0)
    assert throttle.retry_after("alice", "10.0.0.5", 100.0) == 1.0
    throttle.remember("bob", "10.0.0.5", 200.0, user_id=2)  # a token login makes bob known
    _fail(throttle, "nobody9", "10.0.0.5", 200.0)  # the address's 4th: alice's did not count
    assert throttle.retry_after("carol", "10.0.0.5", 200.0) == 2.0
    assert throttle.retry_after("bob", "10.0.0.5", 200.0) == 0.0


def test_throttle_reserves_attempts_until_they_are_settled() -> None:
    throttle = LoginThrottle(ThrottlePolicy(free_failures=2))
    in_flight = [throttle.reserve("alice", "10.0.0.5", 100.0) for _ in range(3)]
    with pytest.raises(RateLimited):
        throttle.reserve("alice", "10.0.0.5", 100.0)
    throttle.abandoned(in_flight.pop())  # e.g. no argon2 slot came free: no guess was made
    in_flight.append(throttle.reserve("alice", "10.0.0.5", 100.0))
    throttle.succeeded(in_flight.pop(), 100.0, user_id=1)
    throttle.failed(in_flight.pop(), 100.0)
    throttle.failed(in_flight.pop(), 100.0)
    assert throttle.retry_after("alice", "10.0.0.5", 100.0) == 0.0  # two failures are free
    _fail(throttle, "alice", "10.0.0.5", 100.0)
    assert throttle.retry_after("alice", "10.0.0.5", 100.0) == 1.0


def test_throttle_known_address_outlives_neither_its_ttl_nor_the_account() -> None:
    policy = ThrottlePolicy(free_failures_per_account=0, known_address_ttl=3600)
    throttle = LoginThrottle(policy)
    _succeed(throttle, "alice", "10.0.0.5", 0.0)
    _fail(throttle, "alice", "10.0.9.9", 10.0)  # the account is now delayed ...
    assert throttle.retry_after("alice", "10.0.9.8", 10.0) == 1.0
    assert throttle.retry_after("alice", "10.0.0.5", 10.0) == 0.0  # ... except where it logs in
    _fail(throttle, "alice", "10.0.9.9", 4000.0)
    assert throttle.retry_after("alice", "10.0.0.5", 4000.0) == 2.0  # known an hour, then not
    _succeed(throttle, "bob", "10.0.0.6", 0.0)
    _fail(throttle, "bob", "10.0.9.9", 10.0)
    throttle.forget_user("bob", 2)  # not that bob's: kept
    assert throttle.retry_after("bob", "10.0.0.6", 10.0) == 0.0
    throttle.forget_user("bob", 1)  # deluser: a new bob inherits no known address
    assert throttle.retry_after("bob", "10.0.0.6", 10.0) == 1.0


def test_throttle_remembers_few_known_addresses_per_account() -> None:
    policy = ThrottlePolicy(free_failures_per_account=0, known_addresses_per_account=2)
    throttle = LoginThrottle(policy)
    for n in range(3):
        _succeed(throttle, "alice", f"10.0.0.{n}", float(n))
    _fail(throttle, "alice", "10.0.9.9", 10.0)
    assert [throttle.retry_after("alice", f"10.0.0.{n}", 10.0) for n in range(3)] == [1.0, 0, 0]


def test_throttle_forgets_spread_out_typos() -> None:
    throttle = LoginThrottle(ThrottlePolicy(free_failures=2, forget_after=60))
    for minute in range(10):  # one typo every two minutes, all day long
        now = minute * 120.0
        assert throttle.retry_after("alice", "10.0.0.5", now) == 0.0
        _fail(throttle, "alice", "10.0.0.5", now)


def test_throttle_delays_double_up_to_the_cap() -> None:
    policy = ThrottlePolicy(free_failures=2, first_delay=1.0, max_delay=8.0)
    throttle = LoginThrottle(policy)
    now, delays = 100.0, []
    for _ in range(8):  # each guess as soon as the last delay allows
        _fail(throttle, "alice", "10.0.0.5", now)
        delays.append(throttle.retry_after("alice", "10.0.0.5", now))
        now += delays[-1]
    assert delays == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    with pytest.raises(RateLimited):
        throttle.reserve("alice", "10.0.0.5", now - 1)
    assert throttle.retry_after("alice", "10.0.0.6", now) == 0.0
    _succeed(throttle, "alice", "10.0.0.5", now)
    assert throttle.retry_after("alice", "10.0.0.5", now) == 0.0


def test_throttle_table_is_bounded() -> None:
    throttle = LoginThrottle(ThrottlePolicy(max_keys=100))
    for n in range(10_000):
        _fail(throttle, f"user{n}", f"10.0.{n // 256}.{n % 256}", float(n))
    assert len(throttle._records) <= 100


# --- what a failed login costs and reveals ----------------------------------------------


@pytest.fixture
def real_cost_accounts(db_url: str) -> Iterator[Accounts]:
    """The test database's accounts, hashing with the real argon2 parameters."""
    database = open_database(db_url)
    yield Accounts(database, hash_params=HashParams())
    database.dispose()


def test_absurdly_long_password_is_refused_without_hashing(real_cost_accounts: Accounts) -> None:
    accounts = real_cost_accounts
    # CPU time, not the wall clock: a loaded machine may pause this thread, never add work.
    started = time.process_time()
    with pytest.raises(AuthenticationError):
        accounts.authenticate("alice", "x" * 60_000)
    assert time.process_time() - started < 0.02  # one argon2id verify takes ~50+ ms here


def test_failed_logins_take_about_the_same_time(real_cost_accounts: Accounts) -> None:
    accounts = real_cost_accounts
    accounts.set_disabled("carol", True)
    accounts.set_password("dave", PASSWORD)  # re-hash with the real parameters
    accounts.set_password("carol", PASSWORD)

    def median_seconds(user: str, password: str) -> float:
        times = []
        for _ in range(5):  # CPU time: the same work, whatever else the machine does
            started = time.process_time()
            with pytest.raises(AuthenticationError) as caught:
                accounts.authenticate(user, password)
            times.append(time.process_time() - started)
            assert caught.value.message == "invalid user name or password"
        return statistics.median(times)

    accounts.authenticate("dave", PASSWORD)  # warm-up, and the dummy hash gets made
    unknown = median_seconds("nobody", "some password")
    wrong = median_seconds("dave", "some password")
    disabled = median_seconds("carol", PASSWORD)
    assert 0.6 < unknown / wrong < 1.6, (unknown, wrong)
    assert 0.6 < disabled / wrong < 1.6, (disabled, wrong)
