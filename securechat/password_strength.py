"""How guessable a password is: zxcvbn's estimate, as a typed value with a reason.

zxcvbn (Dropbox's estimator, Python port) brings its own frequency lists (common and
breached passwords, English words, names, TV and film words) and patterns (repeats,
sequences, keyboard rows, dates, l33t substitutions) and scores a password 0-4 by the
guesses an attacker trying the likeliest first would need. This module is its only user.

zxcvbn keeps the words of the current call in a module-level dictionary, so two calls in
two threads could see each other's; a lock makes each call whole.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable

from zxcvbn import zxcvbn

__all__ = ["MAX_SCORE", "Strength", "estimate"]

MAX_SCORE = 4

# What each score below the threshold means, from zxcvbn's guess bands.
_GUESSES = {
    0: "it would be among the first thousand guesses",
    1: "it would be among the first million guesses",
    2: "it would be among the first hundred million guesses",
    3: "it would be among the first ten billion guesses",
}

_lock = threading.Lock()  # guards zxcvbn's module-level dictionary of the caller's words


@dataclasses.dataclass(frozen=True, slots=True)
class Strength:
    """zxcvbn's verdict on one password; never holds the password itself."""

    score: int  # 0 (guessed at once) to MAX_SCORE
    warning: str  # zxcvbn's reason, or ""
    suggestions: tuple[str, ...]  # zxcvbn's advice, sentences ending in "."
    context_hits: tuple[str, ...]  # which of the given context words it is built on

    def reason(self, user: str, min_score: int) -> str:
        """Why the password is weak, as a clause (no final full stop)."""
        if self.warning:
            return self.warning.removesuffix(".")
        if user in self.context_hits:
            return "it is based on the user name"
        if self.context_hits:
            return f"it is based on {self.context_hits[0]!r}"
        return (
            f"{_GUESSES.get(self.score, 'it is easy to guess')} "
            f"(strength {self.score} of {MAX_SCORE}, {min_score} needed)"
        )


def estimate(password: str, context: Iterable[str], *, max_length: int) -> Strength:
    """zxcvbn's estimate for the first ``max_length`` characters of ``password``.

    ``context``: words that make a password weaker (the user name, the server's names),
    matched ignoring case, reversed and in l33t like any dictionary word.
    """
    words = [word.lower() for word in context if word]
    with _lock:
        result = zxcvbn(password[:max_length], user_inputs=words, max_length=max_length)
    hits = [
        match["matched_word"]
        for match in result["sequence"]
        if match.get("dictionary_name") == "user_inputs" and "matched_word" in match
    ]
    return Strength(
        score=result["score"],
        warning=result["feedback"]["warning"],
        suggestions=tuple(result["feedback"]["suggestions"]),
        context_hits=tuple(dict.fromkeys(hits)),
    )
