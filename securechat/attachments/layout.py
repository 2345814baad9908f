"""Where a server's files sit on disk: one rule, used by ``serve``, ``backup`` and ``doctor``.

Each file lives at ``ROOT/ab/<id>`` (``ab``: the id's first two characters, so no folder
holds more than a small share of the files) and its thumbnail, if it has one, beside it at
``ROOT/ab/<id>.thumb``. Ids come from :func:`new_file_id` only: 26 characters of lower-case
base32, 130 random bits, so they are safe in a path and cannot be guessed.
"""

from __future__ import annotations

import base64
import re
import secrets
from pathlib import Path

from securechat.store.lock import sqlite_file

_ID = re.compile(r"[a-z2-7]{26}")


def new_file_id() -> str:
    """A fresh random id (130 bits; base32 without padding, lower case)."""
    return base64.b32encode(secrets.token_bytes(17)).decode("ascii").lower()[:26]


def is_file_id(text: str) -> bool:
    """Whether ``text`` has the shape of an id from :func:`new_file_id` (a path-safe token)."""
    return _ID.fullmatch(text) is not None


def default_files_dir(db_url: str) -> Path | None:
    """The files folder beside a SQLite database (``chat.db`` -> ``chat-files``).

    None for PostgreSQL and in-memory SQLite: there is no database file to sit beside, so
    the folder must be named (``serve --files DIR``; on several nodes, one every node reaches).
    """
    database = sqlite_file(db_url)
    if database is None:
        return None
    return database.with_name(database.stem + "-files")


def file_path(root: Path, file_id: str) -> Path:
    """Where the bytes of ``file_id`` live under ``root``.

    Raises:
        ValueError: ``file_id`` is not an id this module made (never joined into a path).
    """
    if not is_file_id(file_id):
        raise ValueError(f"not a file id: {file_id!r}")
    return root / file_id[:2] / file_id


def thumbnail_path(root: Path, file_id: str) -> Path:
    """Where the thumbnail of ``file_id`` lives under ``root`` (if it has one)."""
    return file_path(root, file_id).with_name(file_id + ".thumb")
