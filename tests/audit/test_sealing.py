"""Sealing on both engines: every committed record once, in a chain; a backlog split into several seals."""

from __future__ import annotations

from sqlalchemy import text

from ledger.db.engine import Database
from ledger.money import Money
from ledger.services.audit import seals, verify
from ledger.services.audit.header import GENESIS
from ledger.services.journal import post_entries
from ledger.settings import Settings
from tests.audit.conftest import pay, seal
from tests.ledger.builders import captured


def test_each_committed_record_is_sealed_once_into_a_chain(db: Database, settings: Settings) -> None:
    assert seal(db) is None  # nothing to seal
    pay(db, settings, 5)  # five payments and one consumption: 6 entries, 12 postings
    first = seal(db)
    assert first is not None
    assert (first.seal_no, first.record_count, first.previous_hash) == (1, 18, GENESIS)
    assert seal(db) is None
    pay(db, settings, 3, start=5)
    second = seal(db)
    assert second is not None
    assert (second.seal_no, second.record_count) == (2, 4 * 3)
    with db.read() as session:
        assert second.previous_hash == seals.load(session, 1).stored_hash  # type: ignore[union-attr]
        for kind in second.kinds:
            assert kind.first_position == first.kind(kind.kind).end_position  # type: ignore[union-attr]
        report = verify.verify(session)
    assert report.ok, report.findings
    assert (report.seals, report.records, report.unsealed) == (
        2,
        30,
        {"entry": 0, "posting": 0, "resolution": 0, "stamp_event": 0},
    )
    empty = seal(db, force=True)
    assert empty is not None
    assert (empty.seal_no, empty.record_count) == (3, 0)


def test_a_backlog_larger_than_a_seal_is_split_without_splitting_a_transaction(
    db: Database, settings: Settings
) -> None:
    with db.write() as session:  # one transaction of 40 entries (batched ingestion)
        post_entries(
            session, [captured(settings.chart, Money(100 + n, "EUR"), payment=f"b-{n}") for n in range(40)]
        )
    pay(db, settings, 12, start=100)
    cut = []
    while (header := seal(db, max_records=10)) is not None:
        cut.append(header)
    assert len(cut) > 3
    with db.read() as session:
        entries = session.execute(text("SELECT count(*) FROM entries")).scalar_one()
        report = verify.verify(session)
    assert report.ok, report.findings  # old records in later seals are not taken for back-dated ones
    counted = [h.kind("entry") for h in cut]
    assert sum(k.record_count for k in counted if k is not None) == entries
    if db.dialect == "postgresql":
        # One transaction is never split: its 40 entries and 80 postings are in the first seal together.
        assert (cut[0].kind("entry").record_count, cut[0].kind("posting").record_count) == (40, 80)  # type: ignore[union-attr]
