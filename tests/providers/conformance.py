"""The conformance kit every payment provider passes, driven through a harness around its local fake.

A harness knows how to play the cardholder and the gateway's operator for one provider (approve a
payment page, arm a fault, list the deliveries the fake signed, sign a delivery with a chosen secret);
the checks below only use the provider interface and these harness hooks.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from ledger.money import Money
from providers.base import Provider
from providers.errors import IdempotencyConflictError, WebhookRejectedError
from providers.model import (
    CaptureMode,
    CaptureRequest,
    EventKind,
    Mode,
    OutcomeKind,
    PaymentRequest,
    PaymentState,
    ProviderEvent,
    ProviderResult,
    RefundRequest,
)

Delivery = tuple[dict[str, str], bytes]


@dataclass
class Harness:
    name: str
    provider: Provider
    # A delivery of a sample event, signed with `secret` at unix time `timestamp`.
    signed: Callable[[str, int], Delivery]
    # Play the cardholder: start the payment and approve it (hosted page or terminal).
    pay: Callable[[PaymentRequest, str], Awaitable[ProviderResult]]
    arm: Callable[[str, list[str]], Awaitable[None]]  # faults for an order (our reference)
    deliveries: Callable[[], Awaitable[list[Delivery]]]  # everything the fake signed so far
    current_secret: str
    previous_secret: str  # still configured (rotation)
    retired_secret: str  # no longer configured
    amounts: tuple[Money, ...]  # amounts in the currencies this variant takes, with their exponents

    @property
    def mode(self) -> Mode:
        return self.provider.variant.mode


def new_reference() -> str:
    return f"T-{uuid.uuid4().hex[:16]}"


def payment(harness: Harness, amount: Money, *, manual: bool = False) -> PaymentRequest:
    online = harness.mode is Mode.ONLINE
    return PaymentRequest(
        reference=new_reference(),
        amount=amount,
        description="Passeport biométrique",
        consulate="FR-PAR",
        capture=CaptureMode.MANUAL if manual and online else CaptureMode.AUTOMATIC,
        return_url="http://127.0.0.1:9/return" if online else None,
        cancel_url="http://127.0.0.1:9/cancel" if online else None,
        terminal_id=None if online else "T-PARIS-1",
    )


def tamper(body: bytes) -> bytes:
    """Change the first digit of the body: an amount, a timestamp or an id, never the layout."""
    match = re.search(rb"[0-9]", body)
    assert match is not None
    digit = body[match.start()]
    replacement = b"7" if digit != ord("7") else b"8"
    return body[: match.start()] + replacement + body[match.end() :]


def events_of(harness: Harness, deliveries: list[Delivery], now: datetime) -> list[ProviderEvent]:
    provider = harness.provider
    return [
        e
        for headers, body in deliveries
        for e in provider.parse_webhook(provider.verify_webhook(headers, body, now))
    ]


# -- the checks ------------------------------------------------------------------------------------------


async def check_signature_vectors(harness: Harness) -> None:
    provider = harness.provider
    now = datetime.now(UTC)
    ts = int(now.timestamp())
    headers, body = harness.signed(harness.current_secret, ts)
    assert provider.parse_webhook(provider.verify_webhook(headers, body, now)), (
        "a good delivery yields an event"
    )

    with pytest.raises(WebhookRejectedError):
        provider.verify_webhook(headers, tamper(body), now)
    with pytest.raises(WebhookRejectedError):
        provider.verify_webhook({"content-type": headers.get("Content-Type", "")}, body, now) if any(
            "signature" in k.lower() for k in headers
        ) else provider.verify_webhook(headers, re.sub(rb"HASH=[^&]*", b"HASH=", body), now)

    # Rotation: a sender still signing with the previous secret is accepted; a retired one is not.
    old_headers, old_body = harness.signed(harness.previous_secret, ts)
    provider.verify_webhook(old_headers, old_body, now)
    gone_headers, gone_body = harness.signed(harness.retired_secret, ts)
    with pytest.raises(WebhookRejectedError):
        provider.verify_webhook(gone_headers, gone_body, now)

    if provider.capabilities().signed_timestamps:
        window = timedelta(seconds=300)
        provider.verify_webhook(headers, body, now + window - timedelta(seconds=1))
        provider.verify_webhook(headers, body, now - window + timedelta(seconds=1))
        with pytest.raises(WebhookRejectedError, match="old"):
            provider.verify_webhook(headers, body, now + window + timedelta(seconds=2))
        with pytest.raises(WebhookRejectedError, match="future"):
            provider.verify_webhook(headers, body, now - window - timedelta(seconds=2))


async def check_idempotent_replays(harness: Harness) -> None:
    provider = harness.provider
    request = payment(harness, harness.amounts[0], manual=harness.mode is Mode.ONLINE)
    key = f"create-{request.reference}"
    first = await harness.pay(request, key)
    assert first.outcome.kind is OutcomeKind.SUCCEEDED
    again = await provider.create_payment(request, idempotency_key=key)
    assert again == first, "the same key and request must give the same result"

    other = PaymentRequest(
        reference=request.reference, amount=request.amount + Money(100, request.amount.currency),
        description=request.description, consulate=request.consulate, capture=request.capture,
        return_url=request.return_url, cancel_url=request.cancel_url, terminal_id=request.terminal_id,
    )  # fmt: skip
    with pytest.raises(IdempotencyConflictError):
        await provider.create_payment(other, idempotency_key=key)

    if harness.mode is Mode.ONLINE:
        capture = CaptureRequest(reference=request.reference, provider_reference=None, amount=request.amount)
        captured = await provider.capture(capture, idempotency_key=f"capture-{request.reference}")
        assert captured.outcome.kind is OutcomeKind.SUCCEEDED
        assert await provider.capture(capture, idempotency_key=f"capture-{request.reference}") == captured
        smaller = CaptureRequest(
            reference=request.reference, provider_reference=None, amount=Money(1, request.amount.currency)
        )
        with pytest.raises(IdempotencyConflictError):
            await provider.capture(smaller, idempotency_key=f"capture-{request.reference}")
    status = await provider.fetch_status(request.reference)
    assert status.state is PaymentState.CAPTURED
    assert status.captured == request.amount, "a replayed capture must not capture twice"


async def check_event_storm(harness: Harness, payments: int = 4, seed: int = 4) -> None:
    """Every event delivered 1-3 times in a shuffled order: parsed alike, deduplicated by event id."""
    requests = [payment(harness, harness.amounts[0]) for _ in range(payments)]
    for request in requests:
        result = await harness.pay(request, f"create-{request.reference}")
        assert result.outcome.is_known
    ours = {r.reference for r in requests}
    now = datetime.now(UTC)
    single = [e for e in events_of(harness, await harness.deliveries(), now) if e.our_reference in ours]
    assert {e.our_reference for e in single if e.kind is EventKind.CAPTURED} == ours

    rng = random.Random(seed)
    storm = [d for d in await harness.deliveries() for _ in range(rng.randint(1, 3))]
    rng.shuffle(storm)
    seen: dict[str, ProviderEvent] = {}
    duplicates = 0
    for event in events_of(harness, storm, now):
        if event.event_id in seen:
            assert seen[event.event_id] == event, "a duplicate must parse to the same event"
            duplicates += 1
        else:
            seen[event.event_id] = event
    assert duplicates > 0
    stormed = [e for e in seen.values() if e.our_reference in ours]
    assert sorted(e.event_id for e in stormed) == sorted(e.event_id for e in single)
    for event in stormed:
        if event.kind in {EventKind.CAPTURED, EventKind.AUTHORIZED}:
            assert event.amount == requests[0].amount


async def check_timeout_after_charge(harness: Harness) -> None:
    """The provider charges but the answer never comes: UNKNOWN, never failed; status resolves it."""
    provider = harness.provider
    request = payment(harness, harness.amounts[0], manual=True)
    if harness.mode is Mode.TERMINAL:
        await harness.arm(request.reference, ["timeout-after-charge"])
        result = await provider.create_payment(request, idempotency_key=f"sale-{request.reference}")
    else:
        assert (await harness.pay(request, f"create-{request.reference}")).outcome.is_known
        await harness.arm(request.reference, ["timeout-after-charge"])
        capture = CaptureRequest(reference=request.reference, provider_reference=None, amount=request.amount)
        result = await provider.capture(capture, idempotency_key=f"capture-{request.reference}")
    assert result.outcome.kind is OutcomeKind.UNKNOWN, result
    assert result.outcome.cause is not None
    await harness.arm(request.reference, [])
    status = await provider.fetch_status(request.reference)  # by our reference only
    assert status.state is PaymentState.CAPTURED
    assert status.captured == request.amount


async def check_amounts_exact(harness: Harness) -> None:
    now = datetime.now(UTC)
    for amount in harness.amounts:
        request = payment(harness, amount)
        await harness.pay(request, f"create-{request.reference}")
        status = await harness.provider.fetch_status(request.reference)
        assert (status.amount, status.captured) == (amount, amount), f"{amount} came back as {status.amount}"
        events = [
            e
            for e in events_of(harness, await harness.deliveries(), now)
            if e.our_reference == request.reference
        ]
        assert events
        assert all(e.amount == amount for e in events if e.kind is not EventKind.DECLINED)


async def check_unknown_payment(harness: Harness) -> None:
    status = await harness.provider.fetch_status(new_reference())
    assert status.state is PaymentState.NOT_FOUND
    assert status.amount is None


async def check_refunds(harness: Harness) -> None:
    provider = harness.provider
    amount = harness.amounts[0]
    request = payment(harness, Money(amount.minor * 3, amount.currency))
    await harness.pay(request, f"create-{request.reference}")
    refunded = Money.zero(amount.currency)
    for number in (1, 2):
        refund = RefundRequest(
            reference=request.reference, provider_reference=None,
            refund_reference=f"R{number}-{request.reference}", amount=amount, previously_refunded=refunded,
        )  # fmt: skip
        result = await provider.refund(refund, idempotency_key=f"refund-{number}-{request.reference}")
        assert result.outcome.kind is OutcomeKind.SUCCEEDED
        assert result.amount == amount
        replay = await provider.refund(refund, idempotency_key=f"refund-{number}-{request.reference}")
        assert replay.outcome.kind is OutcomeKind.SUCCEEDED
        refunded += amount
    status = await provider.fetch_status(request.reference)
    assert status.state is PaymentState.PARTIALLY_REFUNDED
    assert status.refunded == refunded, "replayed refunds must not refund twice"
    too_much = RefundRequest(
        reference=request.reference, provider_reference=None, refund_reference=f"R3-{request.reference}",
        amount=Money(amount.minor * 2, amount.currency), previously_refunded=refunded,
    )  # fmt: skip
    refused = await provider.refund(too_much, idempotency_key=f"refund-3-{request.reference}")
    assert refused.outcome.kind is OutcomeKind.DECLINED
    assert (await provider.fetch_status(request.reference)).refunded == refunded


CHECKS = {
    "signature_vectors": check_signature_vectors,
    "idempotent_replays": check_idempotent_replays,
    "event_storm": check_event_storm,
    "timeout_after_charge": check_timeout_after_charge,
    "amounts_exact": check_amounts_exact,
    "unknown_payment": check_unknown_payment,
    "refunds": check_refunds,
}
