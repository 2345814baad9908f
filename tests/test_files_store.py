"""The files' rows (store/attachments.py, #27) on SQLite and PostgreSQL: tickets are used
once and expire, an unsent upload is its uploader's alone, and what the collector takes."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from securechat.attachments.layout import new_file_id
from securechat.store.attachments import FileInfo, FileRecords, Ticket
from securechat.store.database import Database
from securechat.store.file_models import StoredFile
from securechat.store.models import User, utcnow

pytestmark = pytest.mark.postgresql


def _ids(db: Database) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {name: uid for name, uid in conn.execute(select(User.name, User.id))}


def test_a_ticket_opens_one_request_before_it_expires(users_db: Database) -> None:
    records, alice = FileRecords(users_db), _ids(users_db)["alice"]
    later = utcnow() + dt.timedelta(seconds=60)
    records.add_ticket("t1", Ticket(alice, upload_name="a", upload_size=1), expires_at=later)
    taken = records.take_ticket("t1")
    assert taken is not None
    assert (taken.user, taken.upload_size) == ("alice", 1)
    assert records.take_ticket("t1") is None  # used up
    gone = utcnow() - dt.timedelta(seconds=1)
    records.add_ticket("t2", Ticket(alice, file_id=new_file_id()), expires_at=gone)
    assert records.take_ticket("t2") is None  # expired
    assert records.take_ticket("never given") is None


def test_an_unsent_upload_is_its_uploader_s_alone_and_collected_in_time(
    users_db: Database,
) -> None:
    records, ids = FileRecords(users_db), _ids(users_db)
    info = FileInfo(id=new_file_id(), name="a.txt", size=3, content_type="text/plain")
    records.add_file(info, uploader_id=ids["alice"], uploader="alice")
    assert records.readable(ids["alice"], info.id) is not None
    assert records.readable(ids["bob"], info.id) is None
    assert records.uploaded_since(ids["alice"], utcnow() - dt.timedelta(days=1)) == 3
    assert records.collectable(unsent_before=utcnow() - dt.timedelta(days=1)) == []
    assert records.collectable(unsent_before=utcnow() + dt.timedelta(seconds=1)) == [info.id]
    with users_db.engine.begin() as conn:  # its uploader deleted: nobody's, collected now
        conn.execute(update(StoredFile).values(uploader_id=None))
    assert records.readable(ids["alice"], info.id) is None
    assert records.collectable(unsent_before=utcnow() - dt.timedelta(days=1)) == [info.id]
    records.forget([info.id])
    assert records.collectable(unsent_before=utcnow() + dt.timedelta(days=1)) == []
