"""Make this interpreter look like Windows to securechat's client: no poll/epoll/kqueue,
no eventfd, and no POSIX-only modules.

tests/test_client_portability.py puts this folder first on PYTHONPATH of a subprocess
(Python imports ``sitecustomize`` at start-up, before any securechat module), so that the
client runs the way it would on Windows: ``selectors`` falls back to ``select.select``,
the waker to a socket pair, and an import of fcntl, termios, pwd... fails.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import select
import sys
from collections.abc import Sequence
from types import ModuleType

for _name in list(vars(select)):
    if _name in ("poll", "epoll", "devpoll", "kqueue", "kevent") or _name.startswith(
        ("POLL", "EPOLL", "KQ_")
    ):
        delattr(select, _name)
for _name in ("eventfd", "EFD_NONBLOCK", "EFD_CLOEXEC", "EFD_SEMAPHORE"):
    if hasattr(os, _name):
        delattr(os, _name)

POSIX_ONLY = frozenset(
    {"fcntl", "termios", "tty", "pty", "pwd", "grp", "resource", "syslog", "crypt", "spwd"}
)


class _RefusePosixOnly(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".")[0] in POSIX_ONLY:
            raise ImportError(f"{fullname} is POSIX-only (refused, as on Windows)")
        return None


for _module in list(sys.modules):
    if _module.split(".")[0] in POSIX_ONLY:
        del sys.modules[_module]
sys.meta_path.insert(0, _RefusePosixOnly())
os.environ["SECURECHAT_NONPOSIX"] = "1"  # tells the test this file was loaded
