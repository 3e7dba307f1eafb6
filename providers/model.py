"""Value objects exchanged with payment providers: requests, results, outcomes, statuses and events."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from ledger.money import Money

# Our payment reference doubles as the order id at gateways that have one (CMI `oid`): keep it to the
# characters and length every gateway accepts.
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# Idempotency keys travel in HTTP headers (Stripe: at most 255 characters).
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


class Mode(StrEnum):
    """How the card is presented: on a hosted page (online) or on a counter terminal."""

    ONLINE = "online"
    TERMINAL = "terminal"


class CaptureMode(StrEnum):
    """AUTOMATIC: the provider captures on approval. MANUAL: it only authorizes; we call `capture`."""

    AUTOMATIC = "automatic"
    MANUAL = "manual"


class OutcomeKind(StrEnum):
    """What one call to a provider did; maps one to one onto the attempt's final state."""

    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    UNKNOWN = "unknown"


class UnknownCause(StrEnum):
    """Why the outcome of a call is not known; every cause is resolved with `fetch_status`."""

    NOT_SENT = "not_sent"  # the connection was never established: retrying with the same key is safe
    TIMEOUT = "timeout"  # sent, no answer in time: the provider may have acted
    CONNECTION_LOST = "connection_lost"  # sent, then the connection broke
    PROVIDER_ERROR = "provider_error"  # the provider answered 5xx: its own outcome is indeterminate
    BAD_RESPONSE = "bad_response"  # an answer we could not read
    UNRESOLVED = (
        "unresolved"  # the provider's state contradicts the request: a person or the resolver decides
    )
    INTERNAL = "internal"  # the adapter failed after dispatch; treated as unknown, never as a failure


class PaymentState(StrEnum):
    """A payment as the provider sees it (answer of `fetch_status`)."""

    NOT_FOUND = "not_found"  # the provider never received it: nothing was charged
    PENDING = "pending"  # created, waiting for the cardholder (may still be paid)
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    FAILED = "failed"  # definitively not payable any more
    CANCELED = "canceled"  # voided or canceled before capture
    EXPIRED = "expired"  # abandoned by the cardholder
    DISPUTED = "disputed"


class EventKind(StrEnum):
    """Normalized kind of a provider event (webhook or callback)."""

    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    DECLINED = "declined"  # one card attempt refused; the cardholder may retry on the same payment
    FAILED = "failed"  # the payment can no longer succeed
    CANCELED = "canceled"
    EXPIRED = "expired"
    REFUNDED = "refunded"  # one refund succeeded; `operation_reference` names it
    REFUND_FAILED = "refund_failed"
    DISPUTED = "disputed"  # chargeback opened
    DISPUTE_WON = "dispute_won"
    DISPUTE_LOST = "dispute_lost"


class WebhookDecision(StrEnum):
    """What the service decided about a delivery; `webhook_ack` turns it into the provider's reply."""

    ACCEPTED = "accepted"  # applied, or a duplicate that was skipped
    CAPTURE = "capture"  # accepted, and the provider should capture now (CMI `ACTION=POSTAUTH`)
    REJECTED = "rejected"  # bad signature or a payload we refuse
    RETRY_LATER = "retry_later"  # we could not store it now; the provider should deliver again


class SettlementKind(StrEnum):
    CAPTURE = "capture"
    REFUND = "refund"
    CHARGEBACK = "chargeback"
    ADJUSTMENT = "adjustment"


def check_reference(reference: str, what: str = "reference") -> str:
    if not isinstance(reference, str) or not _REFERENCE.fullmatch(reference):
        raise ValueError(
            f"{what} must be 1-64 characters of letters, digits, '-' or '_' starting with a letter or "
            f"digit, got {reference!r}"
        )
    return reference


def check_idempotency_key(key: str) -> str:
    if not isinstance(key, str) or not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ValueError(
            f"idempotency key must be 1-255 printable ASCII characters without spaces, got {key!r}"
        )
    return key


