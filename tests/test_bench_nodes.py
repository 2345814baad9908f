"""``securechat bench nodes`` (#17): one node on SQLite, then nodes on the bench's own
PostgreSQL cluster, every delivery counted; and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from securechat.bench.commands import Transport
from securechat.bench.run import BenchParams
from securechat.bench.workloads import run_workload
from securechat.errors import ConfigError
from tests.conftest import skip_or_fail
from tests.postgres import missing

pytestmark = pytest.mark.postgresql


@pytest.mark.timeout(180)
def test_bench_nodes_counts_every_delivery_on_sqlite_and_across_two_postgresql_nodes(
    tmp_path: Path,
) -> None:
    if (reason := missing()) is not None:
        skip_or_fail(reason)
    plot = tmp_path / "nodes.png"
    params = BenchParams(
        receivers=3, senders=2, rate=100, duration=0.5, messages=20, processes=1, nodes=(2,),
        plot=plot,
    )  # fmt: skip
    report = run_workload("nodes", params, show_progress=False)
    assert report.ok, report.failures
    points = report.results["points"]
    assert [(p["database"], p["nodes"]) for p in points] == [("sqlite", 1), ("postgresql", 2)]
    for point in points:
        assert point["office_deliveries"] == point["office_expected"] > 0
        assert point["max_deliveries"] == point["max_expected"] > 0
        assert point["office_p99_ms"] > 0
    assert plot.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("params", "problem"),
    [(BenchParams(transport=Transport.WS), "chat port only")],
)
def test_bench_nodes_refuses_what_it_cannot_do(params: BenchParams, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        run_workload("nodes", params, show_progress=False)
