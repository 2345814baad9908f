"""Login throttling after OWASP ASVS 2.2.1: failures slow down the next attempts.

Two keys are counted: (user, source address), so a guesser from one address cannot lock a
colleague out from another; and the source address alone, so one address cannot spray
guesses across many accounts. Each key allows a few free failures, then imposes a delay
that doubles with every further failure, up to a cap. While a key is delayed every login
on it is refused with ``rate_limited`` (the right password included), before any argon2
work is spent. A success clears the (user, address) key; a key with no failure for
``forget_after`` seconds is forgotten, so occasional typos never add up. The table is
bounded: past ``max_keys`` the least recently failed keys are dropped.

Pure bookkeeping: callers pass the time, and the lock makes it safe across connection
threads.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict

from securechat.config import ThrottlePolicy


@dataclasses.dataclass(slots=True)
class _Record:
    failures: int
    last_failure: float
    blocked_until: float


class LoginThrottle:
    def __init__(self, policy: ThrottlePolicy) -> None:
        self._policy = policy
        self._lock = threading.Lock()
        # Guarded by _lock: key -> record, least recently failed first.
        self._records: OrderedDict[tuple[str, str], _Record] = OrderedDict()

    def retry_after(self, user: str, address: str, now: float) -> float:
        """Seconds until a login for ``user`` from ``address`` may be tried; 0.0 if now."""
        with self._lock:
            wait = 0.0
            for key in ((user, address), ("", address)):
                record = self._fresh(key, now)
                if record is not None:
                    wait = max(wait, record.blocked_until - now)
            return wait

    def failed(self, user: str, address: str, now: float) -> None:
        policy = self._policy
        with self._lock:
            self._count((user, address), now, policy.free_failures)
            self._count(("", address), now, policy.free_failures_per_address)
            while len(self._records) > policy.max_keys:
                self._records.popitem(last=False)

    def succeeded(self, user: str, address: str) -> None:
        with self._lock:
            self._records.pop((user, address), None)

    def _fresh(self, key: tuple[str, str], now: float) -> _Record | None:
        record = self._records.get(key)
        if record is not None and now - record.last_failure > self._policy.forget_after:
            del self._records[key]
            return None
        return record

    def _count(self, key: tuple[str, str], now: float, free: int) -> None:
        record = self._fresh(key, now) or _Record(0, now, now)
        record.failures += 1
        record.last_failure = now
        excess = record.failures - free
        if excess > 0:
            delay = min(self._policy.first_delay * 2 ** (excess - 1), self._policy.max_delay)
            record.blocked_until = now + delay
        self._records[key] = record
        self._records.move_to_end(key)
