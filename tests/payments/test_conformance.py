"""The conformance of every built-in online provider through the service and the database, on both
engines: signatures (good, tampered, stale, rotated), news lost after a charge recovered by the
provider's status, an answer lost after the create call, and a currency or amount mismatch parked."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from ledger.money import Money
from ledger.services import clock
from ledger.services.payments import records
from ledger.services.payments.checkout import StartedPayment, start_online_payment
from ledger.services.payments.context import Payments
from ledger.services.payments.resolver import expire_payment, manual_queue, resolve_payment, run_once
from ledger.services.payments.webhooks import receive_webhook
from tests.payments import deliveries as signed
from tests.payments.conftest import ONLINE, approve, arm, count
from tests.providers.conftest import CURRENT, PREVIOUS, RETIRED

pytestmark = pytest.mark.anyio
PASSPORT = Money(5500, "EUR")  # FR-PAR, fee schedule 2026.1


def _provider(variant: str) -> str:
    return variant.split("-", maxsplit=1)[0]


@pytest.fixture
def next_reference(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The references the service will give its next payments, known in advance to arm the fakes."""
    planned: list[str] = []
    original = records.new_reference

    def planned_reference(channel: str) -> str:
        return planned.pop(0) if planned else original(channel)

    monkeypatch.setattr(records, "new_reference", planned_reference)
    return planned


async def _start(payments: Payments, variant: str) -> StartedPayment:
    return await start_online_payment(
        payments, consulate="FR-PAR", fee_codes=("PASSPORT",), variant_name=variant
    )


@pytest.mark.parametrize("variant", ONLINE)
async def test_signatures_good_tampered_stale_and_rotated(payments: Payments, variant: str) -> None:
    provider = _provider(variant)
    started = await _start(payments, variant)
    now = int(time.time())
    good = signed.captured(provider, started.reference, PASSPORT, CURRENT, now)
    tampered = (good[0], good[1].replace(b"5500", b"5501").replace(b"55.00", b"55.01"))
    retired = signed.captured(provider, started.reference, PASSPORT, RETIRED, now)
    refused = [tampered, retired]
    if provider != "cmi":  # CMI signs no timestamp: its event id catches replays
        refused.append(signed.captured(provider, started.reference, PASSPORT, CURRENT, now - 301))
    for headers, body in refused:
        result = await receive_webhook(payments, variant, headers, body)
        assert result.rejected is not None
        assert result.ack.status_code >= 400 or b"FAILURE" in result.ack.body
    assert count(payments.database, "provider_events") == 0
    assert count(payments.database, "stamps") == 0

    rotated = signed.captured(provider, started.reference, PASSPORT, PREVIOUS, now)
    result = await receive_webhook(payments, variant, *rotated)
    assert result.rejected is None, "a sender still on the previous secret is accepted during rotation"
    assert count(payments.database, "payments", "WHERE state = 'captured'") == 1
    assert count(payments.database, "stamps") == 1


@pytest.mark.parametrize("variant", ONLINE)
async def test_news_lost_after_the_charge_is_recovered_by_the_status(
    payments: Payments, fake_urls: dict[str, str], variant: str, next_reference: list[str]
) -> None:
    provider = _provider(variant)
    reference = records.new_reference("online")
    next_reference.append(reference)
    await arm(provider, fake_urls[provider], reference, ["lost-callback"])
    started = await _start(payments, variant)
    assert started.reference == reference
    await approve(started.next_action, fake_urls[provider])
    assert count(payments.database, "payments", "WHERE state = 'pending'") == 1

    # Past its deadline, the payment is checked with the provider before it may expire: it was paid.
    assert not await expire_payment(payments, started.payment_id)
    assert count(payments.database, "payments", "WHERE state = 'captured'") == 1
    assert count(payments.database, "stamps") == 1


@pytest.mark.parametrize("variant", ["sandbox-online", "stripe-online"])
async def test_an_answer_lost_after_the_create_call_is_unknown_until_the_status_says(
    payments: Payments, fake_urls: dict[str, str], variant: str, next_reference: list[str]
) -> None:
    provider = _provider(variant)
    reference = records.new_reference("online")
    next_reference.append(reference)
    await arm(provider, fake_urls[provider], reference, ["timeout-after-charge"])
    started = await _start(payments, variant)
    assert started.next_action is None
    assert count(payments.database, "payments", "WHERE state = 'unknown'") == 1
    assert count(payments.database, "payment_attempts", "WHERE state = 'unknown'") == 1

    assert await resolve_payment(payments, started.payment_id) == ["resolved"]
    assert count(payments.database, "payments", "WHERE state = 'pending'") == 1
    assert count(payments.database, "payment_attempts", "WHERE state = 'succeeded'") == 1


@pytest.mark.parametrize("variant", ONLINE)
@pytest.mark.parametrize("amount", [Money(5500, "USD"), Money(5499, "EUR")])
async def test_a_capture_in_another_currency_or_amount_is_parked_and_issues_nothing(
    payments: Payments, variant: str, amount: Money
) -> None:
    provider = _provider(variant)
    started = await _start(payments, variant)
    result = await receive_webhook(
        payments, variant, *signed.captured(provider, started.reference, amount, CURRENT, int(time.time()))
    )
    assert result.rejected is None
    db = payments.database
    assert count(db, "payments", "WHERE state = 'parked' AND parked_reason IS NOT NULL") == 1
    assert count(db, "provider_events", "WHERE outcome = 'parked'") == 1
    assert count(db, "stamps") == 0
    assert count(db, "entries") == 0
    queued = manual_queue(payments)
    assert [q.reference for q in queued] == [started.reference]
    assert str(amount) in queued[0].reason


async def test_an_abandoned_checkout_expires_and_issues_nothing(
    payments: Payments, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _start(payments, "sandbox-online")
    assert (await run_once(payments)).expired == 0, "not before its deadline"
    later = clock.now() + timedelta(minutes=31)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert (await run_once(payments)).expired == 1
    assert count(payments.database, "payments", "WHERE state = 'expired'") == 1
    assert count(payments.database, "stamps") == 0
