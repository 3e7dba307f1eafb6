"""Money as a treasury auditor expects it: exact to the last minor unit, never rounded, never a float."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.money import CurrencyMismatchError, Money, MoneyError, exponent, numeric_code


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.50", "EUR", 1250),
        ("12.5", "EUR", 1250),
        ("12", "EUR", 1200),
        ("0.01", "EUR", 1),
        ("17.250", "KWD", 17250),
        ("0.001", "TND", 1),
        ("9000", "JPY", 9000),
        ("0", "JPY", 0),
    ],
)
def test_decimal_strings_become_exact_minor_units(text: str, currency: str, minor: int) -> None:
    assert Money.parse(text, currency) == Money(minor, currency)


@pytest.mark.parametrize(
    ("text", "currency", "message"),
    [
        ("12.345", "EUR", "3 decimal places; EUR allows at most 2"),
        ("9000.0", "JPY", "JPY allows none"),
        ("1e3", "EUR", "not a plain decimal"),
        (" 12", "EUR", "not a plain decimal"),
        ("+12", "EUR", "not a plain"),
        ("12.", "EUR", "not a plain"),
        (".5", "EUR", "not a plain"),
        ("1,000", "EUR", "not a plain"),
        ("012", "EUR", "not a plain"),
        ("-5", "EUR", "must not be negative"),
        ("١٢", "EUR", "not a plain"),
        ("12.1234", "TND", "TND allows at most 3"),
    ],
)
def test_anything_that_would_need_rounding_or_guessing_is_an_error(
    text: str, currency: str, message: str
) -> None:
    with pytest.raises(MoneyError, match=message):
        Money.parse(text, currency)


def test_currencies_are_checked_and_floats_refused() -> None:
    for bad in ("EURO", "eur", "XXX", "ABC", ""):
        with pytest.raises(MoneyError):
            Money(1, bad)
    with pytest.raises(MoneyError, match="integer"):
        Money(12.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match="integer"):
        Money(True, "EUR")
    with pytest.raises(CurrencyMismatchError):
        _ = Money(1, "EUR") + Money(1, "USD")
    assert (exponent("TND"), exponent("KWD"), exponent("JPY"), exponent("EUR")) == (3, 3, 0, 2)
    assert (numeric_code("EUR"), numeric_code("TND"), numeric_code("JPY")) == (978, 788, 392)


@given(
    minor=st.integers(min_value=-(10**12), max_value=10**12), currency=st.sampled_from(["EUR", "KWD", "JPY"])
)
def test_the_canonical_string_parses_back_to_the_same_amount(minor: int, currency: str) -> None:
    money = Money(minor, currency)
    assert Money.parse(money.to_str(), currency, allow_negative=True) == money


def test_amounts_are_formatted_for_the_reader() -> None:
    assert Money(123450, "EUR").format("fr_FR") == "1\u202f234,50\xa0€"
    assert Money(17250, "KWD").format("en").endswith("17.250")
    assert "9,000" in Money(9000, "JPY").format("en")
