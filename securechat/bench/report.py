"""What a bench run shows: a progress bar while it runs, then a table, or one JSON object.

Progress goes to stderr (and only to a terminal), so ``--json`` output on stdout stays a
single parseable object.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    """A target from the issue, and whether this run met it."""

    name: str
    target: str
    measured: str
    met: bool | None  # None: not measured (for example, not supported by this server)


@dataclasses.dataclass
class Report:
    workload: str
    server: dict[str, Any]
    params: dict[str, Any]
    results: dict[str, Any] = dataclasses.field(default_factory=dict)
    rows: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[str]]]] = dataclasses.field(default_factory=list)
    checks: list[Check] = dataclasses.field(default_factory=list)
    failures: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "ok": self.ok,
            "machine": machine(),
            "server": self.server,
            "params": self.params,
            "results": self.results,
            "checks": [dataclasses.asdict(c) for c in self.checks],
            "failures": self.failures,
            "notes": self.notes,
        }


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def print_json(report: Report) -> None:
    sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")


def print_table(report: Report, console: Console | None = None) -> None:
    console = console or Console()
    summary = Table(title=f"securechat bench {report.workload}", show_header=False)
    summary.add_column("metric", style="bold")
    summary.add_column("value")
    summary.add_row("server", str(report.server.get("description", "")))
    summary.add_row("parameters", ", ".join(f"{k}={v}" for k, v in report.params.items()))
    for label, value in report.rows:
        summary.add_row(label, value)
    console.print(summary)
    for title, columns, rows in report.tables:
        table = Table(title=title)
        for column in columns:
            table.add_column(column, justify="right")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    if report.checks:
        checks = Table(title="targets")
        for column in ("target", "goal", "measured", "met"):
            checks.add_column(column)
        for check in report.checks:
            met = {True: "[green]yes[/]", False: "[red]no[/]", None: "n/a"}[check.met]
            checks.add_row(check.name, check.target, check.measured, met)
        console.print(checks)
    for note in report.notes:
        console.print(f"note: {note}", markup=False, highlight=False)
    for failure in report.failures:
        console.print(f"[red]FAILURE[/]: {failure}", highlight=False)
    if not report.failures:
        console.print("no failures")


class PhaseProgress:
    """A phase-by-phase progress bar on stderr; silent when stderr is not a terminal."""

    def __init__(self, enabled: bool) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not (enabled and sys.stderr.isatty()),
            transient=True,
        )
        self._task: Any = None

    def __enter__(self) -> PhaseProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def phase(self, description: str, total: float) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(description, total=max(total, 1))

    def update(self, completed: float) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=completed)
