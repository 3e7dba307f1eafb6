"""Money: an integer count of minor units of one ISO 4217 currency; strict parsing, never a float."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

import babel.numbers
import pycountry

_DECIMAL = re.compile(r"(?P<sign>-?)(?P<units>0|[1-9][0-9]*)(?:\.(?P<fraction>[0-9]+))?")
_CODE = re.compile(r"[A-Z]{3}")
# Larger than any fee or settlement, small enough to fit a signed 64-bit column after summing.
MAX_MINOR = 10**15


class MoneyError(ValueError):
    """An amount or currency that is not acceptable; the message says what is wrong."""


class CurrencyMismatchError(MoneyError):
    """Two amounts in different currencies were combined."""


@cache
def exponent(currency: str) -> int:
    """Number of decimal places of `currency` (ISO 4217 via Babel): EUR 2, TND 3, JPY 0."""
    check_currency(currency)
    return int(babel.numbers.get_currency_precision(currency))


@cache
def numeric_code(currency: str) -> int:
    """ISO 4217 numeric code (EUR 978, TND 788), as carried in the e-stamp."""
    check_currency(currency)
    found = pycountry.currencies.get(alpha_3=currency)
    if found is None:
        raise MoneyError(f"currency {currency} has no ISO 4217 numeric code")
    return int(found.numeric)


@cache
def currency_from_numeric(number: int) -> str:
    found = pycountry.currencies.get(numeric=f"{number:03d}")
    if found is None:
        raise MoneyError(f"{number} is not an ISO 4217 numeric currency code")
    return str(found.alpha_3)


@cache
def check_currency(currency: str) -> str:
    if not isinstance(currency, str) or not _CODE.fullmatch(currency):
        raise MoneyError(f"currency must be three capital letters (ISO 4217), got {currency!r}")
    if not babel.numbers.is_currency(currency) or currency.startswith("X"):
        # X-codes are metals, funds and testing codes: never a consular fee.
        raise MoneyError(f"{currency} is not an ISO 4217 currency this service accepts")
    return currency


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An amount: `minor` units of `currency` (12.50 EUR is Money(1250, "EUR"))."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if type(self.minor) is not int:
            raise MoneyError(f"amount must be an integer number of minor units, got {self.minor!r}")
        check_currency(self.currency)
        if abs(self.minor) > MAX_MINOR:
            raise MoneyError(f"amount {self.minor} minor units is out of range")

    @classmethod
    def parse(cls, text: str, currency: str, *, allow_negative: bool = False) -> Money:
        """Parse a plain decimal string such as ``"12.50"``; anything that would need rounding is an error."""
        places = exponent(currency)
        if not isinstance(text, str):
            raise MoneyError(f"amount must be a decimal string such as '12.50', got {text!r}")
        match = _DECIMAL.fullmatch(text)
        if match is None:
            raise MoneyError(f"{text!r} is not a plain decimal amount such as '12.50'")
        if match["sign"] and not allow_negative:
            raise MoneyError(f"{text!r}: the amount must not be negative")
        fraction = match["fraction"] or ""
        if len(fraction) > places:
            raise MoneyError(
                f"{text!r} has {len(fraction)} decimal places; {currency} allows "
                + (f"at most {places}" if places else "none")
            )
        minor = int(match["units"]) * 10**places + int(fraction.ljust(places, "0") or "0")
        return cls(-minor if match["sign"] else minor, currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatchError(f"cannot combine {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    def to_decimal(self) -> Decimal:
        return Decimal(self.minor).scaleb(-exponent(self.currency))

    def to_str(self) -> str:
        """The canonical decimal string with exactly the currency's decimals: ``"12.50"``, ``"4000"``."""
        places = exponent(self.currency)
        sign = "-" if self.minor < 0 else ""
        units, fraction = divmod(abs(self.minor), 10**places)
        return f"{sign}{units}.{fraction:0{places}d}" if places else f"{sign}{units}"

    def format(self, locale: str) -> str:
        """For people: ``12,50 €`` in fr_FR, with the locale's digits and symbol (Babel)."""
        return str(babel.numbers.format_currency(self.to_decimal(), self.currency, locale=locale))

    def __str__(self) -> str:
        return f"{self.to_str()} {self.currency}"
