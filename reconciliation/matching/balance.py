"""The balance check per treasury account and day: the bank's movement against the book's, and where
every unit of the difference went.

Bank side: the movement of the run's treasury lines booked on the day, line by line (a batch entry by
its details). Book side: the movement the ledger posted on the treasury account that day, read from the
postings themselves, independently of the matcher. Each side is split into what matched the other side
that same day, what matched something else (a payment still held in clearing, a payout explained by a
settlement report, a counterpart on another day), what an exception holds, and, on the book side, what
reconciliation itself posted. Whatever is left is unexplained and becomes a `balance` exception.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ledger.db.types import to_micros
from reconciliation.days import from_day_number
from reconciliation.matching.sink import ExceptionSink, Found
from reconciliation.matching.work import EXPORT, HELD, LEDGER, MATCH, SAME_DAY, Work

# Matches whose ledger members are all entries of the day on the treasury account and whose treasury lines
# are all booked that day: looked for only among matches holding such an entry (few: settlements, charges).
_SAME_DAY_GROUPS = f"""
    SELECT m.match_no FROM {MATCH} m
      LEFT JOIN {LEDGER} l ON l.item = m.li
      LEFT JOIN {EXPORT} x ON x.item = m.xi
     WHERE m.match_no IN (
        SELECT t.match_no FROM {MATCH} t JOIN {LEDGER} tl ON tl.item = t.li
         WHERE tl.treasury <> 0 AND tl.in_day = 1)
     GROUP BY m.match_no
    HAVING min(CASE WHEN m.li IS NULL OR (l.treasury <> 0 AND l.in_day = 1) THEN 1 ELSE 0 END) = 1
       AND min(CASE WHEN m.xi IS NULL OR x.src <> 'treasury' OR x.day = :day THEN 1 ELSE 0 END) = 1
       AND sum(CASE WHEN x.src = 'treasury' THEN 1 ELSE 0 END) > 0
