"""One provider call for a stored attempt: marked dispatched, made outside any transaction, then settled."""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog
from anyio import to_thread

from ledger.db.models_payments import PaymentAttempt
from ledger.domain.payments import ATTEMPT_OPEN, AttemptStatus, PaymentStatus, can_move
from ledger.services import clock
from ledger.services.payments import crashpoints
from ledger.services.payments.context import Payments
from ledger.services.payments.progress import advance
from ledger.services.payments.records import (
    mark_dispatched,
    mark_unknown,
    move_payment,
    payment_by_id,
    settle_attempt,
)
from providers.base import Provider
from providers.config import VariantConfig
from providers.errors import ProviderError
from providers.model import Outcome, OutcomeKind, PaymentRequest, PaymentState, ProviderResult

log = structlog.get_logger("etimbre.payments")
P = PaymentStatus

_RESULT_TARGETS = {
    None: P.PENDING,
    PaymentState.PENDING: P.PENDING,
    PaymentState.AUTHORIZED: P.AUTHORIZED,
    PaymentState.CAPTURED: P.CAPTURED,
    PaymentState.FAILED: P.FAILED,
    PaymentState.CANCELED: P.CANCELED,
    PaymentState.EXPIRED: P.EXPIRED,
}


def call_window(variant: VariantConfig, payments: Payments) -> timedelta:
    """How long a call to this variant can take, plus the first check's delay: after that a PREPARED or
    DISPATCHED attempt belongs to a process that died, and the resolver asks the provider."""
    t = variant.timeouts
    return timedelta(
        seconds=t.connect + t.write + t.read + t.pool + payments.settings.service.payments.first_check_seconds
    )


async def create_at_provider(
    payments: Payments, provider: Provider, *, payment_id: uuid.UUID, attempt_id: uuid.UUID, key: str,
    request: PaymentRequest,
) -> ProviderResult:  # fmt: skip
    """Make the create call of a committed attempt and settle what it tells us."""
    await to_thread.run_sync(_dispatched, payments, attempt_id)
    crashpoints.reached("before-call")
    try:
        result = await provider.create_payment(request, idempotency_key=key)
    except (ProviderError, ValueError) as error:  # refused before anything was sent
        result = ProviderResult(outcome=Outcome.declined("refused", str(error)))
    crashpoints.reached("after-call")
    await to_thread.run_sync(settle_create, payments, payment_id, attempt_id, result)
    return result


def _dispatched(payments: Payments, attempt_id: uuid.UUID) -> None:
    with payments.database.write() as session:
        mark_dispatched(session, attempt_id, now=clock.now())


def settle_create(
    payments: Payments, payment_id: uuid.UUID, attempt_id: uuid.UUID, result: ProviderResult
) -> None:
    """What the create call answered, applied to the payment and its attempt in one transaction. An
    attempt that an event or the resolver settled in the meantime is left as it is."""
    now = clock.now()
    first_check = timedelta(seconds=payments.settings.service.payments.first_check_seconds)
    with payments.database.write() as session:
        payment = payment_by_id(session, payment_id, lock=True)
        attempt = session.get(PaymentAttempt, attempt_id, with_for_update=True)
        if payment is None or attempt is None:
            raise LookupError(f"payment {payment_id} or its attempt {attempt_id} is gone")
        if result.provider_reference and payment.provider_reference is None:
            payment.provider_reference = result.provider_reference
        if AttemptStatus(attempt.state) not in ATTEMPT_OPEN or attempt.state == AttemptStatus.UNKNOWN:
            return
        outcome = result.outcome
        if outcome.kind is OutcomeKind.SUCCEEDED:
            settle_attempt(attempt, AttemptStatus.SUCCEEDED, now=now)
            session.flush()
            target = _RESULT_TARGETS.get(result.state, P.PENDING)
            advance(
                session, payments, payment, target, amount=result.amount, when=now, now=now,
                actor=f"provider:{payment.variant}",
            )  # fmt: skip
        elif outcome.kind is OutcomeKind.DECLINED:
            settle_attempt(
                attempt, AttemptStatus.DECLINED, now=now, code=outcome.code, detail=outcome.message
            )
            if can_move(P(payment.state), P.FAILED):
                move_payment(payment, P.FAILED, now=now)
        else:
            cause = outcome.cause.value if outcome.cause else "internal"
            mark_unknown(attempt, cause, outcome.message, now=now, first_check=first_check)
            if payment.state == P.CREATED.value:
                move_payment(payment, P.UNKNOWN, now=now)
            log.warning("payment outcome unknown", reference=payment.reference, cause=cause)
        session.flush()
        crashpoints.reached("before-commit")
