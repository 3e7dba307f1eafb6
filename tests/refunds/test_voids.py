"""Voids of authorizations through the service, on every built-in provider that can authorize alone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import text
from uuid_utils.compat import uuid7

from ledger.db.engine import Database
from ledger.db.models_payments import Payment
from ledger.services import clock
from ledger.services.refunds import RefundConflictError
from ledger.services.voids import void_payment
from providers.model import Mode, PaymentState
from providers.registry import ProviderRegistry
from tests.providers.conformance import Harness, payment
from tests.refunds.conftest import PRICE, Paid, harnesses

Pay = Callable[[Harness], Awaitable[Paid]]

pytestmark = pytest.mark.anyio


async def _authorized(harness: Harness, db: Database) -> str:
    caps = harness.provider.capabilities()
    assert harness.mode is Mode.ONLINE and caps.void and caps.manual_capture, harness.name
    request = payment(harness, PRICE, manual=True)
    result = await harness.pay(request, f"create-{request.reference}")
    status = await harness.provider.fetch_status(request.reference)
    assert status.state is PaymentState.AUTHORIZED, status
    now = clock.now()
    with db.write() as session:
        session.add(
            Payment(
                id=uuid7(), reference=request.reference, consulate="FR-PAR", fee_codes="PASSPORT,LEGALIZATION",
                amount=PRICE.minor, currency="EUR", priced_at=now, channel="online", variant=harness.name,
                provider=harness.provider.name, state="authorized",
                provider_reference=result.provider_reference or status.provider_reference,
                captured_amount=0, refunded_amount=0, disputed_amount=0, expires_at=now + timedelta(hours=1),
                created_at=now, updated_at=now,
            )
        )  # fmt: skip
    return request.reference


@harnesses("sandbox-online", "cmi-online", "stripe-online")  # a terminal sale captures at once
async def test_a_void_releases_the_authorization_once(
    harness: Harness, db: Database, registry: ProviderRegistry
) -> None:
    reference = await _authorized(harness, db)
    voided = await void_payment(db, registry.get, reference)
    assert (voided.attempt_state, voided.payment_state) == ("succeeded", "canceled")
    assert (await harness.provider.fetch_status(reference)).state is PaymentState.CANCELED
    again = await void_payment(db, registry.get, reference)  # a retry: the same attempt, no new call
    assert again.attempt_id == voided.attempt_id
    with db.read() as session:
        attempts = session.execute(
            text("SELECT count(*) FROM payment_attempts WHERE kind = 'void'")
        ).scalar_one()
        entries = session.execute(text("SELECT count(*) FROM entries")).scalar_one()
    assert (attempts, entries) == (1, 0)  # nothing was captured, nothing is posted


async def test_a_captured_payment_cannot_be_voided(
    harness: Harness, db: Database, registry: ProviderRegistry, pay: Pay
) -> None:
    paid = await pay(harness)
    paid.watch()
    with pytest.raises(RefundConflictError, match="only an authorization can be voided"):
        await void_payment(db, registry.get, paid.reference)
    assert paid.requests == []
