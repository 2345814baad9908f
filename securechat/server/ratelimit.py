"""Token buckets: ``rate`` requests a second on average, bursts of up to ``burst``; one
per connection (:class:`TokenBucket`), or one per user shared by all their sessions
(:class:`SharedBuckets`)."""

from __future__ import annotations

import threading


class TokenBucket:
    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, *, rate: float, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = now

    def take(self, now: float) -> float:
        """Spend one token: 0.0 if there was one, else the seconds until there will be."""
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate

    def is_full(self, now: float) -> bool:
        """Whether the bucket would hold ``burst`` tokens at ``now``: as good as new."""
        return self._tokens + (now - self._stamp) * self._rate >= self._burst


class SharedBuckets:
    """One :class:`TokenBucket` per key (a user id), for any thread. A bucket that has
    filled up again is as good as a new one, so it is dropped: the table holds only the
    keys that spent tokens within the last ``burst / rate`` seconds."""

    def __init__(self, *, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = burst
        self._lock = threading.Lock()  # guards _buckets
        self._buckets: dict[int, TokenBucket] = {}

    def take(self, key: int, now: float) -> float:
        """Spend one of ``key``'s tokens: 0.0, or the seconds until one comes."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= 1024:
                    self._sweep(now)
                bucket = self._buckets[key] = TokenBucket(
                    rate=self._rate, burst=self._burst, now=now
                )
            return bucket.take(now)

    def _sweep(self, now: float) -> None:
        for key in [k for k, bucket in self._buckets.items() if bucket.is_full(now)]:
            del self._buckets[key]
