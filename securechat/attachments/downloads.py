"""Where a downloaded file goes on a colleague's computer: never over another file.

The name comes from someone else, so it is made safe for every desktop system first
(:func:`~securechat.attachments.names.safe_local_name`); it can then name nothing but a
new file directly inside the folder. The file is created with ``O_EXCL``: an existing
file, folder or symbolic link of that name is never opened, written through or replaced;
the next free ``report (1).pdf`` is taken instead, the way browsers do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import platformdirs

from securechat.attachments.names import MAX_NAME_BYTES, safe_local_name, split_extension

#: How many numbered names (``report (1).pdf`` ...) are tried before giving up.
MAX_NUMBERED = 9999
#: A downloaded file is private to its owner, like the conversation it came from.
DOWNLOAD_MODE = 0o600
NUMBER_ROOM = len(f" ({MAX_NUMBERED})".encode())
# Two-part extensions kept together: "logs (1).tar.gz", not "logs.tar (1).gz".
_COMPOUND = (".tar",)
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def downloads_dir() -> Path:
    """The user's downloads folder (platformdirs: XDG's, or ``~/Downloads``), created if missing."""
    directory = platformdirs.user_downloads_path()
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def open_new(directory: Path, name: str) -> tuple[Path, BinaryIO]:
    """Create a new file for ``name`` in ``directory``; its path and the open file to write.

    The caller closes the file, and removes it if the download fails.

    Raises:
        FileExistsError: ``name`` and all its numbered variants are taken.
        OSError: the folder is missing or not writable.
    """
    local = safe_local_name(name, max_bytes=MAX_NAME_BYTES - NUMBER_ROOM)
    for number in range(MAX_NUMBERED + 1):
        path = directory / numbered(local, number)
        try:
            fd = os.open(path, _FLAGS, DOWNLOAD_MODE)
        except FileExistsError:
            continue
        return path, os.fdopen(fd, "wb")
    raise FileExistsError(f"{directory / local} and {MAX_NUMBERED} numbered names are all taken")


def numbered(name: str, number: int) -> str:
    """``report.pdf`` as the ``number``-th alternative: ``report (2).pdf`` (0: unchanged)."""
    if number == 0:
        return name
    stem, extension = split_extension(name)
    for compound in _COMPOUND:
        if stem.lower().endswith(compound) and stem[: -len(compound)].strip(". "):
            stem, extension = stem[: -len(compound)], stem[-len(compound) :] + extension
    return f"{stem} ({number}){extension}"
