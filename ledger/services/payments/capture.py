"""A captured payment becomes its ledger entry and stamps, in the transaction that marks it captured."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ledger.db.models_payments import Payment
from ledger.domain.entries import MAX_FUTURE_SKEW_SECONDS
from ledger.domain.payments import PaymentStatus
from ledger.services.issuance import CapturedPayment, IssuedPayment, record_captured_payment
from ledger.services.payments.context import Payments
from ledger.services.payments.records import money, move_payment


def capture(
    session: Session,
    payments: Payments,
    payment: Payment,
    *,
    captured_at: datetime,
    now: datetime,
    actor: str,
) -> IssuedPayment:
    """Mark the (locked) payment captured and post its entry and stamps through the counter's own
    issuance function: one ledger entry, one stamp per fee, all in the caller's transaction."""
    # The provider's clock may run ahead of ours: never record a capture in our future.
    captured_at = min(captured_at, now + timedelta(seconds=MAX_FUTURE_SKEW_SECONDS // 2))
    move_payment(payment, PaymentStatus.CAPTURED, now=now)
    issued = record_captured_payment(
        session,
        payments.settings,
        payments.keys,
        CapturedPayment(
            payment_ref=payment.reference,
            consulate=payment.consulate,
            fee_codes=payment.fees,
            channel="online" if payment.channel == "online" else "counter",
            provider=payment.provider,
            amount=money(payment),
            captured_at=captured_at,
            priced_at=payment.priced_at,
            memo=(("variant", payment.variant), ("provider_reference", payment.provider_reference or "")),
        ),
        actor=actor,
    )
    payment.captured_amount = payment.amount
    payment.entry_id = issued.entry_id
    payment.captured_at = captured_at
    session.flush()
    return issued
