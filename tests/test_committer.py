"""The group commit against a real SQLite file: login times, the commit-then-send pipeline."""

from __future__ import annotations

import datetime as dt
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import pytest
from sqlalchemy import Connection, select

from securechat.config import Limits
from securechat.errors import ErrorCode, ServerError, StoreError
from securechat.protocol.frames import FrameDecoder
from securechat.protocol.messages import Ack, Error, decode_event
from securechat.server.committer import LOGIN_FLUSH_SECONDS, Committer
from securechat.server.delivery import PendingSend
from securechat.server.hub import Hub
from securechat.store.chat import ChatStore
from securechat.store.database import Database
from securechat.store.message_rows import NewMessage, SaveResult
from securechat.store.models import User
from securechat.store.search import IndexPass
from tests.conftest import TIMEOUT
from tests.eventually import eventually

pytestmark = pytest.mark.postgresql


class _Inbox:
    """A hub member that keeps the frames the committer sends it."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.frames: queue.Queue[bytes] = queue.Queue()

    def send(self, frame: bytes) -> None:
        self.frames.put(frame)

    def next_event(self) -> object:
        """The first event of the next write."""
        return self.events(1)[0]

    def events(self, count: int) -> list[object]:
        """The next ``count`` events, however the writes joined them."""
        decoder = FrameDecoder(max_frame=1 << 20)
        events: list[object] = []
        while len(events) < count:
            decoder.feed(self.frames.get(timeout=TIMEOUT))
            while (payload := decoder.next_frame()) is not None:
                events.append(decode_event(payload))
        return events


@pytest.fixture
def committer(empty_db: Database) -> Iterator[Committer]:
    store = ChatStore(empty_db)
    running = Committer(store, Hub({"general": ["alice"]}), Limits())
    running.start()
    yield running
    running.stop()


def _user(database: Database, name: str) -> int:
    with database.session() as s, s.begin():
        user = User(name=name, password_hash="x")
        s.add(user)
        s.flush()
        return user.id


def _login_time(database: Database, user_id: int) -> object:
    with database.session() as s:
        return s.scalar(select(User.last_login_at).where(User.id == user_id))


def test_a_login_alone_is_written_within_the_flush_interval(
    empty_db: Database, committer: Committer
) -> None:
    alice = _user(empty_db, "alice")
    noted = time.monotonic()
    committer.note_login(alice)
    assert _login_time(empty_db, alice) is None  # waiting for a commit to ride along
    eventually(
        lambda: _login_time(empty_db, alice) is not None,
        "the login time was written",
        timeout=LOGIN_FLUSH_SECONDS + TIMEOUT,
        interval=0.02,
    )
    assert time.monotonic() - noted >= LOGIN_FLUSH_SECONDS * 0.9  # it did wait for a ride


def test_a_login_rides_along_with_the_next_message_commit(
    empty_db: Database, committer: Committer
) -> None:
    alice = _user(empty_db, "alice")
    ChatStore(empty_db).join(alice, "general")
    committer.note_login(alice)
    inbox = _Inbox("alice")
    committer.submit(PendingSend(inbox, NewMessage(alice, "alice", "hi", "r1", room="general")))
    assert isinstance(inbox.next_event(), Ack)
    assert _login_time(empty_db, alice) is not None  # same transaction as the acked message


def test_stop_writes_pending_login_times(empty_db: Database) -> None:
    alice = _user(empty_db, "alice")
    committer = Committer(ChatStore(empty_db), Hub({}), Limits())
    committer.start()
    committer.note_login(alice)
    committer.stop()
    assert _login_time(empty_db, alice) is not None


class _Broken(_Inbox):
    def send(self, frame: bytes) -> None:
        raise RuntimeError("a bug in one connection")


def test_a_failing_recipient_does_not_stop_delivery_to_the_others(empty_db: Database) -> None:
    alice, bob, carol = _user(empty_db, "alice"), _user(empty_db, "bob"), _user(empty_db, "carol")
    store = ChatStore(empty_db)
    for user in (alice, bob, carol):
        store.join(user, "general")
    hub = Hub({"general": ["alice", "bob", "carol"]})
    sender, broken, receiver = _Inbox("alice"), _Broken("bob"), _Inbox("carol")
    for member in (sender, broken, receiver):
        hub.connect(member)
    committer = Committer(store, hub, Limits())
    committer.start()
    try:
        for ref in ("r1", "r2"):
            message = NewMessage(alice, "alice", f"hello {ref}", ref, room="general")
            committer.submit(PendingSend(sender, message))
            assert isinstance(sender.next_event(), Ack)
        bodies = [getattr(receiver.next_event(), "body", None) for _ in range(2)]
    finally:
        committer.stop()
    assert bodies == ["hello r1", "hello r2"]


class _HeldCommit(ChatStore):
    """Runs ``meanwhile`` after a batch's rows are written and handed over, before COMMIT."""

    def __init__(self, database: Database, meanwhile: Callable[[], None]) -> None:
        super().__init__(database)
        self._meanwhile = meanwhile

    def save_messages(
        self,
        batch: Sequence[NewMessage],
        *,
        logins: Mapping[int, dt.datetime] | None = None,
        session_ends: Mapping[int, dt.datetime] | None = None,
        connection: Connection | None = None,
        before_commit: Callable[[list[SaveResult]], None] | None = None,
        index: IndexPass | None = None,
    ) -> list[SaveResult]:
        assert before_commit is not None  # the committer always hands its results over
        hand_over = before_commit

        def held(results: list[SaveResult]) -> None:
            hand_over(results)
            self._meanwhile()

        return super().save_messages(
            batch, logins=logins, session_ends=session_ends, connection=connection,
            before_commit=held, index=index,
        )  # fmt: skip


