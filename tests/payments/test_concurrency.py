"""Concurrency on PostgreSQL: copies of one event delivered at the same instant apply once; all the events
of a payment arriving together leave it captured once."""

from __future__ import annotations

import asyncio

import pytest

from ledger.db.engine import Database
from ledger.services.payments.checkout import start_online_payment
from ledger.services.payments.context import Payments
from ledger.services.payments.webhooks import receive_webhook
from ledger.services.signing_keys import StampKeys
from ledger.settings import Settings
from providers.registry import ProviderRegistry
from tests.payments.conftest import approve, count, deliveries
from tests.stamps.conftest import SECRETS, make_keys

pytestmark = pytest.mark.anyio


@pytest.fixture
def pg_payments(pg_db: Database, settings: Settings, registry: ProviderRegistry) -> Payments:
    make_keys(pg_db)
    return Payments(database=pg_db, settings=settings, registry=registry, keys=StampKeys(settings, SECRETS))


@pytest.mark.parametrize("variant", ["sandbox-online", "stripe-online"])
async def test_simultaneous_copies_of_every_event_apply_once(
    pg_payments: Payments, fake_urls: dict[str, str], variant: str
) -> None:
    provider = variant.split("-", maxsplit=1)[0]
    started = await start_online_payment(
        pg_payments, consulate="FR-PAR", fee_codes=("PASSPORT", "CNIE"), variant_name=variant
    )
    await approve(started.next_action, fake_urls[provider])
    sent = await deliveries(provider, fake_urls[provider], started.reference)
    copies = [d for d in sent for _ in range(12)]
    results = await asyncio.gather(*(receive_webhook(pg_payments, variant, h, b) for h, b in copies))
    assert all(r.ack.status_code == 200 for r in results)
    db = pg_payments.database
    assert count(db, "entries", "WHERE kind = 'payment_captured'") == 1
    assert count(db, "stamps") == 2
    assert count(db, "payments", "WHERE state = 'captured'") == 1
    applied = [a for r in results for a in r.applied if a.outcome is not None]
    assert len(applied) == count(db, "provider_events"), "each event stored by exactly one delivery"
