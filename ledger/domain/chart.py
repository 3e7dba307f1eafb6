"""The chart of accounts: account roles the code posts to, and the codes the configuration gives them."""

from __future__ import annotations

import enum
import string
from dataclasses import dataclass

from ledger.domain.labels import Labels


class AccountType(enum.StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    REVENUE = "revenue"
    EXPENSE = "expense"
    EQUITY = "equity"

    @property
    def debit_normal(self) -> bool:
        return self in (AccountType.ASSET, AccountType.EXPENSE)


class Role(enum.StrEnum):
    """What an account is for; each event of DESIGN.md §3 posts to these."""

    CLEARING = "clearing"
    TREASURY = "treasury"
    SUSPENSE = "suspense"
    STAMPS_OUTSTANDING = "stamps_outstanding"
    CONSULAR_FEES = "consular_fees"
    EXPIRED_STAMPS = "expired_stamps"
    ACQUIRER_FEES = "acquirer_fees"
    CHARGEBACKS = "chargebacks"
    ROUNDING = "rounding"
    ADJUSTMENTS = "adjustments"


PLACEHOLDERS = frozenset({"provider", "consulate", "fee", "currency"})


@dataclass(frozen=True, slots=True)
class AccountTemplate:
    role: Role
    code: str  # with placeholders, e.g. "assets:clearing:{provider}:{currency}"
    type: AccountType
    name: Labels

    @property
    def placeholders(self) -> frozenset[str]:
        return frozenset(name for _, name, _, _ in string.Formatter().parse(self.code) if name)


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """One concrete account: its code, currency and the slice it belongs to."""

    code: str
    currency: str
    type: AccountType
    role: Role
    provider: str = ""
    consulate: str = ""
    fee_code: str = ""


@dataclass(frozen=True, slots=True)
class Chart:
    templates: dict[Role, AccountTemplate]

    def account(
        self, role: Role, *, currency: str, provider: str = "", consulate: str = "", fee: str = ""
    ) -> AccountSpec:
        template = self.templates[role]
        values = {"provider": provider, "consulate": consulate, "fee": fee, "currency": currency}
        missing = [name for name in sorted(template.placeholders) if not values[name]]
        if missing:
            raise ValueError(f"account role {role} needs {', '.join(missing)}")
        return AccountSpec(
            code=template.code.format(**values),
            currency=currency,
            type=template.type,
            role=role,
            provider=provider,
            consulate=consulate,
            fee_code=fee,
        )