def _room_of_three(database: Database) -> tuple[list[int], Hub, _Inbox, _Inbox]:
    ids = [_user(database, name) for name in ("alice", "bob", "carol")]
    store = ChatStore(database)
    for user in ids:
        store.join(user, "general")
    hub = Hub({"general": ["alice", "bob", "carol"]})
    sender, receiver = _Inbox("alice"), _Inbox("bob")
    hub.connect(sender)
    hub.connect(receiver)
    return ids, hub, sender, receiver


def test_nothing_goes_out_before_the_commit_and_a_session_that_came_meanwhile_is_served(
    empty_db: Database,
) -> None:
    (alice, _, _), hub, sender, receiver = _room_of_three(empty_db)
    late = _Inbox("carol")
    seen_before_commit: list[bool] = []

    def login_during_commit() -> None:
        time.sleep(0.3)  # time enough for the delivery thread to encode and address
        seen_before_commit.append(sender.frames.empty() and receiver.frames.empty())
        hub.connect(late)  # its welcome's last id would not include the message

    committer = Committer(_HeldCommit(empty_db, login_during_commit), hub, Limits())
    committer.start()
    try:
        committer.submit(
            PendingSend(sender, NewMessage(alice, "alice", "hi", "r1", room="general"))
        )
        assert isinstance(sender.next_event(), Ack)
        assert getattr(receiver.next_event(), "body", None) == "hi"
        assert getattr(late.next_event(), "body", None) == "hi"
    finally:
        committer.stop()
    assert seen_before_commit == [True]


def test_a_commit_that_fails_after_the_hand_over_sends_only_the_refusal(empty_db: Database) -> None:
    (alice, _, _), hub, sender, receiver = _room_of_three(empty_db)

    def fail_commit() -> None:
        raise StoreError("database error: disk I/O error")

    committer = Committer(_HeldCommit(empty_db, fail_commit), hub, Limits())
    committer.start()
    try:
        committer.submit(
            PendingSend(sender, NewMessage(alice, "alice", "hi", "r1", room="general"))
        )
        refusal = sender.next_event()
    finally:
        committer.stop()
    assert isinstance(refusal, Error)
    assert (refusal.code, refusal.ref) == (ErrorCode.SERVER_ERROR, "r1")
    assert sender.frames.empty()
    assert receiver.frames.empty()
    assert ChatStore(empty_db).room_history("general", before=None, limit=10)[0] == []


