"""Refunds of captured payments through their provider: whole stamps, never more than captured.

A refund names the stamps it gives the money back for (by default every stamp of the payment still
unused); its amount is the total of their fees. An administrator may also state the amount they expect
to refund: it is checked first against what is left to refund, then against the stamps' total.

The order of work, so that a crash anywhere leaves a state the resolver or a person can finish:
1. one transaction: checks (payment refundable, stamps of this payment, refund policy for unused stamps,
   no other refund in flight, the provider can do this refund), then the amount is reserved on
   `payments.refunded_amount` with a conditional UPDATE (the column's CHECK keeps it within the captured
   amount: a second guard in the database), and the attempt and the refund are stored;
2. the provider is called with the attempt's idempotency key, outside any transaction;
3. one transaction applies the outcome: succeeded -> one ledger entry per stamp (unused stamps go on the
   trust list's deny list), the payment becomes partially refunded or refunded; declined -> the
   reservation is given back and the stamps are free again; unknown -> the attempt waits for the resolver.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy import Row, Table, select, update
from sqlalchemy.orm import Session
from uuid_utils.compat import uuid7

from ledger.db.engine import Database
from ledger.db.models_payments import Payment, PaymentAttempt
from ledger.db.models_refunds import Refund, RefundStamp
from ledger.db.models_stamps import Stamp, StampEvent
from ledger.domain.payments import AttemptKind, AttemptStatus, PaymentStatus
from ledger.money import Money
from ledger.services import clock
from ledger.services.refund_postings import StampFacts, post_stamp_refund
from ledger.settings import Settings
from providers.base import Provider
from providers.model import Capabilities, OutcomeKind, ProviderResult, RefundRequest
from receipts.numbers import StampNumber, StampNumberError

PAYMENTS: Table = Payment.__table__  # type: ignore[assignment]
ATTEMPTS: Table = PaymentAttempt.__table__  # type: ignore[assignment]
REFUNDS: Table = Refund.__table__  # type: ignore[assignment]
REFUND_STAMPS: Table = RefundStamp.__table__  # type: ignore[assignment]
STAMPS: Table = Stamp.__table__  # type: ignore[assignment]
EVENTS: Table = StampEvent.__table__  # type: ignore[assignment]

REFUNDABLE = (PaymentStatus.CAPTURED.value, PaymentStatus.PARTIALLY_REFUNDED.value)
IN_FLIGHT = ("pending", "unknown")
FIRST_CHECK = timedelta(seconds=10)
# If nothing settles the attempt by then (the process died around the call), the resolver asks the provider.
CRASH_CHECK = timedelta(minutes=2)


class RefundError(ValueError):
    """A refund that cannot be made as asked; `field` names what is wrong. Nothing was sent or written."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PaymentNotFoundError(LookupError):
    pass


class RefundNotFoundError(LookupError):
    pass


class RefundExceedsCapturedError(RefundError):
    """More than what is left of the captured amount: refused before any call to the provider."""


class RefundConflictError(RefundError):
    """The payment cannot be refunded now (its state, another refund in flight, the key reused)."""


@dataclass(frozen=True, slots=True)
class RefundOrder:
    """An administrator's refund: which payment, which stamps (None: every unused one), why, and the key
    that makes a retry of the same order the same refund."""

    payment_ref: str
    reason: str
    actor: str
    request_key: str
    stamps: tuple[str, ...] | None = None
    amount: Money | None = None  # what the administrator expects to refund, if they say


@dataclass(frozen=True, slots=True)
class RefundedStamp:
    number: str
    fee_code: str
    amount: Money
    was_used: bool
    entry_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class RefundView:
    id: uuid.UUID
    reference: str
    payment_ref: str
    amount: Money
    state: str  # pending | succeeded | declined | unknown
    reason: str
    requested_by: str
    provider_reference: str | None
    detail: str
    created_at: datetime
    resolved_at: datetime | None
    stamps: tuple[RefundedStamp, ...]
    payment_state: str
    refunded: Money  # refunded or being refunded on the payment
    captured: Money


