"""Chargebacks from the providers' dispute webhooks (every built-in provider that has disputes), on both
engines: payment disputed and chargeback entry; won reverses it; lost revokes the unused stamps; duplicated
and reordered deliveries change nothing."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import text

from ledger.db.engine import Database
from ledger.domain.payments import EventOutcome
from ledger.money import Money
from ledger.services.balances import account_balance
from ledger.services.disputes import DISPUTE_KINDS, disputes_of
from ledger.services.payments.context import Payments
from ledger.services.payments.events import apply_event
from ledger.services.refunds import RefundOrder, refund_payment
from ledger.services.signing_keys import StampKeys
from ledger.settings import Settings
from providers.model import EventKind, ProviderEvent, RefundRequest
from providers.registry import ProviderRegistry
from tests.providers.conformance import Harness
from tests.refunds.conftest import PRICE, Paid, harnesses, stamp_status

pytestmark = pytest.mark.anyio
Pay = Callable[[Harness], Awaitable[Paid]]
Delivered = tuple[ProviderEvent, str]


@pytest.fixture
def disputing(harness: Harness, sandbox_url: str, stripe_url: str) -> Callable[[Paid, str], Awaitable[None]]:
    """`await dispute(paid, outcome)` plays the cardholder's bank at the fake: open, won or lost."""
    assert harness.provider.capabilities().disputes, harness.name

    async def dispute(paid: Paid, outcome: str) -> None:
        async with httpx.AsyncClient() as client:
            if harness.provider.name == "sandbox":
                url, body = (
                    f"{sandbox_url}/sandbox/payments/{paid.provider_reference}/dispute",
                    {"outcome": outcome},
                )
            else:
                status = {"open": "needs_response"}.get(outcome, outcome)
                url, body = (
                    f"{stripe_url}/_fake/payment_intents/{paid.provider_reference}/dispute",
                    {"status": status},
                )
            (await client.post(url, json=body)).raise_for_status()

    return dispute


async def _dispute_events(paid: Paid) -> list[Delivered]:
    """The fake's signed dispute deliveries for this payment, verified and parsed by the provider."""
    return await _events_of(paid, DISPUTE_KINDS)


async def _events_of(paid: Paid, kinds: Collection[EventKind]) -> list[Delivered]:
    provider = paid.harness.provider
    found: list[Delivered] = []
    for headers, body in await paid.harness.deliveries():
        events = provider.parse_webhook(provider.verify_webhook(headers, body, datetime.now(UTC)))
        found.extend(
            (event, hashlib.sha256(body).hexdigest())
            for event in events
            if event.kind in kinds and event.provider_reference == paid.provider_reference
        )
    return found


def _deliver(
    db: Database,
    settings: Settings,
    signer_keys: StampKeys,
    registry: ProviderRegistry,
    paid: Paid,
    events: list[Delivered],
) -> list[EventOutcome | None]:
    """Through the payments service's event path (stored once per event id); None: a duplicate, skipped."""
    payments = Payments(database=db, settings=settings, registry=registry, keys=signer_keys)
    return [apply_event(payments, paid.harness.name, event, digest).outcome for event, digest in events]


def _state(db: Database, paid: Paid) -> str:
    with db.read() as session:
        return str(
            session.execute(
                text("SELECT state FROM payments WHERE reference = :r"), {"r": paid.reference}
            ).scalar_one()
        )


def _balance(db: Database, code: str) -> Money | None:
    with db.read() as session:
        return account_balance(session, code)


