"""Runs on both engines: recorded with their inputs, byte-identical reports, batches, payouts, refusals."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from ledger.db.engine import Database
from ledger.db.models_reconciliation import ReconMatch, ReconRun
from ledger.settings import Settings
from reconciliation.importers import ProfileSet
from reconciliation.imports import import_file
from reconciliation.report_pdf import report_pdf
from reconciliation.reports import report_csv, report_json
from reconciliation.resolutions import list_exceptions
from reconciliation.runs import ENGINE_VERSION, RunRefusedError
from tests.reconciliation.generator import Generator
from tests.reconciliation.helpers import capture, export, past_day, run
from tests.reconciliation.labelled import load
from tests.reconciliation.statement_files import Detail, Entry, Stmt, camt053


def _reports(db: Database, run_id: int) -> tuple[bytes, bytes, bytes]:
    with db.read() as session:
        return (
            report_json(session, run_id),
            b"".join(report_csv(session, run_id)),
            report_pdf(session, run_id),
        )


def test_the_same_inputs_give_byte_identical_reports(
    db: Database, settings: Settings, profiles: ProfileSet
) -> None:
    day = past_day(settings)
    data = Generator(settings.chart, day, settings.service.treasury.timezone, seed=3, scale=1, each=1).build()
    loaded = load(db, data, profiles)
    first = run(db, settings, day, *loaded.run_imports)
    second = run(db, settings, day, *loaded.run_imports)
    assert second.run_id != first.run_id
    assert _reports(db, first.run_id) == _reports(db, second.run_id)
    document = json.loads(_reports(db, second.run_id)[0])
    assert document["engine"] == ENGINE_VERSION
    assert document["business_day"] == day.isoformat()
    assert "run" not in json.dumps(document["parameters"])
    assert len(document["exceptions"]) == second.exception_count
    assert document["inputs"]["ledger"]["sha256"]
    assert [i["sha256"] for i in document["inputs"]["imports"]]
    with db.read() as session:
        stored = session.get(ReconRun, second.run_id)
        assert stored is not None
        assert stored.timings["load"] >= 0  # timings stay with the run, outside the report
        assert stored.counts["exceptions"] == second.exceptions
        # The rounding entry of the tolerance match was found again, not posted twice.
        roundings = session.scalars(
            select(ReconMatch.rounding_entry_id).where(ReconMatch.rounding_entry_id.is_not(None))
        ).all()
        assert len(roundings) == 2
        assert len(set(roundings)) == 1
        # The second run superseded the first: only its exceptions are current.
        current = list_exceptions(session, today=day, status="open", limit=1000)
        assert {e.run_id for e in current} == {second.run_id}
        superseded = list_exceptions(session, today=day, status="superseded", limit=1000)
        assert {e.run_id for e in superseded} == {first.run_id}


def test_reports_say_what_matched_and_what_did_not(
    db: Database, settings: Settings, profiles: ProfileSet
) -> None:
    day = past_day(settings)
    capture(db, settings, day, "ET-PAY-0001", 12500)
    capture(db, settings, day, "ET-PAY-0002", 6000)
    data = export(day, ("125.00", "EUR", "ET-PAY-0001"), ("77.77", "EUR", ""))
    imported = import_file(db, data, profiles.get("treasury-default"), file_name="tgr.csv")
    summary = run(db, settings, day, imported.import_id)
    assert summary.exceptions == {"missing_in_export": 1, "missing_in_ledger": 1}
    json_report, csv_report, pdf = _reports(db, summary.run_id)
    rows = list(csv.DictReader(io.StringIO(csv_report.decode())))
    assert [(r["kind"], r["pass"], r["rule"], r["category"]) for r in rows] == [
        ("match", "exact", "reference", ""),
        ("exception", "", "", "missing_in_ledger"),
        ("exception", "", "", "missing_in_export"),
    ]
    assert rows[0]["ledger_amount"] == rows[0]["export_amount"] == "125.00"
    assert rows[0]["line_number"] == "2"
    assert rows[2]["payment_reference"] == "ET-PAY-0002"
    document = json.loads(json_report)
    assert document["exceptions"][0]["export"]["amount"] == "77.77"
    assert document["balances"][0]["account"] == "assets:treasury-account:EUR"
    assert document["balances"][0]["bank_movement"] == {"amount": "202.77", "minor": 20277}
    assert pdf.startswith(b"%PDF")
    shown = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout
    assert b"missing_in_ledger" in shown
    assert b"assets:treasury-account:EUR" in shown
    assert b"exact:reference" in shown


def test_a_quarantined_or_unknown_import_is_refused(db: Database, settings: Settings) -> None:
    day = past_day(settings)
    broken = camt053(Stmt([Entry("100.00", account_ref="A1")], opening="0.00", closing="90.00"))
    outcome = import_file(db, broken, "camt053")
    assert outcome.status == "quarantined"
    with pytest.raises(RunRefusedError, match="quarantined: statement 1"):
        run(db, settings, day, outcome.import_id)
    with pytest.raises(RunRefusedError, match="no import 999"):
        run(db, settings, day, 999)
    with pytest.raises(RunRefusedError, match="to today"):
        run(db, settings, day + timedelta(days=30), outcome.import_id)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(ReconRun)) == 0


def test_a_camt_batch_entry_matches_whole_or_detail_by_detail(db: Database, settings: Settings) -> None:
    day = past_day(settings)
    for payment, minor in (("ET-PAY-0001", 12500), ("ET-PAY-0002", 6000), ("ET-PAY-0003", 8000)):
        capture(db, settings, day, payment, minor)
    statement = camt053(
        Stmt(
            [
                Entry(
                    "185.00",
                    booked=day.isoformat(),
                    account_ref="B1",
                    batch_id="LOT-1",
                    details=[
                        Detail("125.00", reference="ET-PAY-0001"),
                        Detail("60.00", reference="ET-PAY-0002"),
                    ],
                ),
                Entry(
                    "120.00",
                    booked=day.isoformat(),
                    account_ref="B2",
                    batch_id="LOT-2",
                    details=[
                        Detail("80.00", reference="ET-PAY-0003"),
                        Detail("40.00", reference="ET-PAY-0404"),
                    ],
                ),
            ],
            opening="0.00",
            closing="305.00",
        )
    )
    imported = import_file(db, statement, "camt053")
    assert imported.status == "imported"
    summary = run(db, settings, day, imported.import_id)
    # export counts the details (the items); the batch line is a member of the match as well
    assert summary.counts["matched"]["aggregate:batch"] == {"matches": 1, "ledger": 2, "export": 2}
    assert summary.counts["matched"]["aggregate:batch-detail"] == {"matches": 1, "ledger": 1, "export": 1}
    assert summary.exceptions == {"missing_in_ledger": 1}
    with db.read() as session:
        (missing,) = list_exceptions(session, today=day, limit=10)
    assert missing.reference == "ET-PAY-0404"
    assert missing.line_number is not None
    assert missing.export_amount is not None
    assert missing.export_amount.to_str() == "40.00"


def test_the_balance_check_reports_bank_and_book_per_account(
    db: Database, settings: Settings, profiles: ProfileSet
) -> None:
    day = past_day(settings)
    capture(db, settings, day, "ET-PAY-0001", 12500)
    statement = camt053(
        Stmt(
            [
                Entry(
                    "125.00",
                    booked=day.isoformat(),
                    account_ref="A1",
                    details=[Detail("125.00", reference="ET-PAY-0001")],
                )
            ],
            opening="1000.00",
            closing="1125.00",
        )
    )
    imported = import_file(db, statement, "camt053")
    summary = run(db, settings, day, imported.import_id)
    assert summary.clean
    (check,) = summary.balances
    assert check["bank_movement"] == 12500
    assert check["book_movement"] == 0  # the payment is still in the clearing account
    assert check["bank_matched_otherwise"] == 12500
    assert check["status"] == "explained"


def test_the_ledger_digest_is_the_same_bytes_however_it_is_read(pg_db: Database, settings: Settings) -> None:
    from reconciliation.days import BusinessDay
    from reconciliation.matching.work import Work
    from reconciliation.runs import _ledger_digest

    day = past_day(settings)
    for number in range(30):
        capture(pg_db, settings, day, f"ET-PAY-{number:04d}", 1000 + number)
    with pg_db.write() as session:
        work = Work(
            session, BusinessDay(day, settings.service.treasury.timezone), window_days=3, search_days=10
        )
        work.create()
        work.load_ledger(["EUR"])
        in_database = _ledger_digest(work)
        work.postgres = False  # the row-by-row reading SQLite uses
        row_by_row = _ledger_digest(work)
        session.rollback()
    assert in_database == row_by_row
