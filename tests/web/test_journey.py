"""THE JOURNEY, in a real browser against the app on loopback, in French and in Arabic, on both engines:
a citizen pays online and downloads the receipt; a cashier scans it (the QR's text typed as a scanner
types it), sees "genuine", consumes it, scans again and sees "already used"; an auditor sees the balances
move and reconciles the day with one exception resolved. Every page is screenshotted."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import pytest
import zxingcpp
from PIL import Image

from ledger.services.apikeys import Role
from ledger.services.staff import create_staff
from tests.web.conftest import LiveServer, Screenshots, accessibility_problems
from tests.web.test_browser_citizen import paid_payment

pytestmark = pytest.mark.slow
PASSWORD = "journey password 2026"


@dataclass(frozen=True)
class Words:
    """What each language shows at the steps the journey checks."""

    genuine: str
    used: str


WORDS = {
    "fr": Words(genuine="Authentique et non utilisé", used="Déjà utilisé"),
    "ar": Words(genuine="أصلي وغير مستعمل", used="مستعمل من قبل"),
}


def _staff(live_server: LiveServer) -> None:
    with live_server.database.write() as session:
        for username, role, consulate in (
            ("nadia.paris", Role.CASHIER, "FR-PAR"),
            ("amina.audit", Role.AUDITOR, ""),
            ("youssef.audit", Role.AUDITOR, ""),
        ):
            create_staff(
                session,
                live_server.settings.service.staff,
                username=username,
                role=role,
                password=PASSWORD,
                consulate=consulate,
            )


def _sign_in(page: Any, live_server: LiveServer, username: str, lang: str, screenshot: Screenshots) -> None:
    page.goto(live_server(f"/web/sign-in?lang={lang}"))
    page.locator("#username").fill(username)
    page.locator("#password").fill(PASSWORD)
    screenshot(page, f"sign-in-{username}-{lang}")
    with page.expect_navigation():
        page.locator("form.sign-in button[type=submit]").click()


def _qr_text(page: Any) -> str:
    """Read the QR the browser drew, as a scanner at the counter would."""
    png = page.locator("img.qr").screenshot()
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(found) == 1, "the receipt's QR code cannot be read"
    text: str = found[0].text
    return text


def _scan(page: Any, text: str) -> str:
    """A USB scanner types the code into the focused field and presses Enter."""
    field = page.locator("#scan")
    field.focus()
    page.keyboard.type(text)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    verdict: str = page.locator("#verdict").get_attribute("data-verdict")
    return verdict


@pytest.mark.parametrize("lang", ["fr", "ar"])
def test_the_journey(live_server: LiveServer, browser: Any, screenshot: Screenshots, lang: str) -> None:
    _staff(live_server)
    words = WORDS[lang]

    # A citizen chooses, pays on the provider's page, opens the receipt and downloads the PDF.
    citizen = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    citizen.goto(live_server(f"/web/fees?consulate=FR-PAR&lang={lang}"))
    screenshot(citizen, f"citizen-fees-{lang}")
    citizen.locator("a.button").click()
    citizen.locator("#fee-PASSPORT").check()
    screenshot(citizen, f"citizen-choose-{lang}")
    citizen.locator("form:not(.picker) button[type=submit]").click()
    screenshot(citizen, f"citizen-review-{lang}")
    citizen.locator("form[action='/web/pay/checkout'] button").click()
    citizen.wait_for_url("**/checkout/**")
    screenshot(citizen, f"citizen-provider-page-{lang}")
    payment = paid_payment(citizen)
    citizen.goto(live_server(f"/web/pay/{payment}"))
    assert citizen.locator("section.verdict").get_attribute("data-outcome") == "paid"
    screenshot(citizen, f"citizen-paid-{lang}")
    citizen.locator("ul.receipts a").first.click()
    number = citizen.locator("#stamp-number").inner_text()
    assert re.fullmatch(r"\d{4} \d{4} \d{4} \d{4}-\d", number)
    assert accessibility_problems(citizen) == []
    screenshot(citizen, f"citizen-receipt-{lang}")
    with citizen.expect_download() as download:
        citizen.locator("a[download]").click()
    with open(download.value.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"
    qr_text = _qr_text(citizen)
    assert qr_text.startswith("ET1:")

    # The cashier in Paris scans it: genuine; consumes it; scans again: already used.
    cashier = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    _sign_in(cashier, live_server, "nadia.paris", lang, screenshot)
    cashier.goto(live_server(f"/web/counter?lang={lang}"))
    screenshot(cashier, f"cashier-counter-{lang}")
    assert _scan(cashier, qr_text) == "genuine"
    assert words.genuine in cashier.locator("#verdict").inner_text()
    assert number in cashier.locator("#verdict").inner_text()
    screenshot(cashier, f"cashier-genuine-{lang}")
    with cashier.expect_navigation():
        cashier.locator("#consume").click()
    screenshot(cashier, f"cashier-consumed-{lang}")
    assert _scan(cashier, qr_text) == "used"
    assert words.used in cashier.locator("#verdict").inner_text()
    screenshot(cashier, f"cashier-already-used-{lang}")

    # The citizen's status check now says so too.
    citizen.goto(live_server(f"/web/check?number={number.replace(' ', '')}"))
    assert citizen.locator("section.verdict").get_attribute("data-status") == "used"
    screenshot(citizen, f"citizen-check-used-{lang}")
