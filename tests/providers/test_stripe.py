"""Stripe against its fake: idempotency replays and errors, disputes, payouts as settlement lines."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from ledger.money import Money
from providers.base import Provider
from providers.model import (
    CaptureMode,
    EventKind,
    OutcomeKind,
    PaymentRequest,
    PaymentState,
    SettlementKind,
    VoidRequest,
)
from providers.registry import ProviderRegistry
from tests.providers.conformance import new_reference
from tests.providers.conftest import ENV

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": f"Bearer {ENV['KEY']}"}


@pytest.fixture
def stripe(registry: ProviderRegistry) -> Provider:
    return registry.get("stripe-online")


def _request(reference: str, capture: CaptureMode = CaptureMode.AUTOMATIC) -> PaymentRequest:
    return PaymentRequest(
        reference=reference, amount=Money(8000, "EUR"), description="Visa", consulate="FR-PAR",
        capture=capture,
        return_url="http://127.0.0.1:9/back",
    )  # fmt: skip


async def test_the_fake_replays_a_key_and_refuses_it_for_other_parameters(stripe_url: str) -> None:
    form = {
        "mode": "payment", "success_url": "http://127.0.0.1:9/back",
        "line_items[0][price_data][currency]": "eur", "line_items[0][price_data][unit_amount]": "500",
        "line_items[0][price_data][product_data][name]": "Visa", "line_items[0][quantity]": "1",
    }  # fmt: skip
    headers = {**AUTH, "Idempotency-Key": new_reference()}
    async with httpx.AsyncClient(base_url=stripe_url) as client:
        first = await client.post("/v1/checkout/sessions", data=form, headers=headers)
        again = await client.post("/v1/checkout/sessions", data=form, headers=headers)
        other = await client.post(
            "/v1/checkout/sessions",
            data={**form, "line_items[0][price_data][unit_amount]": "600"},
            headers=headers,
        )
        anonymous = await client.post("/v1/checkout/sessions", data=form)
    assert first.status_code == 200
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 400
    assert other.json()["error"]["type"] == "idempotency_error"
    assert anonymous.status_code == 401


async def test_a_void_cancels_the_authorization(stripe: Provider) -> None:
    reference = new_reference()
    created = await stripe.create_payment(_request(reference, CaptureMode.MANUAL), idempotency_key=reference)
    assert created.next_action is not None
    async with httpx.AsyncClient() as client:
        await client.post(created.next_action.url, data={"decision": "approve"})
    void = VoidRequest(
        reference=reference, provider_reference=created.provider_reference, amount=Money(8000, "EUR")
    )
    result = await stripe.void(void, idempotency_key=f"void-{reference}")
    assert (result.outcome.kind, result.state) == (OutcomeKind.SUCCEEDED, PaymentState.CANCELED)
    assert (await stripe.fetch_status(reference)).state is PaymentState.CANCELED


async def test_a_dispute_and_the_payout_that_settles_it(stripe: Provider, stripe_url: str) -> None:
    reference = new_reference()
    created = await stripe.create_payment(_request(reference), idempotency_key=reference)
    assert created.next_action is not None
    async with httpx.AsyncClient() as client:
        await client.post(created.next_action.url, data={"decision": "approve"})
        await client.post(f"{stripe_url}/_fake/payment_intents/{created.provider_reference}/dispute", json={})
        today = datetime.now(UTC).date()
        await client.post(f"{stripe_url}/_fake/payouts", json={"day": today.isoformat()})
        deliveries = (await client.get(f"{stripe_url}/_fake/webhooks")).json()["data"]
    assert (await stripe.fetch_status(reference)).state is PaymentState.DISPUTED
    events = [
        event
        for d in deliveries
        for event in stripe.parse_webhook(
            stripe.verify_webhook(d["headers"], d["body"].encode(), datetime.now(UTC))
        )
        if event.provider_reference == created.provider_reference
    ]
    disputed = [e for e in events if e.kind is EventKind.DISPUTED]
    assert len(disputed) == 1
    assert disputed[0].amount == Money(8000, "EUR")

    lines = [
        line
        for line in await stripe.settlement_lines(today)
        if line.provider_reference == created.provider_reference
    ]
    by_kind = {line.kind: line for line in lines}
    capture, chargeback = by_kind[SettlementKind.CAPTURE], by_kind[SettlementKind.CHARGEBACK]
    assert (capture.our_reference, capture.gross, capture.fee, capture.net) == (
        reference, Money(8000, "EUR"), Money(145, "EUR"), Money(7855, "EUR"),
    )  # fmt: skip
    assert chargeback.gross == Money(-8000, "EUR")
    assert capture.payout_reference is not None
