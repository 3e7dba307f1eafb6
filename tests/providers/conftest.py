"""Fixtures for provider tests: the local fakes on loopback and a harness per built-in provider."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlencode

import httpx
import msgspec
import pytest

from ledger.money import Money
from providers.cmi import fake as cmi_fake
from providers.cmi.hashing import compute_hash
from providers.config import parse_providers_config
from providers.loopback import LoopbackServer
from providers.model import AutoPostForm, PaymentRequest, ProviderResult
from providers.registry import ProviderRegistry
from providers.sandbox import simulator
from providers.sandbox.state import SimulatorSettings
from providers.sandbox.wire import EventData, WireAmount, WireEvent
from providers.signing import signature_header
from providers.stripe import fake as stripe_fake
from tests.providers.conformance import Delivery, Harness
from tests.providers.receiver import WebhookReceiver

CURRENT, PREVIOUS, RETIRED = "secret-current", "secret-previous", "secret-retired"
ENV = {"KEY": "test-api-key", "HOOK": CURRENT, "HOOK_PREVIOUS": PREVIOUS, "PASSWORD": "api-password"}
HARNESSES = ("sandbox-online", "sandbox-counter", "cmi-online", "stripe-online")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def receiver() -> Iterator[tuple[WebhookReceiver, str]]:
    hook = WebhookReceiver(handler=lambda headers, body: (200, "text/plain", b"APPROVED"))
    with LoopbackServer(hook) as server:
        yield hook, server.url


@pytest.fixture(scope="session")
def sandbox_url() -> Iterator[str]:
    settings = SimulatorSettings(
        api_keys=(ENV["KEY"],), webhook_secrets=(CURRENT,), delivery="manual", hang_seconds=5
    )
    with LoopbackServer(simulator.create_app(settings)) as server:
        yield server.url


@pytest.fixture(scope="session")
def cmi_url() -> Iterator[str]:
    settings = cmi_fake.FakeCmiSettings(
        store_keys=(CURRENT, PREVIOUS), api_password=ENV["PASSWORD"], hang_seconds=5
    )
    with LoopbackServer(cmi_fake.create_app(settings)) as server:
        yield server.url


@pytest.fixture(scope="session")
def stripe_url() -> Iterator[str]:
    settings = stripe_fake.FakeStripeSettings(
        api_keys=(ENV["KEY"],), webhook_secrets=(CURRENT,), hang_seconds=5
    )
    with LoopbackServer(stripe_fake.create_app(settings)) as server:
        yield server.url


def providers_toml(sandbox: str, cmi: str, stripe: str, callback: str) -> str:
    """The variants of the tests: short read timeouts so that a hanging fake is an UNKNOWN outcome fast."""
    hooks = '["HOOK", "HOOK_PREVIOUS"]'
    return f"""
[variants.sandbox-online]
provider = "sandbox"
mode = "online"
base_url = "{sandbox}"
consulates = ["*"]
currencies = ["EUR", "JPY", "TND"]
secrets = {{ api_key = "KEY", webhook_secrets = {hooks} }}
timeouts = {{ read = 1.0 }}

[variants.sandbox-counter]
provider = "sandbox"
mode = "terminal"
base_url = "{sandbox}"
consulates = ["FR-PAR"]
currencies = ["EUR", "MAD"]
secrets = {{ api_key = "KEY", webhook_secrets = {hooks} }}
timeouts = {{ read = 1.0 }}

[variants.cmi-online]
provider = "cmi"
mode = "online"
base_url = "{cmi}"
consulates = ["*"]
currencies = ["MAD", "EUR", "TND"]
secrets = {{ store_keys = {hooks}, api_password = "PASSWORD" }}
options = {{ client_id = "600000000", api_user = "etimbre-api", callback_url = "{callback}/cmi" }}
timeouts = {{ read = 1.0 }}

