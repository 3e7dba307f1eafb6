"""The citizen pages in a real browser, in French and in Arabic, with screenshots and accessibility checks."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.conftest import Counter, LiveServer, Screenshots, accessibility_problems

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_a_citizen_reads_the_fees_and_chooses_services(
    live_server: LiveServer, page: Any, screenshot: Screenshots, lang: str
) -> None:
    page.goto(live_server(f"/web/fees?lang={lang}"))
    assert accessibility_problems(page) == []
    page.get_by_label("Consulat" if lang == "fr" else "القنصلية").select_option("GB-LON")
    with page.expect_navigation():
        page.get_by_role("button", name="Afficher" if lang == "fr" else "عرض").click()
    assert "GB-LON" in page.url
    assert page.locator("caption").count() == 1
    screenshot(page, f"fees-{lang}")
    page.locator("a.button").click()  # pay in this consulate
    page.wait_for_url("**/web/pay?consulate=GB-LON")
    assert accessibility_problems(page) == []
    page.locator("#fee-PASSPORT").check()
    page.locator("#fee-CIVIL-EXTRACT").check()
    screenshot(page, f"pay-choose-{lang}")
    with page.expect_navigation():
        page.locator("form:not(.picker) button[type=submit]").click()
    total = page.locator("#total").inner_text()
    assert "48" in total and "80" in total  # 47.00 + 1.80 GBP
    assert accessibility_problems(page) == []
    screenshot(page, f"pay-review-{lang}")


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_a_citizen_checks_a_stamp_and_opens_the_receipt(
    live_server: LiveServer, page: Any, screenshot: Screenshots, counter: Counter, lang: str
) -> None:
    stamp = counter.pay("FR-PAR", "PASSPORT").stamps[0]
    page.goto(live_server(f"/web/check?lang={lang}"))
    assert accessibility_problems(page) == []
    field = page.get_by_label("Numéro du timbre" if lang == "fr" else "رقم الطابع")
    field.fill(stamp.number.printed())
    with page.expect_navigation():
        field.press("Enter")
    verdict = page.locator("section.verdict")
    assert verdict.get_attribute("data-status") == "valid"
    assert ("Timbre valide" if lang == "fr" else "طابع صالح") in verdict.inner_text()
    assert accessibility_problems(page) == []
    screenshot(page, f"check-valid-{lang}")
    field = page.locator("#number")
    field.fill("1234 5678")
    with page.expect_navigation():
        field.press("Enter")
    assert page.locator("#number").get_attribute("aria-invalid") == "true"
    screenshot(page, f"check-mistyped-{lang}")

    page.goto(live_server(f"/web/receipts/{stamp.receipt_token}"))
    assert page.locator("#stamp-number").inner_text() == stamp.number.printed()
    qr = page.locator("img.qr")
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")  # the SVG QR really renders
    assert accessibility_problems(page) == []
    screenshot(page, f"receipt-{lang}")
    with page.expect_download() as download:
        page.locator(f'a[href="/receipts/{stamp.receipt_token}.pdf"]').click()
    path = download.value.path()
    with open(path, "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_a_citizen_pays_online_and_downloads_the_receipt(
    live_server: LiveServer, page: Any, screenshot: Screenshots, lang: str
) -> None:
    page.goto(live_server(f"/web/pay?consulate=FR-PAR&fee=PASSPORT&lang={lang}"))
    screenshot(page, f"review-{lang}")
    page.locator("form[action='/web/pay/checkout'] button").click()
    page.wait_for_url("**/checkout/**")  # the sandbox's hosted page, on its own origin
    assert "55.00 EUR" in page.locator("[data-testid=amount]").inner_text()
    screenshot(page, f"sandbox-checkout-{lang}")
    payment = paid_payment(page)
    page.goto(live_server(f"/web/pay/{payment}"))
    assert page.locator("section.verdict").get_attribute("data-outcome") == "paid"
    assert accessibility_problems(page) == []
    screenshot(page, f"payment-paid-{lang}")
    page.locator("ul.receipts a").first.click()
    assert page.locator("#stamp-number").inner_text()
    with page.expect_download() as download:
        page.locator("a[download]").click()
    with open(download.value.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"
    screenshot(page, f"receipt-after-payment-{lang}")


def paid_payment(page: Any) -> str:
    """Approve on the sandbox's page; the payment id from the address the provider sends the browser
    back to (the payments API's return route, whatever it answers)."""
    returned: list[str] = []
    page.on("request", lambda request: returned.append(request.url))
    page.get_by_test_id("approve").click()
    page.wait_for_load_state()
    found = [re.search(r"/payments/([0-9a-f-]{36})/return", url) for url in returned]
    ids = [match[1] for match in found if match]
    assert ids, returned
    return ids[0]
