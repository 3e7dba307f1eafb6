"""Online payments through the service, for every built-in provider against its local fake, on both engines:
checkout, a duplicated and shuffled storm of its webhooks applied once, stamps issued with the capture."""

from __future__ import annotations

import random

import pytest

from ledger.domain.payments import PaymentStatus
from ledger.services import clock
from ledger.services.payments.checkout import start_online_payment
from ledger.services.payments.context import Payments
from ledger.services.payments.webhooks import receive_webhook
from tests.payments.conftest import ONLINE, approve, count, deliveries

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("variant", ONLINE)
async def test_a_paid_checkout_issues_one_stamp_per_fee_once_whatever_the_webhook_storm(
    payments: Payments, fake_urls: dict[str, str], variant: str
) -> None:
    provider = variant.split("-", maxsplit=1)[0]
    started = await start_online_payment(
        payments, consulate="FR-PAR", fee_codes=("PASSPORT", "CNIE"), variant_name=variant
    )
    assert started.state is PaymentStatus.PENDING
    assert started.next_action is not None
    assert count(payments.database, "payment_attempts", "WHERE state = 'succeeded'") == 1

    await approve(started.next_action, fake_urls[provider])
    sent = await deliveries(provider, fake_urls[provider], started.reference)
    assert sent, "the fake signed nothing for this payment"
    storm = [d for d in sent for _ in range(random.Random(7).randint(2, 5))]
    random.Random(8).shuffle(storm)
    for headers, body in storm:
        result = await receive_webhook(payments, variant, headers, body)
        assert result.rejected is None
        assert result.ack.status_code == 200

    db = payments.database
    assert count(db, "payments", "WHERE state = 'captured'") == 1
    assert count(db, "entries", "WHERE kind = 'payment_captured'") == 1
    assert count(db, "stamps", "WHERE payment_ref = :ref", ref=started.reference) == 2
    provider_ = payments.registry.get(variant)
    event_ids = {
        e.event_id
        for h, b in sent
        for e in provider_.parse_webhook(provider_.verify_webhook(h, b, clock.now()))
    }
    assert count(db, "provider_events") == len(event_ids), "every event stored once, duplicates skipped"
    assert count(db, "provider_events", "WHERE outcome = 'applied'") == 1


@pytest.mark.parametrize("variant", ONLINE)
async def test_a_declined_then_abandoned_checkout_issues_nothing(
    payments: Payments, fake_urls: dict[str, str], variant: str
) -> None:
    provider = variant.split("-", maxsplit=1)[0]
    started = await start_online_payment(
        payments, consulate="FR-PAR", fee_codes=("PASSPORT",), variant_name=variant
    )
    await approve(started.next_action, fake_urls[provider], decision="decline")
    for headers, body in await deliveries(provider, fake_urls[provider], started.reference):
        await receive_webhook(payments, variant, headers, body)
    db = payments.database
    assert count(db, "payments", "WHERE state IN ('pending', 'failed')") == 1
    assert count(db, "stamps") == 0
    assert count(db, "entries") == 0


@pytest.mark.parametrize("variant", ONLINE)
async def test_a_declined_card_then_a_good_one_captures_once(
    payments: Payments, fake_urls: dict[str, str], variant: str
) -> None:
    provider = variant.split("-", maxsplit=1)[0]
    started = await start_online_payment(
        payments, consulate="FR-PAR", fee_codes=("PASSPORT",), variant_name=variant
    )
    await approve(started.next_action, fake_urls[provider], decision="decline")
    await approve(started.next_action, fake_urls[provider])
    sent = await deliveries(provider, fake_urls[provider], started.reference)
    for headers, body in reversed(sent):  # the success may well arrive first
        await receive_webhook(payments, variant, headers, body)
    db = payments.database
    assert count(db, "payments", "WHERE state = 'captured'") == 1
    assert count(db, "stamps") == 1
    assert count(db, "provider_events", "WHERE outcome = 'applied'") == 1
