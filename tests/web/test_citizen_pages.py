"""The citizen pages over HTTP, on both engines: fee schedule, choosing services, status check, receipt."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

from litestar import Litestar
from litestar.testing import TestClient

from ledger.db.engine import Database
from ledger.services import stamps
from ledger.services.stamp_status import PublicStatus, public_status
from ledger.settings import Settings
from ledger.web.citizen import STATUS_CHECKS_PER_MINUTE
from tests.web.conftest import Counter


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_fee_schedule_shows_the_version_in_force_and_its_prices(client: TestClient[Litestar]) -> None:
    paris = client.get("/web/fees", params={"consulate": "FR-PAR"})
    assert paris.status_code == 200
    text = _text(paris.text)
    assert "version 2026.1, en vigueur depuis le 1 janvier 2026" in text
    assert "Passeport biométrique 55,00 €" in text
    assert "Légalisation de signature 5,00 €" in text  # Paris publishes its own price
    kuwait = _text(client.get("/web/fees", params={"consulate": "KW-KWI", "lang": "ar"}).text)
    assert "الإصدار 2026.1" in kuwait
    assert "17,250" in kuwait  # three decimals for the Kuwaiti dinar


def test_an_unknown_consulate_is_named_in_the_message(client: TestClient[Litestar]) -> None:
    page = client.get("/web/fees", params={"consulate": "XX-YYY"})
    assert page.status_code == 404
    assert "Le consulat « XX-YYY » n&#39;existe pas" in page.text


def test_choosing_services_gives_the_published_total(client: TestClient[Litestar]) -> None:
    form = client.get("/web/pay", params={"consulate": "FR-PAR"})
    assert form.status_code == 200
    assert 'name="fee" value="PASSPORT"' in form.text
    assert '<label class="choice" for="fee-PASSPORT">' in form.text
    review = client.get("/web/pay", params={"consulate": "FR-PAR", "fee": ["PASSPORT", "CNIE"]})
    assert review.status_code == 200
    assert re.search(r'<strong id="total">63,00\s€</strong>', review.text)  # 55.00 + 8.00
    changed = client.get(
        "/web/pay", params={"consulate": "FR-PAR", "fee": ["PASSPORT"], "change": "1"}
    )  # back to the form, the choice kept
    assert 'value="PASSPORT" aria-describedby="services-hint" checked' in changed.text


def test_choosing_nothing_or_an_unknown_service_is_refused(client: TestClient[Litestar]) -> None:
    page = client.get("/web/pay", params={"consulate": "FR-PAR", "fee": "NO-SUCH-FEE"})
    assert page.status_code == 400
    assert "Choisissez au moins une prestation." in page.text


def test_the_status_check_says_valid_used_refunded_or_unknown(
    client: TestClient[Litestar], counter: Counter, db: Database, settings: Settings
) -> None:
    valid, used, refunded = counter.pay("FR-PAR", "PASSPORT", "CNIE", "CIVIL-EXTRACT").stamps
    with db.write() as session:
        stamps.consume_stamp(session, settings, used.number, consulate="FR-PAR", actor="test:cashier")
        stamps.refund_stamp(session, settings, refunded.number, reason="duplicate", actor="test:admin")
    expected = {valid: "valid", used: "used", refunded: "refunded"}
    for stamp, status in expected.items():
        page = client.get("/web/check", params={"number": stamp.number.printed()})
        assert page.status_code == 200
        assert f'data-status="{status}"' in page.text
    answer = _text(client.get("/web/check", params={"number": valid.number.digits}).text)
    assert "Timbre valide" in answer and "Passeport biométrique" in answer and "55,00 €" in answer
    unknown = "0000 0000 0000 0000-0"
    assert 'data-status="unknown"' in client.get("/web/check", params={"number": unknown}).text
    arabic = client.get("/web/check", params={"number": used.number.digits, "lang": "ar"})
    assert "طابع مستعمل من قبل" in arabic.text


def test_the_status_check_reveals_no_personal_or_payment_data(
    client: TestClient[Litestar], counter: Counter, db: Database, settings: Settings
) -> None:
    stamp = counter.pay("FR-PAR", "PASSPORT").stamps[0]
    with db.write() as session:
        stamps.consume_stamp(session, settings, stamp.number, consulate="FR-PAR", actor="staff:amina")
    page = client.get("/web/check", params={"number": stamp.number.digits}).text
    for secret in ("amina", "terminal:FR-PAR", "Paris", stamp.receipt_token, stamp.text[:20]):
        assert secret not in page


def test_a_mistyped_number_is_explained(client: TestClient[Litestar], counter: Counter) -> None:
    stamp = counter.pay("FR-PAR", "PASSPORT").stamps[0]
    digits = stamp.number.digits
    typo = digits[:-1] + str((int(digits[-1]) + 1) % 10)  # the check digit catches it
    page = client.get("/web/check", params={"number": typo})
    assert page.status_code == 400
    assert 'aria-invalid="true"' in page.text
    assert "le dernier est une clé de contrôle" in page.text


def test_the_status_check_is_rate_limited_per_client(client: TestClient[Litestar]) -> None:
    for _ in range(STATUS_CHECKS_PER_MINUTE):
        assert client.get("/web/check", params={"number": "0000 0000 0000 0000-0"}).status_code == 200
    refused = client.get("/web/check", params={"number": "0000 0000 0000 0000-0", "lang": "ar"})
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("text/html")
    assert "طلبات كثيرة" in refused.text
    assert client.get("/web/check").status_code == 200  # the empty form is not counted


def test_an_issued_stamp_past_its_validity_is_expired(
    counter: Counter, db: Database, settings: Settings
) -> None:
    stamp = counter.pay("BE-BRU", "CNIE").stamps[0]
    with db.read() as session:
        later = public_status(session, settings, stamp.number, now=stamp.expires_at + timedelta(seconds=1))
        now = public_status(session, settings, stamp.number)
    assert later.status is PublicStatus.EXPIRED and later.valid_until is None
    assert now.status is PublicStatus.VALID and now.valid_until == stamp.expires_at


def test_the_receipt_page_shows_the_qr_number_and_pdf_link(
    client: TestClient[Litestar], counter: Counter
) -> None:
    stamp = counter.pay("FR-PAR", "PASSPORT").stamps[0]
    page = client.get(f"/web/receipts/{stamp.receipt_token}")
    assert page.status_code == 200
    assert stamp.number.printed() in page.text
    svg = re.search(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', page.text)
    assert svg is not None and base64.b64decode(svg.group(1)).startswith(b"<svg")
    assert f'href="/receipts/{stamp.receipt_token}.pdf"' in page.text
    pdf = client.get(f"/receipts/{stamp.receipt_token}.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert "جواز السفر البيومتري" in client.get(f"/web/receipts/{stamp.receipt_token}?lang=ar").text


def test_a_wrong_receipt_link_is_a_404_page(client: TestClient[Litestar]) -> None:
    page = client.get("/web/receipts/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert client.get("/web/receipts/short").status_code == 400