def _check_positive(amount: Money, what: str) -> None:
    if not isinstance(amount, Money):
        raise TypeError(f"{what} must be ledger.money.Money, got {type(amount).__name__}")
    if amount.minor <= 0:
        raise ValueError(f"{what} must be positive, got {amount}")


def _check_aware(moment: datetime | None, what: str) -> None:
    if moment is not None and moment.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime")


# -- requests -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentRequest:
    """Ask a provider to take a payment: a hosted checkout (online) or a sale on a terminal.

    No personal data and never card data: the hosted page or the terminal collects the card.
    """

    reference: str  # our payment reference: stable, unique, and the provider's order id where it has one
    amount: Money
    description: str  # what is paid (fee label and consulate), shown on the payment page
    consulate: str
    capture: CaptureMode = CaptureMode.AUTOMATIC
    return_url: str | None = None  # online: where the cardholder comes back after paying
    cancel_url: str | None = None  # online: where the cardholder comes back after giving up
    notify_url: str | None = None  # where the provider posts its callback, if not configured per variant
    locale: str = "fr"
    terminal_id: str | None = None  # terminal: which terminal at the counter
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        check_reference(self.reference)
        _check_positive(self.amount, "amount")
        if not self.consulate:
            raise ValueError("consulate must not be empty")
        if len(self.description) > 200:
            raise ValueError("description must be at most 200 characters")
        _check_aware(self.expires_at, "expires_at")


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureRequest:
    reference: str
    provider_reference: str | None
    amount: Money

    def __post_init__(self) -> None:
        check_reference(self.reference)
        _check_positive(self.amount, "capture amount")


@dataclass(frozen=True, slots=True, kw_only=True)
class VoidRequest:
    reference: str
    provider_reference: str | None
    amount: Money  # the authorized amount being released (for gateways and checks that need it)

    def __post_init__(self) -> None:
        check_reference(self.reference)
        _check_positive(self.amount, "void amount")


@dataclass(frozen=True, slots=True, kw_only=True)
class RefundRequest:
    """Refund part or all of a captured payment.

    `previously_refunded` is what the service has recorded as refunded before this refund: gateways
    without idempotency keys compare it with their own total to never send the same refund twice.
    The service checks "never more than captured" before calling.
    """

    reference: str
    provider_reference: str | None
    refund_reference: str  # our id of this refund
    amount: Money
    previously_refunded: Money
    reason: str = ""

    def __post_init__(self) -> None:
        check_reference(self.reference)
        check_reference(self.refund_reference, "refund_reference")
        _check_positive(self.amount, "refund amount")
        if self.previously_refunded.currency != self.amount.currency or self.previously_refunded.minor < 0:
            raise ValueError("previously_refunded must be a non-negative amount in the refund's currency")


# -- results --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Redirect:
    """Send the cardholder's browser to this URL (GET)."""

    url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AutoPostForm:
    """Render a form with these hidden fields that the browser posts to `url` at once."""

    url: str
    fields: tuple[tuple[str, str], ...]

    def as_dict(self) -> dict[str, str]:
        return dict(self.fields)


