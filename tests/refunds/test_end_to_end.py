"""End to end through the HTTP app on loopback, with the sandbox delivering its own webhooks: a citizen
pays online, an administrator refunds one stamp (denied at the counter from then on), the cardholder's
bank disputes the payment and the consulate wins: every step in the ledger. Both engines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ledger.db.engine import Database
from ledger.money import Money
from ledger.services.balances import account_balance
from ledger.settings import Settings
from tests.api.conftest import Keys
from tests.payments.test_end_to_end import _serve
from tests.providers.conftest import ENV

pytestmark = pytest.mark.slow


@pytest.fixture
def service(db: Database, settings: Settings, stamp_keys: dict[str, str]) -> Iterator[tuple[str, str]]:
    with _serve(db, settings, background=False) as urls:
        yield urls


def _until(read: Any, done: Any, seconds: float = 10) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def _balance(db: Database, code: str) -> Money | None:
    with db.read() as session:
        return account_balance(session, code)


def test_a_payment_refunded_in_part_then_disputed_through_the_service(
    service: tuple[str, str], keys: Keys, db: Database
) -> None:
    url, sandbox = service
    with httpx.Client(base_url=url, timeout=10) as client:
        order = {"consulate": "FR-PAR", "fee_codes": ["PASSPORT", "LEGALIZATION"]}
        payment = client.post("/payments", json=order, headers={"Idempotency-Key": "e2e-1"}).json()
        approved = httpx.post(
            payment["next_action"]["url"], data={"decision": "approve"}, follow_redirects=True
        )
        assert approved.status_code == 200
        paid = _until(lambda: client.get(payment["status_url"]).json(), lambda p: p["state"] == "captured")
        passport, legalization = (stamp["qr_text"] for stamp in paid["stamps"])
        numbers = [stamp["number"] for stamp in paid["stamps"]]

        refund = client.post(
            "/refunds",
            json={
                "payment_reference": paid["reference"],
                "stamps": [numbers[0]],
                "reason": "appointment moved",
            },
            headers={**keys.admin, "Idempotency-Key": "e2e-refund-1"},
        )
        assert refund.status_code == 201, refund.text
        assert (refund.json()["state"], refund.json()["amount"]["amount"]) == ("succeeded", "55.00")
        denied = client.post("/stamps/verify", json={"stamp": passport}, headers=keys.cashier).json()
        assert (denied["usable"], denied["reason"]) == (False, "denied")
        assert client.post("/stamps/verify", json={"stamp": legalization}, headers=keys.cashier).json()[
            "usable"
        ]

        # The cardholder's bank disputes the payment; the sandbox posts its webhooks to the service.
        at_provider = httpx.get(
            f"{sandbox}/v1/payments", params={"reference": paid["reference"]},
            headers={"Authorization": f"Bearer {ENV['KEY']}"},
        ).json()["data"][0]["id"]  # fmt: skip
        httpx.post(
            f"{sandbox}/sandbox/payments/{at_provider}/dispute", json={"outcome": "open"}
        ).raise_for_status()

        def disputes() -> list[dict[str, Any]]:
            listed: list[dict[str, Any]] = client.get(
                "/disputes", params={"payment_reference": paid["reference"]}, headers=keys.auditor
            ).json()
            return listed

        opened = _until(disputes, lambda d: len(d) == 1)
        assert opened[0]["state"] == "open", opened
        assert _balance(db, "expenses:chargebacks:sandbox:EUR") == Money(
            int(opened[0]["amount"]["minor"]), "EUR"
        )
        httpx.post(
            f"{sandbox}/sandbox/payments/{at_provider}/dispute", json={"outcome": "won"}
        ).raise_for_status()
        won = _until(disputes, lambda d: d[0]["state"] == "won")
        assert won[0]["state"] == "won" and won[0]["closing_entry_id"]
    assert _balance(db, "expenses:chargebacks:sandbox:EUR") == Money(0, "EUR")
    assert _balance(db, "assets:clearing:sandbox:EUR") == Money(500, "EUR")  # 60.00 captured, 55.00 refunded
