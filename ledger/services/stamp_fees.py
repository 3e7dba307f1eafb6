"""The fee table stamps and trust lists use: every published fee's number and labels, from the schedule."""

from __future__ import annotations

from ledger.domain.fees import FeeSchedule
from receipts.fees import Fee, FeeTable

# Keyed by the schedule object itself (kept alive in the value): settings are loaded once per process.
_tables: dict[int, tuple[FeeSchedule, FeeTable]] = {}


def stamp_fee_table(schedule: FeeSchedule) -> FeeTable:
    """Fee code <-> number with fr/ar/en labels, for every fee any version published (numbers are never
    reused, so withdrawn fees keep verifying until their stamps expire)."""
    cached = _tables.get(id(schedule))
    if cached is not None and cached[0] is schedule:
        return cached[1]
    table = FeeTable(
        Fee(code=fee.code, number=fee.number, fr=fee.label.fr, ar=fee.label.ar, en=fee.label.en)
        for fee in schedule.latest_fees().values()
    )
    _tables[id(schedule)] = (schedule, table)
    return table
