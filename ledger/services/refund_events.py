"""The refunds service's part of the payments service's event and resolver hooks.

- refund events confirm or fail a refund of ours that was still pending or unknown; a refund we did not
  make (at the provider's dashboard) is unplaced, so the payment's status goes to a person;
- dispute events go to ledger.services.disputes;
- the resolver settles unknown refund and void attempts from the provider's status report: a refund is
  succeeded once the provider's refunded total covers it; a void once the payment is canceled.

`install()` registers them (ledger.services.payments does it when it is imported).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from ledger.db.models_payments import Payment, PaymentAttempt
from ledger.domain.payments import AttemptStatus, EventOutcome
from ledger.services.disputes import DISPUTE_KINDS, apply_dispute
from ledger.services.payments import events, resolver
from ledger.services.payments.context import Payments
from ledger.services.refunds import REFUNDS, apply_refund_result
from ledger.services.voids import apply_void_result
from providers.model import (
    EventKind,
    Outcome,
    PaymentState,
    ProviderEvent,
    ProviderResult,
    StatusReport,
)


def _refund_of(session: Session, payment: Payment, event: ProviderEvent) -> Row[Any] | None:
    query = select(REFUNDS).where(REFUNDS.c.payment_id == payment.id)
    if event.our_operation_reference:
        query = query.where(REFUNDS.c.reference == event.our_operation_reference)
    elif event.operation_reference:
        query = query.where(REFUNDS.c.provider_reference == event.operation_reference)
    else:
        return None
    return session.connection().execute(query).first()


def on_refund_event(
    session: Session, payments: Payments, payment: Payment, event: ProviderEvent, now: datetime
) -> EventOutcome:
    del now  # the refund's own times are the service clock's
    session.flush()
    refund = _refund_of(session, payment, event)
    if refund is None:
        return EventOutcome.UNPLACED  # not a refund of ours: the status check hands it to a person
    if refund.state in ("succeeded", "declined"):
        return EventOutcome.IGNORED
    if event.kind is EventKind.REFUNDED:
        result = ProviderResult(outcome=Outcome.succeeded(), operation_reference=event.operation_reference)
    else:
        result = ProviderResult(outcome=Outcome.declined("refund_failed", event.reason))
    apply_refund_result(session, payments.settings, refund.id, result)
    session.expire(payment)
    return EventOutcome.APPLIED


def on_dispute_event(
    session: Session, payments: Payments, payment: Payment, event: ProviderEvent, now: datetime
) -> EventOutcome:
    del now
    session.flush()
    applied = apply_dispute(session, payments.settings, payment.variant, event)
    session.expire(payment)
    return applied.outcome


def _refunded_before(session: Session, payment: Payment, attempt: PaymentAttempt) -> int:
    rows = session.connection().execute(
        select(REFUNDS.c.amount).where(
            REFUNDS.c.payment_id == payment.id,
            REFUNDS.c.state == "succeeded",
            REFUNDS.c.attempt_id != attempt.id,
        )
    )
    return sum(row.amount for row in rows)


def settle_refund(  # noqa: PLR0917 - the resolver hook's signature
    session: Session,
    payments: Payments,
    payment: Payment,
    attempt: PaymentAttempt,
    report: StatusReport,
    now: datetime,
) -> bool:
    """An open refund attempt, from the provider's status: succeeded when the provider's refunded total
    covers it; declined when it was never sent (still PREPARED: the process died before the call, which
    only follows the DISPATCHED commit); otherwise left to the resolver's backoff, then a person."""
    del now
    if report.refunded is None or attempt.amount is None:
        return False
    refund_id = session.scalar(select(REFUNDS.c.id).where(REFUNDS.c.attempt_id == attempt.id))
    if refund_id is None:
        return False
    if report.refunded.minor >= _refunded_before(session, payment, attempt) + attempt.amount:
        result = ProviderResult(outcome=Outcome.succeeded())
    elif attempt.state == AttemptStatus.PREPARED.value:
        result = ProviderResult(
            outcome=Outcome.declined("not_sent", "the refund was never sent to the provider")
        )
    else:
        return False  # sent, not (yet) at the provider: asked again later, then a person decides
    session.flush()
    apply_refund_result(session, payments.settings, refund_id, result)
    session.expire_all()
    return True


def settle_void(  # noqa: PLR0917 - the resolver hook's signature
    session: Session,
    payments: Payments,
    payment: Payment,
    attempt: PaymentAttempt,
    report: StatusReport,
    now: datetime,
) -> bool:
    """An unknown void attempt: succeeded when the provider shows the payment canceled, declined when it
    shows it captured."""
    del payments, payment, now
    if report.state is PaymentState.CANCELED:
        result = ProviderResult(outcome=Outcome.succeeded())
    elif report.state is PaymentState.CAPTURED:
        result = ProviderResult(outcome=Outcome.declined("captured", "the payment was captured, not voided"))
    elif attempt.state == AttemptStatus.PREPARED.value:
        result = ProviderResult(
            outcome=Outcome.declined("not_sent", "the void was never sent to the provider")
        )
    else:
        return False
    session.flush()
    apply_void_result(session, attempt.id, result)
    session.expire_all()
    return True


def install() -> None:
    """Register the handlers with the payments service (idempotent)."""
    for kind in (EventKind.REFUNDED, EventKind.REFUND_FAILED):
        events.AFTER_CAPTURE_HANDLERS[kind] = on_refund_event
    for kind in DISPUTE_KINDS:
        events.AFTER_CAPTURE_HANDLERS[kind] = on_dispute_event
    resolver.SETTLERS["refund"] = settle_refund
    resolver.SETTLERS["void"] = settle_void
