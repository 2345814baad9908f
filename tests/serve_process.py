"""``securechat serve`` as a real subprocess, for tests of signals, crashes and logging."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from signal import Signals
from typing import Self

from tests.conftest import TIMEOUT

_LISTENING = re.compile(r"listening on \S+ port (\d+)")


class ServeProcess:
    """Start ``securechat serve`` on a free port; collect its log lines as they come."""

    def __init__(self, certs_dir: Path, db_url: str, *extra: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SECURECHAT_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "securechat", "serve", "--host", "127.0.0.1", "--port", "0",
             "--web-port", "0", "--certs", str(certs_dir), "--db", db_url, *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,  # its own process group, like a shell job
        )  # fmt: skip
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = 0

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """Wait for a log line matching ``pattern``; raise if the process ends first."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        for earlier in self.lines:
            if match := regex.search(earlier):
                return match
        while True:
            try:
                line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise TimeoutError(f"no log line matching {pattern!r}: {self.lines}") from None
            if line is None:
                raise AssertionError(f"server exited before {pattern!r}: {self.lines}")
            self.lines.append(line)
            if match := regex.search(line):
                return match

    def start(self) -> Self:
        self.port = int(self.wait_for(_LISTENING.pattern).group(1))
        return self

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def signal(self, signum: Signals) -> None:
        self.proc.send_signal(signum)

    def signal_group(self, signum: Signals) -> None:
        """What a terminal does on Ctrl-C: signal the server and every process it started."""
        os.killpg(self.proc.pid, signum)

    def output(self) -> list[str]:
        """Every log line, once the process and everything holding its stderr have ended."""
        while (line := self._queue.get(timeout=TIMEOUT)) is not None:
            self.lines.append(line)
        return self.lines

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=TIMEOUT)
        self._reader.join(timeout=TIMEOUT)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
