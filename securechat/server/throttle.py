"""Login throttling after OWASP ASVS 2.2.1: failed passwords slow down the next attempts.

Passwords only. A resume token is 256 random bits that no one guesses, so a token login
is checked at once and never delayed (:meth:`LoginThrottle.remember` only notes where it
came from); nobody's failures can keep a token holder out.

A password attempt is counted under up to three keys. "Address" is an address key
(``addresses.py``): one address may be a whole office behind a NAT or a TCP proxy.

- (user, address), always: guesses at one account from one address; a guesser there
  cannot lock its owner out from another address.
- The address alone, for names that address has never logged in as: one address cannot
  spray guesses over many accounts or made-up names.
- The account alone, for addresses that have never logged in as it: a campaign spread
  over many addresses cannot guess one account at argon2's rate all day.

An address that has logged in as an account (a *known* pair, remembered per account) is
counted under the first key only. So the colleagues who logged in through a NAT before are
not delayed by anyone else's failures from it, and a guesser there still gets only the
pair's allowance for each of their accounts. First-time addresses and unknown names bear
the address and account keys.

Each key allows a few free failures, then imposes a delay that doubles with every further
failure, up to a cap. While a key is delayed every password login on it is refused with
``rate_limited`` (the right password included), before any argon2 work is spent. A key
with no failure for its ``forget_after`` is forgotten, so occasional typos never add up.

An attempt is reserved before it waits for argon2 and counts as a failure until it is
settled: a key admits as many attempts at once as it has failures left before its delay,
and past that one at a time. So 32 connections sent in parallel get no more guesses than
32 sent one after another. A success gives the reservation back and clears the
(user, address) key; an attempt that was never checked (no argon2 slot in time) gives it
back too.

The tables are bounded: past ``max_keys`` the least recently used keys are dropped, and
each account remembers at most ``known_addresses_per_account`` addresses. Pure
bookkeeping: callers pass the time, and the lock makes it safe across connection threads.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import OrderedDict

from securechat.config import ThrottlePolicy
from securechat.errors import RateLimited

Key = tuple[str, str]  # (user, address); "" stands for "any" in either place


@dataclasses.dataclass(slots=True)
class _Record:
    failures: int = 0
    pending: int = 0  # reserved attempts not settled yet
    last_failure: float = 0.0
    blocked_until: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class Attempt:
    """A reserved login attempt: hand it back to exactly one of failed/succeeded/abandoned."""

    user: str
    source: str  # an address key
    keys: tuple[Key, ...]


@dataclasses.dataclass(slots=True)
class _Known:
    """The addresses an account logged in from, most recent last."""

    user_id: int
    addresses: OrderedDict[str, float]


class LoginThrottle:
    def __init__(self, policy: ThrottlePolicy) -> None:
        self._policy = policy
        self._lock = threading.Lock()
        # Guarded by _lock: key -> record, least recently used first; and per account
        # name, the addresses it logged in from, least recently used account first.
        self._records: OrderedDict[Key, _Record] = OrderedDict()
        self._known: OrderedDict[str, _Known] = OrderedDict()

    def reserve(self, user: str, source: str, now: float) -> Attempt:
        """Reserve a password attempt for ``user`` from address key ``source``, counted as a
        failure until settled.

        Raises:
            RateLimited: a key is delayed, or already has as many attempts in flight as it
                may still fail; ``retry_after`` says when to try again.
        """
        with self._lock:
            keys = self._keys(user, source, now)
            wait = max(self._wait(key, now) for key in keys)
            if wait > 0:
                seconds = math.ceil(wait)
                raise RateLimited(
                    f"too many failed logins; try again in {seconds} s", retry_after=seconds
                )
            for key in keys:
                record = self._records.setdefault(key, _Record())
                record.pending += 1
                self._records.move_to_end(key)
            self._trim()
            return Attempt(user, source, keys)

    def failed(self, attempt: Attempt, now: float) -> None:
        """The attempt was checked and refused: it stays counted, and may start a delay."""
        with self._lock:
            for key in attempt.keys:
                record = self._records.setdefault(key, _Record())
                record.pending = max(record.pending - 1, 0)
                record.failures += 1
                record.last_failure = now
                excess = record.failures - self._free(key)
                if excess > 0:
                    policy = self._policy
                    delay = min(policy.first_delay * 2 ** (excess - 1), policy.max_delay)
                    record.blocked_until = now + delay
                self._records.move_to_end(key)
            self._trim()

    def succeeded(self, attempt: Attempt, now: float, *, user_id: int) -> None:
        """The password was right: clear the (user, address) key and remember the address.

        ``user_id`` tells a new account of the same name from the one the addresses were
        remembered for.
        """
        with self._lock:
            pair = self._records.get((attempt.user, attempt.source))
            if pair is not None:
                pair.failures = 0
            self._settle(attempt)
            self._remember(attempt.user, attempt.source, now, user_id)

    def remember(self, user: str, source: str, now: float, *, user_id: int) -> None:
        """A resume token logged in as ``user`` from ``source``: a known address from now on.

        Its (user, address) failures stay: someone else behind the same address may have
        made them.
        """
        with self._lock:
            self._remember(user, source, now, user_id)

    def abandoned(self, attempt: Attempt) -> None:
        """The attempt was never checked (no argon2 slot came free): not a failure."""
        with self._lock:
            self._settle(attempt)

    def forget_user(self, user: str, user_id: int) -> None:
        """Forget the addresses account ``user_id``, named ``user``, logged in from (deleted)."""
        with self._lock:
            known = self._known.get(user)
            if known is not None and known.user_id == user_id:
                del self._known[user]

    def retry_after(self, user: str, source: str, now: float) -> float:
        """Seconds until a password for ``user`` from ``source`` may be tried; 0.0 if now."""
        with self._lock:
            return max(self._wait(key, now) for key in self._keys(user, source, now))

    # --- helpers (call with _lock held) ---------------------------------------------

    def _keys(self, user: str, source: str, now: float) -> tuple[Key, ...]:
        if self._is_known(user, source, now):
            return ((user, source),)
        return ((user, source), ("", source), (user, ""))

    def _remember(self, user: str, source: str, now: float, user_id: int) -> None:
        known = self._known.get(user)
        if known is None or known.user_id != user_id:  # a new user of that name
            known = self._known[user] = _Known(user_id, OrderedDict())
        known.addresses[source] = now
        known.addresses.move_to_end(source)
        while len(known.addresses) > self._policy.known_addresses_per_account:
            known.addresses.popitem(last=False)
        self._known.move_to_end(user)
        while len(self._known) > self._policy.max_keys:
            self._known.popitem(last=False)

    def _is_known(self, user: str, source: str, now: float) -> bool:
        known = self._known.get(user)
        last = known.addresses.get(source) if known is not None else None
        return last is not None and now - last <= self._policy.known_address_ttl

    def _free(self, key: Key) -> int:
        policy = self._policy
        if not key[0]:
            return policy.free_failures_per_address
        return policy.free_failures if key[1] else policy.free_failures_per_account

    def _wait(self, key: Key, now: float) -> float:
        """How long ``key`` refuses a new attempt; 0.0 if it admits one now."""
        record = self._records.get(key)
        if record is None:
            return 0.0
        forget_after = self._policy.forget_after if key[1] else self._policy.account_forget_after
        if record.pending == 0 and now - record.last_failure > forget_after:
            del self._records[key]
            return 0.0
        if record.blocked_until > now:
            return record.blocked_until - now
        if record.pending and record.failures + record.pending > self._free(key):
            # Were every attempt in flight to fail, this one would already be delayed.
            return self._policy.first_delay
        return 0.0

    def _settle(self, attempt: Attempt) -> None:
        for key in attempt.keys:
            record = self._records.get(key)
            if record is not None:
                record.pending = max(record.pending - 1, 0)
                if record.pending == 0 and record.failures == 0:
                    del self._records[key]

    def _trim(self) -> None:
        while len(self._records) > self._policy.max_keys:
            self._records.popitem(last=False)
