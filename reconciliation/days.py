"""Business days in the treasury's time zone, and days as integers (days since 1970-01-01) for SQL."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

_EPOCH = date(1970, 1, 1).toordinal()


def day_number(day: date) -> int:
    """Days since 1970-01-01: both engines compare and subtract these the same way."""
    return day.toordinal() - _EPOCH


def from_day_number(number: int) -> date:
    return date.fromordinal(number + _EPOCH)


@dataclass(frozen=True, slots=True)
class BusinessDay:
    """A calendar day in the treasury's time zone, and the UTC instants it runs between."""

    day: date
    timezone: str

    @property
    def start(self) -> datetime:
        return local_midnight(self.day, self.timezone)

    @property
    def end(self) -> datetime:
        return local_midnight(self.day + timedelta(days=1), self.timezone)

    @property
    def number(self) -> int:
        return day_number(self.day)

    def boundaries(self, days_either_side: int) -> list[tuple[int, datetime]]:
        """(day number, UTC start) for each day from `days_either_side` before to as many after, plus the
        end of the last one: what a SQL CASE needs to put instants on local days."""
        first = self.day - timedelta(days=days_either_side)
        count = 2 * days_either_side + 2
        return [
            (day_number(first + timedelta(days=k)), local_midnight(first + timedelta(days=k), self.timezone))
            for k in range(count)
        ]


def local_midnight(day: date, timezone: str) -> datetime:
    """The instant a local day starts (where midnight falls in a DST gap, the end of the gap)."""
    return datetime.combine(day, time(0), tzinfo=zoneinfo.ZoneInfo(timezone)).astimezone(UTC)


def today_in(timezone: str, now: datetime) -> date:
    return now.astimezone(zoneinfo.ZoneInfo(timezone)).date()
