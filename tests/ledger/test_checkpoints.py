"""Closing the books: checkpoints give the same balances as summing everything, and closed periods stay closed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger.db.engine import Database
from ledger.money import Money
from ledger.services import clock
from ledger.services.balances import SliceFilter, account_balance, balances
from ledger.services.checkpoints import PeriodError, cut, due_cuts
from ledger.services.journal import post_entry
from ledger.settings import Settings
from tests.ledger.builders import captured, consumed


def test_balances_are_the_same_before_and_after_the_books_are_closed(
    db: Database, settings: Settings
) -> None:
    chart = settings.chart
    start = clock.now() - timedelta(hours=48)
    instants = [start + timedelta(hours=h) for h in range(0, 48, 3)]
    with db.write() as session:
        for number, moment in enumerate(instants):
            fee = "PASSPORT" if number % 2 else "CNIE"
            post_entry(session, captured(chart, Money(1000 + number, "EUR"), fee=fee, effective_at=moment))
        post_entry(session, consumed(chart, Money(1000, "EUR"), fee="CNIE"))
    probes = [
        start - timedelta(hours=1),
        *[m + timedelta(minutes=m.minute + 7) for m in instants],
        clock.now(),
    ]
    with db.read() as session:
        before = [balances(session, as_of=p, split=frozenset({"consulate", "fee_code"})) for p in probes]
    with db.write() as session:
        for hours in (12, 30, 40):
            cut(session, start + timedelta(hours=hours))
    with db.read() as session:
        after = [balances(session, as_of=p, split=frozenset({"consulate", "fee_code"})) for p in probes]
        assert after == before
        checkpoints = session.execute(text("SELECT count(*) FROM balance_checkpoints")).scalar()
        assert checkpoints and checkpoints > 0


def test_a_closed_period_refuses_back_dated_entries(db: Database, settings: Settings) -> None:
    closed_through = clock.now() - timedelta(hours=5)
    with db.write() as session:
        cut(session, closed_through)
    with pytest.raises(DBAPIError, match="closed"), db.write() as session:
        post_entry(session, captured(settings.chart, Money(100, "EUR"), effective_at=closed_through))
    with db.write() as session:
        post_entry(
            session,
            captured(settings.chart, Money(100, "EUR"), effective_at=closed_through + timedelta(seconds=1)),
        )
    with pytest.raises(PeriodError), db.write() as session:
        cut(session, closed_through)
    with db.read() as session:
        assert account_balance(session, "assets:clearing:sandbox:EUR") == Money(100, "EUR")


def test_due_cuts_follow_the_interval_and_stay_behind_the_lateness_window(db: Database) -> None:
    now = clock.now()
    with db.read() as session:
        first = due_cuts(session, now, lateness=timedelta(hours=72), interval=timedelta(hours=1))
    assert len(first) == 1 and first[0] <= now - timedelta(hours=72)
    with db.write() as session:
        cut(session, first[0] - timedelta(hours=5))
    with db.read() as session:
        catch_up = due_cuts(session, now, lateness=timedelta(hours=72), interval=timedelta(hours=1))
    assert len(catch_up) == 5 and catch_up == sorted(catch_up)


def test_slice_balances_read_only_recent_postings_after_a_cut(db: Database, settings: Settings) -> None:
    chart = settings.chart
    old = clock.now() - timedelta(hours=30)
    with db.write() as session:
        for number in range(20):
            post_entry(
                session,
                captured(
                    chart, Money(100, "TND"), consulate="TN-TUN", effective_at=old + timedelta(minutes=number)
                ),
            )
        cut(session, old + timedelta(hours=1))
        post_entry(session, captured(chart, Money(5, "TND"), consulate="TN-TUN"))
    with db.read() as session:
        rows = balances(session, SliceFilter(consulate="TN-TUN", account="liabilities:"))
        assert [(r.account, r.balance) for r in rows] == [
            ("liabilities:stamps-outstanding:TN-TUN", Money(2005, "TND"))
        ]
