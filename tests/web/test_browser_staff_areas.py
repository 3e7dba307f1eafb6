"""Every auditor and admin page in a real browser, in French then Arabic: screenshots of each, and the
accessibility check the citizen pages pass (labels, names, lang/dir, one main and one h1, unique ids)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ledger.settings import Settings
from tests.reconciliation.helpers import capture, past_day
from tests.web.conftest import LiveServer, Screenshots, accessibility_problems
from tests.web.staff_fixtures import ADMIN, AUDITOR, CASHIER, PASSWORD, Person, staff, web_settings

__all__ = ["staff", "web_settings"]

pytestmark = pytest.mark.slow


def _sign_in(page: Any, live_server: LiveServer, person: Person) -> None:
    page.goto(live_server("/web/sign-in"))
    page.locator("#username").fill(person.username)
    page.locator("#password").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("form.sign-in button[type=submit]").click()


def _visit(page: Any, live_server: LiveServer, screenshot: Screenshots, path: str, name: str) -> None:
    for language in ("fr", "ar"):
        separator = "&" if "?" in path else "?"
        answer = page.goto(live_server(f"{path}{separator}lang={language}"))
        assert answer is not None and answer.status == 200, path
        assert page.locator("html").get_attribute("dir") == ("rtl" if language == "ar" else "ltr")
        assert accessibility_problems(page) == [], (path, language)
        screenshot(page, f"{name}-{language}")


@pytest.mark.parametrize(
    ("person", "paths"),
    [
        (
            AUDITOR,
            [
                ("/web/audit", "balances"),
                ("/web/audit?split=consulate&split=fee_code", "balances-split"),
                ("/web/audit/journal", "journal"),
                ("ENTRY", "entry"),
                ("/web/audit/seals", "seals"),
                ("/web/audit/reconciliation", "reconciliation"),
                ("/web/audit/exceptions", "exceptions"),
            ],
        ),
        (
            ADMIN,
            [
                ("/web/admin", "staff"),
                ("/web/admin/api-keys", "api-keys"),
                ("/web/admin/signing-keys", "signing-keys"),
                ("/web/admin/providers", "providers"),
                ("/web/admin/payments", "manual-queue"),
            ],
        ),
        (CASHIER, [("/web/counter", "counter"), ("/web/counter/payment", "payment")]),
    ],
    ids=["auditor", "admin", "cashier"],
)
def test_each_staff_page_in_both_languages(
    live_server: LiveServer,
    page: Any,
    screenshot: Screenshots,
    staff: Any,
    settings: Settings,
    person: Person,
    paths: list[tuple[str, str]],
) -> None:
    day = past_day(settings)
    capture(live_server.database, settings, day, "ET-PAY-0001", 12500)
    capture(live_server.database, settings, day, "ET-PAY-0002", 6000)
    _sign_in(page, live_server, person)
    for path, name in paths:
        target = path
        if path == "ENTRY":
            page.goto(live_server("/web/audit/journal"))
            link = page.locator("a[href^='/web/audit/journal/']").first.get_attribute("href")
            assert link is not None and re.fullmatch(r"/web/audit/journal/[0-9a-f-]{36}", link)
            target = link
        _visit(page, live_server, screenshot, target, name)
