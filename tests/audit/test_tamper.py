"""Tampering with the database behind the service's back: each time the verifier names the damage."""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from ledger.db.engine import Database
from ledger.db.types import to_micros
from ledger.services import clock
from ledger.services.audit import verify
from ledger.services.audit.findings import Problem, Report
from ledger.services.audit.seals import load_range
from ledger.settings import Settings
from tests.audit.conftest import behind_the_back, pay, seal
from tests.conftest import fresh_database_url


def _verify(db: Database, *, deep: bool = False) -> Report:
    with db.read() as session:
        return verify.verify(session, deep=deep)


def _key(db: Database, entry_id: uuid.UUID) -> object:
    return entry_id if db.dialect == "postgresql" else entry_id.bytes


@pytest.fixture
def sealed(db: Database, settings: Settings) -> list[uuid.UUID]:
    """Two seals over a dozen entries, and a clean verification to start from."""
    ids = pay(db, settings, 6)
    assert seal(db) is not None
    ids += pay(db, settings, 4, start=6)
    assert seal(db) is not None
    report = _verify(db)
    assert report.ok, report.findings
    return ids


@pytest.mark.parametrize("deep", [False, True])
def test_an_entry_updated_with_the_triggers_off_is_named_as_altered(
    db: Database, sealed: list[uuid.UUID], deep: bool
) -> None:
    victim = sealed[3]
    with behind_the_back(db) as connection:
        changed = connection.execute(
            text("UPDATE entries SET payment_ref = 'pay-forged' WHERE id = :id"), {"id": _key(db, victim)}
        )
        assert changed.rowcount == 1
    report = _verify(db, deep=deep)
    first = report.first()
    assert first is not None
    assert (first.problem, first.seal_no, first.kind, first.key) == (Problem.ALTERED, 1, "entry", str(victim))
    assert [f.problem for f in report.findings] == [Problem.ALTERED]


def test_a_deleted_entry_and_its_postings_are_named_as_removed(db: Database, sealed: list[uuid.UUID]) -> None:
    victim = sealed[-1]
    with behind_the_back(db) as connection:
        connection.execute(text("DELETE FROM postings WHERE entry_id = :id"), {"id": _key(db, victim)})
        connection.execute(text("DELETE FROM entries WHERE id = :id"), {"id": _key(db, victim)})
    report = _verify(db)
    named = {(f.problem, f.kind, f.key) for f in report.findings}
    assert named == {
        (Problem.REMOVED, "entry", str(victim)),
        (Problem.REMOVED, "posting", f"{victim} line 1"),
        (Problem.REMOVED, "posting", f"{victim} line 2"),
    }
    assert {f.seal_no for f in report.findings} == {2}


def test_two_swapped_postings_are_named(db: Database, sealed: list[uuid.UUID]) -> None:
    victim = sealed[0]
    with behind_the_back(db) as connection:
        rows = connection.execute(
            text("SELECT line_no, account_id FROM postings WHERE entry_id = :id ORDER BY line_no"),
            {"id": _key(db, victim)},
        ).all()
        for (line, _), (_, other_account) in zip(rows, reversed(rows), strict=True):
            connection.execute(
                text("UPDATE postings SET account_id = :account WHERE entry_id = :id AND line_no = :line"),
                {"account": other_account, "id": _key(db, victim), "line": line},
            )
    report = _verify(db)
    assert [(f.problem, f.key) for f in report.findings] == [
        (Problem.ALTERED, f"{victim} line 1"),
        (Problem.ALTERED, f"{victim} line 2"),
    ]


def _insert_backdated(db: Database, settings: Settings, days: int) -> uuid.UUID:
    """An entry and its postings as an administrator would slip them in: dated `days` ago."""
    entry_id = uuid.uuid4()
    moment = to_micros(clock.now() - timedelta(days=days))
    key = _key(db, entry_id)
    with behind_the_back(db) as connection:
        accounts: dict[str, int] = dict(connection.execute(text("SELECT code, id FROM accounts")).all())
        for line, (code, amount) in enumerate(
            [("assets:clearing:sandbox:EUR", 990000), ("liabilities:stamps-outstanding:FR-PAR", -990000)], 1
        ):
            connection.execute(
                text(
                    "INSERT INTO postings (entry_id, line_no, account_id, currency, amount, effective_at,"
                    " consulate, fee_code) VALUES (:id, :line, :account, 'EUR', :amount, :at, 'FR-PAR', '')"
                ),
                {"id": key, "line": line, "account": accounts[code], "amount": amount, "at": moment},
            )
        connection.execute(
            text(
                "INSERT INTO entries (id, kind, consulate, effective_at, recorded_at, posting_count, memo)"
                " VALUES (:id, 'payment_captured', 'FR-PAR', :at, :at, 2, '{}')"
            ),
            {"id": key, "at": moment},
        )
    return entry_id


