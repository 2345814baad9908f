"""The transfer clients of ``bench files`` run in a process of their own (as clients on
other machines would), scheduled like the chat generator; its failures and its death come
back to the bench as failures or errors, never as a hang, and every way out of the bench
leaves no process and no scratch file behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from securechat.bench.harness import BenchError, ThrowawayServer
from securechat.bench.target import Target
from securechat.bench.transfer_process import TransferProcess
from securechat.bench.workloads import CHEAP_SERVER_LIMITS
from tests.conftest import TIMEOUT

KiB = 1024
MiB = 1024 * KiB
USERS = 3


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with ThrowawayServer(users=USERS, cheap_logins=True, limits=CHEAP_SERVER_LIMITS) as server:
        assert server.target is not None
        yield server.target


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the transfer process's scratch folder is made: empty again once it is gone."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _gone(pid: int) -> bool:
    """Process ``pid`` has ended and been reaped (no zombie left either)."""
    return not Path(f"/proc/{pid}").exists()


@pytest.mark.parametrize(("batch", "policy"), [(True, os.SCHED_BATCH), (False, os.SCHED_OTHER)])
def test_the_transfer_clients_run_in_a_process_of_their_own_scheduled_as_the_generator(
    target: Target, scratch: Path, batch: bool, policy: int
) -> None:
    with TransferProcess(target, 1, 2, batch=batch) as clients:
        assert clients.pid != os.getpid()
        assert os.sched_getscheduler(clients.pid) == policy
        done = clients.run(16 * KiB)
        assert done.failures == ()
        assert (done.rounds, done.bytes) == (1, 2 * 2 * 16 * KiB)  # each file up and back
        assert list(scratch.iterdir()) != []  # its files are where the bench can remove them
    assert _gone(clients.pid)
    assert list(scratch.iterdir()) == []


def test_rounds_run_until_the_bench_finishes_them(target: Target, scratch: Path) -> None:
    with TransferProcess(target, 0, 2, batch=True) as clients:
        clients.start(8 * KiB)
        time.sleep(0.3)
        done = clients.finish()
        assert done.failures == ()
        assert done.rounds >= 1
        assert done.bytes == done.rounds * 2 * 2 * 8 * KiB
        assert clients.run(4 * KiB).rounds == 1  # and it takes the next command
    assert _gone(clients.pid)


def test_the_next_round_may_be_asked_for_the_moment_the_last_one_came_back(
    target: Target, scratch: Path
) -> None:
    """The round's thread sends its result, then returns: a ``run`` right after the result
    must wait for it to end, not take it for a round still in progress. Seen once in CI;
    this asks twenty times back to back, which makes the race likely, not certain."""
    with TransferProcess(target, 0, 1, batch=True) as clients:
        for _ in range(20):
            assert clients.run(KiB).failures == ()


def test_a_transfer_that_fails_in_the_process_comes_back_as_a_failure_of_the_round(
    target: Target, scratch: Path
) -> None:
    with TransferProcess(target, 0, 1, batch=True) as clients:
        done = clients.run(25 * MiB + 1)  # over the server's --max-file-size
    assert done.bytes == 0
    assert len(done.failures) == 1
    assert done.failures[0].startswith("bench0: ")


def test_rounds_stop_at_the_first_round_that_fails(target: Target, scratch: Path) -> None:
    """A refused file comes back at once: the rounds end there, not loop on refusals."""
    with TransferProcess(target, 0, 1, batch=True) as clients:
        clients.start(25 * MiB + 1)  # over the server's --max-file-size
        time.sleep(1.0)  # refusals take milliseconds: rounds would have piled up
        done = clients.finish()
    assert done.rounds == 1
    assert len(done.failures) == 1


def test_a_transfer_process_that_dies_is_an_error_not_a_hang(target: Target, scratch: Path) -> None:
    with TransferProcess(target, 0, 2, batch=True) as clients:
        clients.start(64 * KiB)
        os.kill(clients.pid, signal.SIGKILL)
        started = time.monotonic()
        with pytest.raises(BenchError, match=r"exited unexpectedly \(exit code -9\)"):
            clients.finish()
        assert time.monotonic() - started < TIMEOUT
    assert _gone(clients.pid)
    assert list(scratch.iterdir()) == []


def test_a_login_refused_in_the_transfer_process_is_an_error(target: Target, scratch: Path) -> None:
    clients = TransferProcess(target, USERS, 1, batch=True)  # a user the server does not have
    with pytest.raises(BenchError, match="the transfer process failed:\n"), clients:
        pass
    assert clients.pid == 0  # it never said it was ready
    assert list(scratch.iterdir()) == []


def test_an_interrupt_closes_the_transfer_process_mid_round(target: Target, scratch: Path) -> None:
    clients = TransferProcess(target, 0, 2, batch=True)
    with pytest.raises(KeyboardInterrupt):
        _interrupted_mid_round(clients)
    assert clients.pid != 0
    assert _gone(clients.pid)
    assert list(scratch.iterdir()) == []


def _interrupted_mid_round(clients: TransferProcess) -> None:
    with clients:
        clients.start(256 * KiB)
        raise KeyboardInterrupt  # as Ctrl-C, or SIGTERM as the CLI maps it, would


def _children(pid: int) -> list[int]:
    """Pids of the processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # it ended meanwhile
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""  # it ended meanwhile


def test_bench_files_stopped_by_sigterm_leaves_no_transfer_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECURECHAT_")}
    bench = subprocess.Popen(
        [sys.executable, "-m", "securechat", "bench", "files", "--transfers", "2",
         "--file-size", "1MiB", "--rounds", "1", "--duration", "30", "--receivers", "2",
         "--senders", "1", "--processes", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**env, "TMPDIR": str(tmp_path)},
    )  # fmt: skip
    spawned: list[int] = []
    try:
        deadline = time.monotonic() + 4 * TIMEOUT
        while not spawned:  # the first process the bench spawns is the transfer process
            assert bench.poll() is None, bench.stderr.read() if bench.stderr else ""
            assert time.monotonic() < deadline, "the transfer process never started"
            spawned = [c for c in _children(bench.pid) if b"spawn_main" in _cmdline(c)]
            time.sleep(0.1)
        bench.send_signal(signal.SIGTERM)  # as `timeout` and systemd stop a program
        assert bench.wait(TIMEOUT * 3) == 130  # as after Ctrl-C
        assert [pid for pid in spawned if not _gone(pid)] == []
        assert list(tmp_path.iterdir()) == []
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        for pid in spawned:  # whatever a failed run left behind
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
        if bench.stderr is not None:
            bench.stderr.close()
