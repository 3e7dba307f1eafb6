"""The leftovers: every line of the run's files and every ledger entry of the day that no pass matched, each
put in one category, streamed so that a file that matches nothing still fits in memory.

Export side, by what its reference finds in the ledger: a free entry with another currency (currency
mismatch), another amount (amount mismatch) or too far in time (timing); an entry already matched or
reconciled (duplicate), or reversed (reversed); nothing (missing in ledger). Ledger side (entries of the
business day only): reversed, a twin of a matched entry (duplicate), a counterpart in a file of another
day (timing), or nothing (missing in export).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import text

from ledger.money import Money
from reconciliation.matching.sink import ExceptionSink, Found
from reconciliation.matching.work import EXPORT, LEDGER, MATCH, Work

_REPORT_PAIRS = {
    ("capture", "capture"),
    ("refund", "refund"),
    ("chargeback", "chargeback"),
    ("chargeback_reversal", "reversal"),
}


@dataclass(frozen=True, slots=True)
class Line:
    item: int
    src: str
    cls: str
    amount: int
    currency: str
    day: int
    reference: str
    batch_key: str
    reversal: bool
    provider: str
    import_id: int
    item_no: int
    repeat: int  # 1 for the first free line with this reference and amount, 2 for the next, ...


@dataclass(frozen=True, slots=True)
class Hit:
    item: int
    cls: str
    cash: int
    currency: str
    day: int
    taken: bool
    reversed: bool
    entry_id: Any
    payment_ref: str
    settlement_ref: str
    provider: str
    consulate: str
    treasury: int
    matched: bool


def _fits(line: Line, hit: Hit) -> bool:
    """Whether the entry is the kind of event the line reports (the references already agree)."""
    if hit.cls == "settlement":
        return line.src == "treasury" and bool(line.batch_key) and hit.settlement_ref == line.batch_key
    if line.src == "treasury":
        return (line.amount > 0) == (hit.cash > 0)
    return (line.cls, hit.cls) in _REPORT_PAIRS


def _lines_with_hits(work: Work, facts: set[str]) -> Iterator[tuple[Line, list[Hit]]]:
    # Only the lookups the ledger side can answer: joining on a column that is empty for every entry
    # would compare each line with all of them.
    by_reference = (
        f"SELECT xs.item AS xi, l.item AS li FROM xs JOIN {LEDGER} l ON l.payment_ref = xs.reference"
    )
    lookups = [f"{by_reference} WHERE xs.reference <> ''"]
    if "ledger:settlement" in facts:
        lookups.append(
            f"SELECT xs.item, l.item FROM xs JOIN {LEDGER} l ON l.settlement_ref = xs.batch_key"
            " WHERE xs.batch_key <> ''"
        )
    if "ledger:import_line" in facts:
        lookups.append(f"SELECT xs.item, l.item FROM xs JOIN {LEDGER} l ON l.import_line_ref = xs.line_key")
    rows = work.session.execute(
        text(f"""
            WITH xs AS MATERIALIZED (
                SELECT x.*, row_number() OVER (PARTITION BY x.src, x.reference, x.currency, x.amt
                                               ORDER BY x.item) AS repeat
                  FROM {EXPORT} x WHERE x.is_batch = 0 AND {work.free("x", "xi")}
            ), hits AS ({" UNION ".join(lookups)})
            SELECT x.item, x.src, x.cls, x.amt, x.currency, x.day, x.reference, x.batch_key, x.reversal,
                   x.provider, x.import_id, x.item_no, x.repeat,
                   l.item, l.cls, l.cash, l.currency, l.day, l.taken, l.reversed_by, l.entry_id,
                   l.payment_ref, l.settlement_ref, l.provider, l.consulate, l.treasury,
                   CASE WHEN l.item IS NOT NULL AND EXISTS (SELECT 1 FROM {MATCH} m WHERE m.li = l.item)
                        THEN 1 ELSE 0 END
              FROM xs x
              LEFT JOIN hits h ON h.xi = x.item
              LEFT JOIN {LEDGER} l ON l.item = h.li
             ORDER BY x.item, l.item
        """),
        execution_options={"yield_per": 2000},
    )
    current: Line | None = None
    hits: list[Hit] = []
    for row in rows:
        if current is None or row[0] != current.item:
            if current is not None:
                yield current, hits
            current = Line(
                item=int(row[0]),
                src=str(row[1]),
                cls=str(row[2]),
                amount=int(row[3]),
                currency=str(row[4]),
                day=int(row[5]),
                reference=str(row[6]),
                batch_key=str(row[7]),
                reversal=bool(row[8]),
                provider=str(row[9]),
                import_id=int(row[10]),
                item_no=int(row[11]),
                repeat=int(row[12]),
            )
            hits = []
        if row[13] is not None:
            hits.append(
                Hit(
                    item=int(row[13]),
                    cls=str(row[14]),
                    cash=int(row[15]),
                    currency=str(row[16]),
                    day=int(row[17]),
                    taken=bool(row[18]),
                    reversed=row[19] is not None,
                    entry_id=row[20],
                    payment_ref=str(row[21]),
                    settlement_ref=str(row[22]),
                    provider=str(row[23]),
                    consulate=str(row[24]),
                    treasury=int(row[25]),
                    matched=bool(row[26]),
                )
            )
    if current is not None:
        yield current, hits


def _money(minor: int, currency: str) -> str:
    return str(Money(minor, currency))


def export_leftovers(work: Work, sink: ExceptionSink, facts: set[str]) -> None:
    for line, found in _lines_with_hits(work, facts):
        hits = [replace(hit, entry_id=work.as_uuid(hit.entry_id)) for hit in found]
        fitting = [hit for hit in hits if _fits(line, hit)]
        free_hits = [
            hit for hit in fitting if not hit.matched and not hit.taken and not sink.holds(li=hit.item)
        ]
        partner = min(free_hits, key=lambda h: (abs(h.day - line.day), h.item)) if free_hits else None
        category, message = _categorize(line, hits, fitting, partner, work.window_days)
        sink.add(_found(category, message, line, partner))
    sink.flush()


def _categorize(
    line: Line, hits: list[Hit], fitting: list[Hit], partner: Hit | None, window: int
) -> tuple[str, str]:
    what = f"line of {_money(line.amount, line.currency)}"
    if hits:
        what += f" with reference {line.reference or line.batch_key}"
    if line.reversal:
        return "reversed", f"the bank reversed this {what}"
    if partner is not None:
        return _against(line, partner, what, window)
    if fitting:
        if any(hit.reversed or hit.cls == "reversal" for hit in fitting):
            return "reversed", f"{what}: its ledger entry was reversed"
        return "duplicate", f"{what}: its ledger entry is matched already"
    if line.reference and line.repeat > 1:
        return "duplicate", f"{what}: the same line appears {line.repeat} times"
    return "missing_in_ledger", f"{what}: no ledger entry" + (" of that kind" if hits else "")


def _against(line: Line, partner: Hit, what: str, window: int) -> tuple[str, str]:
    """A free ledger entry with the line's reference that no pass could match: why not."""
    entry = _money(partner.cash, partner.currency)
    if partner.reversed or partner.cls == "reversal":
        return "reversed", f"{what}: the ledger entry ({entry}) was reversed"
    if partner.currency != line.currency:
        return "currency_mismatch", f"{what}: the ledger entry is {entry}"
    if partner.cash != line.amount:
        difference = _money(line.amount - partner.cash, line.currency)
        return "amount_mismatch", f"{what}: the ledger entry is {entry}, difference {difference}"
    days = abs(partner.day - line.day)
    if days > window:
        return "timing", f"{what}: the ledger entry is {days} days away (window {window})"
    return "ambiguous", f"{what}: several entries and lines share this reference"


