"""Where a file's bytes go: a small interface, and the files folder that implements it.

:class:`FileStorage` is what the server needs: write an upload as it arrives
(:meth:`~FileStorage.begin`), read a file or its thumbnail back a chunk at a time, delete
both. :class:`DirectoryStorage` keeps them under the folder's layout (layout.py): each
upload is written to a temporary beside its final place (``ROOT/ab/<id>.part``, opened
exclusively, mode 0600) and renamed into place only when complete, so a reader, on this
node or another one sharing the folder, never sees half a file, and a transfer cut off
leaves nothing behind. OS errors are translated here, once, to :class:`StoreError`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO, Protocol

from securechat.attachments.layout import file_path, thumbnail_path
from securechat.errors import ConfigError, StoreError

__all__ = ["DirectoryStorage", "FileStorage", "Upload", "open_files_dir"]

FOLDER_MODE = 0o700
FILE_MODE = 0o600


class Upload(Protocol):
    """One file being written: :meth:`write` each chunk, then :meth:`commit` or :meth:`abort`."""

    @property
    def size(self) -> int: ...

    def write(self, data: bytes) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class FileStorage(Protocol):
    """Files' bytes by id. Raises StoreError when the storage fails."""

    @property
    def root(self) -> Path: ...

    def begin(self, file_id: str) -> Upload: ...

    def open(self, file_id: str, *, thumbnail: bool = False) -> BinaryIO | None: ...

    def delete(self, file_id: str) -> None: ...


class _FolderUpload:
    __slots__ = ("_fd", "_final", "_temporary", "size")

    def __init__(self, final: Path) -> None:
        self._final = final
        self._temporary = final.with_name(final.name + ".part")
        try:
            final.parent.mkdir(mode=FOLDER_MODE, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
            self._fd: int | None = os.open(self._temporary, flags, FILE_MODE)
        except OSError as exc:
            raise StoreError(f"cannot write to the files folder: {exc}") from exc
        self.size = 0

    def write(self, data: bytes) -> None:
        assert self._fd is not None, "closed"
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self.abort()
            raise StoreError(f"cannot write to the files folder: {exc}") from exc
        self.size += len(data)

    def commit(self) -> None:
        """Flush the file to disk and rename it into place."""
        fd, self._fd = self._fd, None
        assert fd is not None, "closed"
        try:
            os.fsync(fd)
            os.close(fd)
            os.replace(self._temporary, self._final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.close(fd)
            self._remove()
            raise StoreError(f"cannot store a file in the files folder: {exc}") from exc

    def abort(self) -> None:
        """Drop what was written (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
            self._remove()

    def _remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._temporary.unlink()


class DirectoryStorage:
    """The files folder (one per server, or one every node shares)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        return self._root

    def begin(self, file_id: str) -> Upload:
        return _FolderUpload(file_path(self._root, file_id))

    def open(self, file_id: str, *, thumbnail: bool = False) -> BinaryIO | None:
        """The file (or its thumbnail) for reading; None if it is not there."""
        path = (thumbnail_path if thumbnail else file_path)(self._root, file_id)
        try:
            return path.open("rb")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read from the files folder: {exc}") from exc

    def delete(self, file_id: str) -> None:
        """Remove a file and its thumbnail (either may be missing already)."""
        for path in (file_path(self._root, file_id), thumbnail_path(self._root, file_id)):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StoreError(f"cannot delete from the files folder: {exc}") from exc


def open_files_dir(path: Path) -> DirectoryStorage:
    """The files folder at ``path``, made (mode 0700) if missing.

    Raises:
        ConfigError: it cannot be made, or is not a folder this process may write.
    """
    try:
        path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot make the files folder {path}: {exc.strerror or exc}") from exc
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"the files folder {path} is not a folder this user may write")
    return DirectoryStorage(path)
