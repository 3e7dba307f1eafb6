"""Small builders for reconciliation tests: a past business day, entries on it, exports, a run."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ledger.db.engine import Database
from ledger.domain.chart import Role
from ledger.domain.entries import EntryDraft, EntryKind, credit, debit
from ledger.money import Money
from ledger.services import clock
from ledger.services.journal import post_entry
from ledger.settings import Settings
from reconciliation.days import today_in
from reconciliation.runs import RunPlan, RunSummary, reconcile
from tests.ledger.builders import captured

HEADER = "entry_id,booking_date,value_date,amount,currency,reference,counterparty,description,batch_reference"


def past_day(settings: Settings, days: int = 3) -> date:
    return today_in(settings.service.treasury.timezone, clock.now()) - timedelta(days=days)


def at(settings: Settings, day: date, hour: int = 12) -> datetime:
    zone = ZoneInfo(settings.service.treasury.timezone)
    return datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)


def capture(
    db: Database, settings: Settings, day: date, payment: str, minor: int, currency: str = "EUR"
) -> None:
    with db.write() as session:
        post_entry(
            session,
            captured(
                settings.chart,
                Money(minor, currency),
                payment=payment,
                provider="transfer",
                consulate="FR-PAR" if currency == "EUR" else "TN-TUN",
                effective_at=at(settings, day),
            ),
        )


def bank_charge(db: Database, settings: Settings, day: date, minor: int, currency: str = "EUR") -> None:
    treasury = settings.chart.account(Role.TREASURY, currency=currency)
    other = settings.chart.account(Role.ADJUSTMENTS, currency=currency)
    amount = Money(minor, currency)
    with db.write() as session:
        post_entry(
            session,
            EntryDraft(
                kind=EntryKind.ADJUSTMENT,
                lines=(credit(treasury, amount), debit(other, amount)),
                reason="bank charge",
                effective_at=at(settings, day, 9),
            ),
        )


def export(day: date, *rows: tuple[str, str, str]) -> bytes:
    """Treasury export lines as (amount, currency, reference)."""
    lines = [HEADER]
    for number, (amount, currency, reference) in enumerate(rows, start=1):
        lines.append(f"T{number},{day.isoformat()},,{amount},{currency},{reference},,,")
    return ("\n".join(lines) + "\n").encode()


def run(db: Database, settings: Settings, day: date, *imports: int, actor: str = "test") -> RunSummary:
    return reconcile(
        db,
        RunPlan(day, tuple(imports), actor=actor),
        settings=settings.service.reconciliation,
        timezone=settings.service.treasury.timezone,
        chart=settings.chart,
    )
