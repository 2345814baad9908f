"""The throwaway PostgreSQL cluster (securechat/bench/postgres.py) never outlives the
process that started it: killed with SIGKILL (no Python cleanup at all), its watchdog stops
the cluster and removes its folder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import skip_or_fail
from tests.eventually import eventually
from tests.postgres import missing

STARTER = """
import json, sys, time
from securechat.bench.postgres import PostgresCluster, find_bindir
cluster = PostgresCluster(find_bindir())
cluster.start()
print(json.dumps({"port": cluster.port, "root": str(cluster._root)}), flush=True)
time.sleep(600)
"""


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _postmaster_running(root: str) -> bool:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        if root.encode() in cmdline and b"postgres" in cmdline:
            return True
    return False


def test_a_cluster_whose_starter_is_killed_is_stopped_and_removed() -> None:
    reason = missing()
    if reason is not None:
        skip_or_fail(reason)
    with subprocess.Popen(
        [sys.executable, "-c", STARTER], stdout=subprocess.PIPE, text=True
    ) as starter:
        try:
            assert starter.stdout is not None
            started = json.loads(starter.stdout.readline())
            port, root = started["port"], started["root"]
            assert _accepts(port)
            assert Path(root, "data").is_dir()
        finally:
            starter.send_signal(signal.SIGKILL)
            starter.wait(10)
    eventually(
        lambda: not (_accepts(port) or _postmaster_running(root) or Path(root).exists()),
        "the cluster ended with its starter",
        interval=0.1,
    )
