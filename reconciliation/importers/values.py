"""Strict parsing of the values found in statement files: amounts by number format, dates, currencies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache

from ledger.money import Money, MoneyError, check_currency, exponent

_MINUS_SIGNS = "-\u2212"


class ValueFormatError(ValueError):
    """A value that cannot be read; the message says what is wrong with it (the caller adds where)."""


@dataclass(frozen=True, slots=True)
class NumberFormat:
    """How a file writes amounts: `1234.50`, `1 234,50`, `1.234,50`, ..."""

    decimal_mark: str = "."
    thousands_separators: frozenset[str] = frozenset()

    @property
    def example(self) -> str:
        separator = min(self.thousands_separators, default="")
        shown = {" ": " ", "\u00a0": " ", "\u202f": " "}.get(separator, separator)
        return f"1{shown}234{self.decimal_mark}50"

    def parse(self, text: str, currency: str) -> Money:
        """The signed amount `text` in `currency`; never rounded: surplus decimals must be zeros."""
        match = _amount_pattern(self.decimal_mark, self.thousands_separators).fullmatch(text.strip())
        if match is None:
            raise ValueFormatError(f"{text!r} is not an amount written like {self.example}")
        units = re.sub("[^0-9]", "", match["units"])
        negative = match["sign"] != "" and match["sign"] in _MINUS_SIGNS
        return exact_money(units, match["fraction"] or "", currency, text, negative=negative)


@cache
def _amount_pattern(decimal_mark: str, thousands_separators: frozenset[str]) -> re.Pattern[str]:
    if thousands_separators:
        separators = "".join(re.escape(s) for s in sorted(thousands_separators))
        # Grouped by threes everywhere, or not grouped at all: "1 23 456" is a typo, not an amount.
        units = rf"[0-9]{{1,3}}(?:[{separators}][0-9]{{3}})+|[0-9]+"
    else:
        units = "[0-9]+"
    mark = re.escape(decimal_mark)
    signs = re.escape("+" + _MINUS_SIGNS)
    return re.compile(rf"(?P<sign>[{signs}]?)(?P<units>{units})(?:{mark}(?P<fraction>[0-9]+))?")


def exact_money(units: str, fraction: str, currency: str, shown: str, *, negative: bool = False) -> Money:
    """Money from digit strings, refusing any amount that would need rounding for `currency`."""
    places = exponent(currency)
    if len(fraction) == places and not negative:
        # The usual case ("125.00" in EUR), without the general arithmetic.
        try:
            return Money(int(units + fraction), currency)
        except MoneyError as error:
            raise ValueFormatError(f"{shown!r}: {error}") from None
    if len(fraction) > places:
        if fraction[places:].strip("0"):
            allowed = f"{places} decimal place{'s' if places != 1 else ''}" if places else "no decimals"
            raise ValueFormatError(
                f"{shown!r} has {len(fraction.rstrip('0'))} decimal places; {currency} allows {allowed}"
                " (amounts are never rounded)"
            )
        fraction = fraction[:places]
    minor = int(units or "0") * 10**places + int(fraction.ljust(places, "0") or "0")
    try:
        return Money(-minor if negative else minor, currency)
    except MoneyError as error:
        raise ValueFormatError(f"{shown!r}: {error}") from None


def decimal_money(value: Decimal, currency: str, shown: str | None = None) -> Money:
    """Money from a Decimal read by a library (MT940, spreadsheet cells), with the same no-rounding rule."""
    if not value.is_finite():
        raise ValueFormatError(f"{shown or value!s} is not an amount")
    sign, digits, power = value.as_tuple()
    assert isinstance(power, int)
    text = "".join(map(str, digits))
    if power >= 0:
        units, fraction = text + "0" * power, ""
    else:
        text = text.rjust(-power + 1, "0")
        units, fraction = text[:power], text[power:]
    return exact_money(units, fraction, currency, shown or str(value), negative=bool(sign))


def float_money(value: float | int, currency: str) -> Money:
    """Money from a spreadsheet number: its shortest decimal form, which is what the user typed."""
    try:
        return decimal_money(Decimal(repr(value)), currency)
    except InvalidOperation:
        raise ValueFormatError(f"{value!r} is not an amount") from None


def parse_currency(text: str) -> str:
    """An ISO 4217 code; reports write it in lower case too (Stripe: `eur`)."""
    code = text.strip().upper()
    try:
        return check_currency(code)
    except MoneyError as error:
        raise ValueFormatError(str(error)) from None


def parse_date(text: str, date_format: str) -> date:
    """A calendar date written with a strptime format; a time part, if the format has one, is dropped."""
    stripped = text.strip()
    if date_format == "%Y-%m-%d":
        # The common case, in C: a million lines must not pay for strptime.
        try:
            if len(stripped) == 10:
                return date.fromisoformat(stripped)
        except ValueError:
            pass
    try:
        # A calendar date from a file, not an instant: no time zone applies.
        return datetime.strptime(stripped, date_format).date()  # noqa: DTZ007
    except ValueError:
        raise ValueFormatError(f"{text!r} is not a date in the format {date_format}") from None
