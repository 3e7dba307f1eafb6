"""The resolver: asks providers about unknown and stale attempts with backoff, expires abandoned payments,
and hands what it cannot settle to the manual queue."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from anyio import to_thread
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.db.models_payments import Payment, PaymentAttempt
from ledger.domain.payments import ATTEMPT_OPEN, AttemptKind, AttemptStatus, EventOutcome, PaymentStatus
from ledger.services import clock
from ledger.services.payments.context import Payments
from ledger.services.payments.errors import UnknownVariantError
from ledger.services.payments.events import apply_status, provider_for
from ledger.services.payments.records import move_payment, open_attempts, payment_by_id, settle_attempt
from ledger.settings import PaymentSettings
from providers.errors import ProviderError
from providers.model import StatusReport

log = structlog.get_logger("etimbre.payments.resolver")
P = PaymentStatus
_OPEN = [s.value for s in ATTEMPT_OPEN]
# A payment that still waits for the cardholder (nothing of ours in flight) and is past its deadline.
_ABANDONABLE = [P.CREATED.value, P.PENDING.value, P.AUTHORIZED.value]

# Kinds other services own (refund, void) settle their attempts from a status report here.
AttemptSettler = Callable[[Session, Payments, Payment, PaymentAttempt, StatusReport, datetime], bool]
SETTLERS: dict[str, AttemptSettler] = {}


@dataclass
class ResolverReport:
    resolved: int = 0
    rescheduled: int = 0
    queued: int = 0  # handed to the manual queue
    expired: int = 0
    errors: list[str] = field(default_factory=list)


def backoff(config: PaymentSettings, attempt: PaymentAttempt, now: datetime, why: str) -> bool:
    """Look again later (10 s, 20 s, 40 s ... by default); past the give-up age, queue it for a person.
    True when it went to the manual queue."""
    attempt.checks += 1
    delay = timedelta(seconds=config.first_check_seconds * 2 ** min(attempt.checks, 20))
    attempt.updated_at = now
    if now + delay - attempt.created_at > timedelta(hours=config.give_up_hours):
        attempt.manual = True
        attempt.manual_reason = f"still not settled after {attempt.checks} checks: {why}"[:2000]
        attempt.next_check_at = None
        return True
    attempt.next_check_at = now + delay
    return False


def _settled_by(payment: Payment, attempt: PaymentAttempt, outcome: EventOutcome) -> AttemptStatus | None:
    """What the provider's status says about this attempt, if it settles it."""
    state = P(payment.state)
    if attempt.kind == AttemptKind.STATUS.value:
        return None if outcome is EventOutcome.UNPLACED else AttemptStatus.SUCCEEDED
    if attempt.kind == AttemptKind.CAPTURE.value:
        return AttemptStatus.SUCCEEDED if payment.captured_amount > 0 else None
    if attempt.kind == AttemptKind.CREATE.value:
        if payment.channel == "online":
            return None if state in (P.CREATED, P.UNKNOWN) else AttemptStatus.SUCCEEDED
        if state in (P.CAPTURED, P.PARKED):
            return AttemptStatus.SUCCEEDED
        if state in (P.FAILED, P.CANCELED, P.EXPIRED):
            return AttemptStatus.DECLINED
    return None


def settle_from_status(
    payments: Payments, attempt_id: uuid.UUID, report: StatusReport | None, why: str
) -> str:
    """Apply a status answer (or its absence) to an attempt and its payment; 'resolved', 'rescheduled'
    or 'queued'."""
    now = clock.now()
    with payments.database.write() as session:
        attempt = session.get(PaymentAttempt, attempt_id)
        if attempt is None:
            raise LookupError(f"no attempt {attempt_id}")
        payment = payment_by_id(session, attempt.payment_id, lock=True)
        session.refresh(attempt, with_for_update=True)
        assert payment is not None
        if AttemptStatus(attempt.state) not in ATTEMPT_OPEN:
            return "resolved"
        if report is not None:
            outcome = apply_status(session, payments, payment, report, now=now)
            session.flush()
            session.refresh(attempt)
            if AttemptStatus(attempt.state) not in ATTEMPT_OPEN:
                return "resolved"
            settler = SETTLERS.get(attempt.kind)
            if settler is not None:
                if settler(session, payments, payment, attempt, report, now):
                    return "resolved"
            else:
                target = _settled_by(payment, attempt, outcome)
                if target is not None:
                    settle_attempt(
                        attempt, target, now=now, detail=f"settled by the provider's status: {report.state}"
                    )
                    return "resolved"
            if outcome is EventOutcome.UNPLACED:
                attempt.manual = True
                attempt.manual_reason = (
                    f"the provider says {report.state} but the payment is {payment.state}: a person decides"
                )
                attempt.next_check_at = None
                attempt.updated_at = now
                return "queued"
            why = f"the provider says {report.state}"
        return "queued" if backoff(payments.settings.service.payments, attempt, now, why) else "rescheduled"


async def resolve_attempt(payments: Payments, attempt_id: uuid.UUID) -> str:
    """Ask the provider about one attempt's payment and settle what its answer settles."""

    def load() -> tuple[str, str | None, str]:
        with payments.database.read() as session:
            attempt = session.get(PaymentAttempt, attempt_id)
            if attempt is None:
                raise LookupError(f"no attempt {attempt_id}")
            payment = payment_by_id(session, attempt.payment_id)
            assert payment is not None
            return payment.reference, payment.provider_reference, payment.variant

    reference, provider_reference, variant = await to_thread.run_sync(load)
    report: StatusReport | None = None
    why = ""
    try:
        provider = provider_for(payments, variant)
        report = await provider.fetch_status(reference, provider_reference=provider_reference)
    except (ProviderError, UnknownVariantError) as error:
        why = str(error)
    return await to_thread.run_sync(settle_from_status, payments, attempt_id, report, why)


