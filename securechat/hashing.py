"""argon2id: the hasher for a set of parameters, and the calls a hashing process runs.

Apart from accounts.py so that the server's hashing processes (server/hashpool.py) import
argon2 and our parameters, not the database layer.
"""

from __future__ import annotations

import functools
from typing import Protocol

from argon2 import PasswordHasher, Type

from securechat.config import HashParams


class Hasher(Protocol):
    """What accounts need of a password hasher: argon2's own, or the server's pool."""

    def hash(self, password: str) -> str: ...

    def verify(self, hash: str, password: str) -> bool:
        """True, or raise argon2's VerificationError / InvalidHashError."""

    def check_needs_rehash(self, hash: str) -> bool: ...


def make_hasher(params: HashParams) -> PasswordHasher:
    """An argon2id hasher with every parameter stated, none left to library defaults."""
    return PasswordHasher(
        time_cost=params.time_cost,
        memory_cost=params.memory_cost_kib,
        parallelism=params.parallelism,
        hash_len=params.hash_len,
        salt_len=params.salt_len,
        type=Type.ID,
    )


@functools.lru_cache(maxsize=4)
def _cached_hasher(params: HashParams) -> PasswordHasher:
    return make_hasher(params)


def hash_password(params: HashParams, password: str) -> str:
    """Run in a hashing process: a new hash of ``password``."""
    return _cached_hasher(params).hash(password)


def verify_password(params: HashParams, stored_hash: str, password: str) -> bool:
    """Run in a hashing process: argon2's verify, exceptions included."""
    return _cached_hasher(params).verify(stored_hash, password)
