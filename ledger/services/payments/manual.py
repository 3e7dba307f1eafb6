"""What a person does with the manual queue: look again at an attempt, or decide a parked payment."""

from __future__ import annotations

import uuid

from anyio import to_thread
from sqlalchemy import select

from ledger.db.models_payments import Payment, PaymentAttempt
from ledger.domain.payments import ATTEMPT_OPEN, AttemptStatus, PaymentStatus
from ledger.money import Money
from ledger.services import clock
from ledger.services.payments.capture import capture
from ledger.services.payments.context import Payments
from ledger.services.payments.errors import PaymentNotFoundError, PaymentRefusedError
from ledger.services.payments.events import provider_for
from ledger.services.payments.records import move_payment, payment_by_id
from providers.errors import ProviderError
from providers.model import PaymentState

_CAPTURED_AT_PROVIDER = (
    PaymentState.CAPTURED,
    PaymentState.PARTIALLY_REFUNDED,
    PaymentState.REFUNDED,
    PaymentState.DISPUTED,
)


def requeue(payments: Payments, attempt_id: uuid.UUID) -> None:
    """Put an attempt of the manual queue back before the resolver, due now (once the provider is
    reachable again, say). If the next check settles nothing, it comes back to the queue."""
    now = clock.now()
    with payments.database.write() as session:
        attempt = session.get(PaymentAttempt, attempt_id, with_for_update=True)
        if attempt is None or not attempt.manual or AttemptStatus(attempt.state) not in ATTEMPT_OPEN:
            raise PaymentNotFoundError(f"no attempt {attempt_id} in the manual queue")
        attempt.manual = False
        attempt.next_check_at = now
        attempt.updated_at = now


def _parked(payments: Payments, reference: str) -> tuple[uuid.UUID, str, str | None, str]:
    with payments.database.read() as session:
        payment = session.scalars(select(Payment).where(Payment.reference == reference)).first()
        if payment is None or payment.state != PaymentStatus.PARKED.value:
            raise PaymentNotFoundError(f"no parked payment {reference}")
        return payment.id, payment.reference, payment.provider_reference, payment.variant


async def issue_parked(payments: Payments, reference: str, *, actor: str) -> None:
    """A person accepts a parked payment: only when the provider's status now says it captured exactly
    the published price, in the payment's currency; then the entry and the stamps, as for any capture."""
    payment_id, ours, provider_reference, variant = await to_thread.run_sync(_parked, payments, reference)
    try:
        report = await provider_for(payments, variant).fetch_status(
            ours, provider_reference=provider_reference
        )
    except ProviderError as error:
        raise PaymentRefusedError("reference", f"the provider cannot be asked now: {error}") from None

    def accept() -> None:
        now = clock.now()
        with payments.database.write() as session:
            payment = payment_by_id(session, payment_id, lock=True)
            if payment is None or payment.state != PaymentStatus.PARKED.value:
                raise PaymentNotFoundError(f"no parked payment {reference}")
            price = Money(payment.amount, payment.currency)
            if report.state not in _CAPTURED_AT_PROVIDER or report.captured != price:
                raise PaymentRefusedError(
                    "reference",
                    f"the provider reports {report.state} with {report.captured} captured; stamps are issued "
                    f"only for {price} captured. Refund it at the provider, then close it.",
                )
            capture(session, payments, payment, captured_at=report.checked_at, now=now, actor=actor)

    await to_thread.run_sync(accept)


def close_parked(payments: Payments, reference: str, *, reason: str, actor: str) -> None:
    """A person closes a parked payment without stamps (nothing was taken, or it was given back at the
    provider); the reason and who decided are kept with it."""
    if not reason.strip():
        raise PaymentRefusedError("reason", "say why the payment is closed without stamps")
    now = clock.now()
    with payments.database.write() as session:
        payment = session.scalars(
            select(Payment).where(Payment.reference == reference).with_for_update()
        ).first()
        if payment is None or payment.state != PaymentStatus.PARKED.value:
            raise PaymentNotFoundError(f"no parked payment {reference}")
        payment.parked_reason = f"{payment.parked_reason} | closed by {actor}: {reason}"[:2000]
        move_payment(payment, PaymentStatus.FAILED, now=now)
