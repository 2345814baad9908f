"""When the group commit indexes messages for search (server/indexing.py), against a real
SQLite file: at once when quiet, after a burst when idle, and never more than the lag behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from securechat.config import Limits
from securechat.protocol.messages import Ack
from securechat.server.committer import Committer
from securechat.server.delivery import PendingSend
from securechat.server.hub import Hub
from securechat.server.indexing import IDLE_SECONDS, QUIET_BATCH, SearchIndexing
from securechat.store.chat import ChatStore
from securechat.store.database import Database
from securechat.store.journal import Tx
from securechat.store.message_rows import NewMessage
from securechat.store.search import FTS_TABLE, IndexPass
from tests.eventually import eventually
from tests.test_committer import _Inbox, _user


def _indexed(database: Database) -> int:
    with database.engine.begin() as connection:
        connection.execute(
            text(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('integrity-check')")
        )
        count = connection.execute(text(f"SELECT count(*) FROM {FTS_TABLE}_docsize")).scalar()
    assert isinstance(count, int)
    return count


@pytest.fixture
def alice(empty_db: Database) -> int:
    user = _user(empty_db, "alice")
    ChatStore(empty_db).join(user, "general")
    return user


def _running(database: Database, limits: Limits) -> Committer:
    committer = Committer(ChatStore(database), Hub({"general": ["alice"]}), limits)
    committer.start()
    return committer


def _burst(committer: Committer, alice: int, count: int) -> list[object]:
    """``count`` sends queued while the committer is held, so they are stored as one batch."""
    release, holding = threading.Event(), threading.Event()

    def hold(_tx: Tx) -> None:
        holding.set()
        release.wait(10)

    holder = threading.Thread(target=committer.perform, args=(hold,), kwargs={"origin": None})
    holder.start()
    try:
        assert holding.wait(10)
        inbox = _Inbox("alice")
        for n in range(count):
            message = NewMessage(alice, "alice", f"burst words {n}", f"b{n}", room="general")
            committer.submit(PendingSend(inbox, message))
    finally:
        release.set()
        holder.join(10)
    return inbox.events(count)


@pytest.fixture
def committer(empty_db: Database, alice: int) -> Iterator[Committer]:
    running = _running(empty_db, Limits())
    yield running
    running.stop()


def test_a_quiet_send_is_indexed_in_its_own_transaction(
    empty_db: Database, alice: int, committer: Committer
) -> None:
    inbox = _Inbox("alice")
    committer.submit(
        PendingSend(inbox, NewMessage(alice, "alice", "quiet words", "q", room="general"))
    )
    assert isinstance(inbox.next_event(), Ack)
    assert _indexed(empty_db) == 1  # already, not after an idle wait
    assert ChatStore(empty_db).search_backlog() == 0


def test_a_burst_is_acked_first_and_indexed_when_the_committer_is_idle(
    empty_db: Database, alice: int, committer: Committer
) -> None:
    acks = _burst(committer, alice, 50)
    assert all(isinstance(ack, Ack) for ack in acks)
    store = ChatStore(empty_db)
    # Searchable at once, from the backlog, though (most likely) not indexed yet.
    assert len(store.search(alice, "burst words", before=None, limit=100, scan=1000).matches) == 50
    eventually(lambda: not store.search_backlog(), "the backlog was indexed", interval=IDLE_SECONDS)
    assert _indexed(empty_db) == 50
    assert len(store.search(alice, "burst words", before=None, limit=100, scan=1000).matches) == 50


def test_past_the_lag_every_batch_is_indexed_busy_or_not(empty_db: Database, alice: int) -> None:
    committer = _running(empty_db, Limits(search_index_lag=10, search_index_step=5))
    try:
        assert all(isinstance(ack, Ack) for ack in _burst(committer, alice, 50))
        assert ChatStore(empty_db).search_backlog() == 0  # indexed with the batch, no idle wait
        assert _indexed(empty_db) == 50
    finally:
        committer.stop()


def test_the_policy_defers_busy_batches_within_the_lag(empty_db: Database) -> None:
    indexing = SearchIndexing(
        ChatStore(empty_db), Limits(search_index_lag=100, search_index_step=8)
    )
    indexing.start()
    assert indexing.backlog == 0
    assert indexing.for_batch(QUIET_BATCH, others_waiting=False) == IndexPass(QUIET_BATCH)
    assert indexing.for_batch(1, others_waiting=True) is None  # others queued: busy
    assert indexing.for_batch(QUIET_BATCH + 1, others_waiting=False) is None
    assert indexing.backlog == QUIET_BATCH + 2
    # Quiet again: the batch and a step of the backlog.
    assert indexing.for_batch(1, others_waiting=False) == IndexPass(1 + 8)
    assert indexing.for_batch(200, others_waiting=True) is not None  # past the lag
    assert indexing.idle_wait() == IDLE_SECONDS
