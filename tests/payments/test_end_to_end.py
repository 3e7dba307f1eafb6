"""End to end through the HTTP app on loopback, with the sandbox simulator delivering its own webhooks:
a citizen pays online and downloads a receipt whose stamp verifies; a cashier sells on a terminal through
a timeout and gets exactly one charge. Both engines."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import msgspec
import pytest

from ledger.api.app import create_app
from ledger.db.engine import Database
from ledger.settings import Settings
from providers.config import parse_providers_config
from providers.loopback import LoopbackServer
from providers.sandbox import simulator
from providers.sandbox.state import SimulatorSettings
from tests.api.conftest import Keys
from tests.payments.conftest import count
from tests.providers.conftest import CURRENT, ENV

PROVIDERS = """
[variants.sandbox-online]
provider = "sandbox"
mode = "online"
base_url = "{sandbox}"
consulates = ["*"]
currencies = ["EUR"]
secrets = {{ api_key = "KEY", webhook_secrets = ["HOOK", "HOOK_PREVIOUS"] }}
timeouts = {{ read = 2.0 }}

[variants.sandbox-counter]
provider = "sandbox"
mode = "terminal"
base_url = "{sandbox}"
consulates = ["FR-PAR"]
currencies = ["EUR"]
secrets = {{ api_key = "KEY", webhook_secrets = ["HOOK", "HOOK_PREVIOUS"] }}
options = {{ faults = ["timeout-after-charge", "lost-callback"] }}
timeouts = {{ read = 1.0 }}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _serve(db: Database, settings: Settings, *, background: bool) -> Iterator[tuple[str, str]]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    service = settings.service
    local = dataclasses.replace(
        settings,
        service=msgspec.structs.replace(
            service,
            server=msgspec.structs.replace(service.server, public_url=url),
            payments=msgspec.structs.replace(
                service.payments, resolver_interval_seconds=1, first_check_seconds=1
            ),
        ),
    )
    sandbox_settings = SimulatorSettings(
        api_keys=(ENV["KEY"],), webhook_secrets=(CURRENT,), hang_seconds=3, public_url=None
    )
    with LoopbackServer(simulator.create_app(sandbox_settings)) as sandbox:
        providers = parse_providers_config(PROVIDERS.format(sandbox=sandbox.url), source="test")
        app = create_app(local, db, background=background, providers=providers, provider_env=ENV)
        with LoopbackServer(app, port=port):
            yield url, sandbox.url


@pytest.fixture
def service(db: Database, settings: Settings, stamp_keys: dict[str, str]) -> Iterator[tuple[str, str]]:
    """The service and a sandbox that posts its webhooks to it, both on loopback."""
    with _serve(db, settings, background=False) as urls:
        yield urls


