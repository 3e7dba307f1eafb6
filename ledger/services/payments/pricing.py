"""The price of a payment from the published fee schedule, and the provider variant that takes it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ledger.domain.fees import FeeError
from ledger.money import Money
from ledger.services.issuance import MAX_FEES_PER_PAYMENT
from ledger.services.payments.context import Payments
from ledger.services.payments.errors import PaymentRefusedError
from providers.base import Provider
from providers.config import VariantConfig
from providers.errors import ProviderConfigError
from providers.model import Mode


@dataclass(frozen=True, slots=True)
class Priced:
    consulate: str
    fee_codes: tuple[str, ...]
    amount: Money
    priced_at: datetime
    description: str


def price(payments: Payments, consulate: str, fee_codes: tuple[str, ...], when: datetime) -> Priced:
    settings = payments.settings
    if consulate not in settings.consulates:
        raise PaymentRefusedError("consulate", f"unknown consulate {consulate!r}")
    if not fee_codes or len(fee_codes) > MAX_FEES_PER_PAYMENT:
        raise PaymentRefusedError("fee_codes", f"give 1 to {MAX_FEES_PER_PAYMENT} fee codes")
    where = settings.consulate(consulate)
    total = Money.zero(where.currency)
    try:
        for code in fee_codes:
            total += settings.fees.price(code, where, when).amount
    except FeeError as error:
        raise PaymentRefusedError("fee_codes", str(error)) from None
    description = f"eTimbre {consulate}: {', '.join(fee_codes)}"[:200]
    return Priced(consulate, fee_codes, total, when, description)


def choose_variant(
    payments: Payments, mode: Mode, consulate: str, currency: str, *, only: str | None = None
) -> tuple[VariantConfig, Provider]:
    """The first ready variant (by name) that takes this currency for this consulate in this mode."""
    problems = []
    serving = payments.registry.variants_serving(mode=mode, consulate=consulate, currency=currency)
    for variant in serving:
        if only is not None and variant.name != only:
            continue
        try:
            return variant, payments.registry.get(variant.name)
        except ProviderConfigError as error:
            problems.append(str(error))
    why = f" ({'; '.join(problems)})" if problems else ""
    raise PaymentRefusedError(
        "consulate", f"no payment provider takes {currency} for {consulate} ({mode}) at the moment{why}"
    )


def terminal_variant(
    payments: Payments, name: str, consulate: str, currency: str
) -> tuple[VariantConfig, Provider]:
    variants = payments.registry.config.variants
    variant = variants.get(name)
    if variant is None or variant.mode is not Mode.TERMINAL:
        known = ", ".join(sorted(n for n, v in variants.items() if v.mode is Mode.TERMINAL)) or "none"
        raise PaymentRefusedError("variant", f"{name!r} is not a terminal variant (configured: {known})")
    if not variant.serves(consulate=consulate, currency=currency):
        raise PaymentRefusedError("variant", f"{name} does not take {currency} for {consulate}")
    try:
        return variant, payments.registry.get(name)
    except ProviderConfigError as error:
        raise PaymentRefusedError("variant", str(error)) from None
