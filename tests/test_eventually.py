"""The tests' one wait: it returns what became true, or says what never did."""

from __future__ import annotations

import itertools

import pytest

from tests.eventually import eventually


def test_eventually_returns_the_first_truthy_value() -> None:
    calls = itertools.count()
    assert eventually(lambda: next(calls) >= 3 and "ready", "the count reached 3", interval=0) == (
        "ready"
    )


def test_eventually_says_what_never_became_true() -> None:
    with pytest.raises(AssertionError, match=r"never became true in 0\.1 s: the sky fell \(0\)"):
        eventually(lambda: None, lambda: "the sky fell (0)", timeout=0.1, interval=0.01)
