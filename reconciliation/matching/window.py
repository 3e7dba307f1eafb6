"""Pass 3: equal amount within the date window, confirmed only with a discriminator and a unique candidate.

Equal amounts are common (every visa costs the same), so an amount and a date never match on their own.
A pair needs evidence that it belongs together, and the evidence must point one way only:

- `reference-in-text`: the ledger entry's reference appears in the line's reference, description or
  batch reference once case and punctuation are set aside ("ETPAY0001" or "Virement ET-PAY-0001"), as a
  whole (ET-PAY-0001 is not found in ET-PAY-00012), or
- `unreferenced`: neither side carries a reference at all and the entry moves the treasury account
  itself (a bank charge posted by hand against the line that charged it).

A line with two or more candidates with evidence, or a candidate claimed by two lines, is *ambiguous*:
an auditor decides. The candidates are pulled from SQL already restricted to small groups of equal
amounts (`max_candidates`); the judging is done here, one group at a time.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import text

from reconciliation.matching.sink import ExceptionSink, Found
from reconciliation.matching.work import EXPORT, INSERT_MATCH, LEDGER, Work

_NOT_ALNUM = re.compile(r"[^0-9A-Z]")
MIN_REFERENCE = 6  # shorter references turn up inside unrelated text too often to count as evidence


def normalized(value: str) -> str:
    return _NOT_ALNUM.sub("", value.upper())


@lru_cache(maxsize=4096)
def _written(reference: str) -> re.Pattern[str]:
    # The reference's letters and digits in order, anything else between them, and no letter or digit
    # right before or after: "ET-PAY-0001" is found in "VIR. ETPAY 0001/VISA", not in "ET-PAY-00012".
    return re.compile("(?<![0-9A-Z])" + "[^0-9A-Z]*".join(map(re.escape, reference)) + "(?![0-9A-Z])")


def reference_in_text(reference: str, text: str) -> bool:
    wanted = normalized(reference)
    return len(wanted) >= MIN_REFERENCE and _written(wanted).search(text.upper()) is not None


@dataclass(frozen=True, slots=True)
class Candidate:
    xi: int
    li: int
    currency: str
    amount: int
    x_text: str
    x_referenced: bool
    l_reference: str
    l_treasury: bool
    entry_id: Any
    import_id: int
    item_no: int
    reference: str


def evidence(candidate: Candidate) -> str | None:
    """Why this line and this entry belong together, or None if nothing says so."""
    if candidate.l_reference:
        return "reference-in-text" if reference_in_text(candidate.l_reference, candidate.x_text) else None
    if not candidate.x_referenced and candidate.l_treasury:
        return "unreferenced"
    return None


def candidates(work: Work, max_candidates: int) -> list[Candidate]:
    """Free treasury lines and free ledger items of equal amount and currency within the window, where
    neither carries a reference the other side knows (those are for the leftovers to explain)."""
    # NOT IN over an uncorrelated list: one hashed lookup table, not one probe per row.
    x_free = f"""
        SELECT x.* FROM {EXPORT} x
         WHERE x.src = 'treasury' AND x.is_batch = 0 AND {work.free("x", "xi")}
           AND x.reference NOT IN (SELECT payment_ref FROM {LEDGER} WHERE payment_ref <> '')
           AND x.batch_key NOT IN (SELECT settlement_ref FROM {LEDGER} WHERE settlement_ref <> '')
    """
    l_free = f"""
        SELECT l.* FROM {LEDGER} l
         WHERE {work.free("l", "li")}
           AND l.payment_ref NOT IN (SELECT reference FROM {EXPORT} WHERE reference <> '')
           AND l.settlement_ref NOT IN (SELECT batch_key FROM {EXPORT} WHERE batch_key <> '')
    """
    rows = work.run(
        f"""
        WITH xs AS ({x_free}), ls AS ({l_free}),
             xc AS (SELECT currency, amt, count(*) AS n FROM xs GROUP BY currency, amt),
             lc AS (SELECT currency, cash, count(*) AS n FROM ls GROUP BY currency, cash)
        SELECT x.item, l.item, x.currency, x.amt, x.reference, x.batch_reference, il.description,
               l.payment_ref, l.settlement_ref, l.treasury, l.entry_id, x.import_id, x.item_no
          FROM xs x
          JOIN recon_import_lines il ON il.import_id = x.import_id AND il.item_no = x.item_no
          JOIN xc ON xc.currency = x.currency AND xc.amt = x.amt AND xc.n <= :most
          JOIN ls l ON l.currency = x.currency AND l.cash = x.amt AND abs(l.day - x.day) <= :window
          JOIN lc ON lc.currency = l.currency AND lc.cash = l.cash AND lc.n <= :most
         ORDER BY x.item, l.item
        """,
        {"most": max_candidates, "window": work.window_days},
    ).all()
    return [
        Candidate(
            xi=int(xi),
            li=int(li),
            currency=str(currency),
            amount=int(amount),
            x_text=" ".join((reference, batch_reference, description)),
            x_referenced=bool(reference or batch_reference),
            l_reference=str(payment_ref or settlement_ref),
            l_treasury=int(treasury) != 0,
            entry_id=entry_id,
            import_id=int(import_id),
            item_no=int(item_no),
            reference=str(reference or batch_reference),
        )
        for (
            xi,
            li,
            currency,
            amount,
            reference,
            batch_reference,
            description,
            payment_ref,
            settlement_ref,
            treasury,
            entry_id,
            import_id,
            item_no,
        ) in rows
    ]


def window_pass(work: Work, sink: ExceptionSink, max_candidates: int) -> dict[str, int]:
    supported: list[tuple[Candidate, str]] = []
    for candidate in candidates(work, max_candidates):
        rule = evidence(candidate)
        if rule is not None:
            supported.append((candidate, rule))
    by_line: defaultdict[int, list[tuple[Candidate, str]]] = defaultdict(list)
    by_entry: defaultdict[int, set[int]] = defaultdict(set)
    for candidate, rule in supported:
        by_line[candidate.xi].append((candidate, rule))
        by_entry[candidate.li].add(candidate.xi)
    base = work.next_match_no()
    rows: list[dict[str, Any]] = []
    counts: defaultdict[str, int] = defaultdict(int)
    for xi in sorted(by_line):
        found = by_line[xi]
        candidate, rule = found[0]
        if len(found) == 1 and by_entry[candidate.li] == {xi}:
            counts[rule] += 1
            rows.append(
                {
                    "m": base + len(rows) + 1,
                    "rule": rule,
                    "li": candidate.li,
                    "xi": xi,
                    "cur": candidate.currency,
                    "amt": candidate.amount,
                }
            )
            continue
        rivals = sorted(
            {c.li for c, _ in found} | {c.li for line in by_entry[candidate.li] for c, _ in by_line[line]}
        )
        sink.add(
            Found(
                "ambiguous",
                candidate.currency,
                xi=xi,
                import_id=candidate.import_id,
                item_no=candidate.item_no,
                export_amount=candidate.amount,
                reference=candidate.reference,
                cash_role="treasury",
                detail={
                    "message": f"{len(rivals)} ledger entries of the same amount could be this line; "
                    "none is certain: match it by hand",
                    "rules": sorted({rule for _, rule in found}),
                },
                also_li=tuple(c.li for c, _ in found),
                also_entries=tuple(str(work.as_uuid(c.entry_id)) for c, _ in found),
            )
        )
    if rows:
        work.session.execute(
            text(f"""
                {INSERT_MATCH}
                VALUES (:m, 1, 'window', :rule, :li, :xi, :cur, :amt, :amt)
            """),
            rows,
        )
    sink.flush()
    return dict(counts)