"""


def _by_currency(work: Work, sql: str, params: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    return {str(row[0]): tuple(int(value or 0) for value in row[1:]) for row in work.run(sql, params)}


def balance_check(
    work: Work,
    sink: ExceptionSink,
    currencies: Sequence[str],
    import_ids: Sequence[int],
    treasury_account: Callable[[str], str],
) -> list[dict[str, Any]]:
    day = work.day.number
    params: dict[str, Any] = {"day": day, "start": to_micros(work.day.start), "end": to_micros(work.day.end)}
    suffix = " ON COMMIT DROP" if work.postgres else ""
    work.run(f"DROP TABLE IF EXISTS {SAME_DAY}")
    work.run(f"CREATE TEMP TABLE {SAME_DAY} (match_no integer PRIMARY KEY){suffix}")
    work.run(f"INSERT INTO {SAME_DAY} (match_no) {_SAME_DAY_GROUPS}", params)
    # Bank side: the day's treasury lines (a batch entry by its details, booked with it), by what became of
    # each; an item is in at most one match and held by at most one exception, so the joins do not repeat it.
    bank = _by_currency(
        work,
        f"""
        SELECT x.currency, sum(x.amount),
               sum(CASE WHEN sd.match_no IS NOT NULL THEN x.amount ELSE 0 END),
               sum(CASE WHEN mx.xi IS NOT NULL THEN x.amount ELSE 0 END),
               sum(CASE WHEN mx.xi IS NULL AND hx.xi IS NOT NULL THEN x.amount ELSE 0 END)
          FROM {EXPORT} x
          LEFT JOIN {MATCH} mx ON mx.xi = x.item
          LEFT JOIN {SAME_DAY} sd ON sd.match_no = mx.match_no
          LEFT JOIN {HELD} hx ON hx.xi = x.item
         WHERE x.src = 'treasury' AND x.is_batch = 0 AND x.day = :day
         GROUP BY x.currency
        """,
        params,
    )
    # Book side: the treasury account's postings of the day, from the postings themselves...
    book = _by_currency(
        work,
        """
        SELECT p.currency, sum(p.amount), sum(CASE WHEN e.kind = 'reconciliation' THEN p.amount ELSE 0 END)
          FROM postings p JOIN accounts a ON a.id = p.account_id JOIN entries e ON e.id = p.entry_id
         WHERE a.role = 'treasury' AND p.effective_at >= :start AND p.effective_at < :end
         GROUP BY p.currency
        """,
        params,
    )
    # ...and the run's entries of the day on that account, by what became of them.
    items = _by_currency(
        work,
        f"""
        SELECT l.currency,
               sum(CASE WHEN sd.match_no IS NOT NULL THEN l.treasury ELSE 0 END),
               sum(CASE WHEN ml.li IS NOT NULL THEN l.treasury ELSE 0 END),
               sum(CASE WHEN ml.li IS NULL AND hl.li IS NOT NULL THEN l.treasury ELSE 0 END)
          FROM {LEDGER} l
          LEFT JOIN {MATCH} ml ON ml.li = l.item
          LEFT JOIN {SAME_DAY} sd ON sd.match_no = ml.match_no
          LEFT JOIN {HELD} hl ON hl.li = l.item
         WHERE l.in_day = 1 AND l.treasury <> 0
         GROUP BY l.currency
        """,
        params,
    )
    bank_reconciled = {c: v[1] for c, v in bank.items()}
    bank_matched = {c: v[2] for c, v in bank.items()}
    bank_open = {c: v[3] for c, v in bank.items()}
    book_reconciliation = {c: v[1] for c, v in book.items()}
    book_reconciled = {c: v[0] for c, v in items.items()}
    book_matched = {c: v[1] for c, v in items.items()}
    book_open = {c: v[2] for c, v in items.items()}
    bank = {c: (v[0],) for c, v in bank.items()}
    book = {c: (v[0],) for c, v in book.items()}
    statements = work.run(
        """
        SELECT currency, statement_id, account, opening_minor, closing_minor FROM recon_import_statements
         WHERE import_id IN ({ids}) AND closing_day = :day AND currency IS NOT NULL
         ORDER BY currency, account, statement_id
        """.format(ids=", ".join(str(int(i)) for i in import_ids) or "NULL"),
        params,
    ).all()
    checks = []
    for currency in sorted(set(currencies) & (set(bank) | set(book))):
        bank_total, book_total = bank.get(currency, (0,))[0], book.get(currency, (0,))[0]
        reconciled_bank, reconciled_book = bank_reconciled.get(currency, 0), book_reconciled.get(currency, 0)
        bank_elsewhere = bank_matched.get(currency, 0) - reconciled_bank
        book_elsewhere = book_matched.get(currency, 0) - reconciled_book
        bank_unexplained = bank_total - bank_matched.get(currency, 0) - bank_open.get(currency, 0)
        book_unexplained = (
            book_total
            - book_matched.get(currency, 0)
            - book_open.get(currency, 0)
            - book_reconciliation.get(currency, 0)
        )
        difference = bank_total - book_total
        if difference == 0:
            status = "balanced"
        elif bank_unexplained == 0 and book_unexplained == 0:
            status = "explained"
        else:
            status = "unexplained"
        check = {
            "account": treasury_account(currency),
            "currency": currency,
            "day": from_day_number(day).isoformat(),
            "bank_movement": bank_total,
            "book_movement": book_total,
            "difference": difference,
            "matched_same_day_bank": reconciled_bank,
            "matched_same_day_book": reconciled_book,
            "rounding": reconciled_bank - reconciled_book,
            "bank_matched_otherwise": bank_elsewhere,
            "bank_in_exceptions": bank_open.get(currency, 0),
            "bank_unexplained": bank_unexplained,
            "book_matched_otherwise": book_elsewhere,
            "book_in_exceptions": book_open.get(currency, 0),
            "book_reconciliation_entries": book_reconciliation.get(currency, 0),
            "book_unexplained": book_unexplained,
            "statements": [
                {"statement_id": sid, "account": account, "opening": opening, "closing": closing}
                for cur, sid, account, opening, closing in statements
                if cur == currency
            ],
            "status": status,
        }
        checks.append(check)
        if status == "unexplained":
            sink.add(
                Found(
                    "balance",
                    currency,
                    ledger_amount=book_total,
                    export_amount=bank_total,
                    cash_role="treasury",
                    detail={
                        "message": f"the treasury account moved {bank_total} minor units at the bank and "
                        f"{book_total} in the book; {bank_unexplained} (bank) and {book_unexplained} (book) "
                        "are explained by no match and no exception",
                        "check": check,
                    },
                )
            )
    sink.flush()
    return checks
