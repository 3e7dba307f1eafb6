"""Stripe's amounts: integer minor units as Stripe counts them, which differs from ISO 4217 for a few."""

from __future__ import annotations

from ledger.money import Money, exponent
from providers.errors import UnsupportedOperationError

# ISK has no minor unit in ISO 4217, but Stripe's API still counts it in hundredths.
_STRIPE_EXPONENT = {"ISK": 2}
# Stripe takes these with three decimals but only in multiples of ten.
_ROUND_TO_TEN = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def _shift(currency: str) -> int:
    return _STRIPE_EXPONENT.get(currency, exponent(currency)) - exponent(currency)


def to_stripe(money: Money) -> int:
    amount: int = money.minor * 10 ** _shift(money.currency)
    if money.currency in _ROUND_TO_TEN and amount % 10:
        raise UnsupportedOperationError(
            f"Stripe takes {money.currency} only in multiples of 10 minor units; {money} is not"
        )
    return amount


def from_stripe(amount: int, currency: str) -> Money:
    code = currency.upper()
    factor = 10 ** _shift(code)
    if amount % factor:
        raise ValueError(f"Stripe amount {amount} {currency} has a fraction {code} does not have")
    return Money(amount // factor, code)