NextAction = Redirect | AutoPostForm


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    kind: OutcomeKind
    cause: UnknownCause | None = None  # set when kind is UNKNOWN
    code: str = ""  # provider's decline or error code
    message: str = ""  # for people; never card data

    def __post_init__(self) -> None:
        if (self.kind is OutcomeKind.UNKNOWN) != (self.cause is not None):
            raise ValueError("an unknown outcome needs a cause, and only an unknown outcome has one")

    @classmethod
    def succeeded(cls) -> Outcome:
        return cls(kind=OutcomeKind.SUCCEEDED)

    @classmethod
    def declined(cls, code: str, message: str = "") -> Outcome:
        return cls(kind=OutcomeKind.DECLINED, code=code, message=message)

    @classmethod
    def unknown(cls, cause: UnknownCause, message: str = "") -> Outcome:
        return cls(kind=OutcomeKind.UNKNOWN, cause=cause, message=message)

    @property
    def is_known(self) -> bool:
        return self.kind is not OutcomeKind.UNKNOWN


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderResult:
    """What one mutating call achieved, as far as the provider told us."""

    outcome: Outcome
    state: PaymentState | None = None  # the payment's state at the provider after the call, if known
    provider_reference: str | None = None  # the provider's id of the payment
    operation_reference: str | None = None  # the provider's id of this operation (a refund id)
    amount: Money | None = None  # amount authorized, captured, voided or refunded by this call
    next_action: NextAction | None = None  # online payments: where the cardholder goes next

    @classmethod
    def unknown(cls, cause: UnknownCause, message: str = "") -> ProviderResult:
        return cls(outcome=Outcome.unknown(cause, message))


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusReport:
    """The provider's answer to `fetch_status`; amounts are None only when the payment is NOT_FOUND."""

    state: PaymentState
    reference: str
    provider_reference: str | None
    amount: Money | None  # the payment's amount
    captured: Money | None
    refunded: Money | None
    checked_at: datetime
    detail: str = ""

    def __post_init__(self) -> None:
        _check_aware(self.checked_at, "checked_at")
        known = [m for m in (self.amount, self.captured, self.refunded) if m is not None]
        if self.state is PaymentState.NOT_FOUND and known:
            raise ValueError("a payment the provider does not know has no amounts")
        if self.state is not PaymentState.NOT_FOUND and len(known) != 3:
            raise ValueError("a known payment reports amount, captured and refunded")
        if len({m.currency for m in known}) > 1:
            raise ValueError("status amounts must share one currency")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderEvent:
    """One normalized event from a webhook or callback; `(provider, event_id)` identifies it."""

    provider: str
    event_id: str
    kind: EventKind
    our_reference: str | None  # our payment reference, when the provider echoes it
    provider_reference: str | None  # the provider's payment id
    amount: Money  # authorized, captured, refunded or disputed by this event
    occurred_at: datetime
    operation_reference: str | None = None  # refund or dispute id at the provider
    our_operation_reference: str | None = None  # our refund reference, when echoed
    reason: str = ""  # decline code, dispute reason

    def __post_init__(self) -> None:
        if not self.event_id:
            raise ValueError("event_id must not be empty")
        if self.our_reference is None and self.provider_reference is None:
            raise ValueError("an event must name our reference or the provider's")
        _check_aware(self.occurred_at, "occurred_at")


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifiedWebhook:
    """A delivery whose signature checked out; only `verify_webhook` should make one."""

    headers: dict[str, str]  # lower-cased names
    body: bytes
    signed_at: datetime | None  # the signed timestamp, for providers that sign one


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookAck:
    """The exact HTTP response the provider expects for a delivery."""

    status_code: int
    media_type: str
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    provider: str
    modes: frozenset[Mode]
    currencies: frozenset[str]  # what this variant serves
    manual_capture: bool
    partial_capture: bool
    void: bool
    partial_refunds: bool
    multiple_refunds: bool
    disputes: bool
    native_idempotency: bool  # the provider itself replays results by idempotency key
    signed_timestamps: bool  # deliveries carry a signed timestamp, checked against a window
    capture_by_webhook_reply: bool  # the reply to a callback can capture (CMI)
    settlement_lines: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SettlementLine:
    """One line of the provider's settlement for a day: what it paid out for one payment or refund."""

    kind: SettlementKind
    our_reference: str | None
    provider_reference: str | None  # the payment at the provider
    operation_reference: str  # the provider's id of the settled operation (balance transaction, refund)
    payout_reference: str | None
    gross: Money
    fee: Money
    net: Money
    value_date: date
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.gross - self.fee != self.net:
            raise ValueError(f"settlement line {self.operation_reference}: gross - fee must equal net")