def _poll(client: httpx.Client, url: str, until: str, seconds: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        body: dict[str, Any] = client.get(url).raise_for_status().json()
        if body["state"] == until or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


@pytest.mark.slow
def test_a_citizen_pays_online_and_downloads_a_receipt_whose_stamp_verifies(
    service: tuple[str, str], keys: Keys
) -> None:
    url, _ = service
    with httpx.Client(base_url=url, timeout=10) as client:
        order = {"consulate": "FR-PAR", "fee_codes": ["PASSPORT", "CNIE"]}
        started = client.post("/payments", json=order, headers={"Idempotency-Key": "citizen-1"})
        assert started.status_code == 201, started.text
        payment = started.json()
        assert payment["state"] == "pending"
        assert payment["amount"]["currency"] == "EUR"
        again = client.post("/payments", json=order, headers={"Idempotency-Key": "citizen-1"})
        assert again.content == started.content, "the same key and body answer the same payment"
        other = client.post(
            "/payments", json={**order, "fee_codes": ["PASSPORT"]}, headers={"Idempotency-Key": "citizen-1"}
        )
        assert other.status_code == 422
        assert other.headers["content-type"].startswith("application/problem+json")

        # The hosted page: the citizen approves, the sandbox sends the browser back and posts its webhooks.
        action = payment["next_action"]
        assert action["kind"] == "redirect"
        back = httpx.post(action["url"], data={"decision": "approve"}, follow_redirects=True, timeout=10)
        assert back.status_code == 200
        paid = _poll(client, payment["status_url"], "captured")
        assert paid["state"] == "captured"
        assert [s["fee_code"] for s in paid["stamps"]] == ["PASSPORT", "CNIE"]

        receipt = httpx.get(paid["stamps"][0]["receipt"]["pdf"], timeout=10)
        assert receipt.status_code == 200
        assert receipt.content.startswith(b"%PDF")
        verdict = client.post(
            "/stamps/verify", json={"stamp": paid["stamps"][0]["qr_text"]}, headers=keys.cashier
        )
        assert verdict.status_code == 200
        assert verdict.json()["usable"] is True
        assert verdict.json()["genuine"] is True


@pytest.mark.slow
def test_a_cashier_sells_through_a_terminal_timeout_and_gets_exactly_one_charge(
    service: tuple[str, str], keys: Keys
) -> None:
    url, sandbox = service
    sale_in = {"variant": "sandbox-counter", "terminal_id": "T-PAR-9", "fee_codes": ["PASSPORT"]}
    with httpx.Client(base_url=url, timeout=10, headers=keys.cashier) as client:
        sale = client.post("/counter/terminal-sales", json=sale_in, headers={"Idempotency-Key": "sale-1"})
        assert sale.status_code == 202, sale.text
        assert sale.json()["state"] == "unknown"
        busy = client.post("/counter/terminal-sales", json=sale_in, headers={"Idempotency-Key": "sale-2"})
        assert busy.status_code == 409
        assert busy.json()["type"] == "/problems/terminal-busy"
        replay = client.post("/counter/terminal-sales", json=sale_in, headers={"Idempotency-Key": "sale-1"})
        assert replay.content == sale.content

        checked = client.post(f"/counter/terminal-sales/{sale.json()['id']}/status-check")
        assert checked.status_code == 200, checked.text
        assert checked.json()["state"] == "captured"
        assert len(checked.json()["stamps"]) == 1
        other_cashier = client.get(f"/counter/terminal-sales/{sale.json()['id']}", headers=keys.other_cashier)
        assert other_cashier.status_code == 404
        # The key refused while the terminal was busy is free again: the next sale goes through with it.
        retried = client.post("/counter/terminal-sales", json=sale_in, headers={"Idempotency-Key": "sale-2"})
        assert retried.status_code == 202, retried.text
        charged = client.post(f"/counter/terminal-sales/{retried.json()['id']}/status-check")
        assert charged.json()["state"] == "captured"

    for reference in (sale.json()["reference"], retried.json()["reference"]):
        charges = httpx.get(
            f"{sandbox}/v1/payments", params={"reference": reference},
            headers={"Authorization": f"Bearer {ENV['KEY']}"},
        ).json()["data"]  # fmt: skip
        assert [p["captured_minor"] for p in charges] == [5500], "exactly one charge per sale"


@pytest.mark.slow
def test_the_service_resolves_an_unknown_sale_on_its_own(
    db: Database, settings: Settings, stamp_keys: dict[str, str], keys: Keys
) -> None:
    sale_in = {"variant": "sandbox-counter", "terminal_id": "T-PAR-8", "fee_codes": ["PASSPORT"]}
    with _serve(db, settings, background=True) as (url, _), httpx.Client(base_url=url, timeout=10) as client:
        sale = client.post(
            "/counter/terminal-sales", json=sale_in, headers={**keys.cashier, "Idempotency-Key": "bg-1"}
        )
        assert sale.json()["state"] == "unknown"
        deadline = time.monotonic() + 15
        state = "unknown"
        while state != "captured" and time.monotonic() < deadline:
            time.sleep(0.2)
            shown = client.get(f"/counter/terminal-sales/{sale.json()['id']}", headers=keys.cashier)
            state = shown.json()["state"]
        assert state == "captured", "the resolver running in the service settled the sale"


@pytest.mark.slow
def test_concurrent_starts_with_one_key_make_one_payment(service: tuple[str, str], db: Database) -> None:
    url, _ = service
    order = {"consulate": "FR-PAR", "fee_codes": ["PASSPORT"]}

    def start(_: int) -> httpx.Response:
        return httpx.post(f"{url}/payments", json=order, headers={"Idempotency-Key": "same-key"}, timeout=20)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(start, range(8)))
    created = [a for a in answers if a.status_code == 201]
    assert created, [a.status_code for a in answers]
    assert {a.status_code for a in answers} <= {201, 409}
    assert len({a.content for a in created}) == 1, "every 201 is the first answer"
    assert count(db, "payments") == 1
