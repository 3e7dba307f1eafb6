"""Fresh provider fakes for settlement tests (a fake's payouts are per day, so each test gets its own)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from ledger.money import Money
from providers.base import Provider
from providers.config import parse_providers_config
from providers.loopback import LoopbackServer
from providers.model import PaymentRequest
from providers.registry import ProviderRegistry
from providers.sandbox import simulator
from providers.sandbox.state import SimulatorSettings
from providers.stripe import fake as stripe_fake
from tests.providers.conftest import CURRENT, ENV, providers_toml


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake_urls() -> Iterator[tuple[str, str]]:
    """A sandbox simulator and a Stripe fake of this test alone: (sandbox url, stripe url)."""
    sandbox = SimulatorSettings(api_keys=(ENV["KEY"],), webhook_secrets=(CURRENT,), delivery="manual")
    stripe = stripe_fake.FakeStripeSettings(api_keys=(ENV["KEY"],), webhook_secrets=(CURRENT,))
    with (
        LoopbackServer(simulator.create_app(sandbox)) as sandbox_server,
        LoopbackServer(stripe_fake.create_app(stripe)) as stripe_server,
    ):
        yield sandbox_server.url, stripe_server.url


@pytest.fixture
async def fakes(fake_urls: tuple[str, str]) -> AsyncIterator[ProviderRegistry]:
    sandbox, stripe = fake_urls
    toml = providers_toml(sandbox, "http://127.0.0.1:9", stripe, "http://127.0.0.1:9")
    async with ProviderRegistry(parse_providers_config(toml, source="test"), env=ENV) as registry:
        yield registry


async def pay_online(provider: Provider, reference: str, amount: Money) -> str:
    """Play the citizen on the provider's hosted page; the provider's payment id."""
    created = await provider.create_payment(
        PaymentRequest(
            reference=reference, amount=amount, description="Passeport", consulate="FR-PAR",
            return_url="http://127.0.0.1:9/back", cancel_url="http://127.0.0.1:9/cancel",
        ),
        idempotency_key=f"create-{reference}",
    )  # fmt: skip
    assert created.next_action is not None and created.provider_reference is not None
    async with httpx.AsyncClient() as client:
        answer = await client.post(created.next_action.url, data={"decision": "approve"})
    assert answer.status_code < 400, answer.text
    return created.provider_reference
