"""The harness itself, in a real browser: the home page in both languages, the switch, keyboard focus."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import LiveServer, Screenshots, accessibility_problems

pytestmark = pytest.mark.slow


def test_home_page_in_french_then_arabic(live_server: LiveServer, page: Any, screenshot: Screenshots) -> None:
    page.goto(live_server("/web/"))
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("html").get_attribute("dir") == "ltr"
    screenshot(page, "home-fr")
    with page.expect_navigation():
        page.get_by_role("link", name="العربية").click()
    assert page.locator("html").get_attribute("lang") == "ar"
    assert page.locator("html").get_attribute("dir") == "rtl"
    header = page.locator("header.site .brand").bounding_box()
    assert header is not None and header["x"] > 500  # right to left: the brand sits on the right
    screenshot(page, "home-ar")
    page.goto(live_server("/web/fees-nowhere"))
    assert page.locator("html").get_attribute("lang") == "ar"  # remembered by the cookie


def test_keyboard_focus_is_visible(live_server: LiveServer, page: Any) -> None:
    page.goto(live_server("/web/"))
    page.keyboard.press("Tab")  # the skip link comes first
    focused = page.evaluate("document.activeElement.className")
    assert focused == "skip"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"


def test_the_accessibility_check_finds_what_it_looks_for(page: Any) -> None:
    page.set_content(
        '<html lang="fr" dir="rtl"><head><title>t</title></head><body><main>'
        '<h1>Titre</h1><p style="color:#aaa">pâle</p><input id="x" name="x"><img src="data:,">'
        '<span id="x">double</span></main></body></html>'
    )
    problems = " | ".join(accessibility_problems(page))
    for expected in (
        "html dir is rtl",
        "contrast",
        "field without a label: x",
        "image without alt",
        "duplicate ids: x",
    ):
        assert expected in problems
