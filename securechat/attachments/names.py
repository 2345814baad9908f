"""File names from other people: cleaned once, before any use, for display and for disk.

A name arrives from a client and is shown by every other client (a terminal, a page) and
may become a file on a colleague's disk, so it is treated as hostile text:

- :func:`clean_name` makes the one name the server stores and every client shows: the last
  part of any path (``/`` or ``\\``), without control characters (C0, C1, DEL), format
  characters (bidi overrides that reverse ``cod.exe`` into ``exe.doc``, zero-width ones),
  line separators or lone surrogates, in NFC, at most :data:`MAX_NAME_BYTES` bytes of UTF-8
  with its extension kept, and never empty, ``.`` or ``..``.
- :func:`safe_local_name` goes further, to a name that every desktop system can create as
  it is: no ``<>:"|?*``, no leading or trailing dots and spaces, no Windows device name.

Both are idempotent: cleaning a clean name changes nothing.
"""

from __future__ import annotations

import re
import unicodedata

#: The byte cap on a stored name: the common file-name limit of Linux, macOS and Windows
#: (255 UTF-16 units on Windows, never more than 255 bytes of UTF-8).
MAX_NAME_BYTES = 255
#: The name used when nothing printable is left.
FALLBACK_NAME = "file"
#: An extension longer than this is part of the name, not something to keep when capping.
_MAX_EXTENSION_BYTES = 16

# Control (Cc: C0, DEL, C1), format (Cf: bidi controls, zero-width), surrogate (Cs: not
# encodable as UTF-8), line and paragraph separators (Zl, Zp: newlines by another name).
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_SEPARATORS = re.compile(r"[/\\]")
# Characters Windows refuses in a name (the separators are gone already).
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
# Device names Windows reserves whatever the extension ("con.txt" too), superscript digits too.
_WINDOWS_RESERVED = re.compile(
    r"(con|prn|aux|nul|conin\$|conout\$|clock\$|(com|lpt)[0-9\u00b9\u00b2\u00b3])",
    re.IGNORECASE,
)


def clean_name(name: str) -> str:
    """The name to store and show for ``name``: one path part, printable, NFC, capped."""
    parts = [p for p in _SEPARATORS.split(name) if _printable(p).strip() not in ("", ".", "..")]
    text = _printable(parts[-1]) if parts else ""
    return _capped(unicodedata.normalize("NFC", text).strip(), MAX_NAME_BYTES)


def safe_local_name(name: str, *, max_bytes: int = MAX_NAME_BYTES) -> str:
    """A name for ``name`` that Windows, macOS and Linux can each create in a folder.

    ``max_bytes`` leaves room for what a caller adds (`` (2)`` before the extension).
    """
    text = _WINDOWS_FORBIDDEN.sub("_", clean_name(name))
    # One byte kept back for the "_" that defuses a device name.
    text = _trimmed(_capped(text, max_bytes - 1)) or FALLBACK_NAME
    if _WINDOWS_RESERVED.fullmatch(text.split(".", 1)[0].rstrip(" ")):
        text = "_" + text
    return text


def split_extension(name: str) -> tuple[str, str]:
    """``("report", ".pdf")`` for ``report.pdf``; a long or missing extension is ``""``."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem.strip(". ") or len(extension.encode()) + 1 > _MAX_EXTENSION_BYTES:
        return name, ""
    return stem, dot + extension


def _trimmed(text: str) -> str:
    """``text`` without leading or trailing dots and white space (of any kind, in any order)."""
    while text != (trimmed := text.strip().strip(".")):
        text = trimmed
    return text


def _printable(text: str) -> str:
    return "".join(ch for ch in text if unicodedata.category(ch) not in _DROPPED_CATEGORIES)


def _capped(text: str, max_bytes: int) -> str:
    """``text`` within ``max_bytes`` of UTF-8, its extension kept, never empty, ``.`` or ``..``."""
    if len(text.encode()) > max_bytes:
        stem, extension = split_extension(text)
        room = max(max_bytes - len(extension.encode()), 1)
        stem = stem.encode()[:room].decode(errors="ignore")
        # A cut can split a base letter from its accents: compose what is left again.
        text = unicodedata.normalize("NFC", stem.rstrip(" ") + extension)
        text = text.encode()[:max_bytes].decode(errors="ignore").strip()
    if text.strip(".") == "":
        return FALLBACK_NAME
    return text
