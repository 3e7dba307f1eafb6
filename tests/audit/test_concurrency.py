"""Sealing while payments commit (PostgreSQL): every record is sealed exactly once, a late one later."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import text

from ledger.db.engine import Database
from ledger.money import Money
from ledger.services.audit import seals, verify
from ledger.services.audit.kinds import ENTRY
from ledger.services.journal import post_entry
from ledger.settings import Settings
from tests.audit.conftest import seal
from tests.ledger.builders import captured

pytestmark = pytest.mark.postgres_only


def _sealed_in(db: Database, entry_id: uuid.UUID) -> int | None:
    with db.read() as session:
        return seals.seal_of(session, ENTRY, "t.id = :id", {"id": entry_id})


def test_concurrent_writers_and_a_late_commit_are_each_sealed_exactly_once(
    pg_db: Database, settings: Settings
) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []
    late_written = threading.Event()
    late_commit = threading.Event()
    late_id: list[uuid.UUID] = []

    def writer(client: int) -> None:
        number = 0
        try:
            while not stop.is_set():
                with pg_db.write() as session:
                    post_entry(
                        session,
                        captured(settings.chart, Money(100 + number, "EUR"), payment=f"c{client}-{number}"),
                    )
                number += 1
        except BaseException as error:
            errors.append(error)

    def late() -> None:
        # Writes its entry early, then commits only after several seals were cut around it.
        try:
            with pg_db.write() as session:
                late_id.append(
                    post_entry(session, captured(settings.chart, Money(1, "EUR"), payment="late")).entry_id
                )
                late_written.set()
                late_commit.wait(30)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(client,)) for client in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(5):
        seal(pg_db)
        time.sleep(0.05)
    holder = threading.Thread(target=late)
    holder.start()
    late_written.wait(10)
    cut_while_open = []
    for _ in range(15):
        header = seal(pg_db)  # only what committed below the late transaction can be sealed now
        if header is not None:
            cut_while_open.append(header.seal_no)
        time.sleep(0.05)
    assert cut_while_open
    assert _sealed_in(pg_db, late_id[0]) is None  # not visible yet, so in no seal
    late_commit.set()
    holder.join()
    for _ in range(10):
        seal(pg_db)
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors
    while seal(pg_db) is not None:
        pass
    with pg_db.read() as session:
        report = verify.verify(session)
        counts = session.execute(
            text("SELECT kind, sum(record_count) FROM audit_seal_kinds GROUP BY kind ORDER BY kind")
        ).all()
        entries = session.execute(text("SELECT count(*) FROM entries")).scalar_one()
        postings = session.execute(text("SELECT count(*) FROM postings")).scalar_one()
    assert report.ok, report.findings
    assert report.unsealed == {"entry": 0, "posting": 0, "resolution": 0, "stamp_event": 0}
    assert dict(counts) == {"entry": entries, "posting": postings, "resolution": 0, "stamp_event": 0}
    assert entries > 20
    late_seal = _sealed_in(pg_db, late_id[0])
    assert late_seal is not None
    assert late_seal > max(cut_while_open, default=0)
