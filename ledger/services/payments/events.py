"""Provider events (webhooks, callbacks) and status reports applied to payments, each event once."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.db.models_payments import Payment, ProviderEventRecord
from ledger.domain.payments import AttemptKind, AttemptStatus, EventOutcome, PaymentStatus
from ledger.services import clock
from ledger.services.payments import crashpoints
from ledger.services.payments.context import Payments
from ledger.services.payments.errors import UnknownVariantError
from ledger.services.payments.progress import advance
from ledger.services.payments.records import (
    add_attempt,
    move_payment,
    open_attempts,
    payment_for_event,
    settle_attempt,
)
from providers.base import Provider
from providers.errors import ProviderConfigError
from providers.model import EventKind, PaymentState, ProviderEvent, StatusReport

log = structlog.get_logger("etimbre.payments")
P = PaymentStatus

_EVENT_TARGETS: Mapping[EventKind, PaymentStatus] = {
    EventKind.AUTHORIZED: P.AUTHORIZED,
    EventKind.CAPTURED: P.CAPTURED,
    EventKind.FAILED: P.FAILED,
    EventKind.CANCELED: P.CANCELED,
    EventKind.EXPIRED: P.EXPIRED,
}
_STATUS_TARGETS: Mapping[PaymentState, PaymentStatus] = {
    PaymentState.PENDING: P.PENDING,
    PaymentState.AUTHORIZED: P.AUTHORIZED,
    PaymentState.CAPTURED: P.CAPTURED,
    PaymentState.PARTIALLY_REFUNDED: P.CAPTURED,
    PaymentState.REFUNDED: P.CAPTURED,
    PaymentState.DISPUTED: P.CAPTURED,
    PaymentState.FAILED: P.FAILED,
    PaymentState.CANCELED: P.CANCELED,
    PaymentState.EXPIRED: P.EXPIRED,
}

# Events after a capture (refunds, disputes) are applied by the refunds service, which registers a
# handler per kind here; without one they are stored and acknowledged.
EventHandler = Callable[[Session, Payments, Payment, ProviderEvent, datetime], EventOutcome]
AFTER_CAPTURE_HANDLERS: dict[EventKind, EventHandler] = {}


@dataclass(frozen=True, slots=True)
class Applied:
    outcome: EventOutcome | None  # None: a duplicate, acknowledged and skipped
    payment_id: uuid.UUID | None


def body_digest(raw_body: bytes) -> str:
    return hashlib.sha256(raw_body).hexdigest()


def _known(session: Session, variant: str, event_id: str) -> bool:
    return (
        session.scalars(
            select(ProviderEventRecord.id).where(
                ProviderEventRecord.variant == variant, ProviderEventRecord.event_id == event_id
            )
        ).first()
        is not None
    )


def _apply(
    session: Session, payments: Payments, payment: Payment, event: ProviderEvent, now: datetime
) -> tuple[EventOutcome, str]:
    target = _EVENT_TARGETS.get(event.kind)
    if target is not None:
        outcome = advance(
            session, payments, payment, target, amount=event.amount, when=event.occurred_at, now=now,
            actor=f"provider:{payment.variant}",
        )  # fmt: skip
        return outcome, ""
    if event.kind is EventKind.DECLINED:
        return (
            EventOutcome.IGNORED,
            f"card declined ({event.reason or 'no reason'}); the cardholder may retry",
        )
    handler = AFTER_CAPTURE_HANDLERS.get(event.kind)
    if handler is None:
        return EventOutcome.IGNORED, f"{event.kind} is applied by the refunds service"
    return handler(session, payments, payment, event, now), ""


def apply_event(payments: Payments, variant: str, event: ProviderEvent, digest: str) -> Applied:
    """Store the event once per (variant, event id) in the same transaction as what it changes.

    A duplicate (sequential or concurrent) changes nothing. An event that cannot be placed leaves a
    STATUS attempt due now: the provider's own status decides, through the resolver.
    """
    now = clock.now()
    try:
        with payments.database.write() as session:
            if _known(session, variant, event.event_id):
                return Applied(None, None)
            payment = payment_for_event(session, variant, event.our_reference, event.provider_reference)
            detail = ""
            if payment is None:
                outcome, detail = EventOutcome.UNPLACED, "no payment of ours has this reference"
            else:
                outcome, detail = _apply(session, payments, payment, event, now)
                if payment.provider_reference is None and event.provider_reference:
                    payment.provider_reference = event.provider_reference
                if outcome is EventOutcome.UNPLACED:
                    add_attempt(session, payment, AttemptKind.STATUS, now=now, check_after=timedelta(0))
            session.add(
                ProviderEventRecord(
                    variant=variant,
                    event_id=event.event_id,
                    payment_id=None if payment is None else payment.id,
                    kind=event.kind.value,
                    amount=event.amount.minor,
                    currency=event.amount.currency,
                    body_sha256=digest,
                    occurred_at=event.occurred_at,
                    received_at=now,
                    outcome=outcome.value,
                    detail=detail,
                )
            )
            session.flush()
            crashpoints.reached("event-before-commit")
            return Applied(outcome, None if payment is None else payment.id)
    except IntegrityError:
        with payments.database.read() as session:
            if _known(session, variant, event.event_id):  # a concurrent copy won: ours was a duplicate
                return Applied(None, None)
        raise


def apply_status(
    session: Session, payments: Payments, payment: Payment, report: StatusReport, *, now: datetime
) -> EventOutcome:
    """The provider's answer to fetch_status, applied to a payment locked by the caller."""
    if report.provider_reference and payment.provider_reference is None:
        payment.provider_reference = report.provider_reference
    if report.state is PaymentState.NOT_FOUND:
        return _never_received(session, payment, now=now)
    target = _STATUS_TARGETS[report.state]
    amount = report.captured if target is P.CAPTURED else report.amount
    return advance(
        session, payments, payment, target, amount=amount, when=report.checked_at, now=now,
        actor=f"resolver:{payment.variant}",
    )  # fmt: skip


def _never_received(session: Session, payment: Payment, *, now: datetime) -> EventOutcome:
    """The provider does not know the payment: nothing was charged. A payment whose creation never
    reached the provider fails; one the provider had acknowledged is a contradiction for a person."""
    if payment.state not in (P.CREATED.value, P.UNKNOWN.value):
        return EventOutcome.UNPLACED
    for attempt in open_attempts(session, payment):
        if attempt.kind == AttemptKind.CREATE.value:
            settle_attempt(
                attempt, AttemptStatus.DECLINED, now=now, code="not_found",
                detail="the provider never received this payment: nothing was charged",
            )  # fmt: skip
    move_payment(payment, P.FAILED, now=now)
    return EventOutcome.APPLIED


def provider_for(payments: Payments, variant: str) -> Provider:
    try:
        return payments.registry.get(variant)
    except ProviderConfigError as error:
        raise UnknownVariantError(f"no usable provider variant {variant!r}: {error}") from None
