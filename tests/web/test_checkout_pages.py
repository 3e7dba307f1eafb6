"""Paying online from the pages, through the sandbox's hosted checkout on loopback, on both engines."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import func, select

from ledger.api.app import create_app
from ledger.db.engine import Database
from ledger.db.models_payments import Payment
from ledger.db.models_stamps import Stamp
from ledger.settings import Settings, load_settings


def _checkout(client: TestClient[Litestar], consulate: str, *fees: str) -> str:
    """Post the review page's form; the answer sends the browser to the provider's page."""
    answer = client.post(
        "/web/pay/checkout",
        data={"consulate": consulate, "fee": list(fees)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def _decide(checkout_url: str, decision: str) -> uuid.UUID:
    """Play the cardholder on the sandbox page; it sends the browser back with the payment's id."""
    back = httpx.post(checkout_url, data={"decision": decision})
    assert back.status_code == 303
    found = re.search(r"/payments/([0-9a-f-]{36})/return", back.headers["location"])
    assert found is not None, back.headers["location"]
    return uuid.UUID(found[1])


def _stamps(db: Database) -> int:
    with db.read() as session:
        return session.execute(select(func.count()).select_from(Stamp)).scalar_one()


def test_the_review_page_posts_the_choice_with_its_total(pay_client: TestClient[Litestar]) -> None:
    review = pay_client.get("/web/pay", params={"consulate": "FR-PAR", "fee": ["PASSPORT", "CNIE"]})
    assert '<form method="post" action="/web/pay/checkout">' in review.text
    assert 'name="fee" value="PASSPORT"' in review.text and 'name="fee" value="CNIE"' in review.text
    assert "Payer 63,00\u00a0€ par carte" in review.text


def test_a_citizen_pays_on_the_hosted_page_and_gets_a_receipt_per_service(
    pay_client: TestClient[Litestar], db: Database
) -> None:
    target = _checkout(pay_client, "FR-PAR", "PASSPORT", "CNIE")
    page = httpx.get(target)
    assert "63.00 EUR" in page.text  # priced by the service from the schedule, not by the form
    payment_id = _decide(target, "approve")
    status = pay_client.get(f"/web/pay/{payment_id}")
    assert status.status_code == 200
    assert 'data-outcome="paid"' in status.text
    receipts = re.findall(r'href="/web/receipts/([A-Za-z0-9_-]+)"', status.text)
    assert len(receipts) == 2
    assert _stamps(db) == 2
    receipt = pay_client.get(f"/web/receipts/{receipts[0]}")
    assert receipt.status_code == 200 and "Passeport biométrique" in receipt.text
    again = pay_client.get(f"/web/pay/{payment_id}", params={"lang": "ar"})  # the link works again
    assert "تم تأكيد الأداء" in again.text and _stamps(db) == 2


def test_a_declined_card_issues_nothing_and_offers_to_try_again(
    pay_client: TestClient[Litestar], db: Database
) -> None:
    target = _checkout(pay_client, "BE-BRU", "CNIE")
    assert httpx.post(target, data={"decision": "decline"}).status_code == 200  # the page says declined
    cancel = httpx.post(target, data={"decision": "cancel"})
    found = re.search(r"/payments/([0-9a-f-]{36})/return", cancel.headers["location"])
    assert found is not None
    status = pay_client.get(f"/web/pay/{found[1]}")
    assert 'data-outcome="canceled"' in status.text
    assert "/web/pay?consulate=BE-BRU&amp;fee=CNIE" in status.text
    assert _stamps(db) == 0


def test_a_refused_checkout_names_the_problem(pay_client: TestClient[Litestar]) -> None:
    answer = pay_client.post("/web/pay/checkout", data={"consulate": "FR-PAR", "fee": "NO-SUCH-FEE"})
    assert answer.status_code == 422
    assert "NO-SUCH-FEE" in answer.text and "Ce paiement ne peut pas commencer" in answer.text


def test_an_unknown_payment_link_is_a_404_page(pay_client: TestClient[Litestar]) -> None:
    answer = pay_client.get(f"/web/pay/{uuid.uuid4()}")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")


def test_without_payment_providers_the_pages_say_so_and_nothing_starts(
    db: Database, settings: Settings, stamp_keys: dict[str, str], tmp_path: Path
) -> None:
    broken = load_settings(environ={"ETIMBRE_PAYMENTS_PROVIDERS_FILE": str(tmp_path / "missing.toml")})
    with TestClient(create_app(broken, db, background=False)) as client:
        review = client.get("/web/pay", params={"consulate": "FR-PAR", "fee": "PASSPORT"})
        assert review.status_code == 200  # the schedule and the total need no provider
        answer = client.post("/web/pay/checkout", data={"consulate": "FR-PAR", "fee": "PASSPORT"})
        assert answer.status_code == 503
        assert "Le service de paiement ne répond pas" in answer.text
        status = client.get(f"/web/pay/{uuid.uuid4()}")
        assert status.status_code == 503 and status.headers["content-type"].startswith("text/html")
    with db.read() as session:
        assert session.execute(select(func.count()).select_from(Payment)).scalar_one() == 0
