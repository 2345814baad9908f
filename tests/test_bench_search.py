"""securechat bench search, and fan-outs without the search index: tiny parameters."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from securechat.bench.run import BenchParams
from securechat.bench.search import QUERIES, drop_index
from securechat.bench.target import Target
from securechat.bench.workloads import run_workload
from securechat.errors import ConfigError
from securechat.store.chat import ChatStore
from securechat.store.database import Database
from securechat.store.message_rows import NewMessage
from securechat.store.models import User


def test_bench_search_fills_its_database_and_times_each_kind_of_query() -> None:
    params = BenchParams(messages=3000, queries=2 * sum(map(len, QUERIES.values())))
    report = run_workload("search", params, show_progress=False)
    assert report.failures == []
    assert report.server["database"].startswith("3,000 messages stored")
    sizes = report.results["first_page_sizes"]
    assert sizes["the"] == sizes["meeting"] == 20, sizes
    assert all(sizes[q] == 0 for q in QUERIES["absent"]), sizes
    for kind in QUERIES:
        assert report.results["latency"][kind]["count"] == 2 * len(QUERIES[kind])
    assert 0 < report.results["overall"]["p50_ms"] <= report.results["overall"]["p99_ms"]
    assert [c.name for c in report.checks] == ["search first page p99 (3,000 messages)"]


def test_bench_fanout_runs_without_the_search_index_when_asked() -> None:
    params = BenchParams(receivers=2, senders=1, messages=50, processes=1, search_index=False)
    report = run_workload("fanout-max", params, show_progress=False)
    assert report.failures == []
    assert "index dropped" in report.server["search_index"]


def test_dropping_the_index_leaves_nothing_to_index_and_messages_stored(empty_db: Database) -> None:
    with empty_db.session() as s, s.begin():
        user = User(name="alice", password_hash="x")
        s.add(user)
        s.flush()
        alice = user.id
    store = ChatStore(empty_db)
    store.join(alice, "general")
    store.save_messages([NewMessage(alice, "alice", "indexed words", None, room="general")])
    assert store.search_backlog() == 1  # the message, for the group commit to index
    drop_index(empty_db.url, Target("127.0.0.1", 0, Path("ca.pem")))
    assert store.search_backlog() is None  # so the group commit indexes nothing
    store.save_messages([NewMessage(alice, "alice", "unindexed words", None, room="general")])
    with empty_db.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM messages")).scalar() == 2
        tables = connection.execute(text("SELECT name FROM sqlite_master")).scalars().all()
    assert not [name for name in tables if name.startswith("messages_fts")]


@pytest.mark.parametrize(
    ("name", "params"),
    [("search", BenchParams(search_index=False)), ("fanout-max", BenchParams(search_index=False))],
)
def test_bench_refuses_search_options_that_cannot_work(name: str, params: BenchParams) -> None:
    target = Target("127.0.0.1", 5050, Path("ca.pem")) if name == "fanout-max" else None
    with pytest.raises(ConfigError):
        run_workload(name, params, target=target, show_progress=False)


def test_bench_search_refuses_an_external_server() -> None:
    with pytest.raises(ConfigError, match="without --host"):
        run_workload("search", BenchParams(), target=Target("127.0.0.1", 5050, Path("ca.pem")))
