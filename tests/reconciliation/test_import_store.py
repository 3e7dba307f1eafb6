"""Imports into the database on both engines: once per file, all or nothing, checked and flagged."""

from __future__ import annotations

from sqlalchemy import func, select, text

from ledger.db.engine import Database
from ledger.db.models_reconciliation import ReconImport, ReconImportLine, ReconImportStatement
from reconciliation.importers import ProfileSet
from reconciliation.imports import get_import, import_file, list_imports
from tests.reconciliation.statement_files import Detail, Entry, Stmt, camt053

HEADER = "entry_id,booking_date,value_date,amount,currency,reference,counterparty,description,batch_reference"
EXPORT = (
    "\ufeff"
    + HEADER
    + "\r\n"
    + "TGR-1,2026-11-22,2026-11-22,125.00,EUR,ET-PAY-0001,Amina El Idrissi,Passeport ordinaire,\r\n"
    + "TGR-2,2026-11-22,2026-11-22,60.00,EUR,ET-PAY-0002,أمينة الإدريسي,Visa court séjour,\r\n"
    + "TGR-3,2026-11-22,,-20.50,EUR,,,Frais de tenue de compte,\r\n"
    + "\r\n"
).encode()


def _lines(db: Database, import_id: int) -> int:
    with db.read() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(ReconImportLine)
                .where(ReconImportLine.import_id == import_id)
            )
            or 0
        )


def test_an_export_is_imported_once_and_a_second_import_adds_nothing(
    db: Database, profiles: ProfileSet
) -> None:
    first = import_file(db, EXPORT, profiles.get("treasury-default"), file_name="tgr-20261122.csv", actor="a")
    assert (first.status, first.duplicate, first.lines) == ("imported", False, 3)
    assert first.currencies == ("EUR",)
    again = import_file(db, EXPORT, profiles.get("treasury-default"), file_name="copy.csv", actor="b")
    assert again.duplicate
    assert again.import_id == first.import_id
    assert "already imported" in again.message
    assert "nothing added" in again.message
    assert _lines(db, first.import_id) == 3
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(ReconImport)) == 1
        row = session.execute(
            select(ReconImportLine).where(ReconImportLine.import_id == first.import_id).order_by("item_no")
        ).scalars()
        stored = [(r.line_number, r.amount, r.reference, r.counterparty) for r in row]
    assert stored == [
        (2, 12500, "ET-PAY-0001", "Amina El Idrissi"),
        (3, 6000, "ET-PAY-0002", "أمينة الإدريسي"),
        (4, -2050, "", ""),
    ]


def test_a_malformed_file_leaves_only_its_rejection_with_every_error(
    db: Database, profiles: ProfileSet
) -> None:
    broken = (
        HEADER
        + "\n"
        + "TGR-1,2026-11-22,,125.00,EUR,ET-PAY-0001,,,\n"
        + "TGR-2,2026-13-22,,60.00,EUR,ET-PAY-0002,,,\n"
        + "TGR-3,2026-11-22,,12.345,EUR,,,,\n"
    ).encode()
    outcome = import_file(db, broken, profiles.get("treasury-default"), file_name="broken.csv")
    assert outcome.status == "rejected"
    assert [(e.line, e.problem.split(" ")[0]) for e in outcome.errors] == [
        (3, "'2026-13-22'"),
        (4, "'12.345'"),
    ]
    assert _lines(db, outcome.import_id) == 0
    with db.read() as session:
        view = get_import(session, outcome.import_id)
    assert view.outcome.error_count == 2
    assert view.outcome.errors[0].column is not None
    assert "booking_date" in view.outcome.errors[0].column
    # A rejected file may be handed in again (it is rejected again), and once fixed it is imported.
    assert import_file(db, broken, profiles.get("treasury-default")).status == "rejected"
    assert import_file(db, EXPORT, profiles.get("treasury-default")).status == "imported"