# CMI reports chargebacks in its settlement files, not in webhooks.
@harnesses("sandbox-online", "sandbox-counter", "stripe-online")
async def test_a_lost_dispute_charges_back_and_revokes_the_unused_stamps(
    harness: Harness,
    pay: Pay,
    disputing: Callable[[Paid, str], Awaitable[None]],
    db: Database,
    settings: Settings,
    signer_keys: StampKeys,
    registry: ProviderRegistry,
) -> None:
    paid = await pay(harness)
    provider = harness.provider.name
    await disputing(paid, "open")
    opened = await _dispute_events(paid)
    assert len(opened) == 1
    assert _deliver(db, settings, signer_keys, registry, paid, opened * 3) == [
        EventOutcome.APPLIED,
        None,
        None,
    ]
    assert _state(db, paid) == "disputed"
    assert _balance(db, f"expenses:chargebacks:{provider}:EUR") == PRICE
    assert _balance(db, f"assets:clearing:{provider}:EUR") == Money(0, "EUR")
    assert all(stamp_status(db, number) == "issued" for number in paid.stamps)  # it may still be won

    await disputing(paid, "lost")
    events = await _dispute_events(paid)
    assert _deliver(db, settings, signer_keys, registry, paid, events) == [None, EventOutcome.APPLIED]
    assert _state(db, paid) == "charged_back"
    assert all(stamp_status(db, number) == "refunded" for number in paid.stamps)  # on the deny list
    assert _balance(db, f"expenses:chargebacks:{provider}:EUR") == Money(0, "EUR")
    assert _balance(db, "liabilities:stamps-outstanding:FR-PAR") == Money(0, "EUR")
    with db.read() as session:
        entries = session.execute(
            text("SELECT count(*) FROM entries WHERE kind = 'chargeback' AND payment_ref = :r"),
            {"r": paid.reference},
        ).scalar_one()
    assert entries == 2  # the chargeback and the revocation, once each
    with db.read() as session:
        (dispute,) = disputes_of(session, paid.reference)
    assert (dispute.state, dispute.amount, dispute.closing_entry_id is not None) == ("lost", PRICE, True)


@harnesses("sandbox-online", "sandbox-counter", "stripe-online")
async def test_a_won_dispute_reverses_the_chargeback_whatever_the_order(
    harness: Harness,
    pay: Pay,
    disputing: Callable[[Paid, str], Awaitable[None]],
    db: Database,
    settings: Settings,
    signer_keys: StampKeys,
    registry: ProviderRegistry,
) -> None:
    paid = await pay(harness)
    provider = harness.provider.name
    await disputing(paid, "open")
    await disputing(paid, "won")
    events = await _dispute_events(paid)
    assert len(events) == 2
    storm = events * 3
    random.Random(7).shuffle(storm)
    storm.sort(key=lambda delivered: delivered[0].kind.value != "dispute_won")  # the closing event first
    outcomes = _deliver(db, settings, signer_keys, registry, paid, storm)
    # "won" opened and closed the dispute; the late "opened" is stored and ignored; copies are skipped.
    assert (outcomes.count(EventOutcome.APPLIED), outcomes.count(EventOutcome.IGNORED)) == (1, 1)
    assert _state(db, paid) == "captured"
    assert _balance(db, f"expenses:chargebacks:{provider}:EUR") == Money(0, "EUR")
    assert _balance(db, f"assets:clearing:{provider}:EUR") == PRICE
    assert all(stamp_status(db, number) == "issued" for number in paid.stamps)


# CMI sends no refund callbacks: its refunds are answered synchronously.
@harnesses("sandbox-online", "sandbox-counter", "stripe-online")
async def test_refund_events_confirm_ours_and_hand_strangers_to_a_person(
    harness: Harness,
    pay: Pay,
    db: Database,
    settings: Settings,
    signer_keys: StampKeys,
    registry: ProviderRegistry,
) -> None:
    paid = await pay(harness)
    order = RefundOrder(
        payment_ref=paid.reference,
        reason="cancelled",
        actor="admin",
        request_key="r1",
        stamps=(paid.stamps[0],),
    )
    ours = await refund_payment(db, settings, registry.get, order)
    # A refund made at the provider's own dashboard, which the service did not ask for.
    stranger = RefundRequest(
        reference=paid.reference, provider_reference=paid.provider_reference, refund_reference="DASHBOARD-1",
        amount=Money(500, "EUR"), previously_refunded=Money(5500, "EUR"),
    )  # fmt: skip
    await harness.provider.refund(stranger, idempotency_key=f"dashboard-{paid.reference}")
    refunds = await _events_of(paid, {EventKind.REFUNDED})
    assert len(refunds) == 2, refunds
    outcomes = _deliver(db, settings, signer_keys, registry, paid, refunds)
    by_amount = {event.amount.minor: outcome for (event, _), outcome in zip(refunds, outcomes, strict=True)}
    assert ours.amount == Money(5500, "EUR")
    # Ours was applied when the provider answered; the stranger goes to a person through the status check.
    assert by_amount == {5500: EventOutcome.IGNORED, 500: EventOutcome.UNPLACED}
    assert _state(db, paid) == "partially_refunded"