@dataclass(frozen=True, slots=True)
class PreparedRefund:
    refund_id: uuid.UUID
    request: RefundRequest
    idempotency_key: str
    variant: str
    done: bool  # already resolved (a retry of a finished order): no call to make


def refund_reference(payment_ref: str, request_key: str) -> str:
    """Our refund id, the same for every retry of one order (and a valid provider reference)."""
    digest = hashlib.sha256(f"{payment_ref}\n{request_key}".encode()).hexdigest()
    return f"RF-{digest[:32]}"


def _payment(session: Session, payment_ref: str, *, lock: bool) -> Row[Any]:
    query = select(PAYMENTS).where(PAYMENTS.c.reference == payment_ref)
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = session.connection().execute(query).one_or_none()
    if row is None:
        raise PaymentNotFoundError(f"no payment {payment_ref}")
    return row


def lock_payment(session: Session, payment_id: uuid.UUID) -> None:
    """Lock the payment's row before anything else of it changes: one lock order for every writer
    (webhooks, resolver, refunds) so that they queue instead of deadlocking."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection().execute(
            select(PAYMENTS.c.id).where(PAYMENTS.c.id == payment_id).with_for_update()
        )


def _chosen_stamps(session: Session, payment: Row[Any], wanted: tuple[str, ...] | None) -> list[Row[Any]]:
    rows = list(
        session.connection().execute(
            select(STAMPS).where(STAMPS.c.payment_ref == payment.reference).order_by(STAMPS.c.line_no)
        )
    )
    if wanted is None:
        chosen = [row for row in rows if row.status == "issued"]
        if not chosen:
            raise RefundError("stamps", f"payment {payment.reference} has no unused stamp left to refund")
        return chosen
    by_number = {row.number: row for row in rows}
    if not wanted or len(set(wanted)) != len(wanted):
        raise RefundError("stamps", "name each stamp once, at least one")
    chosen = []
    for number in wanted:
        try:
            digits = StampNumber.parse(number).digits
        except StampNumberError as error:
            raise RefundError("stamps", str(error)) from None
        row = by_number.get(digits)
        if row is None:
            raise RefundError("stamps", f"stamp {number} is not a stamp of payment {payment.reference}")
        chosen.append(row)
    return chosen


def _check_stamps(session: Session, settings: Settings, stamps: list[Row[Any]], now: datetime) -> None:
    policy = settings.service.stamps
    for row in stamps:
        if row.status == "issued":
            deadline = min(row.issued_at + timedelta(days=policy.refund_window_days), row.expires_at)
            if now > deadline:
                raise RefundError(
                    "stamps",
                    f"stamp {row.number} could be refunded until {deadline.isoformat()} "
                    f"({policy.refund_window_days} days after issue); it is too late",
                )
        elif row.status == "refunded":
            raise RefundError("stamps", f"stamp {row.number} was already refunded")
        elif row.status != "consumed":
            raise RefundError("stamps", f"stamp {row.number} is {row.status}; it cannot be refunded")
    numbers = [row.number for row in stamps]
    taken = session.connection().execute(
        select(REFUND_STAMPS.c.number).where(REFUND_STAMPS.c.number.in_(numbers), REFUND_STAMPS.c.live)
    )
    refunded = sorted(row.number for row in taken)
    if refunded:
        raise RefundError("stamps", f"stamp(s) {', '.join(refunded)} already refunded or being refunded")


def _check_capabilities(caps: Capabilities, payment: Row[Any], total: int) -> None:
    if payment.refunded_amount and not caps.multiple_refunds:
        raise RefundConflictError("payment", f"{caps.provider} refunds a payment at most once")
    if total < payment.captured_amount and not caps.partial_refunds:
        raise RefundConflictError("stamps", f"{caps.provider} refunds only the whole payment")


def _digits(number: str) -> str:
    try:
        return StampNumber.parse(number).digits
    except StampNumberError:
        return number


def _existing(session: Session, reference: str, order: RefundOrder) -> Row[Any] | None:
    row = session.connection().execute(select(REFUNDS).where(REFUNDS.c.reference == reference)).one_or_none()
    if row is None:
        return None
    named = {
        r.number
        for r in session.connection().execute(
            select(REFUND_STAMPS.c.number).where(REFUND_STAMPS.c.refund_id == row.id)
        )
    }
    asked = None if order.stamps is None else {_digits(n) for n in order.stamps}
    same = (asked is None or asked == named) and (order.amount is None or order.amount.minor == row.amount)
    if not same or row.reason != order.reason.strip():
        raise RefundConflictError(
            "Idempotency-Key", "this key was already used for a different refund of this payment"
        )
    return row


def prepare_refund(
    session: Session, settings: Settings, caps: Capabilities, order: RefundOrder
) -> PreparedRefund:
    """Step 1, in one transaction: every check, the reservation, the attempt and the refund stored."""
    if not order.reason.strip():
        raise RefundError("reason", "say why the money is given back")
    payment = _payment(session, order.payment_ref, lock=True)
    currency = payment.currency
    reference = refund_reference(payment.reference, order.request_key)
    existing = _existing(session, reference, order)
    if existing is not None:
        return _prepared_again(session, payment, existing)
    now = clock.now()
    if payment.state not in REFUNDABLE:
        raise RefundConflictError(
            "payment", f"payment {payment.reference} is {payment.state}; it cannot be refunded"
        )
    left = Money(payment.captured_amount - payment.refunded_amount, currency)
    if order.amount is not None:
        if order.amount.currency != currency:
            raise RefundError("amount", f"the payment is in {currency}, not {order.amount.currency}")
        if order.amount > left:
            raise RefundExceedsCapturedError(
                "amount",
                f"{order.amount} is more than the {left} left to refund "
                f"of the {Money(payment.captured_amount, currency)} captured",
            )
    in_flight = (
        session.connection()
        .execute(
            select(REFUNDS.c.reference).where(
                REFUNDS.c.payment_id == payment.id, REFUNDS.c.state.in_(IN_FLIGHT)
            )
        )
        .first()
    )
    if in_flight is not None:
        raise RefundConflictError(
            "payment",
            f"refund {in_flight.reference} of this payment is not finished yet; try again once it is",
        )
    stamps = _chosen_stamps(session, payment, order.stamps)
    _check_stamps(session, settings, stamps, now)
    total = Money(sum(row.amount for row in stamps), currency)
    if total > left:
        raise RefundExceedsCapturedError(
            "stamps", f"the stamps come to {total}, more than the {left} left to refund"
        )
    if order.amount is not None and order.amount != total:
        raise RefundError(
            "amount", f"the stamps named come to {total}, not {order.amount}: refunds are of whole stamps"
        )
    _check_capabilities(caps, payment, total.minor)
    reserved = session.connection().execute(
        update(PAYMENTS)
        .where(
            PAYMENTS.c.id == payment.id,
            PAYMENTS.c.state.in_(REFUNDABLE),
            PAYMENTS.c.refunded_amount + total.minor <= PAYMENTS.c.captured_amount,
        )
        .values(refunded_amount=PAYMENTS.c.refunded_amount + total.minor, updated_at=now)
    )
    if reserved.rowcount != 1:  # pragma: no cover - the row lock makes the checks above final
        raise RefundExceedsCapturedError("stamps", "the payment changed meanwhile; nothing was refunded")
    attempt_id, refund_id = uuid7(), uuid7()
    key = f"refund-{reference}"
    session.connection().execute(
        ATTEMPTS.insert().values(
            id=attempt_id, payment_id=payment.id, kind=AttemptKind.REFUND.value, idempotency_key=key,
            state=AttemptStatus.PREPARED.value, amount=total.minor, operation_reference=reference,
            code="", detail="", checks=0, manual=False, created_at=now, updated_at=now,
            next_check_at=now + CRASH_CHECK,
        )
    )  # fmt: skip
    session.connection().execute(
        REFUNDS.insert().values(
            id=refund_id, reference=reference, payment_id=payment.id, attempt_id=attempt_id,
            amount=total.minor, currency=currency, state="pending", reason=order.reason.strip(),
            requested_by=order.actor[:64], detail="", created_at=now,
        )
    )  # fmt: skip
    session.connection().execute(
        REFUND_STAMPS.insert(),
        [
            {
                "refund_id": refund_id, "number": row.number, "fee_code": row.fee_code, "amount": row.amount,
                "was_used": row.status == "consumed", "live": True, "entry_id": None,
            }
            for row in stamps
        ],
    )  # fmt: skip
    request = RefundRequest(
        reference=payment.reference,
        provider_reference=payment.provider_reference,
        refund_reference=reference,
        amount=total,
        previously_refunded=Money(payment.refunded_amount, currency),
        reason=order.reason.strip()[:200],
    )
    return PreparedRefund(refund_id, request, key, payment.variant, done=False)


def _prepared_again(session: Session, payment: Row[Any], refund: Row[Any]) -> PreparedRefund:
    """A retry of an order already stored: send it again with the same key unless it is resolved."""
    succeeded_before = session.connection().execute(
        select(REFUNDS.c.amount).where(
            REFUNDS.c.payment_id == payment.id,
            REFUNDS.c.state == "succeeded",
            REFUNDS.c.created_at < refund.created_at,
        )
    )
    previously = sum(row.amount for row in succeeded_before)
    request = RefundRequest(
        reference=payment.reference,
        provider_reference=payment.provider_reference,
        refund_reference=refund.reference,
        amount=Money(refund.amount, refund.currency),
        previously_refunded=Money(previously, refund.currency),
        reason=refund.reason[:200],
    )
    done = refund.state in ("succeeded", "declined")
    return PreparedRefund(refund.id, request, f"refund-{refund.reference}", payment.variant, done=done)


def mark_dispatched(session: Session, refund_id: uuid.UUID) -> None:
    attempt_id = session.scalar(select(REFUNDS.c.attempt_id).where(REFUNDS.c.id == refund_id))
    now = clock.now()
    session.connection().execute(
        update(ATTEMPTS)
        .where(ATTEMPTS.c.id == attempt_id, ATTEMPTS.c.state == AttemptStatus.PREPARED.value)
        .values(state=AttemptStatus.DISPATCHED.value, dispatched_at=now, updated_at=now)
    )


def _refund_stamps(session: Session, refund_id: uuid.UUID) -> list[Row[Any]]:
    return list(
        session.connection().execute(
            select(
                REFUND_STAMPS,
                STAMPS.c.consulate,
                STAMPS.c.provider,
                STAMPS.c.payment_ref,
                STAMPS.c.currency,
                STAMPS.c.status,
            )
            .join(STAMPS, STAMPS.c.number == REFUND_STAMPS.c.number)
            .where(REFUND_STAMPS.c.refund_id == refund_id)
            .order_by(REFUND_STAMPS.c.number)
        )
    )


def _succeed(
    session: Session, settings: Settings, refund: Row[Any], result: ProviderResult, now: datetime
) -> None:
    for row in _refund_stamps(session, refund.id):
        if row.entry_id is not None:
            continue
        facts = StampFacts(
            number=row.number, consulate=row.consulate, fee_code=row.fee_code,
            amount=Money(row.amount, row.currency), provider=row.provider, payment_ref=row.payment_ref,
        )  # fmt: skip
        # An unused stamp goes on the deny list (status refunded) now; one used or expired while the refund
        # was at the provider keeps its status and the refund comes out of where its fee went meanwhile.
        moved = session.connection().execute(
            update(STAMPS)
            .where(STAMPS.c.number == row.number, STAMPS.c.status == "issued")
            .values(status="refunded", status_changed_at=now)
        )
        status = "issued" if moved.rowcount == 1 else row.status
        entry_id = post_stamp_refund(
            session, settings.chart, facts, stamp_status=status, refund_reference=refund.reference,
            reason=refund.reason, actor=refund.requested_by,
        )  # fmt: skip
        if status == "issued":
            session.connection().execute(
                EVENTS.insert().values(
                    number=row.number, kind="refunded", at=now, consulate=row.consulate,
                    actor=refund.requested_by, entry_id=entry_id,
                    detail=f"refund {refund.reference}: {refund.reason}",
                )
            )  # fmt: skip
        session.connection().execute(
            update(REFUND_STAMPS)
            .where(REFUND_STAMPS.c.refund_id == refund.id, REFUND_STAMPS.c.number == row.number)
            .values(entry_id=entry_id, was_used=status == "consumed")
        )
    session.connection().execute(
        update(REFUNDS)
        .where(REFUNDS.c.id == refund.id)
        .values(state="succeeded", resolved_at=now, provider_reference=result.operation_reference)
    )
    payment = session.connection().execute(select(PAYMENTS).where(PAYMENTS.c.id == refund.payment_id)).one()
    refunded = sum(
        r.amount
        for r in session.connection().execute(
            select(REFUNDS.c.amount).where(REFUNDS.c.payment_id == payment.id, REFUNDS.c.state == "succeeded")
        )
    )
    target = (
        PaymentStatus.REFUNDED if refunded >= payment.captured_amount else PaymentStatus.PARTIALLY_REFUNDED
    )
    if payment.state in REFUNDABLE and payment.state != target.value:
        session.connection().execute(
            update(PAYMENTS).where(PAYMENTS.c.id == payment.id).values(state=target.value, updated_at=now)
        )


def _decline(session: Session, refund: Row[Any], result: ProviderResult, now: datetime) -> None:
    session.connection().execute(
        update(PAYMENTS)
        .where(PAYMENTS.c.id == refund.payment_id)
        .values(refunded_amount=PAYMENTS.c.refunded_amount - refund.amount, updated_at=now)
    )
    session.connection().execute(
        update(REFUND_STAMPS).where(REFUND_STAMPS.c.refund_id == refund.id).values(live=False)
    )
    detail = " ".join(filter(None, (result.outcome.code, result.outcome.message)))
    session.connection().execute(
        update(REFUNDS)
        .where(REFUNDS.c.id == refund.id)
        .values(state="declined", resolved_at=now, detail=detail[:500])
    )


def apply_refund_result(
    session: Session, settings: Settings, refund_id: uuid.UUID, result: ProviderResult
) -> None:
    """Step 3: the provider's answer, applied once (a refund already resolved is left as it is)."""
    refund = session.connection().execute(select(REFUNDS).where(REFUNDS.c.id == refund_id)).one()
    lock_payment(session, refund.payment_id)  # the payment first, as every payment change does
    refund = session.connection().execute(select(REFUNDS).where(REFUNDS.c.id == refund_id)).one()
    if refund.state in ("succeeded", "declined"):
        return
    now = clock.now()
    kind = result.outcome.kind
    attempt_values: dict[str, Any] = {"updated_at": now}
    if kind is OutcomeKind.SUCCEEDED:
        _succeed(session, settings, refund, result, now)
        attempt_values |= {"state": AttemptStatus.SUCCEEDED.value, "resolved_at": now, "next_check_at": None,
                           "provider_operation_reference": result.operation_reference}  # fmt: skip
    elif kind is OutcomeKind.DECLINED:
        _decline(session, refund, result, now)
        attempt_values |= {"state": AttemptStatus.DECLINED.value, "resolved_at": now, "next_check_at": None,
                           "code": result.outcome.code[:64], "detail": result.outcome.message}  # fmt: skip
    else:
        cause = result.outcome.cause.value if result.outcome.cause else "internal"
        session.connection().execute(
            update(REFUNDS)
            .where(REFUNDS.c.id == refund.id)
            .values(state="unknown", detail=result.outcome.message[:500])
        )
        attempt_values |= {"state": AttemptStatus.UNKNOWN.value, "unknown_cause": cause,
                           "detail": result.outcome.message, "next_check_at": now + FIRST_CHECK}  # fmt: skip
    session.connection().execute(
        update(ATTEMPTS).where(ATTEMPTS.c.id == refund.attempt_id).values(**attempt_values)
    )


