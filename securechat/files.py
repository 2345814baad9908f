"""Replacing files so that readers see the old content or the new one, never half of it.

Each file is written to a temporary beside it and flushed to disk, then renamed over the old
one, then the directory is flushed too: until then the rename itself may not survive a power
cut. A group of files (a certificate and its key) is written whole before the first rename,
so they change within microseconds of each other; a reader that needs them to match must
still check that they do (the certificate renewer does, and retries).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path

#: A file to replace: its path, its new content and its mode.
NewFile = tuple[Path, bytes, int]


def write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Replace ``path`` with ``data`` (see :func:`write_files_atomic`).

    Raises:
        OSError: nothing was replaced.
    """
    write_files_atomic([(path, data, mode)])


def write_files_atomic(files: Sequence[NewFile]) -> None:
    """Write every file to a temporary, flushed to disk, then rename them in order.

    Temporaries are created with ``O_EXCL`` and their ``mode`` from the start, so a private
    key is never readable by others, not even for a moment; ``mode`` is then set exactly,
    whatever the umask.

    Raises:
        OSError: if it comes from writing a temporary, nothing was replaced; a failed rename
            (rare: same directory, same file system) leaves the files before it replaced.
    """
    written: list[tuple[Path, Path]] = []
    try:
        for path, data, mode in files:
            written.append((_write_temporary(path, data, mode), path))
        for temporary, path in written:
            os.replace(temporary, path)
        for directory in dict.fromkeys(path.parent for path, _, _ in files):
            sync_to_disk(directory)
    except BaseException:
        for temporary, _ in written:
            temporary.unlink(missing_ok=True)
        raise


def _write_temporary(path: Path, data: bytes, mode: int) -> Path:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def sync_to_disk(path: Path) -> None:
    """Flush ``path`` to disk: a file's bytes, or a folder's entries (so that renames in it
    survive a power cut).

    Raises:
        OSError: it cannot be opened or flushed.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