def test_a_back_dated_entry_slipped_in_is_named_before_and_after_the_next_seal(
    db: Database, settings: Settings, sealed: list[uuid.UUID]
) -> None:
    forged = _insert_backdated(db, settings, days=3)
    report = _verify(db)
    assert [(f.problem, f.seal_no, f.key) for f in report.findings] == [
        (Problem.BACKDATED, None, str(forged))
    ]
    assert report.unsealed == {"entry": 1, "posting": 2, "resolution": 0, "stamp_event": 0}
    # Sealing it does not launder it: the seal that takes it in is named.
    pay(db, settings, 1, start=50)
    assert seal(db) is not None
    report = _verify(db)
    assert [(f.problem, f.seal_no, f.key) for f in report.findings] == [(Problem.BACKDATED, 3, str(forged))]


@pytest.mark.postgres_only
def test_a_row_forged_into_a_sealed_range_is_named_as_inserted(pg_db: Database, settings: Settings) -> None:
    pay(pg_db, settings, 3)
    first = seal(pg_db)
    assert first is not None
    entry_range = first.kind("entry")
    assert entry_range is not None
    forged = uuid.uuid4()
    with behind_the_back(pg_db) as connection:
        connection.execute(
            text(
                "INSERT INTO entries (id, kind, consulate, effective_at, recorded_at, posting_count, memo,"
                " audit_tx) SELECT :id, kind, consulate, effective_at, recorded_at, posting_count, memo,"
                " audit_tx FROM entries ORDER BY audit_tx LIMIT 1"
            ),
            {"id": forged},
        )
    report = _verify(pg_db)
    assert [(f.problem, f.seal_no, f.key) for f in report.findings] == [(Problem.INSERTED, 1, str(forged))]


def test_a_seal_rewritten_in_place_is_named(db: Database, sealed: list[uuid.UUID]) -> None:
    with behind_the_back(db) as connection:
        connection.execute(text("UPDATE audit_seals SET record_count = record_count - 1 WHERE seal_no = 1"))
    report = _verify(db)
    assert [(f.problem, f.seal_no) for f in report.findings][:1] == [(Problem.SEAL_REWRITTEN, 1)]


def test_a_seal_rewritten_with_a_fresh_hash_breaks_the_link_from_the_next_seal(
    db: Database, sealed: list[uuid.UUID]
) -> None:
    with db.read() as session:
        stored = load_range(session, 1, 1)[0]
    rewritten = replace(stored.header, made_at=stored.header.made_at + 1)
    with behind_the_back(db) as connection:
        connection.execute(
            text("UPDATE audit_seals SET made_at = :made, seal_hash = :hash WHERE seal_no = 1"),
            {"made": rewritten.made_at, "hash": rewritten.hash()},
        )
    report = _verify(db)
    assert [(f.problem, f.seal_no) for f in report.findings] == [(Problem.CHAIN_BROKEN, 1)]
    assert "seal 1 was rewritten after seal 2 was cut" in report.findings[0].message


def test_vacuum_keeps_an_sqlite_journal_verifiable(
    request: pytest.FixtureRequest, tmp_path: Path, settings: Settings
) -> None:
    """Maintenance is not tampering: SQLite's VACUUM keeps the rowids that seals cover."""
    for url in fresh_database_url("sqlite", request, tmp_path):
        db = Database.from_url(url)
        try:
            pay(db, settings, 5)
            seal(db)
            with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as connection:
                connection.execute("VACUUM")
            pay(db, settings, 2, start=10)
            seal(db)
            report = _verify(db)
            assert report.ok, report.findings
        finally:
            db.dispose()
