"""Payments on a fresh database of each engine, against the providers' local fakes on loopback."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import text

from ledger.db.engine import Database
from ledger.services.payments.context import Payments
from ledger.services.signing_keys import StampKeys
from ledger.settings import Settings
from providers.cmi import fake as cmi_fake
from providers.config import parse_providers_config
from providers.loopback import LoopbackServer
from providers.model import AutoPostForm, NextAction
from providers.registry import ProviderRegistry
from providers.sandbox import simulator
from providers.sandbox.state import SimulatorSettings
from providers.stripe import fake as stripe_fake
from tests.providers.conftest import CURRENT, ENV, PREVIOUS, providers_toml
from tests.providers.receiver import WebhookReceiver
from tests.stamps.conftest import SECRETS, make_keys

ONLINE = ("sandbox-online", "stripe-online", "cmi-online")
# Variants of the same fakes that lose every answer after charging (the sandbox's per-request faults).
SLOW_VARIANTS = """
[variants.sandbox-counter-slow]
provider = "sandbox"
mode = "terminal"
base_url = "{sandbox}"
consulates = ["FR-PAR"]
currencies = ["EUR"]
secrets = {{ api_key = "KEY", webhook_secrets = ["HOOK", "HOOK_PREVIOUS"] }}
options = {{ faults = ["timeout-after-charge"] }}
timeouts = {{ read = 1.0 }}

[variants.sandbox-counter-declines]
provider = "sandbox"
mode = "terminal"
base_url = "{sandbox}"
consulates = ["FR-PAR"]
currencies = ["EUR"]
secrets = {{ api_key = "KEY", webhook_secrets = ["HOOK", "HOOK_PREVIOUS"] }}
options = {{ faults = ["decline"] }}
timeouts = {{ read = 1.0 }}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def cmi_receiver() -> Iterator[str]:
    hook = WebhookReceiver(handler=lambda headers, body: (200, "text/plain", b"APPROVED"))
    with LoopbackServer(hook) as server:
        yield server.url


@pytest.fixture(scope="session")
def sandbox_url() -> Iterator[str]:
    settings = SimulatorSettings(
        api_keys=(ENV["KEY"],), webhook_secrets=(CURRENT,), delivery="manual", hang_seconds=3
    )
    with LoopbackServer(simulator.create_app(settings)) as server:
        yield server.url


@pytest.fixture(scope="session")
def cmi_url() -> Iterator[str]:
    settings = cmi_fake.FakeCmiSettings(
        store_keys=(CURRENT, PREVIOUS), api_password=ENV["PASSWORD"], hang_seconds=3
    )
    with LoopbackServer(cmi_fake.create_app(settings)) as server:
        yield server.url


@pytest.fixture(scope="session")
def stripe_url() -> Iterator[str]:
    settings = stripe_fake.FakeStripeSettings(
        api_keys=(ENV["KEY"],), webhook_secrets=(CURRENT,), hang_seconds=3
    )
    with LoopbackServer(stripe_fake.create_app(settings)) as server:
        yield server.url


@pytest.fixture
def fake_urls(sandbox_url: str, cmi_url: str, stripe_url: str) -> dict[str, str]:
    return {"sandbox": sandbox_url, "cmi": cmi_url, "stripe": stripe_url}


@pytest.fixture
async def registry(
    sandbox_url: str, cmi_url: str, stripe_url: str, cmi_receiver: str
) -> AsyncIterator[ProviderRegistry]:
    toml = providers_toml(sandbox_url, cmi_url, stripe_url, cmi_receiver) + SLOW_VARIANTS.format(
        sandbox=sandbox_url
    )
    async with ProviderRegistry(parse_providers_config(toml, source="test"), env=ENV) as built:
        yield built


@pytest.fixture
def payments(db: Database, settings: Settings, registry: ProviderRegistry) -> Payments:
    make_keys(db)
    return Payments(database=db, settings=settings, registry=registry, keys=StampKeys(settings, SECRETS))


def count(db: Database, table: str, where: str = "", **params: object) -> int:
    with db.read() as session:
        return int(session.execute(text(f"SELECT count(*) FROM {table} {where}"), params).scalar_one())


async def approve(action: NextAction | None, fake_url: str, decision: str = "approve") -> None:
    """Play the cardholder on the hosted page: approve, decline or cancel."""
    assert action is not None
    async with httpx.AsyncClient() as client:
        if isinstance(action, AutoPostForm):  # CMI: the form posts to the gateway, which shows its page
            page = await client.post(action.url, data=action.as_dict())
            page.raise_for_status()
            found = re.search(r'action="([^"]+)"', page.text)
            assert found is not None
            await client.post(fake_url + found[1], data={"decision": decision})
        else:
            await client.post(action.url, data={"decision": decision})


async def deliveries(provider: str, fake_url: str, reference: str) -> list[tuple[dict[str, str], bytes]]:
    """What the fake signed for one payment (webhooks, or CMI's server callbacks), in sending order."""
    path = {"sandbox": "/sandbox/webhooks", "stripe": "/_fake/webhooks", "cmi": "/_fake/callbacks"}[provider]
    async with httpx.AsyncClient() as client:
        data = (await client.get(fake_url + path)).raise_for_status().json()["data"]
    found = []
    for item in data:
        body = item["body"].encode()
        if reference.encode() not in body:
            continue
        headers = item.get("headers") or {"Content-Type": "application/x-www-form-urlencoded"}
        found.append((headers, body))
    return found


async def arm(provider: str, fake_url: str, reference: str, faults: list[str]) -> None:
    path = "/sandbox/orders" if provider == "sandbox" else "/_fake/orders"
    async with httpx.AsyncClient() as client:
        (await client.put(f"{fake_url}{path}/{reference}/faults", json={"faults": faults})).raise_for_status()


# The API's fixtures (API keys per role, stamp keys with their secrets in the environment).
from tests.api.conftest import keys, stamp_keys  # noqa: E402, F401