def test_an_over_long_reference_rejects_the_file_with_its_line_and_column(
    db: Database, profiles: ProfileSet
) -> None:
    data = (HEADER + "\n" + "TGR-1,2026-11-22,,1.00,EUR," + "R" * 141 + ",,,\n").encode()
    outcome = import_file(db, data, profiles.get("treasury-default"))
    assert outcome.status == "rejected"
    assert [(e.line, e.column) for e in outcome.errors] == [(2, "reference")]
    assert "141 characters" in outcome.errors[0].problem


def test_a_camt_that_does_not_add_up_is_quarantined_with_no_line_imported(db: Database) -> None:
    data = camt053(
        Stmt(
            [Entry("100.00", account_ref="A1"), Entry("5.00", account_ref="A2")],
            opening="1000.00",
            closing="1115.00",
        )
    )
    outcome = import_file(db, data, "camt053", file_name="stmt.xml")
    assert outcome.status == "quarantined"
    assert outcome.lines == 0
    assert "does not add up" in outcome.reasons[0]
    assert "difference 10.00 EUR" in outcome.reasons[0]
    assert _lines(db, outcome.import_id) == 0
    with db.read() as session:
        statements = session.scalars(select(ReconImportStatement)).all()
        assert [(s.opening_minor, s.closing_minor, s.line_count) for s in statements] == [(100000, 111500, 2)]
    # The same quarantined file again: recognised, nothing added.
    again = import_file(db, data, "camt053")
    assert again.duplicate
    assert again.status == "quarantined"


def test_camt_batch_details_are_stored_as_lines_of_their_own(db: Database) -> None:
    data = camt053(
        Stmt(
            [
                Entry(
                    "185.00",
                    account_ref="B1",
                    batch_id="LOT-22",
                    details=[
                        Detail("125.00", reference="ET-PAY-0001"),
                        Detail("60.00", reference="ET-PAY-0002"),
                    ],
                )
            ],
            opening="0.00",
            closing="185.00",
        )
    )
    outcome = import_file(db, data, "camt053")
    assert outcome.status == "imported"
    with db.read() as session:
        rows = session.scalars(select(ReconImportLine).order_by(ReconImportLine.item_no)).all()
    assert [(r.item_no, r.parent_no, r.detail_no, r.is_batch, r.amount, r.reference) for r in rows] == [
        (1, None, 0, 1, 18500, ""),
        (2, 1, 1, 0, 12500, "ET-PAY-0001"),
        (3, 1, 2, 0, 6000, "ET-PAY-0002"),
    ]
    assert {r.batch_reference for r in rows} == {"LOT-22"}


def test_sequence_gaps_are_flagged_against_the_last_statement_imported(db: Database) -> None:
    first = camt053(Stmt([Entry("1.00", account_ref="S1")], opening="0.00", closing="1.00", sequence=41))
    third = camt053(Stmt([Entry("2.00", account_ref="S3")], opening="1.00", closing="3.00", sequence=43))
    assert import_file(db, first, "camt053").flags == ()
    outcome = import_file(db, third, "camt053")
    assert outcome.status == "imported"
    assert [flag["kind"] for flag in outcome.flags] == ["sequence_gap"]
    assert "1 statement missing" in outcome.flags[0]["message"]
    with db.read() as session:
        latest = list_imports(session)[0]
        assert latest.import_id == outcome.import_id
        assert session.get(ReconImport, outcome.import_id).last_sequences == {  # type: ignore[union-attr]
            "MA64011519000001205000534921": "43"
        }


def test_a_recorded_import_and_its_lines_cannot_be_changed(db: Database, profiles: ProfileSet) -> None:
    outcome = import_file(db, EXPORT, profiles.get("treasury-default"))
    for statement in (
        "UPDATE recon_imports SET status = 'quarantined'",
        "DELETE FROM recon_imports",
        "UPDATE recon_import_lines SET amount = 1",
        "DELETE FROM recon_import_lines",
    ):
        try:
            with db.write() as session:
                session.execute(text(statement))
        except Exception as error:  # the engines raise different DBAPI errors
            assert "etimbre" in str(error)
        else:
            raise AssertionError(f"{statement} was allowed")
    assert _lines(db, outcome.import_id) == 3
