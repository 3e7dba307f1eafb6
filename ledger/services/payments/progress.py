"""Move a locked payment towards what the provider says happened, whatever order the news comes in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ledger.db.models_payments import Payment
from ledger.domain.payments import (
    PAYMENT_PAID,
    AttemptKind,
    AttemptStatus,
    EventOutcome,
    PaymentStatus,
    can_move,
)
from ledger.money import Money
from ledger.services.payments.capture import capture
from ledger.services.payments.context import Payments
from ledger.services.payments.records import money, open_attempts, park, settle_attempt

P = PaymentStatus
CLOSED = frozenset({P.FAILED, P.CANCELED, P.EXPIRED})
# What the provider reports about money taken or held: amount and currency must be the payment's own.
MONEY_STATES = frozenset({P.AUTHORIZED, P.CAPTURED})


def advance(  # noqa: PLR0911 - one return per way news can land, read top to bottom
    session: Session,
    payments: Payments,
    payment: Payment,
    target: PaymentStatus,
    *,
    amount: Money | None,
    when: datetime,
    now: datetime,
    actor: str,
) -> EventOutcome:
    """Apply "the provider says the payment is `target`" to a payment locked by the caller.

    Never goes back: news older than what we know is IGNORED; money reported with another amount or
    currency, or on a payment already closed, PARKS it for a person; news contradicting a capture is
    UNPLACED (the caller asks the provider's status). Captures issue the stamps here, in this transaction.
    """
    current = PaymentStatus(payment.state)
    if amount is not None and amount.currency != payment.currency:
        if not can_move(current, P.PARKED):
            return EventOutcome.UNPLACED
        park(payment, f"the provider reported {amount} for a payment in {payment.currency}", now=now)
        return EventOutcome.PARKED
    if target in MONEY_STATES and amount is not None and amount != money(payment):
        if not can_move(current, P.PARKED):
            return EventOutcome.UNPLACED
        park(payment, f"the provider reported {target} of {amount}; the payment is {money(payment)}", now=now)
        return EventOutcome.PARKED
    if target == current or current is P.PARKED:
        return EventOutcome.IGNORED  # already there, or a person decides
    if target in MONEY_STATES and current in CLOSED:
        park(payment, f"the provider reported {target} after the payment was {current}", now=now)
        return EventOutcome.PARKED
    if not can_move(current, target):
        if current in PAYMENT_PAID and target in CLOSED:
            return EventOutcome.UNPLACED  # contradicts money taken: only the provider's status can tell
        return EventOutcome.IGNORED  # older news (authorized or pending after captured, ...)
    if target is P.CAPTURED:
        capture(session, payments, payment, captured_at=when, now=now, actor=actor)
    else:
        payment.state = target.value
        payment.updated_at = now
    _settle_create(session, payment, target, now=now)
    return EventOutcome.APPLIED


def _settle_create(session: Session, payment: Payment, target: PaymentStatus, *, now: datetime) -> None:
    """The provider knows the payment: its create attempt reached it (a terminal sale that failed was
    declined)."""
    counter = payment.channel == "counter"
    if counter and target not in CLOSED and target is not P.CAPTURED:
        return  # a sale still at the terminal: its outcome is not known yet
    for attempt in open_attempts(session, payment):
        if attempt.kind != AttemptKind.CREATE.value:
            continue
        declined = counter and target in CLOSED
        settle_attempt(
            attempt,
            AttemptStatus.DECLINED if declined else AttemptStatus.SUCCEEDED,
            now=now,
            detail=f"settled by the provider's news: {target}",
        )