def _found(category: str, message: str, line: Line, partner: Hit | None) -> Found:
    if partner is None:
        return Found(
            category,
            line.currency,
            xi=line.item,
            import_id=line.import_id,
            item_no=line.item_no,
            export_amount=line.amount,
            reference=line.reference or line.batch_key,
            cash_role="treasury" if line.src == "treasury" else "clearing",
            provider=line.provider,
            detail={"message": message},
        )
    return Found(
        category,
        line.currency,
        li=partner.item,
        xi=line.item,
        entry_id=partner.entry_id,
        import_id=line.import_id,
        item_no=line.item_no,
        ledger_amount=partner.cash,
        export_amount=line.amount,
        reference=line.reference or line.batch_key,
        cash_role="treasury" if partner.treasury != 0 else "clearing",
        provider=partner.provider or line.provider,
        consulate=partner.consulate,
        detail={"message": message, "ledger_currency": partner.currency}
        if partner.currency != line.currency
        else {"message": message},
    )


def ledger_leftovers(work: Work, sink: ExceptionSink, import_ids: Sequence[int]) -> None:
    """The business day's free ledger entries, each with the reason nothing matched it."""
    run_imports = ", ".join(str(int(i)) for i in import_ids) or "NULL"
    low, high = work.day.number - work.search_days, work.day.number + work.search_days
    elsewhere = f"""
        SELECT 1 FROM recon_import_lines o JOIN recon_imports i ON i.id = o.import_id
         WHERE i.status = 'imported' AND o.import_id NOT IN ({run_imports})
           AND o.booking_day BETWEEN {low} AND {high} AND o.{{column}} = l.{{key}}
    """
    rows = work.session.execute(
        text(f"""
            SELECT l.item, l.entry_id, l.cls, l.currency, l.cash, l.treasury, l.provider, l.consulate,
                   l.payment_ref, l.settlement_ref, l.reversed_by,
                   CASE WHEN l.payment_ref <> '' AND EXISTS (
                        SELECT 1 FROM {LEDGER} d
                         WHERE d.payment_ref = l.payment_ref AND d.cls = l.cls AND d.cash = l.cash
                           AND d.currency = l.currency AND d.item <> l.item
                           AND (d.taken = 1 OR EXISTS (SELECT 1 FROM {MATCH} m WHERE m.li = d.item)))
                        THEN 1 ELSE 0 END,
                   CASE WHEN (l.payment_ref <> '' AND EXISTS (
                              {elsewhere.format(column="reference", key="payment_ref")}))
                          OR (l.settlement_ref <> '' AND EXISTS (
                              {elsewhere.format(column="batch_reference", key="settlement_ref")}))
                        THEN 1 ELSE 0 END
              FROM {LEDGER} l WHERE l.in_day = 1 AND {work.free("l", "li")}
             ORDER BY l.item
        """),
        execution_options={"yield_per": 2000},
    )
    for row in rows:
        item, entry_id, cls, currency, cash, treasury, provider, consulate = row[:8]
        payment_ref, settlement_ref, reversed_by, twin, other = row[8:]
        if sink.holds(li=int(item)):
            continue
        shown = _money(int(cash), str(currency))
        reference = str(payment_ref or settlement_ref)
        what = f"ledger {cls} of {shown}" + (f" with reference {reference}" if reference else "")
        if reversed_by is not None or cls == "reversal":
            category, message = "reversed", f"{what}: reversed in the ledger, not in the files"
        elif twin:
            category, message = "duplicate", f"{what}: the same event is in the ledger twice and matched once"
        elif other:
            category, message = "timing", f"{what}: its counterpart is in a file of another day"
        else:
            category, message = "missing_in_export", f"{what}: in no file of this run"
        sink.add(
            Found(
                category,
                str(currency),
                li=int(item),
                entry_id=work.as_uuid(entry_id),
                ledger_amount=int(cash),
                reference=reference,
                cash_role="treasury" if int(treasury) != 0 else "clearing",
                provider=str(provider),
                consulate=str(consulate),
                detail={"message": message},
            )
        )
    sink.flush()
