"""The group commit against a real SQLite file: when login times are written."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from securechat.protocol.frames import FrameDecoder
from securechat.protocol.messages import Ack, decode_event
from securechat.server.committer import LOGIN_FLUSH_SECONDS, Committer, PendingSend
from securechat.server.hub import Hub
from securechat.store.chat import ChatStore, NewMessage
from securechat.store.database import Database
from securechat.store.models import User


class _Inbox:
    """A hub member that keeps the frames the committer sends it."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.frames: queue.Queue[bytes] = queue.Queue()

    def send(self, frame: bytes) -> None:
        self.frames.put(frame)

    def next_event(self) -> object:
        decoder = FrameDecoder(max_frame=1 << 20)
        decoder.feed(self.frames.get(timeout=5))
        payload = decoder.next_frame()
        assert payload is not None
        return decode_event(payload)


@pytest.fixture
def committer(db: Database) -> Iterator[Committer]:
    store = ChatStore(db)
    running = Committer(store, Hub({"general": ["alice"]}))
    running.start()
    yield running
    running.stop()


def _user(db: Database, name: str) -> int:
    with db.session() as s, s.begin():
        user = User(name=name, password_hash="x")
        s.add(user)
        s.flush()
        return user.id


def _login_time(db: Database, user_id: int) -> object:
    with db.session() as s:
        return s.scalar(select(User.last_login_at).where(User.id == user_id))


def test_a_login_alone_is_written_within_the_flush_interval(
    db: Database, committer: Committer
) -> None:
    alice = _user(db, "alice")
    noted = time.monotonic()
    committer.note_login(alice)
    time.sleep(LOGIN_FLUSH_SECONDS / 3)
    assert _login_time(db, alice) is None  # waiting for a commit to ride along
    while _login_time(db, alice) is None:
        assert time.monotonic() - noted < LOGIN_FLUSH_SECONDS + 3, "login time never written"
        time.sleep(0.02)
    assert time.monotonic() - noted >= LOGIN_FLUSH_SECONDS * 0.9


def test_a_login_rides_along_with_the_next_message_commit(
    db: Database, committer: Committer
) -> None:
    alice = _user(db, "alice")
    ChatStore(db).join(alice, "general")
    committer.note_login(alice)
    inbox = _Inbox("alice")
    committer.submit(PendingSend(inbox, NewMessage(alice, "alice", "hi", "r1", room="general")))
    assert isinstance(inbox.next_event(), Ack)
    assert _login_time(db, alice) is not None  # same transaction as the acked message


def test_stop_writes_pending_login_times(db: Database) -> None:
    alice = _user(db, "alice")
    committer = Committer(ChatStore(db), Hub({}))
    committer.start()
    committer.note_login(alice)
    committer.stop()
    assert _login_time(db, alice) is not None


class _Broken(_Inbox):
    def send(self, frame: bytes) -> None:
        raise RuntimeError("a bug in one connection")


def test_a_failing_recipient_does_not_stop_delivery_to_the_others(db: Database) -> None:
    alice, bob, carol = _user(db, "alice"), _user(db, "bob"), _user(db, "carol")
    store = ChatStore(db)
    for user in (alice, bob, carol):
        store.join(user, "general")
    hub = Hub({"general": ["alice", "bob", "carol"]})
    sender, broken, receiver = _Inbox("alice"), _Broken("bob"), _Inbox("carol")
    for member in (sender, broken, receiver):
        hub.connect(member)
    committer = Committer(store, hub)
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
