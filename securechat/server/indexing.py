"""When the group commit indexes new messages for search (SQLite's FTS5 index).

Theory of operation: indexing a message costs about 60 µs of CPU, a third of what its
fan-out to fifty members costs, so it is done when the committer is not busy rather than
on every insert (``store/search.py`` explains the index's mark and how search still finds
what is not indexed yet):

- A quiet batch (a few sends, nobody else waiting) is indexed in its own transaction, so
  at office load every message is searchable through the index as soon as it is acked,
  as with a trigger.
- A busy batch (a burst) is stored and delivered without indexing; its rows wait.
- After :data:`IDLE_SECONDS` with nothing to commit, the committer indexes the backlog,
  ``Limits.search_index_step`` ids a transaction, until it is done or work arrives.
- The backlog never exceeds ``Limits.search_index_lag`` by more than a batch: beyond it,
  every batch is indexed and a step of the backlog with it, busy or not, so under
  sustained overload the index costs what a trigger would.
- A failed pass stops the passes in message transactions; one in its own transaction is
  tried every :data:`RETRY_SECONDS` until it succeeds. Meanwhile search finds the rows
  above the mark by scanning them, more slowly as they add up.

Only the committer thread uses a :class:`SearchIndexing` (it is not locked). The backlog
it keeps is an estimate between index passes (each send counts one id; a team operation's
rows are counted at the next pass), made exact by every pass.
"""

from __future__ import annotations

import logging

from securechat.config import Limits
from securechat.errors import StoreError
from securechat.store.chat import ChatStore
from securechat.store.database import CommitConnection
from securechat.store.search import IndexPass

log = logging.getLogger("securechat.server")

#: A batch of at most this many sends, with nothing else queued, is a quiet one.
QUIET_BATCH = 4
#: How long the committer waits for work before it indexes the backlog.
IDLE_SECONDS = 0.05
#: After a failed index pass, how long before the next try.
RETRY_SECONDS = 5.0


class SearchIndexing:
    """The committer's indexing policy, and its estimate of the backlog."""

    def __init__(self, store: ChatStore, limits: Limits) -> None:
        self._store = store
        self._lag = limits.search_index_lag
        self._step = limits.search_index_step
        self._backlog: int | None = None  # None: nothing to index (PostgreSQL, no index)
        self._failed = False

    def start(self) -> None:
        """Read the backlog left by the last run (or by tools that wrote rows)."""
        try:
            self._backlog = self._store.search_backlog()
        except StoreError as exc:  # the next pass finds out, or logs why not
            log.warning("could not read the search index's backlog: %s", exc.message)
            self._backlog = 1

    @property
    def backlog(self) -> int | None:
        return self._backlog

    def for_batch(self, size: int, *, others_waiting: bool) -> IndexPass | None:
        """The index pass to run in the transaction that stores ``size`` sends, if any."""
        if self._backlog is None or self._failed or size == 0:
            return None
        behind = self._backlog + size
        if behind > self._lag:
            return IndexPass(size + self._step)
        if size <= QUIET_BATCH and not others_waiting:
            return IndexPass(size + (self._step if self._backlog else 0))
        self._backlog = behind  # a burst: stored now, indexed later
        return None

    def saved(self, index: IndexPass | None) -> None:
        """Learn the exact backlog from a pass that was committed."""
        if index is not None:
            self._backlog = index.backlog

    def not_saved(self, index: IndexPass | None) -> None:
        """The transaction with ``index`` failed: its senders resend, and until a pass of
        its own succeeds (:meth:`catch_up`), no batch carries one, so a broken index can
        cost one batch, never every send."""
        if index is not None:
            self._failed = True

    def idle_wait(self) -> float | None:
        """How long to wait for work before :meth:`catch_up`; None: nothing to catch up."""
        if not self._backlog:
            return None
        return RETRY_SECONDS if self._failed else IDLE_SECONDS

    def catch_up(self, connection: CommitConnection | None) -> None:
        """Index one step of the backlog in a transaction of its own."""
        try:
            self._backlog = self._store.index_for_search(self._step, connection=connection)
        except StoreError as exc:  # search still finds these rows, by scanning them
            if not self._failed:
                log.error("could not index messages for search: %s", exc.message)
            self._failed = True
            return
        if self._failed:
            log.info("indexing messages for search again")
        self._failed = False