def _due(payments: Payments, now: datetime, limit: int) -> list[uuid.UUID]:
    with payments.database.read() as session:
        return list(
            session.scalars(
                select(PaymentAttempt.id)
                .where(
                    PaymentAttempt.next_check_at.is_not(None),
                    PaymentAttempt.next_check_at <= now,
                    PaymentAttempt.state.in_(_OPEN),
                    PaymentAttempt.manual.is_(False),
                )
                .order_by(PaymentAttempt.next_check_at)
                .limit(limit)
            )
        )


async def resolve_payment(payments: Payments, payment_id: uuid.UUID) -> list[str]:
    """Settle every open attempt of one payment now (a cashier's status query, an unplaced event)."""

    def attempts() -> list[uuid.UUID]:
        with payments.database.read() as session:
            payment = payment_by_id(session, payment_id)
            if payment is None:
                return []
            return [a.id for a in open_attempts(session, payment) if not a.manual]

    return [await resolve_attempt(payments, attempt_id) for attempt_id in await to_thread.run_sync(attempts)]


def _abandoned(payments: Payments, now: datetime, limit: int) -> list[uuid.UUID]:
    with payments.database.read() as session:
        candidates = session.scalars(
            select(Payment.id)
            .where(Payment.state.in_(_ABANDONABLE), Payment.expires_at <= now)
            .order_by(Payment.expires_at)
            .limit(limit)
        )
        return list(candidates)


async def expire_payment(payments: Payments, payment_id: uuid.UUID) -> bool:
    """A payment past its deadline: the provider's status first (it may have been paid and the webhook
    lost); still unpaid, it expires here and issues nothing. True when it expired."""

    def load() -> tuple[str, str | None, str]:
        with payments.database.read() as session:
            payment = payment_by_id(session, payment_id)
            assert payment is not None
            return payment.reference, payment.provider_reference, payment.variant

    reference, provider_reference, variant = await to_thread.run_sync(load)
    try:
        report: StatusReport | None = await provider_for(payments, variant).fetch_status(
            reference, provider_reference=provider_reference
        )
    except (ProviderError, UnknownVariantError):
        report = None  # no answer: try again on the next round

    def apply() -> bool:
        now = clock.now()
        with payments.database.write() as session:
            payment = payment_by_id(session, payment_id, lock=True)
            assert payment is not None
            if payment.state not in _ABANDONABLE or report is None:
                return False
            apply_status(session, payments, payment, report, now=now)
            if payment.state not in _ABANDONABLE or open_attempts(session, payment):
                return False
            move_payment(payment, P.EXPIRED, now=now)
            return True

    return await to_thread.run_sync(apply)


async def run_once(payments: Payments, *, limit: int = 200) -> ResolverReport:
    """One round: every due attempt, then every abandoned payment."""
    report = ResolverReport()
    now = clock.now()
    for attempt_id in await to_thread.run_sync(_due, payments, now, limit):
        try:
            result = await resolve_attempt(payments, attempt_id)
        except Exception as error:  # one bad attempt must not stop the round
            log.exception("resolving an attempt failed", attempt=str(attempt_id))
            report.errors.append(f"{attempt_id}: {error}")
            continue
        if result == "resolved":
            report.resolved += 1
        elif result == "queued":
            report.queued += 1
        else:
            report.rescheduled += 1
    for payment_id in await to_thread.run_sync(_abandoned, payments, now, limit):
        try:
            report.expired += await expire_payment(payments, payment_id)
        except Exception as error:
            log.exception("expiring a payment failed", payment=str(payment_id))
            report.errors.append(f"{payment_id}: {error}")
    return report


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedItem:
    """One line of the manual queue: an attempt nobody could settle, or a parked payment."""

    payment_id: uuid.UUID
    reference: str
    variant: str
    payment_state: str
    amount: int
    currency: str
    attempt_id: uuid.UUID | None
    attempt_kind: str | None
    reason: str
    since: datetime


def manual_queue(payments: Payments) -> list[QueuedItem]:
    with payments.database.read() as session:
        rows = session.execute(
            select(PaymentAttempt, Payment)
            .join(Payment, Payment.id == PaymentAttempt.payment_id)
            .where(PaymentAttempt.manual.is_(True), PaymentAttempt.state.in_(_OPEN))
            .order_by(PaymentAttempt.created_at)
        ).all()
        items = [
            QueuedItem(
                payment_id=p.id,
                reference=p.reference,
                variant=p.variant,
                payment_state=p.state,
                amount=p.amount,
                currency=p.currency,
                attempt_id=a.id,
                attempt_kind=a.kind,
                reason=a.manual_reason or "",
                since=a.updated_at,
            )
            for a, p in rows
        ]
        parked = session.scalars(
            select(Payment).where(Payment.state == P.PARKED.value).order_by(Payment.updated_at)
        )
        items += [
            QueuedItem(
                payment_id=p.id,
                reference=p.reference,
                variant=p.variant,
                payment_state=p.state,
                amount=p.amount,
                currency=p.currency,
                attempt_id=None,
                attempt_kind=None,
                reason=p.parked_reason or "",
                since=p.updated_at,
            )
            for p in parked
        ]
        return items
