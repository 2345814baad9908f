"""Stops a throwaway PostgreSQL cluster when the process that started it is gone, however
it went: a normal end, Ctrl-C, SIGTERM (which runs no Python cleanup), or SIGKILL.

Run as ``python -m securechat.bench.pg_watchdog FD PG_CTL DATA ROOT [OWNER]`` by
:class:`~securechat.bench.postgres.PostgresCluster`, in a session of its own, with ``FD``
the read end of a pipe whose write end only the starting process holds. The kernel closes
that end when the process ends, so the read returns; then the cluster is stopped and its
folder removed. A normal stop closes the write end itself and waits for this process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

STOP_TIMEOUT = 30.0


def main(argv: list[str]) -> int:
    fd, pg_ctl, data, root, *owner = argv
    with os.fdopen(int(fd), "rb") as parent:
        parent.read()  # returns at end of file: the starter closed it, or is gone
    subprocess.run(
        [pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"],
        capture_output=True, user=owner[0] if owner else None, cwd=root,
        timeout=STOP_TIMEOUT, check=False,
    )  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
