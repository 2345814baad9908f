"""Replacing a file so that readers see the old content or the new one, never half of it."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to a new file beside ``path``, flush it to disk, then rename it over.

    The temporary file is created with ``O_EXCL`` and ``mode`` from the start, so a
    private key is never readable by others, not even for a moment; ``mode`` is then set
    exactly, whatever the umask.

    Raises:
        OSError: nothing was replaced.
    """
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
