"""What every check of ``securechat doctor`` takes and gives: an installation, findings."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterator
from pathlib import Path

from securechat.directory.settings import DirectoryConfig


class Status(enum.StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    """The outcome of one check; ``fix`` says what to do about a WARN or FAIL."""

    status: Status
    check: str
    detail: str
    fix: str | None = None

    def line(self, width: int = 0) -> str:
        fix = f"; fix: {self.fix}" if self.fix else ""
        return f"{self.status:<4}  {self.check:<{width}}  {self.detail}{fix}"


@dataclasses.dataclass(frozen=True, slots=True)
class Installation:
    """What to examine: the options ``securechat serve`` would be started with."""

    certs_dir: Path
    db_url: str
    port: int
    hosts: tuple[str, ...] = ()
    web_port: int | None = None  # the browsers' port to check too; None: not served
    directory: DirectoryConfig | None = None  # the [directory] table, if configured
    files_dir: Path | None = None  # serve --files; None: beside a SQLite database


Check = Callable[[Installation], Iterator[Finding]]
