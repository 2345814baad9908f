"""Terminal-safe text: what a peer sends is shown, never obeyed by the terminal.

Escaped, as a rule over Unicode categories rather than a list, is every character a
terminal obeys or draws as nothing: Cc (C0 and C1 controls, so no ANSI sequence), Cf
(format characters: bidi overrides and isolates, zero-width characters, the soft hyphen,
interlinear annotations, tag characters, the Arabic letter mark), Zl and Zp (line and
paragraph separators), and Cs (lone surrogates, which cannot even be encoded for output).
Each is shown as a visible escape: ``\\x1b``, ``\\u202e``, ``\\U000e0041``; a tab becomes
four spaces. Two refinements:

- ZWJ (U+200D) and ZWNJ (U+200C) are Cf but are kept between two visible characters:
  emoji sequences (woman + ZWJ + laptop), Persian and the Indic scripts need them there,
  and there they neither move the cursor nor reorder text. Anywhere else (alone, at an
  edge, next to a space, another joiner or an escape) they are escaped like the rest.
- The Hangul fillers U+115F, U+1160, U+3164 and U+FFA0 are letters (Lo), yet every font
  draws them as blank space, so text made of them looks empty or hides a gap: escaped too.

Unassigned code points (Cn) are left alone, so that emoji newer than Python's Unicode
tables still show. The character class is built once, on first use, from ``unicodedata``
(a pass over every code point, a fraction of a second, paid only by a process that prints
peer text); after that, escaping is one regular-expression substitution, and only the
rare matches run Python code.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata

__all__ = ["escape"]

UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
#: Letters (Lo) that every font draws as blank space: escaped although not in those categories.
HANGUL_FILLERS = "\u115f\u1160\u3164\uffa0"
#: ZWNJ and ZWJ (Cf): kept between two shown characters, where scripts and emoji need them.
JOINERS = "\u200c\u200d"
_REPLACEMENTS = {"\t": "    "}


def escape(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every unsafe character shown as a visible escape like ``\\x1b``."""
    candidates = _candidates()

    def visible(match: re.Match[str]) -> str:
        char, at = match.group(), match.start()
        if char == "\n" and keep_newlines:
            return char
        if char in JOINERS and is_shown(at - 1) and is_shown(at + 1):
            return char
        return _REPLACEMENTS.get(char) or _code(ord(char))

    def is_shown(at: int) -> bool:
        return 0 <= at < len(text) and not (text[at].isspace() or candidates.match(text, at))

    return candidates.sub(visible, text)


def _code(point: int) -> str:
    if point < 0x100:
        return f"\\x{point:02x}"
    return f"\\u{point:04x}" if point < 0x10000 else f"\\U{point:08x}"


@functools.cache
def _candidates() -> re.Pattern[str]:
    """One character class: what to escape, plus the joiners (escaped out of context).

    Computed once; a race between two threads only computes it twice.
    """
    category = unicodedata.category
    points = [p for p in range(sys.maxunicode + 1) if category(chr(p)) in UNSAFE_CATEGORIES]
    return re.compile(f"[{_ranges(sorted({*points, *map(ord, HANGUL_FILLERS)}))}]")


def _ranges(points: list[int]) -> str:
    """Sorted code points as the inside of a regex character class, runs as ``a-z``."""
    parts: list[str] = []
    start = previous = points[0]
    for point in [*points[1:], -1]:
        if point == previous + 1:
            previous = point
            continue
        parts.append(_code(start) if start == previous else f"{_code(start)}-{_code(previous)}")
        start = previous = point
    return "".join(parts)
