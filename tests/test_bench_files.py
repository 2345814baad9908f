"""``securechat bench files`` (#27) at small sizes: it runs every phase against its own
throwaway server and reports each figure and check. No timing is asserted: the figures
depend on the machine; docs/performance.md has them at the defaults."""

from __future__ import annotations

import json

from securechat.bench.run import BenchParams
from securechat.bench.transfers import tls_copy
from securechat.bench.workloads import run_workload
from tests.conftest import CliRunner

KiB = 1024


def test_bench_files_reports_throughput_memory_and_chat_p99_with_and_without_transfers() -> None:
    params = BenchParams(receivers=3, senders=2, rate=100, duration=0.5, processes=1,
                         files=3, file_size=64 * KiB, rounds=2)  # fmt: skip
    report = run_workload("files", params, show_progress=False)
    assert report.failures == []
    results = report.results
    assert results["tls_copy_mb_s"] > 0
    alone = results["transfers_alone"]
    assert alone["small"]["file_size"] == 4 * KiB
    assert alone["full"]["file_size"] == 64 * KiB
    for done in (alone["small"], alone["full"]):
        assert done["bytes"] == 3 * 2 * done["file_size"]  # each file up and back down
        assert done["rounds"] == 1
        assert done["server_rss_peak_mib"] > 0
    under = results["transfers_under_chat"]
    assert under["rounds"] >= 2  # at least one round in each run with transfers
    assert under["bytes"] == under["rounds"] * 3 * 2 * 64 * KiB
    chat = results["chat"]
    assert len(chat["p99_ms_without"]) == len(chat["p99_ms_with"]) == 2
    assert all(p99 > 0 for p99 in chat["p99_ms_without"] + chat["p99_ms_with"])
    # measured in their own process: the bench's CPU no longer includes theirs
    assert len(chat["transfer_clients_cpu_pct"]) == 2
    assert any(
        "transfer clients run as threads of a process of their own" in n for n in report.notes
    )
    assert [c.name for c in report.checks] == [
        "files throughput",
        "files server RSS",
        "chat p99 under transfers",
    ]
    assert report.params["files"] == 3


def test_bench_files_json_is_one_object_and_takes_sizes_with_units(run_cli: CliRunner) -> None:
    result = run_cli("bench", "files", "--transfers", "2", "--file-size", "32KiB", "--rounds", "1",
                     "--duration", "0.3", "--receivers", "2", "--senders", "1",
                     "--processes", "1", "--json", timeout=180)  # fmt: skip
    assert result.returncode == 0, result.stderr  # a goal missed is no failure: exit 0
    report = json.loads(result.stdout)
    assert report["workload"] == "files"
    assert report["ok"] is True
    assert report["params"]["file_size"] == 32 * KiB
    assert {c["name"] for c in report["checks"]} >= {"files throughput", "chat p99 under transfers"}


def test_bench_files_refuses_a_size_that_is_not_one(run_cli: CliRunner) -> None:
    result = run_cli("bench", "files", "--file-size", "5M")
    assert result.returncode != 0
    assert "--file-size" in result.stderr


def test_the_plain_tls_copy_moves_every_byte() -> None:
    assert tls_copy(3 * 256 * KiB + 17) > 0
