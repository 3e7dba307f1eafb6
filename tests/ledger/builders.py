"""Entries a test can post: the events of DESIGN.md §3, built from the configured chart of accounts."""

from __future__ import annotations

from datetime import datetime

from ledger.domain.chart import Chart, Role
from ledger.domain.entries import EntryDraft, EntryKind, References, credit, debit
from ledger.money import Money


def captured(
    chart: Chart,
    amount: Money,
    *,
    consulate: str = "FR-PAR",
    provider: str = "sandbox",
    fee: str = "PASSPORT",
    payment: str = "pay-1",
    effective_at: datetime | None = None,
) -> EntryDraft:
    """A payment captured: clearing debited, stamps outstanding credited."""
    clearing = chart.account(Role.CLEARING, currency=amount.currency, provider=provider)
    outstanding = chart.account(Role.STAMPS_OUTSTANDING, currency=amount.currency, consulate=consulate)
    return EntryDraft(
        kind=EntryKind.PAYMENT_CAPTURED,
        lines=(debit(clearing, amount, fee), credit(outstanding, amount, fee)),
        consulate=consulate,
        references=References(payment=payment),
        effective_at=effective_at,
    )


def consumed(chart: Chart, amount: Money, *, consulate: str = "FR-PAR", fee: str = "PASSPORT") -> EntryDraft:
    outstanding = chart.account(Role.STAMPS_OUTSTANDING, currency=amount.currency, consulate=consulate)
    revenue = chart.account(Role.CONSULAR_FEES, currency=amount.currency, fee=fee)
    return EntryDraft(
        kind=EntryKind.STAMP_CONSUMED,
        lines=(debit(outstanding, amount, fee), credit(revenue, amount)),
        consulate=consulate,
    )
