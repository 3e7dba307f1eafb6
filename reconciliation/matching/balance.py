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
from reconciliation.matching.work import EXPORT, HELD, LEDGER, MATCH, Work

_SAME_DAY_GROUPS = f"""
    SELECT m.match_no FROM {MATCH} m
      LEFT JOIN {LEDGER} l ON l.item = m.li
      LEFT JOIN {EXPORT} x ON x.item = m.xi
     GROUP BY m.match_no
    HAVING count(m.li) > 0
       AND min(CASE WHEN m.li IS NULL OR (l.treasury <> 0 AND l.in_day = 1) THEN 1 ELSE 0 END) = 1
       AND min(CASE WHEN m.xi IS NULL OR x.src <> 'treasury' OR x.day = :day THEN 1 ELSE 0 END) = 1
       AND sum(CASE WHEN x.src = 'treasury' THEN 1 ELSE 0 END) > 0
"""


def _sums(work: Work, sql: str, params: dict[str, Any]) -> dict[str, int]:
    return {str(currency): int(total or 0) for currency, total in work.run(sql, params)}


def balance_check(
    work: Work,
    sink: ExceptionSink,
    currencies: Sequence[str],
    import_ids: Sequence[int],
    treasury_account: Callable[[str], str],
) -> list[dict[str, Any]]:
    day = work.day.number
    params: dict[str, Any] = {
        "day": day,
        "start": to_micros(work.day.start),
        "end": to_micros(work.day.end),
    }
    leaves = f"""
        FROM {EXPORT} x LEFT JOIN {EXPORT} p ON p.item = x.parent
       WHERE x.src = 'treasury' AND x.is_batch = 0 AND coalesce(p.day, x.day) = :day
    """
    bank = _sums(work, f"SELECT x.currency, sum(x.amount) {leaves} GROUP BY x.currency", params)
    in_group = f"EXISTS (SELECT 1 FROM {MATCH} m WHERE m.xi = x.item AND m.match_no IN ({_SAME_DAY_GROUPS}))"
    bank_reconciled = _sums(
        work, f"SELECT x.currency, sum(x.amount) {leaves} AND {in_group} GROUP BY x.currency", params
    )
    bank_matched = _sums(
        work,
        f"SELECT x.currency, sum(x.amount) {leaves} AND EXISTS (SELECT 1 FROM {MATCH} m WHERE m.xi = x.item) "
        "GROUP BY x.currency",
        params,
    )
    bank_open = _sums(
        work,
        f"SELECT x.currency, sum(x.amount) {leaves} AND EXISTS (SELECT 1 FROM {HELD} h WHERE h.xi = x.item) "
        f"AND NOT EXISTS (SELECT 1 FROM {MATCH} m WHERE m.xi = x.item) GROUP BY x.currency",
        params,
    )
    book = _sums(
        work,
        """
        SELECT p.currency, sum(p.amount) FROM postings p JOIN accounts a ON a.id = p.account_id
         WHERE a.role = 'treasury' AND p.effective_at >= :start AND p.effective_at < :end
         GROUP BY p.currency
        """,
        params,
    )
    book_reconciliation = _sums(
        work,
        """
        SELECT p.currency, sum(p.amount) FROM postings p JOIN accounts a ON a.id = p.account_id
          JOIN entries e ON e.id = p.entry_id
         WHERE a.role = 'treasury' AND p.effective_at >= :start AND p.effective_at < :end
           AND e.kind = 'reconciliation'
         GROUP BY p.currency
        """,
        params,
    )
    mine = f"FROM {LEDGER} l WHERE l.in_day = 1 AND l.treasury <> 0"
    book_reconciled = _sums(
        work,
        f"SELECT l.currency, sum(l.treasury) {mine} AND EXISTS (SELECT 1 FROM {MATCH} m "
        f"WHERE m.li = l.item AND m.match_no IN ({_SAME_DAY_GROUPS})) GROUP BY l.currency",
        params,
    )
    book_matched = _sums(
        work,
        f"SELECT l.currency, sum(l.treasury) {mine} AND EXISTS (SELECT 1 FROM {MATCH} m WHERE m.li = l.item) "
        "GROUP BY l.currency",
        params,
    )
    book_open = _sums(
        work,
        f"SELECT l.currency, sum(l.treasury) {mine} AND EXISTS (SELECT 1 FROM {HELD} h WHERE h.li = l.item) "
        f"AND NOT EXISTS (SELECT 1 FROM {MATCH} m WHERE m.li = l.item) GROUP BY l.currency",
        params,
    )
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
        bank_total, book_total = bank.get(currency, 0), book.get(currency, 0)
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
