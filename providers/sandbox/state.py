"""The sandbox simulator's bank: payments, refunds, disputes, idempotency and settlement, in memory."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Literal

from ledger.money import Money, MoneyError
from providers.faults import Fault
from providers.sandbox.outbox import Outbox
from providers.sandbox.wire import (
    EventData,
    EventType,
    PaymentStatus,
    SettlementLineBody,
    SettlementReport,
    WireAmount,
    WireEvent,
    WirePayment,
    WireRefund,
)


class SimError(Exception):
    """An API error the simulator answers with `{"error": {...}}`."""

    def __init__(self, status: int, type_: str, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.type, self.code, self.message = status, type_, code, message


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatorSettings:
    api_keys: tuple[str, ...] = ("sandbox-key",)
    webhook_secrets: tuple[str, ...] = ("sandbox-webhook-secret",)  # all sign each webhook (rotation)
    notify_url: str | None = None  # where webhooks go when a payment names none
    delivery: Literal["auto", "manual"] = "auto"  # manual: only on POST /sandbox/webhooks/flush
    hang_seconds: float = 30.0  # how late a "timeout-after-charge" answer comes
    card_delay_seconds: float = 0.0  # how long the simulated cardholder takes at the terminal
    fee_bp: int = 150  # acquirer fee in basis points of the gross ...
    fee_fixed_minor: int = 25  # ... plus a fixed part in minor units
    public_url: str | None = None  # base of checkout links; the request's own base when unset

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SimulatorSettings:
        """Settings for `etimbre sandbox serve`, sharing the service's sandbox secrets.

        ETIMBRE_SANDBOX_API_KEY, ETIMBRE_SANDBOX_WEBHOOK_SECRET (and _NEXT during a rotation),
        ETIMBRE_SANDBOX_NOTIFY_URL; the defaults fill in what is unset.
        """
        settings = cls()
        key = env.get("ETIMBRE_SANDBOX_API_KEY")
        hooks = tuple(
            s
            for s in (
                env.get("ETIMBRE_SANDBOX_WEBHOOK_SECRET"),
                env.get("ETIMBRE_SANDBOX_WEBHOOK_SECRET_NEXT"),
            )
            if s
        )
        return replace(
            settings,
            api_keys=(key,) if key else settings.api_keys,
            webhook_secrets=hooks or settings.webhook_secrets,
            notify_url=env.get("ETIMBRE_SANDBOX_NOTIFY_URL") or None,
        )


@dataclass(slots=True)
class SimRefund:
    id: str
    refund_reference: str
    amount: Money
    created: datetime


@dataclass(slots=True, kw_only=True)
class SimPayment:
    id: str
    reference: str
    channel: Literal["online", "terminal"]
    amount: Money
    capture_method: Literal["automatic", "manual"]
    description: str
    created: datetime
    status: PaymentStatus = "pending"
    authorized_minor: int = 0
    captured_minor: int = 0
    refunded_minor: int = 0
    captured_at: datetime | None = None
    return_url: str | None = None
    cancel_url: str | None = None
    notify_url: str | None = None
    terminal_id: str | None = None
    last_error: str | None = None
    refunds: list[SimRefund] = field(default_factory=list)
    dispute_id: str | None = None
    disputed_at: datetime | None = None
    dispute_lost_at: datetime | None = None


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


class Bank:
    """Every state change of the simulator; events go to the outbox with the order's faults."""

    def __init__(self, settings: SimulatorSettings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox
        self.payments: dict[str, SimPayment] = {}
        self.by_reference: dict[str, list[str]] = {}
        self.order_faults: dict[str, frozenset[Fault]] = {}
        self.request_faults: frozenset[Fault] = frozenset()  # set by the API layer around one request

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    def faults_for(self, reference: str) -> frozenset[Fault]:
        return self.order_faults.get(reference, frozenset()) | self.request_faults

    # -- payments ----------------------------------------------------------------------------------------

    def open_payment(
        self,
        *,
        reference: str,
        amount: WireAmount,
        channel: Literal["online", "terminal"],
        capture_method: Literal["automatic", "manual"],
        description: str,
        return_url: str | None = None,
        cancel_url: str | None = None,
        notify_url: str | None = None,
        terminal_id: str | None = None,
    ) -> SimPayment:
        try:
            money = amount.money()
        except MoneyError as exc:
            raise SimError(400, "invalid_request", "amount_invalid", str(exc)) from exc
        if money.minor <= 0:
            raise SimError(400, "invalid_request", "amount_invalid", "amount must be positive")
        for existing in self.by_reference.get(reference, []):
            if self.payments[existing].status not in {"failed", "canceled", "expired"}:
                raise SimError(
                    409,
                    "invalid_request",
                    "reference_in_use",
                    f"reference {reference} already has an open payment {existing}",
                )
        payment = SimPayment(
            id=new_id("pay"),
            reference=reference,
            channel=channel,
            amount=money,
            capture_method=capture_method,
            description=description,
            created=self.now(),
            return_url=return_url,
            cancel_url=cancel_url,
            notify_url=notify_url,
            terminal_id=terminal_id,
        )
        self.payments[payment.id] = payment
        self.by_reference.setdefault(reference, []).append(payment.id)
        return payment

    def payment(self, payment_id: str) -> SimPayment:
        found = self.payments.get(payment_id)
        if found is None:
            raise SimError(404, "invalid_request", "resource_missing", f"no payment {payment_id}")
        return found

    def find(self, reference: str) -> list[SimPayment]:
        return [self.payments[i] for i in self.by_reference.get(reference, [])]

    def approve(self, payment: SimPayment, faults: frozenset[Fault]) -> None:
        """The cardholder pays (checkout button or card on the terminal)."""
        if payment.status != "pending":
            raise SimError(409, "invalid_request", "payment_unexpected_state", f"payment is {payment.status}")
        if Fault.DECLINE in faults:
            payment.last_error = "card_declined"
            if payment.channel == "terminal":
                payment.status = "failed"
                self._event("payment.failed", payment, payment.amount, reason="card_declined")
            else:  # a hosted page lets the cardholder try another card
                self._event("payment.declined", payment, payment.amount, reason="card_declined")
            return
        payment.last_error = None
        payment.authorized_minor = payment.amount.minor
        payment.status = "authorized"
        self._event("payment.authorized", payment, payment.amount)
        if payment.capture_method == "automatic":
            self.capture(payment, payment.amount)

    def decline(self, payment: SimPayment) -> None:
        self.approve(payment, frozenset({Fault.DECLINE}))

    def cancel_checkout(self, payment: SimPayment) -> None:
        if payment.status == "pending":
            payment.status = "canceled"
            self._event("payment.canceled", payment, payment.amount, reason="abandoned")

    def expire(self, payment: SimPayment) -> None:
        if payment.status == "pending":
            payment.status = "expired"
            self._event("payment.expired", payment, payment.amount)

    def capture(self, payment: SimPayment, amount: Money) -> None:
        if payment.status != "authorized":
            raise SimError(409, "invalid_request", "payment_unexpected_state", f"payment is {payment.status}")
        self._same_currency(payment, amount)
        if not 0 < amount.minor <= payment.authorized_minor:
            raise SimError(400, "invalid_request", "amount_too_large", "capture exceeds the authorization")
        payment.captured_minor = amount.minor
        payment.captured_at = self.now()
        payment.status = "captured"
        self._event("payment.captured", payment, amount)

    def void(self, payment: SimPayment) -> None:
        if payment.status != "authorized":
            raise SimError(409, "invalid_request", "payment_unexpected_state", f"payment is {payment.status}")
        payment.status = "canceled"
        self._event("payment.canceled", payment, Money(payment.authorized_minor, payment.amount.currency))

    def refund(self, payment: SimPayment, amount: Money, refund_reference: str) -> SimRefund:
        if payment.status not in {"captured", "partially_refunded"}:
            raise SimError(409, "invalid_request", "payment_unexpected_state", f"payment is {payment.status}")
        self._same_currency(payment, amount)
        if any(r.refund_reference == refund_reference for r in payment.refunds):
            raise SimError(
                409, "invalid_request", "refund_reference_in_use", f"{refund_reference} was refunded"
            )
        if amount.minor <= 0 or payment.refunded_minor + amount.minor > payment.captured_minor:
            raise SimError(
                400, "invalid_request", "amount_too_large", "refunds would exceed the captured amount"
            )
        refund = SimRefund(new_id("ref"), refund_reference, amount, self.now())
        payment.refunds.append(refund)
        payment.refunded_minor += amount.minor
        payment.status = (
            "refunded" if payment.refunded_minor == payment.captured_minor else "partially_refunded"
        )
        self._event("refund.succeeded", payment, amount, refund=refund)
        return refund

    def dispute(self, payment: SimPayment, outcome: Literal["open", "won", "lost"]) -> None:
        if payment.captured_minor == 0:
            raise SimError(409, "invalid_request", "payment_unexpected_state", "nothing was captured")
        if payment.dispute_id is None:
            payment.dispute_id = new_id("dp")
            payment.disputed_at = self.now()
            payment.status = "disputed"
            self._event("dispute.opened", payment, self._captured(payment), reason="fraudulent")
        if outcome == "won":
            payment.status = "refunded" if payment.refunded_minor == payment.captured_minor else "captured"
            self._event("dispute.won", payment, self._captured(payment))
        elif outcome == "lost":
            payment.dispute_lost_at = self.now()
            self._event("dispute.lost", payment, self._captured(payment))

    # -- views -------------------------------------------------------------------------------------------

    def wire(self, payment: SimPayment, checkout_url: str | None = None) -> WirePayment:
        return WirePayment(
            id=payment.id,
            reference=payment.reference,
            channel=payment.channel,
            status=payment.status,
            amount=WireAmount.of(payment.amount),
            authorized_minor=payment.authorized_minor,
            captured_minor=payment.captured_minor,
            refunded_minor=payment.refunded_minor,
            capture_method=payment.capture_method,
            created=int(payment.created.timestamp()),
            checkout_url=checkout_url if payment.channel == "online" else None,
            terminal_id=payment.terminal_id,
            last_error=payment.last_error,
            refunds=tuple(self.wire_refund(payment, r) for r in payment.refunds),
        )

    @staticmethod
    def wire_refund(payment: SimPayment, refund: SimRefund) -> WireRefund:
        return WireRefund(
            id=refund.id,
            payment_id=payment.id,
            reference=payment.reference,
            refund_reference=refund.refund_reference,
            amount=WireAmount.of(refund.amount),
            status="succeeded",
            created=int(refund.created.timestamp()),
        )

    def settlement(self, day: date) -> SettlementReport:
        """Captures, refunds and lost disputes of `day` (UTC), one payout per currency."""
        lines: list[SettlementLineBody] = []
        for payment in sorted(self.payments.values(), key=lambda p: p.created):
            payout = f"po_{day:%Y%m%d}_{payment.amount.currency.lower()}"
            if payment.captured_at and payment.captured_at.date() == day:
                gross = self._captured(payment)
                fee = Money(
                    (gross.minor * self.settings.fee_bp + 5_000) // 10_000 + self.settings.fee_fixed_minor,
                    gross.currency,
                )
                operation = f"ch_{payment.id[4:]}"
                lines.append(self._line("capture", payment, operation, gross=gross, fee=fee, payout=payout))
            zero = Money.zero(payment.amount.currency)
            lines.extend(
                self._line("refund", payment, refund.id, gross=-refund.amount, fee=zero, payout=payout)
                for refund in payment.refunds
                if refund.created.date() == day
            )
            if payment.dispute_lost_at and payment.dispute_lost_at.date() == day and payment.dispute_id:
                lost = -self._captured(payment)
                lines.append(
                    self._line("chargeback", payment, payment.dispute_id, gross=lost, fee=zero, payout=payout)
                )
        return SettlementReport(day=day.isoformat(), lines=tuple(lines))

    # -- internals ---------------------------------------------------------------------------------------

    @staticmethod
    def _line(
        kind: Literal["capture", "refund", "chargeback"],
        payment: SimPayment,
        operation: str,
        *,
        gross: Money,
        fee: Money,
        payout: str,
    ) -> SettlementLineBody:
        return SettlementLineBody(
            id=f"st_{operation}",
            kind=kind,
            payment_id=payment.id,
            reference=payment.reference,
            operation_id=operation,
            gross=WireAmount.of(gross),
            fee=WireAmount.of(fee),
            net=WireAmount.of(gross - fee),
            payout_id=payout,
        )

    @staticmethod
    def _captured(payment: SimPayment) -> Money:
        return Money(payment.captured_minor, payment.amount.currency)

    @staticmethod
    def _same_currency(payment: SimPayment, amount: Money) -> None:
        if amount.currency != payment.amount.currency:
            raise SimError(
                400,
                "invalid_request",
                "currency_mismatch",
                f"payment is in {payment.amount.currency}, not {amount.currency}",
            )

    def _event(
        self,
        type_: EventType,
        payment: SimPayment,
        amount: Money,
        *,
        reason: str | None = None,
        refund: SimRefund | None = None,
    ) -> None:
        event = WireEvent(
            id=new_id("evt"),
            type=type_,
            created=int(self.now().timestamp()),
            data=EventData(
                payment_id=payment.id,
                reference=payment.reference,
                amount=WireAmount.of(amount),
                refund_id=refund.id if refund else None,
                refund_reference=refund.refund_reference if refund else None,
                dispute_id=payment.dispute_id if type_.startswith("dispute.") else None,
                reason=reason,
            ),
        )
        self.outbox.enqueue(
            event,
            target=payment.notify_url or self.settings.notify_url,
            faults=self.faults_for(payment.reference),
        )