async def refund_payment(
    db: Database, settings: Settings, provider_for: Any, order: RefundOrder
) -> RefundView:
    """The whole refund: prepare (checks and reservation), call the provider, apply its answer. The
    database work runs in worker threads; no transaction is open during the call.

    `provider_for(variant)` gives the Provider of a variant (a ProviderRegistry's `get`).
    """

    def variant_of() -> str:
        with db.read() as session:
            return str(_payment(session, order.payment_ref, lock=False).variant)

    provider: Provider = provider_for(await to_thread.run_sync(variant_of))

    def prepare() -> PreparedRefund:
        with db.write() as session:
            prepared = prepare_refund(session, settings, provider.capabilities(), order)
        if not prepared.done:
            with db.write() as session:
                mark_dispatched(session, prepared.refund_id)
        return prepared

    prepared = await to_thread.run_sync(prepare)
    if not prepared.done:
        result = await provider.refund(prepared.request, idempotency_key=prepared.idempotency_key)

        def apply() -> None:
            with db.write() as session:
                apply_refund_result(session, settings, prepared.refund_id, result)

        await to_thread.run_sync(apply)

    def view() -> RefundView:
        with db.read() as session:
            return get_refund(session, prepared.refund_id)

    return await to_thread.run_sync(view)


def payment_currency(db: Database, payment_ref: str) -> str:
    with db.read() as session:
        return str(_payment(session, payment_ref, lock=False).currency)


