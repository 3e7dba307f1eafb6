"""The parts of Stripe's API objects the adapter reads (unknown fields are ignored)."""

from __future__ import annotations

from typing import Any

import msgspec


class StripeError(msgspec.Struct, frozen=True):
    type: str
    code: str | None = None
    decline_code: str | None = None
    message: str = ""
    param: str | None = None


class ErrorEnvelope(msgspec.Struct, frozen=True):
    error: StripeError


class PaymentError(msgspec.Struct, frozen=True):
    code: str | None = None
    decline_code: str | None = None
    message: str | None = None


class Charge(msgspec.Struct, frozen=True):
    id: str
    amount: int
    currency: str
    payment_intent: str | None = None
    amount_captured: int = 0
    amount_refunded: int = 0
    disputed: bool = False
    metadata: dict[str, str] = {}


class PaymentIntent(msgspec.Struct, frozen=True):
    id: str
    amount: int
    currency: str
    status: str
    created: int
    amount_capturable: int = 0
    amount_received: int = 0
    capture_method: str = "automatic"
    metadata: dict[str, str] = {}
    latest_charge: str | Charge | None = None
    last_payment_error: PaymentError | None = None
    cancellation_reason: str | None = None


class CheckoutSession(msgspec.Struct, frozen=True):
    id: str
    url: str | None = None
    status: str | None = None
    payment_intent: str | None = None
    client_reference_id: str | None = None
    amount_total: int | None = None
    currency: str | None = None
    metadata: dict[str, str] = {}


class Refund(msgspec.Struct, frozen=True):
    id: str
    amount: int
    currency: str
    status: str
    payment_intent: str | None = None
    charge: str | None = None
    metadata: dict[str, str] = {}
    created: int = 0


class Dispute(msgspec.Struct, frozen=True):
    id: str
    amount: int
    currency: str
    status: str
    reason: str = ""
    charge: str | None = None
    payment_intent: str | None = None
    created: int = 0


class EventData(msgspec.Struct, frozen=True):
    object: msgspec.Raw


class Event(msgspec.Struct, frozen=True):
    id: str
    type: str
    created: int
    data: EventData


class SearchResult(msgspec.Struct, frozen=True):
    data: list[PaymentIntent]
    has_more: bool = False


class BalanceTransaction(msgspec.Struct, frozen=True):
    id: str
    amount: int
    fee: int
    net: int
    currency: str
    type: str
    available_on: int
    source: str | dict[str, Any] | None = None
    reporting_category: str = ""


class BalanceTransactionList(msgspec.Struct, frozen=True):
    data: list[BalanceTransaction]
    has_more: bool = False


class Payout(msgspec.Struct, frozen=True):
    id: str
    amount: int
    currency: str
    arrival_date: int
    status: str


class PayoutList(msgspec.Struct, frozen=True):
    data: list[Payout]
    has_more: bool = False
