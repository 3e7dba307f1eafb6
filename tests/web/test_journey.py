"""THE JOURNEY, in a real browser against the app on loopback, in French and in Arabic, on both engines:
a citizen pays online and downloads the receipt; a cashier scans it (the QR's text typed as a scanner
types it), sees "genuine", consumes it, scans again and sees "already used"; an auditor sees the balances
move and reconciles the day with one exception resolved. Every page is screenshotted."""

from __future__ import annotations

import io
import re
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
import zxingcpp
from PIL import Image

from ledger.services import clock
from ledger.services.apikeys import Role
from ledger.services.payments.records import payment_by_id
from ledger.services.staff import create_staff
from reconciliation.days import today_in
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


def _balances(page: Any, live_server: LiveServer, lang: str) -> dict[str, str]:
    """The auditor's balances page now: account -> the balance's digits (whatever the locale's marks)."""
    page.goto(live_server(f"/web/audit?lang={lang}"))
    rows: list[list[str]] = page.locator("table tbody tr").evaluate_all(
        "rows => rows.filter(r => r.cells.length > 2)"
        "  .map(r => [r.cells[0].innerText, r.cells[r.cells.length - 1].innerText])"
    )
    return {account: re.sub(r"\D", "", amount) for account, amount in rows}


def _export(day: date, reference: str) -> bytes:
    """The treasury's export of the day: the citizen's payment, and a bank charge nobody booked."""
    header = (
        "entry_id,booking_date,value_date,amount,currency,reference,counterparty,description,batch_reference"
    )
    lines = [
        header,
        f"TGR-1,{day},{day},55.00,EUR,{reference},,Paiement carte,",
        f"TGR-2,{day},{day},-12.50,EUR,,,Frais de tenue de compte,",
    ]
    return ("\n".join(lines) + "\n").encode()


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

    # The auditor looks at the books before the day starts: nothing yet.
    auditor = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    _sign_in(auditor, live_server, "amina.audit", lang, screenshot)
    assert not any(_balances(auditor, live_server, lang).values())
    screenshot(auditor, f"auditor-balances-before-{lang}")

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

    # The auditor sees the balances move: the fee went from clearing to revenue through stamps outstanding.
    after = _balances(auditor, live_server, lang)
    screenshot(auditor, f"auditor-balances-after-{lang}")
    assert after["assets:clearing:sandbox:EUR"] == "5500"
    assert after["revenue:consular-fees:PASSPORT:EUR"] == "5500"
    assert after["liabilities:stamps-outstanding:FR-PAR"] == "000"

    # ... and reconciles the day against the treasury's export: one exception, resolved with a reason.
    with live_server.database.read() as session:
        paid = payment_by_id(session, uuid.UUID(payment))
        assert paid is not None
        reference = paid.reference
    day = today_in(live_server.settings.service.treasury.timezone, clock.now())
    auditor.goto(live_server(f"/web/audit/reconciliation?lang={lang}"))
    auditor.locator("#file").set_input_files(
        files=[{"name": f"tgr-{day}.csv", "mimeType": "text/csv", "buffer": _export(day, reference)}]
    )
    auditor.locator("#profile").select_option("treasury-default@1")
    with auditor.expect_navigation():
        auditor.locator("form[action='/web/audit/reconciliation/imports'] button").click()
    screenshot(auditor, f"auditor-imported-{lang}")
    auditor.locator("input[name=imports]").first.check()
    auditor.locator("#day").fill(day.isoformat())
    screenshot(auditor, f"auditor-run-form-{lang}")
    auditor.locator("form[action='/web/audit/reconciliation/runs'] button").click()
    auditor.wait_for_url("**/reconciliation/jobs/*")  # the run's progress, refreshed every second ...
    screenshot(auditor, f"auditor-run-progress-{lang}")
    for _ in range(60):  # ... until it sends the auditor to the report
        if "/reconciliation/runs/" in auditor.url:
            break
        assert auditor.locator("[data-state=refused]").count() == 0, auditor.locator("main").inner_text()
        auditor.wait_for_timeout(500)
    auditor.wait_for_load_state()
    assert auditor.locator("[data-exceptions]").get_attribute("data-exceptions") == "1"
    screenshot(auditor, f"auditor-report-{lang}")

    auditor.goto(live_server(f"/web/audit/exceptions?lang={lang}"))
    screenshot(auditor, f"auditor-exceptions-{lang}")
    row = auditor.locator('tr[data-status="open"]')
    assert row.count() == 1
    assert "missing_in_ledger" in row.inner_text()
    with auditor.expect_navigation():
        row.locator("a").click()
    screenshot(auditor, f"auditor-exception-{lang}")
    auditor.locator("#post-reason").fill("Frais bancaires du jour" if lang == "fr" else "رسوم بنكية لليوم")
    with auditor.expect_navigation():
        auditor.locator("form[action$='/post'] button").click()
    assert auditor.locator("dl.facts").get_attribute("data-status") == "resolved"
    screenshot(auditor, f"auditor-exception-resolved-{lang}")
    resolved = _balances(auditor, live_server, lang)
    assert resolved["assets:suspense:EUR"] == "1250"  # the bank charge waits in suspense, with its reason
    screenshot(auditor, f"auditor-balances-resolved-{lang}")