def get_refund(session: Session, refund_id: uuid.UUID) -> RefundView:
    refund = session.connection().execute(select(REFUNDS).where(REFUNDS.c.id == refund_id)).one_or_none()
    if refund is None:
        raise RefundNotFoundError(f"no refund {refund_id}")
    payment = session.connection().execute(select(PAYMENTS).where(PAYMENTS.c.id == refund.payment_id)).one()
    stamps = tuple(
        RefundedStamp(
            row.number, row.fee_code, Money(row.amount, refund.currency), row.was_used, row.entry_id
        )
        for row in session.connection().execute(
            select(REFUND_STAMPS)
            .where(REFUND_STAMPS.c.refund_id == refund.id)
            .order_by(REFUND_STAMPS.c.number)
        )
    )
    return RefundView(
        id=refund.id, reference=refund.reference, payment_ref=payment.reference,
        amount=Money(refund.amount, refund.currency), state=refund.state, reason=refund.reason,
        requested_by=refund.requested_by, provider_reference=refund.provider_reference, detail=refund.detail,
        created_at=refund.created_at, resolved_at=refund.resolved_at, stamps=stamps,
        payment_state=payment.state, refunded=Money(payment.refunded_amount, payment.currency),
        captured=Money(payment.captured_amount, payment.currency),
    )  # fmt: skip


def refunds_of(session: Session, payment_ref: str) -> list[RefundView]:
    payment = _payment(session, payment_ref, lock=False)
    ids: Sequence[uuid.UUID] = session.scalars(
        select(REFUNDS.c.id).where(REFUNDS.c.payment_id == payment.id).order_by(REFUNDS.c.created_at)
    ).all()
    return [get_refund(session, refund_id) for refund_id in ids]
