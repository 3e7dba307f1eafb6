"""The payment and attempt state machines: which state may follow which, forward only.

Pure data and functions. Migration 0009 holds the same edges as literals and the database refuses any
other change of state (a test compares the two edge by edge on both engines).
"""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    """Where a payment stands in our books (not at the provider: see providers.model.PaymentState)."""

    CREATED = "created"  # stored with its first attempt, no provider call made yet
    PENDING = "pending"  # the provider has it; waiting for the cardholder
    AUTHORIZED = "authorized"  # card approved, not captured yet (manual capture)
    CAPTURED = "captured"  # money taken: ledger entry and stamps written in the same transaction
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    FAILED = "failed"  # can no longer succeed
    CANCELED = "canceled"  # given up by the cardholder or voided before capture
    EXPIRED = "expired"  # abandoned: nothing happened before its deadline
    UNKNOWN = "unknown"  # a call's outcome is not known; the resolver asks the provider
    DISPUTED = "disputed"  # a chargeback is open
    CHARGED_BACK = "charged_back"  # the dispute was lost
    PARKED = (
        "parked"  # amounts or currency did not match, or money came on a closed payment: a person decides
    )


class AttemptStatus(StrEnum):
    """One call to a provider: committed as PREPARED before the call, DISPATCHED just before sending."""

    PREPARED = "prepared"
    DISPATCHED = "dispatched"
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    UNKNOWN = "unknown"


class AttemptKind(StrEnum):
    CREATE = "create"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"
    STATUS = "status"


class EventOutcome(StrEnum):
    """What applying one stored provider event did."""

    APPLIED = "applied"  # moved the payment (or recorded a refund/dispute)
    IGNORED = "ignored"  # valid, but the payment is already further along (order is never assumed)
    PARKED = "parked"  # amount or currency did not match: the payment is parked for a person
    UNPLACED = "unplaced"  # could not be placed on its own: the provider's status decided instead


P = PaymentStatus
A = AttemptStatus

# Before capture: every state a payment can still leave towards a capture or a close.
_OPEN = (P.CREATED, P.PENDING, P.UNKNOWN, P.AUTHORIZED)
_CLOSED = (P.FAILED, P.CANCELED, P.EXPIRED)

PAYMENT_TRANSITIONS: frozenset[tuple[PaymentStatus, PaymentStatus]] = frozenset(
    {
        (P.CREATED, P.PENDING),
        (P.CREATED, P.UNKNOWN),
        (P.UNKNOWN, P.PENDING),  # the resolver found the payment at the provider, still unpaid
        *((s, P.AUTHORIZED) for s in (P.CREATED, P.PENDING, P.UNKNOWN)),
        *((s, P.CAPTURED) for s in _OPEN),
        *((s, c) for s in _OPEN for c in _CLOSED),
        *((s, P.PARKED) for s in _OPEN),
        # Money that arrives on a closed payment is never lost nor issued on its own: parked for a person.
        *((s, P.PARKED) for s in _CLOSED),
        # A person's decision on a parked payment.
        (P.PARKED, P.CAPTURED),
        (P.PARKED, P.REFUNDED),
        (P.PARKED, P.FAILED),
        (P.PARKED, P.CANCELED),
        (P.PARKED, P.EXPIRED),
        # Refunds and disputes (the refunds service drives these).
        (P.CAPTURED, P.PARTIALLY_REFUNDED),
        (P.CAPTURED, P.REFUNDED),
        (P.PARTIALLY_REFUNDED, P.REFUNDED),
        (P.CAPTURED, P.DISPUTED),
        (P.PARTIALLY_REFUNDED, P.DISPUTED),
        (P.DISPUTED, P.CAPTURED),  # dispute won, nothing refunded before
        (P.DISPUTED, P.PARTIALLY_REFUNDED),  # dispute won after a partial refund
        (P.DISPUTED, P.CHARGED_BACK),
    }
)

ATTEMPT_TRANSITIONS: frozenset[tuple[AttemptStatus, AttemptStatus]] = frozenset(
    {
        (A.PREPARED, A.DISPATCHED),
        # The resolver settles an attempt whose process died before or after sending it.
        (A.PREPARED, A.SUCCEEDED),
        (A.PREPARED, A.DECLINED),
        (A.PREPARED, A.UNKNOWN),
        (A.DISPATCHED, A.SUCCEEDED),
        (A.DISPATCHED, A.DECLINED),
        (A.DISPATCHED, A.UNKNOWN),
        (A.UNKNOWN, A.SUCCEEDED),
        (A.UNKNOWN, A.DECLINED),
    }
)

PAYMENT_FINAL = frozenset({P.REFUNDED, P.CHARGED_BACK})
# A counter terminal is busy while one of its sales is in one of these states.
PAYMENT_IN_FLIGHT = frozenset({P.CREATED, P.PENDING, P.AUTHORIZED, P.UNKNOWN})
ATTEMPT_OPEN = frozenset({A.PREPARED, A.DISPATCHED, A.UNKNOWN})
# States after which the payment holds captured money (its stamps exist).
PAYMENT_PAID = frozenset({P.CAPTURED, P.PARTIALLY_REFUNDED, P.REFUNDED, P.DISPUTED, P.CHARGED_BACK})


class TransitionError(ValueError):
    """A state change the machine does not allow (it would go backwards or skip what must happen)."""


def can_move(current: PaymentStatus, target: PaymentStatus) -> bool:
    return current == target or (current, target) in PAYMENT_TRANSITIONS


def move(current: PaymentStatus, target: PaymentStatus) -> PaymentStatus:
    """`target` if the payment may go there from `current` (staying put is always allowed)."""
    if not can_move(current, target):
        raise TransitionError(f"a payment that is {current} cannot become {target}")
    return target


def can_move_attempt(current: AttemptStatus, target: AttemptStatus) -> bool:
    return current == target or (current, target) in ATTEMPT_TRANSITIONS


def move_attempt(current: AttemptStatus, target: AttemptStatus) -> AttemptStatus:
    if not can_move_attempt(current, target):
        raise TransitionError(f"an attempt that is {current} cannot become {target}")
    return target


def reachable(start: PaymentStatus) -> frozenset[PaymentStatus]:
    """Every state a payment can reach from `start` (for properties and for people reading the graph)."""
    seen = {start}
    frontier = [start]
    while frontier:
        here = frontier.pop()
        for source, target in PAYMENT_TRANSITIONS:
            if source == here and target not in seen:
                seen.add(target)
                frontier.append(target)
    return frozenset(seen)
