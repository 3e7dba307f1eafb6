"""Chargebacks: dispute events from a provider's webhooks applied to the payment and the ledger.

- opened: the acquirer takes the disputed amount back at once, so the chargeback entry is posted
  (chargebacks:<provider> debited, clearing credited) and the payment becomes disputed;
- won: the chargeback entry is reversed and the payment is captured (or partially refunded) again;
- lost: the payment is charged back and each of its stamps still unused is revoked (status refunded, so
  it is on the trust list's deny list) against the chargeback expense.

Order is never assumed: a "won" or "lost" that arrives before its "opened" opens the dispute itself, and
the late "opened" is then ignored. The payments service stores each event once per (variant, event id)
in the same transaction and calls `apply_dispute` through its after-capture handlers
(ledger.services.refund_events).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table, select, update
from sqlalchemy.orm import Session
from uuid_utils.compat import uuid7

from ledger.db.models_payments import Payment
from ledger.db.models_refunds import Dispute, RefundStamp
from ledger.db.models_stamps import Stamp, StampEvent
from ledger.domain.payments import EventOutcome, PaymentStatus, can_move
from ledger.money import Money
from ledger.services import clock
from ledger.services.journal import reverse_entry
from ledger.services.refund_postings import StampFacts, post_chargeback, post_stamps_revoked
from ledger.services.refunds import PaymentNotFoundError
from ledger.settings import Settings
from providers.model import EventKind, ProviderEvent

PAYMENTS: Table = Payment.__table__  # type: ignore[assignment]
DISPUTES: Table = Dispute.__table__  # type: ignore[assignment]
REFUND_STAMPS: Table = RefundStamp.__table__  # type: ignore[assignment]
STAMPS: Table = Stamp.__table__  # type: ignore[assignment]
STAMP_EVENTS: Table = StampEvent.__table__  # type: ignore[assignment]

DISPUTE_KINDS = frozenset({EventKind.DISPUTED, EventKind.DISPUTE_WON, EventKind.DISPUTE_LOST})
ACTOR = "provider"


@dataclass(frozen=True, slots=True)
class DisputeOutcome:
    outcome: EventOutcome
    detail: str
    dispute_id: uuid.UUID | None = None


def _payment(session: Session, variant: str, event: ProviderEvent) -> Row[Any] | None:
    query = select(PAYMENTS)
    if event.our_reference:
        query = query.where(PAYMENTS.c.reference == event.our_reference)
    else:
        query = query.where(
            PAYMENTS.c.variant == variant, PAYMENTS.c.provider_reference == event.provider_reference
        )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.connection().execute(query).first()


def _clearing_provider(session: Session, payment: Row[Any]) -> str:
    """Whose clearing account the payment's capture debited: the provider recorded on its stamps."""
    recorded = session.scalar(
        select(STAMPS.c.provider).where(STAMPS.c.payment_ref == payment.reference).limit(1)
    )
    return str(recorded or payment.provider)


def _move(session: Session, payment: Row[Any], target: PaymentStatus, **values: Any) -> None:
    state = PaymentStatus(payment.state)
    changes = dict(values, updated_at=clock.now())
    if state != target and can_move(state, target):
        changes["state"] = target.value
    session.connection().execute(update(PAYMENTS).where(PAYMENTS.c.id == payment.id).values(**changes))


def _open(
    session: Session, settings: Settings, variant: str, payment: Row[Any], event: ProviderEvent
) -> Row[Any]:
    dispute_id = uuid7()
    entry_id = post_chargeback(
        session, settings.chart, provider=_clearing_provider(session, payment), amount=event.amount,
        consulate=payment.consulate, payment_ref=payment.reference, dispute_key=str(dispute_id),
        reason=event.reason or "chargeback", actor=ACTOR,
    )  # fmt: skip
    session.connection().execute(
        DISPUTES.insert().values(
            id=dispute_id, payment_id=payment.id, variant=variant,
            provider_reference=event.operation_reference or event.event_id, amount=event.amount.minor,
            currency=event.amount.currency, state="open", reason=event.reason, entry_id=entry_id,
            opened_at=event.occurred_at,
        )
    )  # fmt: skip
    _move(session, payment, PaymentStatus.DISPUTED, disputed_amount=event.amount.minor)
    return session.connection().execute(select(DISPUTES).where(DISPUTES.c.id == dispute_id)).one()


def _won(session: Session, payment: Row[Any], dispute: Row[Any], event: ProviderEvent) -> None:
    reversal = reverse_entry(
        session, dispute.entry_id, reason=f"dispute {dispute.provider_reference} won", actor=ACTOR,
        idempotency_key=f"dispute-won:{dispute.id}",
    )  # fmt: skip
    session.connection().execute(
        update(DISPUTES)
        .where(DISPUTES.c.id == dispute.id)
        .values(state="won", closing_entry_id=reversal.entry_id, closed_at=event.occurred_at)
    )
    back = PaymentStatus.PARTIALLY_REFUNDED if payment.refunded_amount else PaymentStatus.CAPTURED
    _move(session, payment, back, disputed_amount=0)


