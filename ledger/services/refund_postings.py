"""The ledger entries of refunds and chargebacks (DESIGN.md §3), from explicit amounts.

- refund of an unused stamp: stamps-outstanding:<consulate> debited, clearing:<provider> credited;
- refund of a stamp already used (the service was not delivered after all): the fee income is reversed,
  consular-fees:<fee> debited, clearing:<provider> credited;
- chargeback: chargebacks:<provider> debited, clearing:<provider> credited; a dispute won reverses it;
- dispute lost: each stamp still unused is revoked, stamps-outstanding debited and chargebacks credited,
  so that an unused stamp whose money went back leaves nothing on any account.

Each function posts in the caller's transaction with an idempotency key naming what it is for, so a
second posting for the same stamp, refund or dispute returns the first entry.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ledger.domain.chart import Chart, Role
from ledger.domain.entries import EntryDraft, EntryKind, References, credit, debit
from ledger.money import Money
from ledger.services.journal import post_entry


@dataclass(frozen=True, slots=True)
class StampFacts:
    """What the ledger needs of a stamp: its number, fee, amount, consulate and whose clearing it left."""

    number: str
    consulate: str
    fee_code: str
    amount: Money
    provider: str  # the clearing account's provider, as recorded on the stamp at issue
    payment_ref: str


def post_stamp_refund(
    session: Session,
    chart: Chart,
    stamp: StampFacts,
    *,
    stamp_status: str,
    refund_reference: str,
    reason: str,
    actor: str,
) -> uuid.UUID:
    """Give a stamp's fee back to the provider's clearing account from where the fee stands now: stamps
    outstanding (`issued`, unused), the fee income (`consumed`), expired-stamp income (`expired`), or the
    chargeback expense (`refunded` by a lost dispute's revocation)."""
    currency = stamp.amount.currency
    if stamp_status == "issued":
        source = chart.account(Role.STAMPS_OUTSTANDING, currency=currency, consulate=stamp.consulate)
    elif stamp_status == "consumed":
        source = chart.account(Role.CONSULAR_FEES, currency=currency, fee=stamp.fee_code)
    elif stamp_status == "expired":
        source = chart.account(Role.EXPIRED_STAMPS, currency=currency)
    else:
        source = chart.account(Role.CHARGEBACKS, currency=currency, provider=stamp.provider)
    draft = EntryDraft(
        kind=EntryKind.STAMP_REFUNDED,
        lines=(
            debit(source, stamp.amount, fee_code=stamp.fee_code),
            credit(chart.account(Role.CLEARING, currency=currency, provider=stamp.provider), stamp.amount),
        ),
        consulate=stamp.consulate,
        references=References(payment=stamp.payment_ref, stamp=stamp.number),
        memo={"refund": refund_reference, "reason": reason, "stamp_status": stamp_status},
    )
    key = f"refund:{refund_reference}:{stamp.number}"
    return post_entry(session, draft, actor=actor, idempotency_key=key).entry_id


def post_chargeback(
    session: Session,
    chart: Chart,
    *,
    provider: str,
    amount: Money,
    consulate: str,
    payment_ref: str,
    dispute_key: str,
    reason: str,
    actor: str,
) -> uuid.UUID:
    """The acquirer took the disputed amount back: chargebacks expense debited, clearing credited."""
    currency = amount.currency
    draft = EntryDraft(
        kind=EntryKind.CHARGEBACK,
        lines=(
            debit(chart.account(Role.CHARGEBACKS, currency=currency, provider=provider), amount),
            credit(chart.account(Role.CLEARING, currency=currency, provider=provider), amount),
        ),
        consulate=consulate,
        references=References(payment=payment_ref),
        memo={"dispute": dispute_key, "reason": reason},
    )
    return post_entry(session, draft, actor=actor, idempotency_key=f"chargeback:{dispute_key}").entry_id


def post_stamps_revoked(
    session: Session, chart: Chart, stamps: list[StampFacts], *, dispute_key: str, actor: str
) -> uuid.UUID:
    """A dispute lost: the unused stamps it paid for are revoked; their fees leave stamps outstanding
    against the chargeback expense (the service was never delivered, the money is gone)."""
    first = stamps[0]
    currency = first.amount.currency
    total = Money.zero(currency)
    lines = []
    for stamp in stamps:
        total += stamp.amount
        outstanding = chart.account(Role.STAMPS_OUTSTANDING, currency=currency, consulate=stamp.consulate)
        lines.append(debit(outstanding, stamp.amount, fee_code=stamp.fee_code))
    lines.append(credit(chart.account(Role.CHARGEBACKS, currency=currency, provider=first.provider), total))
    draft = EntryDraft(
        kind=EntryKind.CHARGEBACK,
        lines=tuple(lines),
        consulate=first.consulate,
        references=References(payment=first.payment_ref),
        memo={"dispute": dispute_key, "revoked": ",".join(s.number for s in stamps)},
    )
    return post_entry(session, draft, actor=actor, idempotency_key=f"revoked:{dispute_key}").entry_id
