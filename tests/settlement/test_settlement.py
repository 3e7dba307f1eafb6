"""Settlement entries from the providers' settlement data and from acquirers' reports, on both engines."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import pytest

from ledger.db.engine import Database
from ledger.domain.entries import EntryKind
from ledger.money import Money
from ledger.services.balances import account_balance
from ledger.services.journal import EntryFilter, list_entries
from ledger.services.settlement import (
    SettlementBatch,
    SettlementConflictError,
    SettlementError,
    SettlementItem,
    batches_from_lines,
    fetch_batches,
    post_settlement,
    settlement_draft,
)
from ledger.settings import Settings
from providers.model import RefundRequest, SettlementKind, SettlementLine
from providers.registry import ProviderRegistry
from tests.settlement.conftest import pay_online

pytestmark = pytest.mark.anyio
EUR = "EUR"


def _line(
    kind: SettlementKind, gross: int, fee: int, payout: str | None = "po_1", ref: str = "op"
) -> SettlementLine:
    return SettlementLine(
        kind=kind, our_reference="P-1", provider_reference="pay_1", operation_reference=ref,
        payout_reference=payout, gross=Money(gross, EUR), fee=Money(fee, EUR), net=Money(gross - fee, EUR),
        value_date=date(2026, 11, 22),
    )  # fmt: skip


def _balances(db: Database, provider: str, currency: str = EUR) -> tuple[Money | None, ...]:
    with db.read() as session:
        return tuple(
            account_balance(session, code)
            for code in (
                f"assets:treasury-account:{currency}",
                f"expenses:acquirer-fees:{provider}:{currency}",
                f"assets:clearing:{provider}:{currency}",
            )
        )


def test_a_payout_is_one_balanced_entry_per_currency(settings: Settings) -> None:
    lines = [
        _line(SettlementKind.CAPTURE, 10000, 175, ref="a"),
        _line(SettlementKind.REFUND, -2500, 0, ref="b"),
        _line(SettlementKind.CAPTURE, 5000, 100, payout=None, ref="c"),
    ]
    batches = batches_from_lines("sandbox", date(2026, 11, 22), lines)
    assert [(b.batch, len(b.items)) for b in batches] == [("2026-11-22", 1), ("po_1", 2)]
    payout = batches[1]
    assert (payout.gross, payout.fee, payout.net) == (Money(7500, EUR), Money(175, EUR), Money(7325, EUR))
    draft = settlement_draft(settings.chart, payout)
    assert draft is not None
    assert [(line.account.code, line.amount.minor) for line in draft.lines] == [
        ("assets:treasury-account:EUR", 7325),
        ("expenses:acquirer-fees:sandbox:EUR", 175),
        ("assets:clearing:sandbox:EUR", -7500),
    ]


def test_a_fee_line_is_all_fee_and_a_batch_netting_to_zero_posts_nothing(settings: Settings) -> None:
    fee_only = SettlementItem("fee", "fee-1", None, Money(-900, EUR), Money(0, EUR), Money(-900, EUR))
    batch = SettlementBatch("stripe", "po_2", EUR, (fee_only,))
    draft = settlement_draft(settings.chart, batch)
    assert draft is not None
    assert [(line.account.code, line.amount.minor) for line in draft.lines] == [
        ("assets:treasury-account:EUR", -900),
        ("expenses:acquirer-fees:stripe:EUR", 900),
    ]
    zero = SettlementItem("adjustment", "adj", None, Money(0, EUR), Money(0, EUR), Money(0, EUR))
    assert settlement_draft(settings.chart, SettlementBatch("stripe", "po_3", EUR, (zero,))) is None


def test_a_batch_reference_too_long_for_the_ledger_is_refused() -> None:
    with pytest.raises(SettlementError, match="1 to 64 characters"):
        batches_from_lines(
            "sandbox", date(2026, 11, 22), [_line(SettlementKind.CAPTURE, 1, 0, payout="p" * 65)]
        )


async def test_the_sandbox_settlement_is_posted_once(
    db: Database, settings: Settings, fakes: ProviderRegistry
) -> None:
    provider = fakes.get("sandbox-online")
    payment_id = await pay_online(provider, "SET-1", Money(10000, EUR))
    refund = RefundRequest(
        reference="SET-1", provider_reference=payment_id, refund_reference="SET-1-R1",
        amount=Money(2500, EUR), previously_refunded=Money(0, EUR),
    )  # fmt: skip
    await provider.refund(refund, idempotency_key="refund-SET-1-R1")
    today = datetime.now(UTC).date()
    batches = await fetch_batches(provider, today)
    with db.write() as session:
        first = post_settlement(session, settings.chart, batches, actor="auditor")
    assert [(s.replayed, s.batch.batch) for s in first] == [(False, f"po_{today:%Y%m%d}_eur")]
    # 1.50 % + 0.25 of 100.00 = 1.75 in fees; 25.00 refunded
    assert _balances(db, "sandbox") == (Money(7325, EUR), Money(175, EUR), Money(-7500, EUR))

    with db.write() as session:
        again = post_settlement(
            session, settings.chart, await fetch_batches(provider, today), actor="auditor"
        )
    assert [(s.replayed, s.entry_id) for s in again] == [(True, first[0].entry_id)]
    assert _balances(db, "sandbox") == (Money(7325, EUR), Money(175, EUR), Money(-7500, EUR))
    with db.read() as session:
        page = list_entries(session, EntryFilter(kind=EntryKind.SETTLEMENT))
    assert len(page.entries) == 1
    assert page.entries[0].references.settlement == f"po_{today:%Y%m%d}_eur"


async def test_a_payout_settled_again_with_other_figures_is_refused_and_nothing_moves(
    db: Database, settings: Settings, fakes: ProviderRegistry
) -> None:
    provider = fakes.get("sandbox-online")
    await pay_online(provider, "SET-2", Money(4000, EUR))
    today = datetime.now(UTC).date()
    with db.write() as session:
        post_settlement(session, settings.chart, await fetch_batches(provider, today), actor="auditor")
    before = _balances(db, "sandbox")
    await pay_online(provider, "SET-3", Money(2000, EUR))  # the same day's payout grows
    later = await fetch_batches(provider, today)
    conflict = r"already settled with gross 40\.00.*now it shows gross 60\.00"
    with pytest.raises(SettlementConflictError, match=conflict), db.write() as session:
        post_settlement(session, settings.chart, later, actor="auditor")
    assert _balances(db, "sandbox") == before


async def test_a_stripe_payout_with_a_dispute_settles_fees_and_the_chargeback(
    db: Database, settings: Settings, fakes: ProviderRegistry, fake_urls: tuple[str, str]
) -> None:
    provider = fakes.get("stripe-online")
    intent = await pay_online(provider, "SET-S1", Money(8000, EUR))
    await pay_online(provider, "SET-S2", Money(2000, EUR))
    today = datetime.now(UTC).date()
    async with httpx.AsyncClient(base_url=fake_urls[1]) as client:
        (await client.post(f"/_fake/payment_intents/{intent}/dispute", json={})).raise_for_status()
        (await client.post("/_fake/payouts", json={"day": today.isoformat()})).raise_for_status()
    batches = await fetch_batches(provider, today)
    assert len(batches) == 1 and batches[0].batch.startswith("po_")
    with db.write() as session:
        settled = post_settlement(session, settings.chart, batches, actor="auditor")
    assert settled[0].entry_id is not None
    # Captures 80.00 + 20.00 at the fake's 1.5 % + 0.25 (1.45 + 0.55); the dispute takes 80.00 back plus 15.00.
    gross, fee = Money(2000, EUR), Money(145 + 55 + 1500, EUR)
    assert _balances(db, "stripe") == (gross - fee, fee, -gross)