def _lost(
    session: Session, settings: Settings, payment: Row[Any], dispute: Row[Any], event: ProviderEvent
) -> None:
    now = clock.now()
    being_refunded = select(REFUND_STAMPS.c.number).where(REFUND_STAMPS.c.live)
    unused = list(
        session.connection().execute(
            select(STAMPS)
            .where(
                STAMPS.c.payment_ref == payment.reference,
                STAMPS.c.status == "issued",
                STAMPS.c.number.not_in(being_refunded),
            )
            .order_by(STAMPS.c.line_no)
        )
    )
    closing = None
    if unused:
        facts = [
            StampFacts(
                row.number,
                row.consulate,
                row.fee_code,
                Money(row.amount, row.currency),
                row.provider,
                row.payment_ref,
            )
            for row in unused
        ]
        closing = post_stamps_revoked(
            session, settings.chart, facts, dispute_key=str(dispute.id), actor=ACTOR
        )
        for row in unused:
            moved = session.connection().execute(
                update(STAMPS)
                .where(STAMPS.c.number == row.number, STAMPS.c.status == "issued")
                .values(status="refunded", status_changed_at=now)
            )
            if moved.rowcount == 1:
                session.connection().execute(
                    STAMP_EVENTS.insert().values(
                        number=row.number, kind="refunded", at=now, consulate=row.consulate, actor=ACTOR,
                        entry_id=closing, detail=f"revoked: dispute {dispute.provider_reference} lost",
                    )
                )  # fmt: skip
    session.connection().execute(
        update(DISPUTES)
        .where(DISPUTES.c.id == dispute.id)
        .values(state="lost", closing_entry_id=closing, closed_at=event.occurred_at)
    )
    _move(session, payment, PaymentStatus.CHARGED_BACK)


def apply_dispute(session: Session, settings: Settings, variant: str, event: ProviderEvent) -> DisputeOutcome:
    """Apply one dispute event to its payment (locked here) and the ledger, in the caller's transaction."""
    if event.kind not in DISPUTE_KINDS:
        raise ValueError(f"{event.kind} is not a dispute event")
    payment = _payment(session, variant, event)
    if payment is None:
        return DisputeOutcome(EventOutcome.UNPLACED, "no payment of ours matches this dispute")
    captured = Money(payment.captured_amount, payment.currency)
    if event.amount.currency != payment.currency or event.amount.minor > payment.captured_amount:
        return DisputeOutcome(
            EventOutcome.UNPLACED,
            f"dispute of {event.amount} on payment {payment.reference} of {captured} captured: "
            "a person must look",
        )
    reference = event.operation_reference or event.event_id
    dispute = (
        session.connection()
        .execute(
            select(DISPUTES).where(DISPUTES.c.variant == variant, DISPUTES.c.provider_reference == reference)
        )
        .one_or_none()
    )
    if dispute is None:
        dispute = _open(session, settings, variant, payment, event)
        if event.kind is EventKind.DISPUTED:
            return DisputeOutcome(EventOutcome.APPLIED, f"dispute {reference} opened", dispute.id)
        payment = _payment(session, variant, event)
        assert payment is not None
    if dispute.state != "open" or event.kind is EventKind.DISPUTED:
        return DisputeOutcome(
            EventOutcome.IGNORED, f"dispute {reference} is already {dispute.state}", dispute.id
        )
    if event.kind is EventKind.DISPUTE_WON:
        _won(session, payment, dispute, event)
        return DisputeOutcome(EventOutcome.APPLIED, f"dispute {reference} won", dispute.id)
    _lost(session, settings, payment, dispute, event)
    return DisputeOutcome(EventOutcome.APPLIED, f"dispute {reference} lost", dispute.id)


@dataclass(frozen=True, slots=True)
class DisputeView:
    id: uuid.UUID
    payment_ref: str
    variant: str
    provider_reference: str
    amount: Money
    state: str  # open | won | lost
    reason: str
    entry_id: uuid.UUID  # the chargeback entry
    closing_entry_id: uuid.UUID | None  # its reversal (won) or the stamps revoked (lost)
    opened_at: datetime
    closed_at: datetime | None


def disputes_of(session: Session, payment_ref: str) -> list[DisputeView]:
    """The disputes of one payment, oldest first."""
    payment = (
        session.connection().execute(select(PAYMENTS).where(PAYMENTS.c.reference == payment_ref)).first()
    )
    if payment is None:
        raise PaymentNotFoundError(f"no payment {payment_ref}")
    rows = session.connection().execute(
        select(DISPUTES).where(DISPUTES.c.payment_id == payment.id).order_by(DISPUTES.c.opened_at)
    )
    return [
        DisputeView(
            id=row.id,
            payment_ref=payment.reference,
            variant=row.variant,
            provider_reference=row.provider_reference,
            amount=Money(row.amount, row.currency),
            state=row.state,
            reason=row.reason,
            entry_id=row.entry_id,
            closing_entry_id=row.closing_entry_id,
            opened_at=row.opened_at,
            closed_at=row.closed_at,
        )
        for row in rows
    ]
