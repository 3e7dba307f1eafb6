"""Payments and attempts in the database: create them, find them, lock them, move them forward."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.db.models_payments import Payment, PaymentAttempt
from ledger.domain.payments import AttemptKind, AttemptStatus, PaymentStatus, move, move_attempt
from ledger.money import Money


def new_reference(channel: str) -> str:
    """Our payment reference (the gateway's order id): short, unique, no personal data."""
    prefix = "ET" if channel == "online" else "EC"
    return f"{prefix}{secrets.token_hex(10).upper()}"


@dataclass(frozen=True, slots=True, kw_only=True)
class NewPayment:
    consulate: str
    fee_codes: tuple[str, ...]
    amount: Money
    priced_at: datetime
    channel: str
    variant: str
    provider: str
    expires_at: datetime
    terminal_id: str | None = None
    cashier: str | None = None


def insert_payment(session: Session, new: NewPayment, *, now: datetime) -> tuple[Payment, PaymentAttempt]:
    """The payment and its first attempt (create), both PREPARED before any provider call."""
    payment = Payment(
        id=uuid.uuid4(),
        reference=new_reference(new.channel),
        consulate=new.consulate,
        fee_codes=",".join(new.fee_codes),
        amount=new.amount.minor,
        currency=new.amount.currency,
        priced_at=new.priced_at,
        channel=new.channel,
        variant=new.variant,
        provider=new.provider,
        terminal_id=new.terminal_id,
        cashier=new.cashier,
        state=PaymentStatus.CREATED.value,
        captured_amount=0,
        refunded_amount=0,
        disputed_amount=0,
        expires_at=new.expires_at,
        created_at=now,
        updated_at=now,
    )
    session.add(payment)
    session.flush()  # the payment first: the attempt refers to it
    attempt = add_attempt(session, payment, AttemptKind.CREATE, now=now)
    return payment, attempt


def add_attempt(
    session: Session,
    payment: Payment,
    kind: AttemptKind,
    *,
    now: datetime,
    amount: int | None = None,
    operation_reference: str | None = None,
    check_after: timedelta = timedelta(minutes=2),
) -> PaymentAttempt:
    """A provider call about to be made, with its idempotency key. The resolver looks at it after
    `check_after` if nothing has settled it by then (the process may have died during the call)."""
    attempt = PaymentAttempt(
        id=uuid.uuid4(),
        payment_id=payment.id,
        kind=kind.value,
        idempotency_key=f"{payment.reference}:{kind.value}:{uuid.uuid4().hex[:12]}",
        state=AttemptStatus.PREPARED.value,
        amount=amount,
        operation_reference=operation_reference,
        code="",
        detail="",
        checks=0,
        next_check_at=now + check_after,
        manual=False,
        created_at=now,
        updated_at=now,
    )
    session.add(attempt)
    session.flush()
    return attempt


def payment_by_id(session: Session, payment_id: uuid.UUID, *, lock: bool = False) -> Payment | None:
    query = select(Payment).where(Payment.id == payment_id)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).first()


def payment_for_event(
    session: Session, variant: str, our_reference: str | None, provider_reference: str | None
) -> Payment | None:
    """The payment an event names, by our reference or else by the provider's id, locked."""
    if our_reference:
        found = session.scalars(
            select(Payment)
            .where(Payment.reference == our_reference, Payment.variant == variant)
            .with_for_update()
        ).first()
        if found is not None:
            return found
    if provider_reference:
        return session.scalars(
            select(Payment)
            .where(Payment.variant == variant, Payment.provider_reference == provider_reference)
            .with_for_update()
        ).first()
    return None


def open_attempts(session: Session, payment: Payment) -> list[PaymentAttempt]:
    return list(
        session.scalars(
            select(PaymentAttempt)
            .where(
                PaymentAttempt.payment_id == payment.id,
                PaymentAttempt.state.in_(
                    [
                        AttemptStatus.PREPARED.value,
                        AttemptStatus.DISPATCHED.value,
                        AttemptStatus.UNKNOWN.value,
                    ]
                ),
            )
            .order_by(PaymentAttempt.created_at)
            .with_for_update()
        )
    )


def move_payment(payment: Payment, target: PaymentStatus, *, now: datetime) -> None:
    payment.state = move(PaymentStatus(payment.state), target).value
    payment.updated_at = now


def park(payment: Payment, reason: str, *, now: datetime) -> None:
    """Hand the payment to a person: amounts or currency do not match, or money came on a closed one."""
    payment.parked_reason = reason[:2000]
    move_payment(payment, PaymentStatus.PARKED, now=now)


def settle_attempt(
    attempt: PaymentAttempt, target: AttemptStatus, *, now: datetime, code: str = "", detail: str = ""
) -> None:
    """SUCCEEDED or DECLINED: the attempt's outcome is known and the resolver forgets it."""
    attempt.state = move_attempt(AttemptStatus(attempt.state), target).value
    attempt.code = code[:64]
    attempt.detail = detail[:2000]
    attempt.resolved_at = now
    attempt.next_check_at = None
    attempt.updated_at = now


def mark_unknown(
    attempt: PaymentAttempt, cause: str, detail: str, *, now: datetime, first_check: timedelta
) -> None:
    attempt.state = move_attempt(AttemptStatus(attempt.state), AttemptStatus.UNKNOWN).value
    attempt.unknown_cause = cause
    attempt.detail = detail[:2000]
    attempt.next_check_at = now + first_check
    attempt.updated_at = now


def mark_dispatched(session: Session, attempt_id: uuid.UUID, *, now: datetime) -> None:
    attempt = session.get(PaymentAttempt, attempt_id, with_for_update=True)
    if attempt is not None and attempt.state == AttemptStatus.PREPARED.value:
        attempt.state = AttemptStatus.DISPATCHED.value
        attempt.dispatched_at = now
        attempt.updated_at = now


def money(payment: Payment) -> Money:
    return Money(payment.amount, payment.currency)
