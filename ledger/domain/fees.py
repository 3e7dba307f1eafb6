"""The published fee schedule: versioned, with effective dates; the same price for everyone."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime

from ledger.domain.consulates import Consulate
from ledger.domain.labels import Labels
from ledger.money import Money


class FeeError(LookupError):
    """A fee that cannot be priced: unknown service, no price for the consulate, or no schedule yet."""


@dataclass(frozen=True, slots=True)
class Fee:
    code: str
    label: Labels
    prices: dict[str, Money]  # by currency
    consulate_prices: dict[str, Money] = field(default_factory=dict)  # by consulate code
    # What an e-stamp carries instead of the code: the same in every version, never reused for another fee.
    number: int = 0

    def price_at(self, consulate: Consulate) -> Money | None:
        return self.consulate_prices.get(consulate.code) or self.prices.get(consulate.currency)


@dataclass(frozen=True, slots=True)
class ScheduleVersion:
    version: str
    effective_from: datetime
    fees: dict[str, Fee]  # by fee code, in published order
    number: int = 0  # 1-based position in the schedule: what a stamp records as its schedule version


@dataclass(frozen=True, slots=True)
class Price:
    """What one fee costs at one consulate, and which schedule version said so."""

    fee: Fee
    amount: Money
    version: str
    schedule_version: int  # the version's number, carried by the stamp


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    versions: tuple[ScheduleVersion, ...]  # sorted by effective_from
    example_data: bool

    def version_at(self, when: datetime) -> ScheduleVersion:
        index = bisect_right([v.effective_from for v in self.versions], when)
        if index == 0:
            raise FeeError(f"no fee schedule is in force at {when.isoformat()}")
        return self.versions[index - 1]

    def price(self, fee_code: str, consulate: Consulate, when: datetime) -> Price:
        version = self.version_at(when)
        fee = version.fees.get(fee_code)
        if fee is None:
            raise FeeError(f"fee code {fee_code!r} is not in fee schedule {version.version}")
        amount = fee.price_at(consulate)
        if amount is None:
            raise FeeError(
                f"fee {fee_code} has no price for {consulate.code} ({consulate.currency}) "
                f"in fee schedule {version.version}"
            )
        return Price(fee=fee, amount=amount, version=version.version, schedule_version=version.number)

    def fee_codes(self) -> set[str]:
        return {code for version in self.versions for code in version.fees}

    def latest_fees(self) -> dict[str, Fee]:
        """Every fee ever published, as its newest version describes it (labels and number)."""
        fees: dict[str, Fee] = {}
        for version in self.versions:
            fees.update(version.fees)
        return fees
