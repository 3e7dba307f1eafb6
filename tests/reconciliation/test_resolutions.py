"""Auditors resolve exceptions on both engines: aging, manual match, postings, a second auditor's approval."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from ledger.db.engine import Database
from ledger.db.models_reconciliation import ReconResolution
from ledger.services import journal
from ledger.settings import Settings
from reconciliation.importers import ProfileSet
from reconciliation.imports import import_file
from reconciliation.resolutions import (
    Decision,
    ResolutionConflictError,
    ResolutionInvalidError,
    aging_bucket,
    approve,
    get_exception,
    list_exceptions,
    match_by_hand,
    post_difference,
    reject,
)
from tests.reconciliation.helpers import capture, export, past_day, run

A = "cli:A. Benali"
B = "cli:S. Haddad"


@pytest.mark.parametrize(
    ("age", "bucket"),
    [(0, "0-2"), (2, "0-2"), (3, "3-7"), (7, "3-7"), (8, "8-30"), (30, "8-30"), (31, ">30")],
)
def test_exceptions_age_in_buckets(age: int, bucket: str) -> None:
    assert aging_bucket(date(2026, 11, 22) - timedelta(days=age), date(2026, 11, 22)) == bucket


def _day_with_differences(
    db: Database, settings: Settings, profiles: ProfileSet
) -> tuple[date, dict[str, int]]:
    """A missing payment with a typo in its reference, an unknown credit and a large unknown credit."""
    day = past_day(settings)
    capture(db, settings, day, "ET-PAY-0001", 6000)
    data = export(day, ("60.00", "EUR", "ET-PAY-O001"), ("77.77", "EUR", ""), ("5000.00", "EUR", "VIR-9"))
    imported = import_file(db, data, profiles.get("treasury-default"))
    summary = run(db, settings, day, imported.import_id)
    assert summary.exceptions == {"missing_in_export": 1, "missing_in_ledger": 3}
    with db.read() as session:
        found = list_exceptions(session, today=day, limit=10)
    ids = {}
    for exception in found:
        if exception.category == "missing_in_export":
            ids["entry"] = exception.id
        elif exception.export_amount is not None:
            ids[exception.export_amount.to_str()] = exception.id
    return day, ids


def test_open_exceptions_are_listed_by_age_and_category(
    db: Database, settings: Settings, profiles: ProfileSet
) -> None:
    day, _ = _day_with_differences(db, settings, profiles)
    with db.read() as session:
        later = list_exceptions(session, today=day + timedelta(days=5), limit=10)
        assert {e.bucket for e in later} == {"3-7"}
        assert {e.age_days for e in later} == {5}
        assert list_exceptions(session, today=day + timedelta(days=5), bucket="0-2") == []
        assert len(list_exceptions(session, today=day, bucket="0-2")) == 4
        missing = list_exceptions(session, today=day, category="missing_in_export")
    assert [e.reference for e in missing] == ["ET-PAY-0001"]
    assert missing[0].ledger_amount is not None
    assert missing[0].ledger_amount.to_str() == "60.00"
    assert missing[0].difference is not None
    assert missing[0].difference.to_str() == "-60.00"


def test_a_manual_match_settles_both_sides_and_the_next_run_honours_it(
    db: Database, settings: Settings, profiles: ProfileSet
) -> None:
    day, ids = _day_with_differences(db, settings, profiles)
    rules = settings.service.reconciliation
    with db.write() as session:
        done = match_by_hand(
            session,
            ids["60.00"],
            Decision(A, "the bank typed O for 0 in the reference"),
            settings=rules,
            chart=settings.chart,
            other_exception=ids["entry"],
        )
    assert (done.action, done.status, done.entry_ids) == ("match", "done", ())
    assert done.amount is not None
    assert done.amount.minor == 0
    with db.read() as session:
        assert get_exception(session, ids["60.00"], today=day).status == "resolved"
        assert get_exception(session, ids["entry"], today=day).status == "resolved"
        with pytest.raises(ResolutionConflictError, match="resolved"):
            post_difference(session, ids["60.00"], Decision(B, "again"), settings=rules, chart=settings.chart)
    again = run(db, settings, day, 1)
    assert again.exceptions == {"missing_in_ledger": 2}
    assert again.counts["matched"]["resolved:manual"] == {"matches": 1, "ledger": 1, "export": 1}


def test_a_small_difference_is_posted_to_suspense_with_who_and_why(
    db: Database, settings: Settings, profiles: ProfileSet
) -> None:
    day, ids = _day_with_differences(db, settings, profiles)
    with db.write() as session:
        done = post_difference(
            session,
            ids["77.77"],
            Decision(A, "cash deposit at the treasury, origin unknown"),
            settings=settings.service.reconciliation,
            chart=settings.chart,
        )
    assert done.status == "done"
    assert done.account == "assets:suspense:EUR"
    (entry_id,) = done.entry_ids
    with db.read() as session:
        entry = journal.get_entry(session, entry_id)
        assert get_exception(session, ids["77.77"], today=day).status == "resolved"
    assert entry.kind.value == "reconciliation"
    assert entry.actor == A
    assert entry.reason == "cash deposit at the treasury, origin unknown"
    assert {(p.account, p.amount.minor) for p in entry.postings} == {
        ("assets:treasury-account:EUR", 7777),
        ("assets:suspense:EUR", -7777),
    }
    again = run(db, settings, day, 1)
    assert again.exceptions == {"missing_in_export": 1, "missing_in_ledger": 2}
    assert again.counts["matched"]["resolved:posted"]["export"] == 1


def test_a_large_write_off_needs_another_auditor_to_approve_it(
    db: Database, settings: Settings, profiles: ProfileSet
) -> None:
    day, ids = _day_with_differences(db, settings, profiles)
    rules = settings.service.reconciliation
    with db.write() as session:
        waiting = post_difference(
            session,
            ids["5000.00"],
            Decision(A, "transfer from the ministry"),
            settings=rules,
            chart=settings.chart,
        )
    assert (waiting.status, waiting.entry_ids) == ("pending_approval", ())
    with db.read() as session:
        assert get_exception(session, ids["5000.00"], today=day).status == "pending_approval"
        assert list_exceptions(session, today=day, status="pending_approval")[0].id == ids["5000.00"]
    with pytest.raises(ResolutionConflictError, match="another auditor"), db.write() as session:
        approve(session, waiting.id, Decision(A, "I approve my own"), chart=settings.chart)
    # The database refuses it too, whatever the code does.
    with pytest.raises(DBAPIError, match="another auditor"), db.write() as session:
        session.execute(
            text(
                "INSERT INTO recon_resolutions (exception_id, action, status, actor, at, reason, entry_ids, decides_id) "
                "VALUES (:e, 'approve', 'done', :a, 0, 'x', '[]', :d)"
            ),
            {"e": ids["5000.00"], "a": A, "d": waiting.id},
        )
    with db.write() as session:
        approved = approve(
            session, waiting.id, Decision(B, "checked the ministry's letter"), chart=settings.chart
        )
    assert approved.action == "approve"
    assert approved.decides == waiting.id
    (entry_id,) = approved.entry_ids
    with db.read() as session:
        entry = journal.get_entry(session, entry_id)
        assert get_exception(session, ids["5000.00"], today=day).status == "resolved"
        with pytest.raises(ResolutionConflictError, match="does not wait"):
            approve(session, approved.id, Decision(B, "again"), chart=settings.chart)
    assert entry.actor == B
    assert "transfer from the ministry" in entry.reason
    assert {p.amount.minor for p in entry.postings} == {500000, -500000}


def test_a_rejected_write_off_leaves_the_exception_open(
    db: Database, settings: Settings, profiles: ProfileSet
) -> None:
    day, ids = _day_with_differences(db, settings, profiles)
    with db.write() as session:
        waiting = post_difference(
            session,
            ids["5000.00"],
            Decision(A, "write it off"),
            settings=settings.service.reconciliation,
            chart=settings.chart,
        )
        reject(session, waiting.id, Decision(B, "find the sender first"))
    with db.read() as session:
        view = get_exception(session, ids["5000.00"], today=day)
        resolutions = session.scalars(select(ReconResolution).order_by(ReconResolution.id)).all()
    assert view.status == "open"
    assert [(r.action, r.actor) for r in view.resolutions] == [("post", A), ("reject", B)]
    assert [r.entry_ids for r in resolutions] == [[], []]


def test_postings_name_an_existing_account_in_the_currency(
    db: Database, settings: Settings, profiles: ProfileSet
) -> None:
    day, ids = _day_with_differences(db, settings, profiles)
    rules = settings.service.reconciliation
    with pytest.raises(ResolutionInvalidError, match="no account"), db.write() as session:
        post_difference(
            session,
            ids["77.77"],
            Decision(A, "x", "expenses:nowhere:EUR"),
            settings=rules,
            chart=settings.chart,
        )
    capture(db, settings, day, "ET-PAY-TND", 60000, "TND")
    with pytest.raises(ResolutionInvalidError, match="holds TND"), db.write() as session:
        post_difference(
            session,
            ids["77.77"],
            Decision(A, "x", "assets:clearing:transfer:TND"),
            settings=rules,
            chart=settings.chart,
        )
    with pytest.raises(ResolutionInvalidError, match="reason"), db.write() as session:
        post_difference(session, ids["77.77"], Decision(A, " "), settings=rules, chart=settings.chart)
    with db.write() as session:
        done = post_difference(
            session,
            ids["77.77"],
            Decision(A, "bank interest", "assets:clearing:transfer:EUR"),
            settings=rules,
            chart=settings.chart,
        )
    assert done.account == "assets:clearing:transfer:EUR"
