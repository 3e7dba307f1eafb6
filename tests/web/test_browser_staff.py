"""Staff sign-in and the cashier's counter in a real browser (Debian chromium), in French and Arabic, with
screenshots: a terminal payment, its stamp typed in as a USB scanner types it, "genuine", used once,
"already used" on the next scan, and a scan mangled by an AZERTY layout read as "unreadable"."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from ledger.db.models_stamps import Stamp
from tests.web.conftest import LiveServer, Screenshots
from tests.web.staff_fixtures import CASHIER, PASSWORD, staff, web_settings

__all__ = ["staff", "web_settings"]

pytestmark = pytest.mark.slow
AZERTY = str.maketrans("1234567890AQZW:", "&é\"'(-è_çàQAWZ;")


def _scan(page: Any, text: str) -> None:
    """As a USB scanner does: keystrokes into the focused field, then Enter."""
    assert page.evaluate("document.activeElement.id") == "scan"
    page.keyboard.type(text)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def _verdict(page: Any) -> str:
    return str(page.locator("#verdict").get_attribute("data-verdict"))


def test_a_cashier_signs_in_and_works_the_counter_in_french_and_arabic(
    live_server: LiveServer, page: Any, screenshot: Screenshots, staff: Any
) -> None:
    page.goto(live_server("/web/counter"))
    assert page.url.endswith("/web/sign-in?next=%2Fweb%2Fcounter")
    screenshot(page, "sign-in-fr")
    page.get_by_label("Identifiant").fill(CASHIER.username)
    page.get_by_label("Mot de passe").fill("not the password")
    with page.expect_navigation():
        page.get_by_role("button", name="Se connecter").click()
    assert "Identifiant ou mot de passe incorrect." in page.locator(".messages").inner_text()
    screenshot(page, "sign-in-refused-fr")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url("**/web/counter")
    assert page.evaluate("document.cookie") == ""  # the session cookie is HttpOnly: no script can read it
    screenshot(page, "counter-fr")

    page.get_by_role("link", name="Enregistrer un paiement au terminal").click()
    page.get_by_label("Passeport", exact=False).first.check()
    page.get_by_label("Montant débité").fill("55,00")
    page.get_by_label("Référence de la transaction (ticket du terminal)").fill("TPE-0042")
    page.get_by_label("Code d'autorisation").fill("A1B2C3")
    screenshot(page, "payment-fr")
    page.get_by_role("button", name="Enregistrer et émettre les timbres").click()
    page.wait_for_url("**/web/counter/payment/*")
    assert page.locator("img.qr").count() == 1
    screenshot(page, "receipt-fr")
    with live_server.database.read() as session:
        text = session.scalars(select(Stamp.text)).one()

    page.goto(live_server("/web/counter"))
    _scan(page, text)
    assert _verdict(page) == "genuine"
    assert "Authentique et non utilisé" in page.locator("#verdict h2").inner_text()
    assert page.locator("#verdict").evaluate("e => getComputedStyle(e).borderColor") == "rgb(11, 107, 47)"
    screenshot(page, "verdict-genuine-fr")
    # The field keeps the focus: a scanner's Enter scans again, it never presses "mark as used".
    _scan(page, text)
    assert _verdict(page) == "genuine"
    with page.expect_navigation():
        page.get_by_role("button", name="Marquer comme utilisé").click()
    assert "Timbre utilisé" in page.locator("#verdict h2").inner_text()
    _scan(page, text)
    assert _verdict(page) == "used"
    assert "Déjà utilisé" in page.locator("#verdict h2").inner_text()
    assert ":amina" in page.locator("#verdict").inner_text()  # by whom
    screenshot(page, "verdict-used-fr")
    _scan(page, text.translate(AZERTY))
    assert _verdict(page) == "unreadable"
    assert "Illisible : scannez à nouveau" in page.locator("#verdict h2").inner_text()
    screenshot(page, "verdict-unreadable-fr")

    with page.expect_navigation():
        page.get_by_role("link", name="العربية").click()
    assert page.locator("html").get_attribute("dir") == "rtl"
    page.locator("#scan").focus()
    _scan(page, text)
    assert _verdict(page) == "used"
    assert "مستعمل من قبل" in page.locator("#verdict h2").inner_text()
    screenshot(page, "verdict-used-ar")
    page.get_by_role("button", name="خروج").click()
    page.wait_for_url("**/web/sign-in?signed_out=1")
    assert "تم تسجيل خروجك." in page.locator(".messages").inner_text()
    screenshot(page, "sign-in-ar")
    page.goto(live_server("/web/counter"))
    assert "/web/sign-in" in page.url  # signed out for real
