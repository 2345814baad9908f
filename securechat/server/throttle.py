"""Login throttling after OWASP ASVS 2.2.1: failures slow down the next attempts.

Three keys are counted. (user, address), so a guesser from one address cannot lock a
colleague out from another. The address alone, so one address cannot spray guesses
across many accounts. And the account alone, counting only addresses that have never
logged in as it, so a campaign spread over many addresses cannot guess one account at
argon2's rate all day, while the addresses its owner logs in from (the office NAT
included) are spared that delay. An "address" is an IPv4 address or an IPv6 /64, the
block one IPv6 host is usually given.

Each key allows a few free failures, then imposes a delay that doubles with every further
failure, up to a cap. While a key is delayed every login on it is refused with
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
import ipaddress
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
    address: str  # the throttle's form: an IPv4 address or an IPv6 network
    keys: tuple[Key, ...]


@dataclasses.dataclass(slots=True)
class _Known:
    """The addresses an account logged in from, most recent last."""

    user_id: int
    addresses: OrderedDict[str, float]


def address_key(address: str, ipv6_prefix: int) -> str:
    """The form throttling counts ``address`` under: IPv4 as is, IPv6 as its network."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])  # drop an IPv6 zone
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # a dual-stack listener's IPv4 client
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, ipv6_prefix), strict=False))
    return str(ip)


class LoginThrottle:
    def __init__(self, policy: ThrottlePolicy) -> None:
        self._policy = policy
        self._lock = threading.Lock()
        # Guarded by _lock: key -> record, least recently used first; and per account
        # name, the addresses it logged in from, least recently used account first.
        self._records: OrderedDict[Key, _Record] = OrderedDict()
        self._known: OrderedDict[str, _Known] = OrderedDict()

    def reserve(self, user: str, address: str, now: float) -> Attempt:
        """Reserve a login attempt for ``user`` from ``address``, counted as a failure until settled.

        Raises:
            RateLimited: a key is delayed, or already has as many attempts in flight as it
                may still fail; ``retry_after`` says when to try again.
        """
        source = address_key(address, self._policy.ipv6_prefix)
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
        """The login worked: clear the (user, address) key and remember the address.

        ``user_id`` tells a new account of the same name from the one the addresses were
        remembered for.
        """
        with self._lock:
            pair = self._records.get((attempt.user, attempt.address))
            if pair is not None:
                pair.failures = 0
            self._settle(attempt)
            known = self._known.get(attempt.user)
            if known is None or known.user_id != user_id:  # a new user of that name
                known = self._known[attempt.user] = _Known(user_id, OrderedDict())
            known.addresses[attempt.address] = now
            known.addresses.move_to_end(attempt.address)
            while len(known.addresses) > self._policy.known_addresses_per_account:
                known.addresses.popitem(last=False)
            self._known.move_to_end(attempt.user)
            while len(self._known) > self._policy.max_keys:
                self._known.popitem(last=False)

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

    def retry_after(self, user: str, address: str, now: float) -> float:
        """Seconds until a login for ``user`` from ``address`` may be tried; 0.0 if now."""
        source = address_key(address, self._policy.ipv6_prefix)
        with self._lock:
            return max(self._wait(key, now) for key in self._keys(user, source, now))

    # --- helpers (call with _lock held) ---------------------------------------------

    def _keys(self, user: str, source: str, now: float) -> tuple[Key, ...]:
        keys: tuple[Key, ...] = ((user, source), ("", source))
        return keys if self._is_known(user, source, now) else (*keys, (user, ""))

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
