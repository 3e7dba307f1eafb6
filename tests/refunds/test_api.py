"""The refund and void API through the HTTP app, against the sandbox on loopback, on both engines."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from ledger.api.app import create_app
from ledger.db.engine import Database
from ledger.settings import Settings
from providers.config import parse_providers_config
from providers.registry import ProviderRegistry
from tests.api.conftest import Keys
from tests.providers.conformance import Harness
from tests.providers.conftest import ENV, _sandbox_harness, providers_toml
from tests.providers.receiver import WebhookReceiver
from tests.refunds.conftest import Paid, stamp_status

pytestmark = pytest.mark.anyio
Pay = Callable[[Harness], Awaitable[Paid]]


@pytest.fixture
def client(
    db: Database,
    settings: Settings,
    sandbox_url: str,
    cmi_url: str,
    stripe_url: str,
    receiver: tuple[WebhookReceiver, str],
) -> Iterator[TestClient[Litestar]]:
    config = parse_providers_config(
        providers_toml(sandbox_url, cmi_url, stripe_url, receiver[1]), source="test"
    )
    app = create_app(settings, db, background=False, providers=config, provider_env=ENV)
    with TestClient(app) as test_client:
        yield test_client


async def test_an_admin_refunds_a_stamp_and_an_auditor_reads_it(
    client: TestClient[Litestar],
    keys: Keys,
    pay: Pay,
    registry: ProviderRegistry,
    sandbox_url: str,
    db: Database,
) -> None:
    paid = await pay(_sandbox_harness(registry, sandbox_url, "sandbox-online"))
    passport, legalization = paid.stamps
    order = {"payment_reference": paid.reference, "reason": "appointment cancelled", "stamps": [passport]}
    admin = {**keys.admin, "Idempotency-Key": "refund-1"}

    assert (
        client.post("/refunds", json=order, headers={**keys.auditor, "Idempotency-Key": "x"}).status_code
        == 403
    )
    missing = client.post("/refunds", json=order, headers=keys.admin)
    assert missing.status_code == 400 and "Idempotency-Key" in missing.text
    too_much = client.post("/refunds", json={**order, "amount": "60.01"}, headers=admin)
    assert too_much.status_code == 422, too_much.text
    assert too_much.headers["content-type"].startswith("application/problem+json")
    assert too_much.json()["type"] == "/problems/refund-exceeds-captured"

    made = client.post("/refunds", json={**order, "amount": "55.00"}, headers=admin)
    assert made.status_code == 201, made.text
    refund = made.json()
    assert (refund["state"], refund["amount"]["amount"], refund["payment_state"]) == (
        "succeeded", "55.00", "partially_refunded",
    )  # fmt: skip
    assert [s["number"] for s in refund["stamps"]] == [passport]
    assert stamp_status(db, passport) == "refunded" and stamp_status(db, legalization) == "issued"

    again = client.post("/refunds", json={**order, "amount": "55.00"}, headers=admin)
    assert again.content == made.content, "the same key and order answer the same, byte for byte"
    assert again.headers["Idempotent-Replayed"] == "true"
    other = client.post("/refunds", json={**order, "stamps": [legalization]}, headers=admin)
    assert other.status_code == 422 and other.json()["type"] == "/problems/idempotency-key-reused"

    listed = client.get("/refunds", params={"payment_reference": paid.reference}, headers=keys.auditor)
    assert [r["id"] for r in listed.json()] == [refund["id"]]
    assert (
        client.get(f"/refunds/{refund['id']}", headers=keys.auditor).json()["reference"]
        == refund["reference"]
    )
    assert client.get("/refunds", params={"payment_reference": "nope"}, headers=keys.admin).status_code == 404

    assert (
        client.get("/disputes", params={"payment_reference": paid.reference}, headers=keys.auditor).json()
        == []
    )
    assert (
        client.get("/disputes", params={"payment_reference": "nope"}, headers=keys.auditor).status_code == 404
    )
    assert (
        client.get(
            "/disputes", params={"payment_reference": paid.reference}, headers=keys.cashier
        ).status_code
        == 403
    )

    void = client.post("/voids", json={"payment_reference": paid.reference}, headers=admin)
    assert void.status_code == 409 and "only an authorization can be voided" in void.json()["detail"]
