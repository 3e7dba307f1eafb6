"""Where a run's exceptions go: straight into recon_exceptions in batches, holding their items for the run."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, text

from ledger.db.models_reconciliation import ReconException
from reconciliation.matching.work import HELD, Work

EXCEPTIONS: Table = ReconException.__table__  # type: ignore[assignment]
_BATCH = 2000


@dataclass(slots=True)
class Found:
    """An exception as a pass finds it: the run's items (`li` ledger, `xi` export) and what they hold."""

    category: str
    currency: str
    li: int | None = None
    xi: int | None = None
    entry_id: uuid.UUID | None = None
    import_id: int | None = None
    item_no: int | None = None
    ledger_amount: int | None = None
    export_amount: int | None = None
    reference: str = ""
    cash_role: str = ""
    provider: str = ""
    consulate: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    # Further items of the run this exception accounts for (ambiguous candidates, a payout's fee lines).
    also_li: tuple[int, ...] = ()
    also_xi: tuple[int, ...] = ()
    # The same further items as the report names them: ledger entries, and lines as (import, item).
    also_entries: tuple[str, ...] = ()
    also_lines: tuple[tuple[int, int], ...] = ()


class ExceptionSink:
    """Buffers exceptions and writes them with the run's id; remembers held items for later passes."""

    def __init__(self, work: Work, run_id: int, business_day: str) -> None:
        self.work = work
        self.run_id = run_id
        self.business_day = business_day
        self.rows: list[dict[str, Any]] = []
        self.held: list[dict[str, Any]] = []
        self.held_li: set[int] = set()
        self.held_xi: set[int] = set()
        self.counts: Counter[str] = Counter()

    def holds(self, *, li: int | None = None, xi: int | None = None) -> bool:
        return (li is not None and li in self.held_li) or (xi is not None and xi in self.held_xi)

    def add(self, found: Found) -> None:
        self.counts[found.category] += 1
        detail = dict(found.detail)
        if found.also_entries:
            detail["candidates"] = list(found.also_entries)
        if found.also_lines:
            detail["lines"] = [list(line) for line in found.also_lines]
        self.rows.append(
            {
                "run_id": self.run_id,
                "category": found.category,
                "business_day": self.business_day,
                "currency": found.currency,
                "entry_id": found.entry_id,
                "import_id": found.import_id,
                "item_no": found.item_no,
                "ledger_amount": found.ledger_amount,
                "export_amount": found.export_amount,
                "reference": found.reference[:140],
                "cash_role": found.cash_role,
                "provider": found.provider[:40],
                "consulate": found.consulate,
                "detail": detail,
            }
        )
        for li in (found.li, *found.also_li):
            if li is not None and li not in self.held_li:
                self.held_li.add(li)
                self.held.append({"li": li, "xi": None})
        for xi in (found.xi, *found.also_xi):
            if xi is not None and xi not in self.held_xi:
                self.held_xi.add(xi)
                self.held.append({"li": None, "xi": xi})
        if len(self.rows) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.work.session.connection().execute(EXCEPTIONS.insert(), self.rows)
            self.rows.clear()
        if self.held:
            self.work.session.execute(text(f"INSERT INTO {HELD} (li, xi) VALUES (:li, :xi)"), self.held)
            self.held.clear()

    @property
    def total(self) -> int:
        return sum(self.counts.values())
