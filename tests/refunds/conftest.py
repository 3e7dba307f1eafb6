"""Payments captured at every built-in provider's fake and recorded with their stamps, ready to refund."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text
from uuid_utils.compat import uuid7

from ledger.db.engine import Database
from ledger.db.models_payments import Payment
from ledger.money import Money
from ledger.services import clock
from ledger.services.issuance import CapturedPayment, IssuedPayment, record_captured_payment
from ledger.services.signing_keys import StampKeys
from ledger.settings import Settings
from providers.model import Mode
from tests.api.conftest import keys, stamp_keys  # noqa: F401 - API keys per role, stamp keys
from tests.providers.conformance import Harness, new_reference, payment
from tests.providers.conftest import (  # noqa: F401 - fixtures used by the refund tests
    anyio_backend,
    cmi_url,
    harness,
    receiver,
    registry,
    sandbox_url,
    stripe_url,
)
from tests.stamps.conftest import SECRETS, make_keys

FEES = ("PASSPORT", "LEGALIZATION")  # 55.00 + 5.00 EUR at FR-PAR
PRICE = Money(6000, "EUR")


@dataclass
class Paid:
    """A payment captured at the provider and in our books, with one stamp per fee."""

    reference: str
    issued: IssuedPayment
    harness: Harness
    provider_reference: str
    requests: list[httpx.Request] = field(default_factory=list)  # what the provider sent since `watch`

    @property
    def stamps(self) -> list[str]:
        return [stamp.number.digits for stamp in self.issued.stamps]

    def watch(self) -> None:
        """Record every HTTP request the provider makes from now on."""
        self.requests.clear()

        async def seen(request: httpx.Request) -> None:
            self.requests.append(request)

        hooks = self.harness.provider.context.http.event_hooks
        hooks["request"] = [*hooks.get("request", []), seen]


def stamp_status(db: Database, number: str) -> str:
    with db.read() as session:
        return str(
            session.execute(text("SELECT status FROM stamps WHERE number = :n"), {"n": number}).scalar_one()
        )


@pytest.fixture
def signer_keys(db: Database, settings: Settings) -> StampKeys:
    make_keys(db)
    return StampKeys(settings, SECRETS)


@pytest.fixture
def pay(db: Database, settings: Settings, signer_keys: StampKeys):  # type: ignore[no-untyped-def]
    async def pay_with(at: Harness, fees: tuple[str, ...] = FEES, amount: Money = PRICE) -> Paid:
        request = payment(at, amount)
        result = await at.pay(request, f"create-{request.reference}")
        status = await at.provider.fetch_status(request.reference)
        assert status.captured == amount, status
        now = clock.now()
        counter = at.mode is Mode.TERMINAL
        captured = CapturedPayment(
            payment_ref=request.reference, consulate="FR-PAR", fee_codes=fees,
            channel="counter" if counter else "online", provider=at.provider.name, amount=amount,
            captured_at=now, priced_at=now,
        )  # fmt: skip
        with db.write() as session:
            issued = record_captured_payment(session, settings, signer_keys, captured, actor="test")
            session.add(
                Payment(
                    id=uuid7(), reference=request.reference, consulate="FR-PAR", fee_codes=",".join(fees),
                    amount=amount.minor, currency=amount.currency, priced_at=now,
                    channel=captured.channel, variant=at.name, provider=at.provider.name,
                    terminal_id=request.terminal_id, state="captured",
                    provider_reference=result.provider_reference or status.provider_reference,
                    captured_amount=amount.minor, refunded_amount=0, disputed_amount=0,
                    entry_id=issued.entry_id, captured_at=now, expires_at=now + timedelta(hours=1),
                    created_at=now, updated_at=now,
                )
            )  # fmt: skip
        provider_reference = result.provider_reference or status.provider_reference
        assert provider_reference is not None
        return Paid(request.reference, issued, at, provider_reference)

    return pay_with


__all__ = ["PRICE", "Paid", "new_reference", "stamp_status"]


def harnesses(*names: str) -> pytest.MarkDecorator:
    """Run a test on these provider harnesses only: those whose provider can do what the test shows."""
    return pytest.mark.parametrize("harness", names, indirect=True)
