"""The pages' foundation: catalogs, language choice, the layout every page shares, HTML errors."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from ledger.domain.labels import Labels
from ledger.money import Money
from ledger.web import i18n
from ledger.web.i18n import LANGUAGES, Translator


def test_catalogs_have_the_same_keys() -> None:
    french, arabic = i18n.catalog("fr"), i18n.catalog("ar")
    assert set(french) - set(arabic) == set(), "keys missing in ar.toml"
    assert set(arabic) - set(french) == set(), "keys missing in fr.toml"
    for key in french:  # the same placeholders on both sides, or a page fails in one language only
        assert set(re.findall(r"{(\w+)}", french[key])) == set(re.findall(r"{(\w+)}", arabic[key])), key


def test_every_message_is_translated_not_copied() -> None:
    french, arabic = i18n.catalog("fr"), i18n.catalog("ar")
    copied = [
        key for key in french if french[key] == arabic[key] and not key.startswith("meta.") and french[key]
    ]
    assert not [key for key in copied if re.search(r"[A-Za-zÀ-ÿ]{4,}", french[key])], copied


def test_catalog_files_are_valid_toml_with_meta() -> None:
    for language in LANGUAGES:
        with (i18n.CATALOG_DIR / f"{language}.toml").open("rb") as handle:
            raw = tomllib.load(handle)
        assert raw["meta"]["dir"] == ("rtl" if language == "ar" else "ltr")


def test_amounts_and_dates_follow_the_locale() -> None:
    french, arabic = Translator("fr"), Translator("ar")
    amount = Money(5500, "EUR")
    assert french.money(amount) == "55,00\u00a0€"
    assert "55" in arabic.money(amount) and "€" in arabic.money(amount)
    assert french.money(Money(17250, "KWD")).startswith("17,250")  # three decimals
    moment = datetime(2026, 3, 5, 9, 30, tzinfo=UTC)
    assert "mars" in french.day(moment)
    assert "مارس" in arabic.day(moment)
    assert french.when(moment, "Europe/Paris").endswith("10:30:00")  # shown in the consulate's zone
    assert french.label(Labels(fr="Paris", ar="باريس", en="Paris")) == "Paris"
    assert arabic.label(Labels(fr="Paris", ar="باريس", en="Paris")) == "باريس"


def test_an_unknown_message_key_is_an_error() -> None:
    with pytest.raises(KeyError):
        Translator("fr")("no.such.key")


def test_french_is_the_default_and_arabic_is_right_to_left(client: TestClient[Litestar]) -> None:
    french = client.get("/web/")
    assert french.status_code == 200
    assert french.headers["content-type"].startswith("text/html")
    assert '<html lang="fr" dir="ltr">' in french.text
    assert "Content-Security-Policy" in french.headers
    arabic = client.get("/web/", params={"lang": "ar"})
    assert '<html lang="ar" dir="rtl">' in arabic.text
    assert "الطوابع الإلكترونية القنصلية" in arabic.text


def test_the_chosen_language_is_remembered_and_switchable(client: TestClient[Litestar]) -> None:
    chosen = client.get("/web/", params={"lang": "ar"})
    assert chosen.cookies.get("etimbre_lang") == "ar"
    again = client.get("/web/")  # no ?lang: the cookie decides
    assert '<html lang="ar" dir="rtl">' in again.text
    assert 'href="/web?lang=fr"' in again.text  # the switch back, on the same page
    assert '<html lang="fr"' in client.get("/web/", params={"lang": "fr"}).text
    assert '<html lang="fr"' in client.get("/web/", params={"lang": "xx"}).text  # unknown: the cookie's


def test_the_layout_has_its_landmarks(client: TestClient[Litestar]) -> None:
    html = client.get("/web/").text
    for landmark in (
        '<header class="site">',
        '<main id="main"',
        "<nav aria-label=",
        'role="alert"',
        "<footer",
    ):
        assert landmark in html
    assert 'href="/web/static/site.css"' in html
    assert "http://" not in html and "https://" not in html  # nothing from another origin


def test_unknown_pages_answer_an_html_404(client: TestClient[Litestar]) -> None:
    missing = client.get("/web/no/such/page", params={"lang": "ar"})
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "هذه الصفحة غير موجودة" in missing.text


def test_the_stylesheet_is_served_from_the_package(client: TestClient[Litestar]) -> None:
    css = client.get("/web/static/site.css")
    assert css.status_code == 200
    assert ":focus-visible" in css.text  # visible focus for keyboard users


def test_the_service_root_leads_to_the_citizen_pages(client: TestClient[Litestar]) -> None:
    root = client.get("/", follow_redirects=False)
    assert root.status_code == 302
    assert root.headers["location"] == "/web/"
