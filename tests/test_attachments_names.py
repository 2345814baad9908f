"""File names from other people: never a path, never a control character, never empty."""

from __future__ import annotations

import os
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securechat.attachments.names import (
    FALLBACK_NAME,
    MAX_NAME_BYTES,
    clean_name,
    safe_local_name,
    split_extension,
)

# Names built to hit the rules: separators, dots, controls, bidi and format characters,
# surrogates, combining marks, Windows' forbidden characters and device names.
_TRICKY = st.sampled_from(
    [
        "/",
        "\\",
        ".",
        "..",
        " ",
        "\x00",
        "\x1b",
        "\n",
        "\r",
        "\t",
        "\x7f",
        "\x85",
        "\x9b",
        "\u202e",
        "\u2066",
        "\u200b",
        "\u200d",
        "\ufeff",
        "\u2028",
        "\u2029",
        "\ud800",
        "\u0301",
        "e",
        "é",
        "\u3000",
        "<",
        ">",
        ":",
        '"',
        "|",
        "?",
        "*",
        "con",
        "LPT1",
        "nul",
        ".txt",
        ".pdf",
        "日本",
        "😀",
        "a",
    ]
)
NAMES = st.one_of(
    st.text(),
    st.lists(_TRICKY, max_size=12).map("".join),
    st.lists(st.one_of(_TRICKY, st.text(max_size=40)), max_size=20).map("".join),
    st.tuples(st.text(min_size=200, max_size=400), _TRICKY).map("".join),
)
DROPPED = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def assert_harmless(name: str) -> None:
    assert name not in ("", ".", "..")
    assert "/" not in name
    assert "\\" not in name
    assert not [ch for ch in name if unicodedata.category(ch) in DROPPED]
    assert len(name.encode()) <= MAX_NAME_BYTES
    assert name == name.strip()
    assert unicodedata.is_normalized("NFC", name)


@given(NAMES)
def test_clean_name_is_never_a_path_a_control_character_or_empty(name: str) -> None:
    cleaned = clean_name(name)
    assert_harmless(cleaned)
    assert clean_name(cleaned) == cleaned


@given(NAMES)
def test_safe_local_name_is_harmless_on_every_desktop_system(name: str) -> None:
    local = safe_local_name(name)
    assert_harmless(local)
    assert not set(local) & set('<>:"|?*')
    assert not local.endswith((".", " "))
    assert not local.startswith(".")
    assert local.split(".")[0].rstrip(" ").lower() not in {"con", "prn", "aux", "nul", "lpt1"}
    assert safe_local_name(local) == local


@given(NAMES)
def test_safe_local_name_can_be_created_as_it_is(name: str) -> None:
    local = safe_local_name(name)
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, local).write_bytes(b"x")
        assert os.listdir(directory) == [local]


@pytest.mark.parametrize(
    ("name", "cleaned"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\win.ini", "win.ini"),
        ("photos/", "photos"),
        ("a/b/..", "b"),
        ("..", FALLBACK_NAME),
        ("/", FALLBACK_NAME),
        ("", FALLBACK_NAME),
        ("\x1b[2J\x1b]0;pwned\x07evil.txt", "[2J]0;pwnedevil.txt"),
        ("line\nbreak.txt", "linebreak.txt"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("zero\u200bwidth.png", "zerowidth.png"),
        ("cafe\u0301.txt", "café.txt"),
        ("  spaced name.txt  ", "spaced name.txt"),
    ],
)
def test_clean_name_examples(name: str, cleaned: str) -> None:
    assert clean_name(name) == cleaned


def test_a_long_name_is_capped_with_its_extension_kept() -> None:
    for stem in ("a" * 300, "é" * 300, "😀" * 100):
        cleaned = clean_name(stem + ".pdf")
        assert cleaned.endswith(".pdf")
        assert MAX_NAME_BYTES - 4 <= len(cleaned.encode()) <= MAX_NAME_BYTES
    assert len(clean_name("x" * 1000).encode()) == MAX_NAME_BYTES


@pytest.mark.parametrize(
    ("name", "local"),
    [
        ("CON", "_CON"),
        ("con.txt", "_con.txt"),
        ("lpt1 .tar.gz", "_lpt1 .tar.gz"),
        ("console.txt", "console.txt"),
        ('what?: "a|b" <c>*.txt', "what__ _a_b_ _c__.txt"),
        ("notes.txt. . ", "notes.txt"),
        (".bashrc", "bashrc"),
        ("...", FALLBACK_NAME),
        (".\u3000x", "x"),
    ],
)
def test_safe_local_name_examples(name: str, local: str) -> None:
    assert safe_local_name(name) == local


def test_safe_local_name_leaves_room_when_asked() -> None:
    local = safe_local_name("b" * 300 + ".pdf", max_bytes=240)
    assert local.endswith(".pdf")
    assert len(local.encode()) <= 240


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("report.pdf", ("report", ".pdf")),
        ("archive.tar.gz", ("archive.tar", ".gz")),
        ("README", ("README", "")),
        (".profile", (".profile", "")),
        ("x." + "y" * 40, ("x." + "y" * 40, "")),
    ],
)
def test_split_extension(name: str, parts: tuple[str, str]) -> None:
    assert split_extension(name) == parts
