"""Sizes people write and read: binary and decimal units, clear refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securechat.attachments.sizes import format_size, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1000", 1000),
        ("0", 0),
        ("512KiB", 512 * 1024),
        ("25MiB", 25 * 1024 * 1024),
        ("1GiB", 1024**3),
        ("2TiB", 2 * 1024**4),
        ("10MB", 10_000_000),
        ("10kB", 10_000),
        ("3GB", 3_000_000_000),
        ("1000B", 1000),
        ("25 MiB", 25 * 1024 * 1024),
        (" 25mib ", 25 * 1024 * 1024),
        ("1.5GiB", 3 * 512 * 1024**2),
        ("0.5B", 0),
    ],
)
def test_parse_size_reads_binary_and_decimal_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text", ["", "MiB", "-1", "-5MiB", "25M", "10K", "1e6", "1,000", "12 parsecs", "0x10", "1.MiB"]
)
def test_parse_size_refuses_anything_else_and_says_what_a_size_looks_like(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a size: .* \(expected .*25MiB"):
        parse_size(text)


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (512 * 1024, "512.0 KiB"),
        (25 * 1024 * 1024, "25.0 MiB"),
        (1024**3, "1.0 GiB"),
        (3 * 512 * 1024**2, "1.5 GiB"),
        (5 * 1024**5, "5120.0 TiB"),
    ],
)
def test_format_size_shows_binary_units(n: int, shown: str) -> None:
    assert format_size(n) == shown


@given(st.integers(min_value=0, max_value=2**50))
def test_a_formatted_size_reads_back_within_its_rounding(n: int) -> None:
    shown = format_size(n).replace(" ", "")
    assert abs(parse_size(shown) - n) <= n // 20 + 1  # one decimal: within 5%
