"""The sandbox simulator's JSON API: the bodies both the simulator and the adapter speak."""

from __future__ import annotations

from typing import Literal

import msgspec

from ledger.money import Money

PaymentStatus = Literal[
    "pending",
    "authorized",
    "captured",
    "partially_refunded",
    "refunded",
    "failed",
    "canceled",
    "expired",
    "disputed",
]
EventType = Literal[
    "payment.authorized",
    "payment.captured",
    "payment.declined",
    "payment.failed",
    "payment.canceled",
    "payment.expired",
    "refund.succeeded",
    "dispute.opened",
    "dispute.won",
    "dispute.lost",
]
SIGNATURE_HEADER = "Sandbox-Signature"
FAULTS_HEADER = "Sandbox-Faults"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class WireAmount(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    minor: int
    currency: str

    @classmethod
    def of(cls, money: Money) -> WireAmount:
        return cls(money.minor, money.currency)

    def money(self) -> Money:
        return Money(self.minor, self.currency)


class CreateCheckout(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    reference: str
    amount: WireAmount
    description: str
    capture_method: Literal["automatic", "manual"]
    return_url: str
    cancel_url: str | None = None
    notify_url: str | None = None


class StartSale(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    reference: str
    amount: WireAmount
    description: str
    notify_url: str | None = None


class CaptureBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    amount: WireAmount


class RefundBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    amount: WireAmount
    refund_reference: str
    reason: str = ""


class WireRefund(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    payment_id: str
    reference: str
    refund_reference: str
    amount: WireAmount
    status: Literal["succeeded"]
    created: int


class WirePayment(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    reference: str
    channel: Literal["online", "terminal"]
    status: PaymentStatus
    amount: WireAmount
    authorized_minor: int
    captured_minor: int
    refunded_minor: int
    capture_method: Literal["automatic", "manual"]
    created: int
    checkout_url: str | None = None
    terminal_id: str | None = None
    last_error: str | None = None
    refunds: tuple[WireRefund, ...] = ()


class PaymentList(msgspec.Struct, frozen=True):
    data: tuple[WirePayment, ...]


class WireError(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    code: str
    message: str


class ErrorBody(msgspec.Struct, frozen=True):
    error: WireError


class EventData(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    payment_id: str
    reference: str
    amount: WireAmount
    refund_id: str | None = None
    refund_reference: str | None = None
    dispute_id: str | None = None
    reason: str | None = None


class WireEvent(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: EventType
    created: int
    data: EventData


class SettlementLineBody(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    kind: Literal["capture", "refund", "chargeback"]
    payment_id: str
    reference: str
    operation_id: str
    gross: WireAmount
    fee: WireAmount
    net: WireAmount
    payout_id: str


class SettlementReport(msgspec.Struct, frozen=True, kw_only=True):
    day: str
    lines: tuple[SettlementLineBody, ...]
