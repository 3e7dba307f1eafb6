"""Amounts and dates as files write them: grouped thousands, decimal commas, and never a rounded cent."""

from __future__ import annotations

from datetime import date

import pytest

from ledger.money import Money
from reconciliation.importers.values import NumberFormat, ValueFormatError, decimal_money, parse_date

FRENCH = NumberFormat(",", frozenset({" ", "\u00a0", "\u202f"}))
PLAIN = NumberFormat(".", frozenset())


@pytest.mark.parametrize(
    ("text", "minor"),
    [
        ("1 234,50", 123450),
        ("1\u00a0234,50", 123450),
        ("1\u202f234,50", 123450),
        ("12 345 678,00", 1234567800),
        ("-1 234,5", -123450),
        ("\u22121 234,50", -123450),
        ("0,07", 7),
        ("1234,50", 123450),
        ("  42 ", 4200),
    ],
)
def test_french_amounts_read_to_the_cent(text: str, minor: int) -> None:
    assert FRENCH.parse(text, "EUR") == Money(minor, "EUR")


@pytest.mark.parametrize(
    "text", ["1 23,50", "12 3456,00", "1.234,50", "1,234,50", "12,", ",50", "1 234.50", ""]
)
def test_malformed_grouping_or_marks_are_refused(text: str) -> None:
    with pytest.raises(ValueFormatError, match="is not an amount written like 1 234,50"):
        FRENCH.parse(text, "EUR")


def test_three_decimals_in_euros_is_an_error_never_rounded() -> None:
    with pytest.raises(ValueFormatError, match=r"'12\.345' has 3 decimal places; EUR allows 2"):
        PLAIN.parse("12.345", "EUR")


def test_trailing_zero_decimals_are_exact_and_accepted() -> None:
    assert PLAIN.parse("12.500", "EUR") == Money(1250, "EUR")


def test_currency_exponents_are_respected() -> None:
    assert PLAIN.parse("12.345", "TND") == Money(12345, "TND")
    assert PLAIN.parse("1500", "JPY") == Money(1500, "JPY")
    with pytest.raises(ValueFormatError, match="JPY allows no decimals"):
        PLAIN.parse("1500.5", "JPY")


def test_decimals_from_libraries_follow_the_same_rule() -> None:
    from decimal import Decimal

    assert decimal_money(Decimal("-20.5"), "EUR") == Money(-2050, "EUR")
    assert decimal_money(Decimal("1E+2"), "EUR") == Money(10000, "EUR")
    with pytest.raises(ValueFormatError, match="3 decimal places"):
        decimal_money(Decimal("0.125"), "EUR")


def test_dates_follow_the_profile_format() -> None:
    assert parse_date("22/11/2026", "%d/%m/%Y") == date(2026, 11, 22)
    assert parse_date("2026-11-22", "%Y-%m-%d") == date(2026, 11, 22)
    assert parse_date("2026-11-22 23:59:59", "%Y-%m-%d %H:%M:%S") == date(2026, 11, 22)
    with pytest.raises(ValueFormatError, match="'31/02/2026' is not a date in the format %d/%m/%Y"):
        parse_date("31/02/2026", "%d/%m/%Y")
    with pytest.raises(ValueFormatError, match="not a date"):
        parse_date("2026-11-31", "%Y-%m-%d")
