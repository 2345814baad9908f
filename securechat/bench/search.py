"""The search workload: how long the first page of a ``search`` takes over a full database.

The throwaway database is filled before its server starts (:func:`fill`), straight
through the store's engine in large transactions, each of which indexes its rows for
search as the server's group commit would. Bodies are 4 to 20 words from a list of everyday
words; about one message in 100,000 carries one of a few rare words. The messages are
spread over :data:`ROOMS` rooms and direct conversations among the bench users; the
searching user (``PREFIX0``) is in a quarter of the rooms, so about three matches in four
are skipped as not theirs, as in a real office where most rooms are other teams'.

Then one logged-in :class:`~securechat.client.Client` asks each query of
:data:`QUERIES` in turn, ``--queries`` times in all, and the round trip of each first
page (:data:`PAGE` results) is timed: percentiles per kind (common, rare, absent) and
over all.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from securechat.bench.report import Check, Report
from securechat.bench.run import BenchParams, Run
from securechat.bench.stats import summarize_values
from securechat.bench.target import Target
from securechat.client import Client
from securechat.store import bulk
from securechat.store.database import open_database

DEFAULT_MESSAGES = 1_000_000
DEFAULT_QUERIES = 300
USERS = 50
ROOMS = 20
SEARCHER_ROOMS = 5  # of ROOMS: the searcher's share of room messages
DIRECT_SHARE = 0.1  # of messages: direct ones, between random pairs of users
RARE_SHARE = 1e-5  # of messages: those with a rare word
PAGE = 20
BATCH = 20_000  # rows per transaction while filling
TARGET_P99_MS = 100.0

WORDS = (  # noqa: SIM905  (a word list reads best as text)
    "the be to of and a in that have it for not on with he as you do at this but his by from "
    "they we say her she or an will my one all would there their what so up out if about who "
    "get which go me when make can like time no just him know take people into year your good "
    "some could them see other than then now look only come its over think also back after use "
    "two how our work first well way even new want because any these give day most us meeting "
    "deploy release server build test review ticket customer invoice report budget schedule "
    "tomorrow today lunch coffee printer network password laptop office project deadline "
    "update design draft merge branch issue bug fix feature sprint backlog standup demo client "
    "contract quarter sales support ops backup database restart monitor alert outage incident "
    "please thanks sorry okay sure maybe later soon morning afternoon evening week month "
    "monday friday team manager call email slides notes agenda"
).split()
RARE_WORDS = ("xylophone", "quokka", "zeppelin", "kumquat", "marzipan")
QUERIES: dict[str, tuple[str, ...]] = {
    "common": ("the", "meeting", "deploy", "ing the", "tomorrow", "password"),
    "rare": ("xylophone", "quokka", "zeppel", "kumquat", "marzipan"),
    "absent": ("qqqzzz", "no such words"),
}


def room_name(index: int) -> str:
    return f"bench-room-{index:02d}"


def fill(db_url: str, *, messages: int, user_names: list[str], seed: int = 16) -> float:
    """Store ``messages`` chat messages among ``user_names``; returns the seconds it took.

    ``user_names[0]`` is the searcher: a member of the first :data:`SEARCHER_ROOMS` rooms;
    every other user is in every room.
    """
    started = time.perf_counter()
    rng = random.Random(seed)
    database = open_database(db_url)
    try:
        ids = bulk.user_ids(database, user_names)
        members = {room_name(r): ids if r < SEARCHER_ROOMS else ids[1:] for r in range(ROOMS)}
        room_ids = sorted(bulk.add_rooms(database, members).values())
        end_ms = int(time.time() * 1000)
        step_ms = max(365 * 86_400_000 // max(messages, 1), 1)  # a year of messages
        for start in range(0, messages, BATCH):
            bulk.add_messages(database, [
                _row(rng, ids, user_names, room_ids, end_ms - (messages - n) * step_ms)
                for n in range(start, min(start + BATCH, messages))
            ])  # fmt: skip
    finally:
        database.dispose()
    return time.perf_counter() - started


def _row(
    rng: random.Random,
    ids: list[int],
    names: list[str],
    room_ids: list[int],
    ts_ms: int,
) -> dict[str, object]:
    words = rng.choices(WORDS, k=rng.randint(4, 20))
    if rng.random() < RARE_SHARE * len(RARE_WORDS):
        words.insert(rng.randrange(len(words)), rng.choice(RARE_WORDS))
    sender = rng.randrange(len(ids))
    row: dict[str, object] = {
        "sender_id": ids[sender], "sender": names[sender], "body": " ".join(words).capitalize(),
        "ts_ms": ts_ms, "kind": "message", "deleted": False,
        "room_id": None, "recipient_id": None, "recipient": None,
    }  # fmt: skip
    if rng.random() < DIRECT_SHARE:
        peer = rng.randrange(len(ids))
        row.update(recipient_id=ids[peer], recipient=names[peer])
    else:
        row["room_id"] = rng.choice(room_ids)
    return row


def preparer(params: BenchParams, server: dict[str, Any]) -> Callable[[str, Target], None]:
    """Fills the throwaway server's database before the server starts; says so in ``server``."""
    messages = params.messages or DEFAULT_MESSAGES

    def prepare(db_url: str, target: Target) -> None:
        names = [target.user(i) for i in range(USERS)]
        seconds = fill(db_url, messages=messages, user_names=names)
        server["database"] = f"{messages:,} messages stored before the start, in {seconds:.0f} s"

    return prepare


