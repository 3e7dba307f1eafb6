"""Voids: an authorization released before capture. Nothing was captured, so nothing is posted and no
stamp exists; the payment is canceled. The attempt is committed before the call, like every other."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session
from uuid_utils.compat import uuid7

from ledger.db.engine import Database
from ledger.db.models_payments import Payment, PaymentAttempt
from ledger.domain.payments import AttemptKind, AttemptStatus, PaymentStatus
from ledger.money import Money
from ledger.services import clock
from ledger.services.refunds import PaymentNotFoundError, RefundConflictError, lock_payment
from providers.base import Provider
from providers.model import OutcomeKind, ProviderResult, VoidRequest

PAYMENTS: Table = Payment.__table__  # type: ignore[assignment]
ATTEMPTS: Table = PaymentAttempt.__table__  # type: ignore[assignment]
FIRST_CHECK = timedelta(seconds=10)
# If nothing settles the attempt by then (the process died around the call), the resolver asks the provider.
CRASH_CHECK = timedelta(minutes=2)
RESOLVED = (AttemptStatus.SUCCEEDED.value, AttemptStatus.DECLINED.value)


@dataclass(frozen=True, slots=True)
class VoidView:
    payment_ref: str
    attempt_id: uuid.UUID
    attempt_state: str
    payment_state: str
    amount: Money
    detail: str


def _prepare(session: Session, payment_ref: str) -> tuple[Any, Any]:
    query = select(PAYMENTS).where(PAYMENTS.c.reference == payment_ref)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    payment = session.connection().execute(query).one_or_none()
    if payment is None:
        raise PaymentNotFoundError(f"no payment {payment_ref}")
    key = f"void-{payment.reference}"  # one void per payment: a retry is the same call
    attempt = (
        session.connection().execute(select(ATTEMPTS).where(ATTEMPTS.c.idempotency_key == key)).one_or_none()
    )
    if attempt is not None:
        return payment, attempt
    if payment.state != PaymentStatus.AUTHORIZED.value:
        raise RefundConflictError(
            "payment", f"payment {payment.reference} is {payment.state}; only an authorization can be voided"
        )
    now = clock.now()
    session.connection().execute(
        ATTEMPTS.insert().values(
            id=uuid7(), payment_id=payment.id, kind=AttemptKind.VOID.value, idempotency_key=key,
            state=AttemptStatus.PREPARED.value, amount=payment.amount, code="", detail="", checks=0,
            manual=False, created_at=now, updated_at=now, next_check_at=now + CRASH_CHECK,
        )
    )  # fmt: skip
    attempt = session.connection().execute(select(ATTEMPTS).where(ATTEMPTS.c.idempotency_key == key)).one()
    return payment, attempt


def _dispatched(session: Session, attempt_id: uuid.UUID) -> None:
    now = clock.now()
    session.connection().execute(
        update(ATTEMPTS)
        .where(ATTEMPTS.c.id == attempt_id, ATTEMPTS.c.state == AttemptStatus.PREPARED.value)
        .values(state=AttemptStatus.DISPATCHED.value, dispatched_at=now, updated_at=now)
    )


def apply_void_result(session: Session, attempt_id: uuid.UUID, result: ProviderResult) -> None:
    attempt = session.connection().execute(select(ATTEMPTS).where(ATTEMPTS.c.id == attempt_id)).one()
    lock_payment(session, attempt.payment_id)  # the payment first, as every payment change does
    attempt = session.connection().execute(select(ATTEMPTS).where(ATTEMPTS.c.id == attempt_id)).one()
    if attempt.state in RESOLVED:
        return
    now = clock.now()
    kind = result.outcome.kind
    values: dict[str, Any] = {"updated_at": now, "detail": result.outcome.message}
    if kind is OutcomeKind.SUCCEEDED:
        values |= {"state": AttemptStatus.SUCCEEDED.value, "resolved_at": now, "next_check_at": None}
        session.connection().execute(
            update(PAYMENTS)
            .where(PAYMENTS.c.id == attempt.payment_id, PAYMENTS.c.state == PaymentStatus.AUTHORIZED.value)
            .values(state=PaymentStatus.CANCELED.value, updated_at=now)
        )
    elif kind is OutcomeKind.DECLINED:
        values |= {
            "state": AttemptStatus.DECLINED.value,
            "resolved_at": now,
            "code": result.outcome.code[:64],
        }
    else:
        cause = result.outcome.cause.value if result.outcome.cause else "internal"
        values |= {
            "state": AttemptStatus.UNKNOWN.value,
            "unknown_cause": cause,
            "next_check_at": now + FIRST_CHECK,
        }
    session.connection().execute(update(ATTEMPTS).where(ATTEMPTS.c.id == attempt_id).values(**values))


async def void_payment(db: Database, provider_for: Any, payment_ref: str) -> VoidView:
    """Release an authorization at its provider; the payment is canceled when the provider confirms."""

    def prepare() -> tuple[Any, Any]:
        with db.write() as session:
            return _prepare(session, payment_ref)

    payment, attempt = await to_thread.run_sync(prepare)
    if attempt.state not in RESOLVED:
        provider: Provider = provider_for(payment.variant)

        def dispatched() -> None:
            with db.write() as session:
                _dispatched(session, attempt.id)

        await to_thread.run_sync(dispatched)
        request = VoidRequest(
            reference=payment.reference,
            provider_reference=payment.provider_reference,
            amount=Money(payment.amount, payment.currency),
        )
        result = await provider.void(request, idempotency_key=attempt.idempotency_key)

        def apply() -> None:
            with db.write() as session:
                apply_void_result(session, attempt.id, result)

        await to_thread.run_sync(apply)

    def view() -> VoidView:
        with db.read() as session:
            row = session.connection().execute(select(ATTEMPTS).where(ATTEMPTS.c.id == attempt.id)).one()
            state = session.scalar(select(PAYMENTS.c.state).where(PAYMENTS.c.id == row.payment_id))
        amount = Money(payment.amount, payment.currency)
        return VoidView(payment_ref, row.id, row.state, str(state), amount, row.detail)

    return await to_thread.run_sync(view)