[variants.stripe-online]
provider = "stripe"
mode = "online"
base_url = "{stripe}"
consulates = ["*"]
currencies = ["EUR", "JPY", "KWD"]
secrets = {{ api_key = "KEY", webhook_secrets = {hooks} }}
timeouts = {{ read = 1.0 }}
"""


@pytest.fixture
async def registry(
    sandbox_url: str, cmi_url: str, stripe_url: str, receiver: tuple[WebhookReceiver, str]
) -> AsyncIterator[ProviderRegistry]:
    config = parse_providers_config(
        providers_toml(sandbox_url, cmi_url, stripe_url, receiver[1]), source="test"
    )
    async with ProviderRegistry(config, env=ENV) as built:
        yield built


async def _put_faults(url: str, reference: str, faults: list[str]) -> None:
    async with httpx.AsyncClient() as client:
        (await client.put(url.format(reference=reference), json={"faults": faults})).raise_for_status()


async def _listed(url: str) -> list[Delivery]:
    async with httpx.AsyncClient() as client:
        data = (await client.get(url)).raise_for_status().json()["data"]
    return [(d["headers"], d["body"].encode()) for d in data]


def _sandbox_harness(registry: ProviderRegistry, url: str, variant: str) -> Harness:
    provider = registry.get(variant)

    async def pay(request: PaymentRequest, key: str) -> ProviderResult:
        result = await provider.create_payment(request, idempotency_key=key)
        if result.next_action is not None:
            async with httpx.AsyncClient() as client:
                await client.post(result.next_action.url, data={"decision": "approve"})
        return result

    def signed(secret: str, timestamp: int) -> Delivery:
        event = WireEvent(
            id="evt_signature", type="payment.captured", created=timestamp,
            data=EventData(payment_id="pay_1", reference="SIG-1", amount=WireAmount(1250, "EUR")),
        )  # fmt: skip
        body = msgspec.json.encode(event)
        return {"Sandbox-Signature": signature_header([secret], timestamp, body)}, body

    amounts = (Money(1234, "EUR"), Money(5000, "JPY"), Money(12345, "TND"))
    return Harness(
        name=variant, provider=provider, signed=signed, pay=pay,
        arm=lambda ref, faults: _put_faults(f"{url}/sandbox/orders/{{reference}}/faults", ref, faults),
        deliveries=lambda: _listed(url + "/sandbox/webhooks"),
        current_secret=CURRENT, previous_secret=PREVIOUS, retired_secret=RETIRED,
        amounts=amounts if variant == "sandbox-online" else (Money(1234, "EUR"), Money(20000, "MAD")),
    )  # fmt: skip


CMI_CALLBACK = {
    "clientid": "600000000", "storetype": "3D_PAY_HOSTING", "TranType": "Auth", "amount": "12.50",
    "currency": "504", "oid": "SIG-1", "okUrl": "http://127.0.0.1:9/ok", "failUrl": "http://127.0.0.1:9/fail",
    "callbackUrl": "http://127.0.0.1:9/cb", "rnd": "0123456789", "hashAlgorithm": "ver3", "encoding": "UTF-8",
    "Response": "Approved", "ProcReturnCode": "00", "TransId": "24001000001", "AuthCode": "123456",
    "EXTRA.TRXDATE": "20240101 12:00:00",
}  # fmt: skip


def _cmi_harness(registry: ProviderRegistry, url: str) -> Harness:
    provider = registry.get("cmi-online")

    async def pay(request: PaymentRequest, key: str) -> ProviderResult:
        result = await provider.create_payment(request, idempotency_key=key)
        form = result.next_action
        assert isinstance(form, AutoPostForm)
        async with httpx.AsyncClient() as client:
            page = await client.post(form.url, data=dict(form.fields))
            page.raise_for_status()
            action = re.search(r'action="([^"]+)"', page.text)
            assert action is not None
            await client.post(url + action[1], data={"decision": "approve"})
        return result

    def signed(secret: str, timestamp: int) -> Delivery:
        fields = dict(CMI_CALLBACK)
        fields["HASH"] = compute_hash(fields, secret)
        return {"Content-Type": "application/x-www-form-urlencoded"}, urlencode(fields).encode()

    async def deliveries() -> list[Delivery]:
        async with httpx.AsyncClient() as client:
            data = (await client.get(url + "/_fake/callbacks")).raise_for_status().json()["data"]
        return [({"Content-Type": "application/x-www-form-urlencoded"}, d["body"].encode()) for d in data]

    return Harness(
        name="cmi-online", provider=provider, signed=signed, pay=pay,
        arm=lambda ref, faults: _put_faults(f"{url}/_fake/orders/{{reference}}/faults", ref, faults),
        deliveries=deliveries, current_secret=CURRENT, previous_secret=PREVIOUS, retired_secret=RETIRED,
        amounts=(Money(12345, "MAD"), Money(1250, "EUR"), Money(12345, "TND")),
    )  # fmt: skip


def stripe_event(timestamp: int, reference: str = "SIG-1") -> bytes:
    return msgspec.json.encode({
        "id": f"evt_{timestamp}", "object": "event", "type": "payment_intent.succeeded", "created": timestamp,
        "data": {"object": {
            "id": "pi_1", "object": "payment_intent", "amount": 1250, "amount_received": 1250,
            "currency": "eur",
            "status": "succeeded", "created": timestamp, "metadata": {"etimbre_reference": reference},
        }},
    })  # fmt: skip


def _stripe_harness(registry: ProviderRegistry, url: str) -> Harness:
    provider = registry.get("stripe-online")

    async def pay(request: PaymentRequest, key: str) -> ProviderResult:
        result = await provider.create_payment(request, idempotency_key=key)
        assert result.next_action is not None
        async with httpx.AsyncClient() as client:
            await client.post(result.next_action.url, data={"decision": "approve"})
        return result

    def signed(secret: str, timestamp: int) -> Delivery:
        body = stripe_event(timestamp)
        return {"Stripe-Signature": signature_header([secret], timestamp, body)}, body

    return Harness(
        name="stripe-online", provider=provider, signed=signed, pay=pay,
        arm=lambda ref, faults: _put_faults(f"{url}/_fake/orders/{{reference}}/faults", ref, faults),
        deliveries=lambda: _listed(url + "/_fake/webhooks"),
        current_secret=CURRENT, previous_secret=PREVIOUS, retired_secret=RETIRED,
        amounts=(Money(1234, "EUR"), Money(5000, "JPY"), Money(12340, "KWD")),
    )  # fmt: skip


@pytest.fixture(params=HARNESSES)
def harness(
    request: pytest.FixtureRequest,
    registry: ProviderRegistry,
    sandbox_url: str,
    cmi_url: str,
    stripe_url: str,
) -> Harness:
    name = request.param
    if name.startswith("sandbox"):
        return _sandbox_harness(registry, sandbox_url, name)
    if name == "cmi-online":
        return _cmi_harness(registry, cmi_url)
    return _stripe_harness(registry, stripe_url)


def unix_now() -> int:
    return int(time.time())