def drop_index(db_url: str, target: Target) -> None:
    """No search index (the bench's ``--no-search-index``), so a fan-out can be measured
    without the index's cost."""
    database = open_database(db_url)
    try:
        bulk.drop_search_index(database)
    finally:
        database.dispose()


def search_workload(run: Run, server: dict[str, Any]) -> Report:
    """Time the first page of each query, asked one after another by one client."""
    p = run.params
    messages = p.messages or DEFAULT_MESSAGES
    count = p.queries or DEFAULT_QUERIES
    report = Report(run.name, server, {"messages": messages, "queries": count, "page": PAGE,
                    "rooms": ROOMS, "searcher_rooms": SEARCHER_ROOMS, "users": USERS})  # fmt: skip
    order = [(kind, q) for kind, queries in QUERIES.items() for q in queries]
    samples: dict[str, list[int]] = {kind: [] for kind in QUERIES}
    found: dict[str, int] = {}
    t = run.target
    run.progress.phase("searching", count)
    client = Client(
        t.host, t.port, ca_file=t.ca_file, user=t.user(0), password=t.password, timeout=60
    )
    with client:  # connects
        for n in range(count):
            kind, query = order[n % len(order)]
            started = time.perf_counter_ns()
            page = client.search(query, limit=PAGE)
            samples[kind].append(time.perf_counter_ns() - started)
            found[query] = len(page.messages)
            run.progress.update(n + 1)
    summaries = {kind: summarize_values(values) for kind, values in samples.items()}
    overall = summarize_values(v for values in samples.values() for v in values)
    report.results = {"latency": summaries, "overall": overall, "first_page_sizes": found}
    rows = [[kind, str(len(samples[kind])), str(s["p50_ms"]), str(s["p99_ms"]), str(s["max_ms"])]
            for kind, s in summaries.items()]  # fmt: skip
    rows.append(
        ["all", str(count), str(overall["p50_ms"]), str(overall["p99_ms"]), str(overall["max_ms"])]
    )
    report.tables.append(
        ("first page of a search", ["queries", "n", "p50 ms", "p99 ms", "max ms"], rows)
    )
    report.rows.append(("first page sizes", ", ".join(f"{q!r}: {n}" for q, n in found.items())))
    if "database" in server:
        report.rows.append(("database", server["database"]))
    if not any(found[q] for q in QUERIES["common"]):
        report.failures.append("no common query found anything: is the database filled?")
    p99 = overall["p99_ms"]
    report.checks.append(
        Check(f"search first page p99 ({messages:,} messages)", f"< {TARGET_P99_MS:g} ms",
              f"{p99} ms", p99 < TARGET_P99_MS)
    )  # fmt: skip
    report.notes.append(
        f"the searcher is in {SEARCHER_ROOMS} of {ROOMS} rooms and in direct conversations with"
        f" {USERS - 1} users; {DIRECT_SHARE:.0%} of messages are direct; one query at a time"
    )
    return report
