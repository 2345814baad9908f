"""Uploads and downloads under way on the chat screen, each on its own worker thread.

A transfer moves its bytes on a worker thread, so the prompt and the incoming messages
keep flowing while a file goes (the Client is usable from any thread). Its progress is
not printed line after line: the worker updates the :class:`Transfer` and asks for a
redraw, and the prompt shows one line per transfer above the input line
(:func:`progress_line`), rewritten in place until the transfer ends; then the worker prints
its outcome once. Cancelling sets a flag the next progress report sees: the report raises
:class:`TransferCancelled`, which unwinds the transfer (the connection is closed, a partial
download removed) and is reported as cancelled. ``Transfers._lock`` guards ``_running``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prompt_toolkit.formatted_text import StyleAndTextTuples

from securechat.attachments.sizes import format_size
from securechat.client.escaping import escape
from securechat.errors import SecureChatError

__all__ = ["Transfer", "TransferCancelled", "Transfers", "progress_line"]


class TransferCancelled(SecureChatError):
    """The user cancelled a transfer (``/cancel`` or Ctrl-C); raised from its progress
    report on the worker thread, caught there, never seen beyond the chat screen."""


class Transfer:
    """One upload or download: what the prompt shows of it, and its cancel flag.

    ``done`` and ``total`` are written by the worker and read by the prompt's redraw; each
    is replaced whole, and a redraw that sees one new and one old value is corrected by
    the next one.
    """

    def __init__(self, kind: str, name: str, on_change: Callable[[], None]) -> None:
        self.kind = kind  # "upload" or "download"
        self.name = name  # as the user knows it: a local file name, or a file id
        self.done = 0
        self.total = 0
        self._on_change = on_change
        self._cancelled = threading.Event()

    def progress(self, done: int, total: int) -> None:
        """The transfers' progress callback (client/transfers.py ``Progress``).

        Raises:
            TransferCancelled: the user cancelled it; the transfer stops here.
        """
        if self._cancelled.is_set():
            raise TransferCancelled(f"{self.kind} of {self.name} cancelled")
        self.done, self.total = done, total
        self._on_change()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def is_cancelled(self) -> bool:
        return self._cancelled.is_set()


class Transfers:
    """The transfers under way; ``start`` runs one on a new worker thread."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._lock = threading.Lock()
        self._running: dict[Transfer, threading.Thread] = {}  # guarded by _lock

    def start(self, kind: str, name: str, work: Callable[[Transfer], None]) -> Transfer:
        """Run ``work(transfer)`` on a worker thread; ``work`` reports its own outcome.

        The thread is a daemon so that quitting never waits on a stalled network: whatever
        it has not finished is cancelled (:meth:`cancel_all`) and waited for a moment.
        """
        transfer = Transfer(kind, name, self._on_change)
        thread = threading.Thread(
            target=self._run, args=(transfer, work), name=f"{kind}-{name[:20]}", daemon=True
        )
        with self._lock:
            self._running[transfer] = thread
        thread.start()
        self._on_change()
        return transfer

    def _run(self, transfer: Transfer, work: Callable[[Transfer], None]) -> None:
        try:
            work(transfer)
        finally:
            with self._lock:
                del self._running[transfer]
            self._on_change()

    def running(self) -> list[Transfer]:
        with self._lock:
            return list(self._running)

    def cancel_all(self) -> int:
        """Cancel every transfer under way; how many there were."""
        running = self.running()
        for transfer in running:
            transfer.cancel()
        return len(running)

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds in all for the workers to end."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._running.values())
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))


def progress_line(transfer: Transfer) -> StyleAndTextTuples:
    """``  ↑ report.pdf  1.2 MiB of 2.6 MiB (46%)  /cancel stops it``: one line of the prompt."""
    arrow = "↑" if transfer.kind == "upload" else "↓"
    done, total = transfer.done, transfer.total
    if transfer.is_cancelled:
        state = "cancelling…"
    elif total <= 0:
        state = "starting…"
    else:
        state = f"{format_size(done)} of {format_size(total)} ({100 * done // total}%)"
    return [
        ("class:pending", f"  {arrow} {transfer.kind} {escape(transfer.name)}  {state}"),
        ("class:system", "  /cancel or Ctrl-C stops it"),
    ]
