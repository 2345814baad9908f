"""``securechat doctor``'s check of the shared files' folder: there (or not yet), private to
the server's user, with room to grow.

A folder that does not exist yet is fine: ``serve`` creates it (mode 0700) when the first
file is shared. Only reads.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from securechat.attachments.layout import default_files_dir
from securechat.attachments.sizes import format_size
from securechat.doctor.findings import Check, Finding, Installation, Status
from securechat.errors import StoreError
from securechat.store.lock import sqlite_file

NAME = "files folder"
#: Less free space than this is a failure: uploads will soon be refused...
FREE_FAIL = 512 * 1024**2
#: ...and less than this a warning: a few people's daily quota (docs/deploy.md, sizing).
FREE_WARN = 5 * 1024**3


def _files_folder(inst: Installation) -> Iterator[Finding]:
    try:
        database = sqlite_file(inst.db_url)
        folder = inst.files_dir or default_files_dir(inst.db_url)
    except StoreError:
        return  # the database check has said why
    if folder is None:
        yield Finding(Status.OK, NAME, "none to check: pass --files DIR if serve is given one")
        return
    try:
        info = folder.stat()
    except FileNotFoundError:
        yield from _not_yet(folder)
        return
    except OSError as error:
        yield Finding(Status.FAIL, NAME, f"cannot read {folder}: {error.strerror}")
        return
    if not stat.S_ISDIR(info.st_mode):
        fix = f"move {folder} away, or give serve another --files"
        yield Finding(Status.FAIL, NAME, f"{folder} is not a folder", fix)
        return
    try:
        free = shutil.disk_usage(folder).free
    except OSError as error:
        yield Finding(
            Status.FAIL, NAME, f"cannot read the free space of {folder}: {error.strerror}"
        )
        return
    space = free_space(folder, free)
    problems = [*_private(folder, info, database), *([space] if space else [])]
    if problems:
        yield from problems
    else:
        detail = f"{folder}: mode 0700, {format_size(free)} free"
        yield Finding(Status.OK, NAME, detail)


def _not_yet(folder: Path) -> Iterator[Finding]:
    if folder.parent.is_dir():
        detail = f"{folder} does not exist yet (no file shared yet; serve creates it, mode 0700)"
        yield Finding(Status.OK, NAME, detail)
    else:
        detail = f"{folder} cannot be created: {folder.parent} does not exist"
        yield Finding(Status.FAIL, NAME, detail, f"mkdir -p {folder.parent}, or fix --files")


def _private(folder: Path, info: os.stat_result, database: Path | None) -> Iterator[Finding]:
    mode = stat.S_IMODE(info.st_mode)
    if mode != 0o700:
        detail = f"{folder} has mode {mode:04o}: it must be the server's alone"
        yield Finding(Status.FAIL, NAME, detail, f"chmod 700 {folder}")
    try:
        owner = database.stat().st_uid if database is not None else None
    except FileNotFoundError:
        owner = None
    if owner is not None and owner != info.st_uid:
        detail = (
            f"{folder} belongs to {_user(info.st_uid)}, the database to {_user(owner)}: "
            "the server could not write one of them"
        )
        yield Finding(Status.FAIL, NAME, detail, f"chown -R {_user(owner)} {folder}")


def free_space(folder: Path, free: int) -> Finding | None:
    """A warning or failure when ``free`` bytes are too few for ``folder``; None if enough."""
    detail = f"only {format_size(free)} free for {folder}"
    fix = "free some space, or move the folder to a larger disk (docs/deploy.md, sizing)"
    if free < FREE_FAIL:
        return Finding(Status.FAIL, NAME, detail, fix)
    if free < FREE_WARN:
        return Finding(Status.WARN, NAME, detail, fix)
    return None


def _user(uid: int) -> str:
    try:
        import pwd  # POSIX only, like serve; the CLI that imports doctor runs on Windows too

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


CHECKS: tuple[Check, ...] = (_files_folder,)
