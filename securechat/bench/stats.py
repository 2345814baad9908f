"""Latency samples and their percentiles, computed in the parent from every worker's samples."""

from __future__ import annotations

import random
from array import array
from collections.abc import Iterable


class Samples:
    """Integer samples (nanoseconds): every one up to ``cap``, then a uniform reservoir.

    A reservoir (Vitter's algorithm R) keeps memory bounded in huge runs while every
    sample stays equally likely to be kept, so percentiles remain unbiased.
    """

    __slots__ = ("_rng", "cap", "seen", "top", "values")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.seen = 0
        self.top = 0  # the largest sample, even if the reservoir dropped it
        self.values = array("q")
        self._rng = random.Random(cap)

    def add(self, value: int) -> None:
        self.seen += 1
        if value > self.top:
            self.top = value
        if len(self.values) < self.cap:
            self.values.append(value)
        else:
            slot = self._rng.randrange(self.seen)
            if slot < self.cap:
                self.values[slot] = value


def merge(parts: Iterable[Samples]) -> tuple[list[int], int]:
    """All samples as one sorted list, weighting reservoirs by how many each one saw.

    Returns the sorted values and the total number of samples seen.
    """
    parts = [p for p in parts if p.seen]
    seen = sum(p.seen for p in parts)
    if all(len(p.values) == p.seen for p in parts):
        values = [v for p in parts for v in p.values]
    else:
        keep = min(len(p.values) * seen // p.seen for p in parts)  # per-part budget
        rng = random.Random(seen)
        values = []
        for p in parts:
            share = min(len(p.values), max(keep * p.seen // seen, 1))
            values.extend(rng.sample(list(p.values), share))
    values.sort()
    return values, seen


def percentile(ordered: list[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not ordered:
        return 0
    rank = max(int(-(-fraction * len(ordered) // 1)), 1)  # ceil(fraction * n), at least 1
    return ordered[min(rank, len(ordered)) - 1]


def summarize_ns(parts: Iterable[Samples]) -> dict[str, float | int]:
    """count, p50, p99 and max in milliseconds (max over every sample, not only those kept)."""
    plist = list(parts)
    ordered, seen = merge(plist)
    return {
        "count": seen,
        "p50_ms": round(percentile(ordered, 0.50) / 1e6, 3),
        "p99_ms": round(percentile(ordered, 0.99) / 1e6, 3),
        "max_ms": round(max((p.top for p in plist), default=0) / 1e6, 3),
    }


def summarize_values(values: Iterable[int]) -> dict[str, float | int]:
    """The same summary for a plain list of nanosecond values."""
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50_ms": round(percentile(ordered, 0.50) / 1e6, 3),
        "p99_ms": round(percentile(ordered, 0.99) / 1e6, 3),
        "max_ms": round((ordered[-1] if ordered else 0) / 1e6, 3),
    }