def test_sends_beyond_the_queue_bound_are_refused_as_overload(empty_db: Database) -> None:
    (alice, _, _), hub, sender, _ = _room_of_three(empty_db)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        holding.set()
        release.wait(5)

    committer = Committer(_HeldCommit(empty_db, hold), hub, Limits(commit_queue=3))
    committer.start()
    outcomes: list[str] = []
    try:
        for n in range(8):  # the first is held in its commit, 3 wait, the rest are refused
            message = NewMessage(alice, "alice", f"m{n}", f"r{n}", room="general")
            try:
                committer.submit(PendingSend(sender, message))
                outcomes.append("queued")
            except ServerError as exc:
                outcomes.append(exc.message)
            if n == 0:
                assert holding.wait(5), "the committer never took the first send"
    finally:
        release.set()
        committer.stop()
    overloaded = "the server is overloaded; resend later with the same ref"
    assert outcomes == ["queued"] * 4 + [overloaded] * 4
    acks = [e for e in sender.events(4) if isinstance(e, Ack)]
    assert [a.ref for a in acks] == ["r0", "r1", "r2", "r3"]


def test_sends_beyond_the_queued_bytes_bound_are_refused_as_overload(empty_db: Database) -> None:
    (alice, _, _), hub, sender, _ = _room_of_three(empty_db)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        holding.set()
        release.wait(5)

    body = "x" * 4000  # max_body: each waiting send holds about 4 KiB
    bound = 40 * sys.getsizeof(body)
    committer = Committer(_HeldCommit(empty_db, hold), hub, Limits(commit_queue_bytes=bound))
    committer.start()
    outcomes: list[str] = []
    try:
        committer.submit(
            PendingSend(sender, NewMessage(alice, "alice", body, "r0", room="general"))
        )
        assert holding.wait(5), "the committer never took the first send"
        for n in range(1, 200):  # commit_queue (a count) is 50,000: only the bytes can refuse
            message = NewMessage(alice, "alice", body, f"r{n}", room="general")
            try:
                committer.submit(PendingSend(sender, message))
                outcomes.append("queued")
            except ServerError as exc:
                outcomes.append(exc.message)
                break
    finally:
        release.set()
        committer.stop()
    # Checked before each put: 40 bodies reach the bound, the 41st is refused.
    overloaded = "the server is overloaded; resend later with the same ref"
    assert outcomes == ["queued"] * 40 + [overloaded]
    assert len(sender.events(41)) == 41  # every queued send is stored and acked


def test_a_send_whose_sender_was_deleted_fails_alone_and_its_batch_is_acked(
    empty_db: Database,
) -> None:
    (alice, bob, carol), hub, sender, receiver = _room_of_three(empty_db)
    third = _Inbox("carol")
    hub.connect(third)
    holding, release = threading.Event(), threading.Event()

    def hold_the_first() -> None:
        if not holding.is_set():
            holding.set()
            release.wait(5)

    with empty_db.session() as s, s.begin():
        s.delete(s.get_one(User, bob))  # bob's session has not noticed yet
    committer = Committer(_HeldCommit(empty_db, hold_the_first), hub, Limits())
    committer.start()
    try:
        committer.submit(
            PendingSend(sender, NewMessage(alice, "alice", "m0", "r0", room="general"))
        )
        assert holding.wait(5), "the committer never took the first send"
        for origin, user_id, name in (
            (sender, alice, "alice"),
            (receiver, bob, "bob"),
            (third, carol, "carol"),
        ):
            message = NewMessage(user_id, name, f"from {name}", f"{name}-1", room="general")
            committer.submit(PendingSend(origin, message))
        release.set()  # the three wait in the queue: one batch
        acks = [e for e in sender.events(3) if isinstance(e, Ack)]
        refusal = next(e for e in receiver.events(3) if isinstance(e, Error))
        carol_ack = next(e for e in third.events(3) if isinstance(e, Ack))
    finally:
        release.set()
        committer.stop()
    assert [a.ref for a in acks] == ["r0", "alice-1"]
    assert (refusal.code, refusal.ref) == (ErrorCode.SERVER_ERROR, "bob-1")
    assert carol_ack.ref == "carol-1"
    stored = ChatStore(empty_db).room_history("general", before=None, limit=10)[0]
    assert [m.body for m in stored] == ["m0", "from alice", "from carol"]
