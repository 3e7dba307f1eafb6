"""The journal as an auditor relies on it: balanced, append-only, idempotent, reversible once."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from ledger.db.engine import Database
from ledger.domain.chart import Role
from ledger.domain.entries import EntryDraft, EntryError, EntryKind, credit, debit
from ledger.money import Money
from ledger.services import clock
from ledger.services.balances import SliceFilter, account_balance, balances
from ledger.services.journal import (
    AlreadyReversedError,
    IdempotencyConflictError,
    get_entry,
    post_entry,
    reverse_entry,
)
from ledger.settings import Settings
from tests.ledger.builders import captured, consumed

EUR = "EUR"


def test_a_captured_payment_moves_money_from_clearing_to_stamps_outstanding(
    db: Database, settings: Settings
) -> None:
    chart = settings.chart
    with db.write() as session:
        recorded = post_entry(session, captured(chart, Money(5500, EUR)), actor="test")
    with db.read() as session:
        entry = get_entry(session, recorded.entry_id)
        assert [(p.account, p.amount) for p in entry.postings] == [
            ("assets:clearing:sandbox:EUR", Money(5500, EUR)),
            ("liabilities:stamps-outstanding:FR-PAR", Money(-5500, EUR)),
        ]
        assert account_balance(session, "assets:clearing:sandbox:EUR") == Money(5500, EUR)
        # A liability is shown on its normal (credit) side.
        assert account_balance(session, "liabilities:stamps-outstanding:FR-PAR") == Money(5500, EUR)


def test_three_decimal_and_zero_decimal_currencies_keep_every_minor_unit(
    db: Database, settings: Settings
) -> None:
    with db.write() as session:
        post_entry(session, captured(settings.chart, Money.parse("17.250", "KWD"), consulate="KW-KWI"))
        post_entry(session, captured(settings.chart, Money.parse("9000", "JPY"), consulate="JP-TYO"))
        post_entry(session, captured(settings.chart, Money.parse("0.001", "KWD"), consulate="KW-KWI"))
    with db.read() as session:
        assert account_balance(session, "assets:clearing:sandbox:KWD") == Money(17251, "KWD")
        assert account_balance(session, "assets:clearing:sandbox:JPY") == Money(9000, "JPY")


def test_an_unbalanced_entry_is_refused_before_it_reaches_the_database(settings: Settings) -> None:
    clearing = settings.chart.account(Role.CLEARING, currency=EUR, provider="sandbox")
    outstanding = settings.chart.account(Role.STAMPS_OUTSTANDING, currency=EUR, consulate="FR-PAR")
    with pytest.raises(EntryError, match="not balanced"):
        EntryDraft(
            EntryKind.PAYMENT_CAPTURED,
            (debit(clearing, Money(100, EUR)), credit(outstanding, Money(99, EUR))),
        )
    with pytest.raises(EntryError, match="needs a reason"):
        EntryDraft(EntryKind.ADJUSTMENT, (debit(clearing, Money(1, EUR)), credit(outstanding, Money(1, EUR))))
    with pytest.raises(EntryError, match="holds EUR"):
        EntryDraft(
            EntryKind.PAYMENT_CAPTURED,
            (debit(clearing, Money(1, "JPY")), credit(outstanding, Money(1, "JPY"))),
        )


def _raw_entry(
    session: object, entry_id: uuid.UUID, amounts: list[tuple[int, str, int]], db: Database, declared: int = 0
) -> None:
    """Write postings and an entry with plain SQL, as someone bypassing the code would."""
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    now = clock.now()
    micros = int(now.timestamp() * 1_000_000)
    key = entry_id if db.dialect == "postgresql" else entry_id.bytes
    for line_no, (account_id, currency, amount) in enumerate(amounts, start=1):
        session.execute(
            text(
                "INSERT INTO postings (entry_id, line_no, account_id, currency, amount, effective_at, consulate,"
                " fee_code) VALUES (:e, :n, :a, :c, :m, :t, 'FR-PAR', '')"
            ),
            {"e": key, "n": line_no, "a": account_id, "c": currency, "m": amount, "t": micros},
        )
    session.execute(
        text(
            "INSERT INTO entries (id, kind, consulate, effective_at, posting_count, memo)"
            " VALUES (:e, 'payment_captured', 'FR-PAR', :t, :n, '{}')"
        ),
        {"e": key, "t": micros, "n": declared or len(amounts)},
    )


def _account_ids(db: Database, settings: Settings) -> tuple[int, int]:
    with db.write() as session:
        post_entry(session, captured(settings.chart, Money(100, EUR)))
    with db.read() as session:
        clearing = session.execute(
            text("SELECT id FROM accounts WHERE code LIKE 'assets:clearing:%'")
        ).scalar_one()
        outstanding = session.execute(
            text("SELECT id FROM accounts WHERE code LIKE 'liabilities:%'")
        ).scalar_one()
    return clearing, outstanding


def test_the_database_refuses_an_unbalanced_entry_even_when_the_code_is_bypassed(
    db: Database, settings: Settings
) -> None:
    clearing, outstanding = _account_ids(db, settings)
    with pytest.raises(DBAPIError, match="not balanced"), db.write() as session:
        _raw_entry(session, uuid.uuid4(), [(clearing, EUR, 100), (outstanding, EUR, -99)], db)
    with pytest.raises(DBAPIError, match="currency other than"), db.write() as session:
        _raw_entry(session, uuid.uuid4(), [(clearing, "JPY", 100), (outstanding, "JPY", -100)], db)
    with pytest.raises(DBAPIError, match="declares"), db.write() as session:
        _raw_entry(session, uuid.uuid4(), [(clearing, EUR, 100), (outstanding, EUR, -100)], db, declared=3)
    with db.read() as session:
        assert session.execute(text("SELECT count(*) FROM entries")).scalar() == 1
        assert session.execute(text("SELECT count(*) FROM postings")).scalar() == 2


def test_postings_without_an_entry_are_refused_at_commit(db: Database, settings: Settings) -> None:
    clearing, _ = _account_ids(db, settings)
    key = uuid.uuid4()
    with pytest.raises(IntegrityError), db.write() as session:
        session.execute(
            text(
                "INSERT INTO postings (entry_id, line_no, account_id, currency, amount, effective_at)"
                " VALUES (:e, 1, :a, 'EUR', 100, 0)"
            ),
            {"e": key if db.dialect == "postgresql" else key.bytes, "a": clearing},
        )
    with db.read() as session:
        assert session.execute(text("SELECT count(*) FROM postings")).scalar() == 2


def test_a_balanced_pair_cannot_be_slipped_into_a_recorded_entry(db: Database, settings: Settings) -> None:
    with db.write() as session:
        entry_id = post_entry(session, captured(settings.chart, Money(100, EUR))).entry_id
    clearing, outstanding = _account_ids(db, settings)
    key = entry_id if db.dialect == "postgresql" else entry_id.bytes
    with pytest.raises(DBAPIError, match="already recorded"), db.write() as session:
        for line_no, account, amount in ((3, clearing, 5), (4, outstanding, -5)):
            session.execute(
                text(
                    "INSERT INTO postings (entry_id, line_no, account_id, currency, amount, effective_at, consulate)"
                    " SELECT id, :n, :a, 'EUR', :m, effective_at, consulate FROM entries WHERE id = :e"
                ),
                {"e": key, "n": line_no, "a": account, "m": amount},
            )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE entries SET reason = 'edited'",
        "DELETE FROM entries",
        "UPDATE postings SET amount = amount * 2",
        "DELETE FROM postings",
        "UPDATE accounts SET currency = 'USD'",
        "DELETE FROM accounts",
    ],
)
def test_the_journal_is_append_only(db: Database, settings: Settings, statement: str) -> None:
    with db.write() as session:
        post_entry(session, captured(settings.chart, Money(100, EUR)))
    with pytest.raises(DBAPIError, match="append-only"), db.write() as session:
        session.execute(text(statement))
    if db.dialect == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), db.write() as session:
            session.execute(
                text(f"TRUNCATE {statement.split()[1 if statement.startswith('UPDATE') else 2]} CASCADE")
            )
    with db.read() as session:
        assert account_balance(session, "assets:clearing:sandbox:EUR") == Money(100, EUR)


def test_an_idempotent_retry_returns_the_first_entry_and_a_different_request_conflicts(
    db: Database, settings: Settings
) -> None:
    draft = captured(settings.chart, Money(5500, EUR))
    with db.write() as session:
        first = post_entry(session, draft, idempotency_key="checkout-42")
    with db.write() as session:
        again = post_entry(session, draft, idempotency_key="checkout-42")
    assert again.entry_id == first.entry_id
    assert (first.replayed, again.replayed) == (False, True)
    with pytest.raises(IdempotencyConflictError), db.write() as session:
        post_entry(session, captured(settings.chart, Money(5501, EUR)), idempotency_key="checkout-42")
    with db.read() as session:
        assert account_balance(session, "assets:clearing:sandbox:EUR") == Money(5500, EUR)


def test_a_reversal_undoes_an_entry_once_with_a_reason(db: Database, settings: Settings) -> None:
    with db.write() as session:
        original = post_entry(session, captured(settings.chart, Money(5500, EUR))).entry_id
    with db.write() as session:
        reversal = reverse_entry(
            session, original, reason="captured twice by mistake", actor="admin"
        ).entry_id
    with pytest.raises(AlreadyReversedError), db.write() as session:
        reverse_entry(session, original, reason="again")
    with db.read() as session:
        assert account_balance(session, "assets:clearing:sandbox:EUR") == Money(0, EUR)
        assert get_entry(session, original).reversed_by == reversal
        view = get_entry(session, reversal)
        assert (view.kind, view.reverses, view.reason) == (
            EntryKind.REVERSAL,
            original,
            "captured twice by mistake",
        )
    with pytest.raises(EntryError, match="needs a reason"), db.write() as session:
        reverse_entry(session, reversal, reason=" ")


def test_balances_as_of_any_instant_and_by_slice(db: Database, settings: Settings) -> None:
    chart = settings.chart
    start = clock.now() - timedelta(hours=10)
    with db.write() as session:
        post_entry(session, captured(chart, Money(5500, EUR), effective_at=start))
        post_entry(
            session, captured(chart, Money(800, EUR), fee="CNIE", effective_at=start + timedelta(hours=1))
        )
        post_entry(
            session,
            captured(
                chart,
                Money(3000, EUR),
                consulate="BE-BRU",
                provider="cmi",
                effective_at=start + timedelta(hours=2),
            ),
        )
        post_entry(session, consumed(chart, Money(5500, EUR)))
    with db.read() as session:
        clearing = SliceFilter(account="assets:clearing:")
        assert [
            (r.account, r.balance) for r in balances(session, clearing, as_of=start - timedelta(seconds=1))
        ] == []
        assert [(r.account, r.balance) for r in balances(session, clearing, as_of=start)] == [
            ("assets:clearing:sandbox:EUR", Money(5500, EUR))
        ]
        assert [(r.account, r.balance) for r in balances(session, clearing)] == [
            ("assets:clearing:cmi:EUR", Money(3000, EUR)),
            ("assets:clearing:sandbox:EUR", Money(6300, EUR)),
        ]
        by_fee = balances(
            session,
            SliceFilter(consulate="FR-PAR", type=None, account="liabilities:"),
            split=frozenset({"fee_code"}),
        )
        assert [(r.fee_code, r.balance) for r in by_fee] == [
            ("CNIE", Money(800, EUR)),
            ("PASSPORT", Money(0, EUR)),
        ]
        assert [(r.account, r.balance) for r in balances(session, SliceFilter(provider="cmi"))] == [
            ("assets:clearing:cmi:EUR", Money(3000, EUR))
        ]
        assert [r.balance for r in balances(session, SliceFilter(currency="JPY"))] == []
