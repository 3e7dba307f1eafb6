"""The run's work tables: the ledger side and the export side as numbered items, matches and held items.

They are TEMP tables of the run's own transaction (dropped at commit on PostgreSQL, by hand on SQLite), so
every pass is one set-based statement over them and nothing of the work is visible to anyone else.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import CursorResult, text
from sqlalchemy.orm import Session

from ledger.db.types import to_micros
from reconciliation.days import BusinessDay

LEDGER = "recon_w_ledger"
EXPORT = "recon_w_export"
MATCH = "recon_w_match"
CAND = "recon_w_cand"
HELD = "recon_w_held"
TABLES = (LEDGER, EXPORT, MATCH, CAND, HELD)
MATCH_COLUMNS_ROUNDING = (
    "match_no, member_no, pass, rule, li, xi, currency, ledger_amount, export_amount, rounding_entry_id"
)
INSERT_MATCH = (
    f"INSERT INTO {MATCH} (match_no, member_no, pass, rule, li, xi, currency, ledger_amount, export_amount)"
)

# Ledger entry kinds, in the matcher's words: which export lines can stand for them.
LEDGER_CLASS = """
    CASE s.kind WHEN 'payment_captured' THEN 'capture' WHEN 'stamp_refunded' THEN 'refund'
                WHEN 'chargeback' THEN 'chargeback' WHEN 'settlement' THEN 'settlement'
                WHEN 'reversal' THEN 'reversal' ELSE 'other' END
"""
# Entries that move money outside the ledger even when they touch only a clearing account; other
# entries (adjustments, corrections) are in scope only when they move the treasury account itself.
PAYMENT_EVENTS = "'payment_captured', 'stamp_refunded', 'chargeback', 'settlement'"
# Settlement report categories whose amount is the payment's gross; fees and adjustments count net.
PAYMENT_CATEGORIES = ("capture", "refund", "chargeback", "chargeback_reversal")


class Work:
    """SQL over the work tables of one run, in one session (the TEMP tables belong to its connection)."""

    def __init__(
        self, session: Session, business_day: BusinessDay, *, window_days: int, search_days: int
    ) -> None:
        self.session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self.day = business_day
        self.window_days = window_days
        self.search_days = search_days

    # SQL helpers ---------------------------------------------------------------------------------------

    def run(self, sql: str, params: Mapping[str, Any] | None = None) -> CursorResult[*tuple[Any, ...]]:
        return self.session.execute(text(sql), dict(params or {}))  # type: ignore[return-value]

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.run(sql, params).scalar()

    def uuid_param(self, value: uuid.UUID) -> Any:
        return value if self.postgres else value.bytes

    @staticmethod
    def as_uuid(value: Any) -> uuid.UUID:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(bytes=bytes(value))

    def next_match_no(self) -> int:
        return int(self.scalar(f"SELECT coalesce(max(match_no), 0) FROM {MATCH}") or 0)

    # Tables --------------------------------------------------------------------------------------------

    def create(self) -> None:
        uuid_type = "uuid" if self.postgres else "BLOB"
        suffix = " ON COMMIT DROP" if self.postgres else ""
        if not self.postgres:
            self.drop()  # a run that failed on this pooled connection may have left them
        else:
            # Hash joins and sorts of a million rows stay in memory (on the server, for this run only).
            self.run("SET LOCAL work_mem = '128MB'")
        self.run(f"""
            CREATE TEMP TABLE {LEDGER} (
                item integer PRIMARY KEY, entry_id {uuid_type} NOT NULL, kind text NOT NULL,
                cls text NOT NULL, currency text NOT NULL, cash bigint NOT NULL, treasury bigint NOT NULL,
                gross bigint NOT NULL, fee bigint NOT NULL, provider text NOT NULL, consulate text NOT NULL,
                payment_ref text NOT NULL, settlement_ref text NOT NULL, import_line_ref text NOT NULL,
                effective_at bigint NOT NULL,
                day integer NOT NULL, in_day smallint NOT NULL, reverses_id {uuid_type},
                reversed_by {uuid_type}, taken smallint NOT NULL DEFAULT 0
            ){suffix}
        """)
        self.run(f"""
            CREATE TEMP TABLE {EXPORT} (
                item integer PRIMARY KEY, import_id integer NOT NULL, item_no integer NOT NULL,
                parent integer, is_batch smallint NOT NULL, src text NOT NULL, cls text NOT NULL,
                amt bigint NOT NULL, amount bigint NOT NULL, fee bigint, currency text NOT NULL,
                reference text NOT NULL, batch_reference text NOT NULL, batch_key text NOT NULL,
                line_key text NOT NULL, description text NOT NULL, counterparty text NOT NULL,
                provider text NOT NULL, day integer NOT NULL, reversal smallint NOT NULL,
                taken smallint NOT NULL DEFAULT 0
            ){suffix}
        """)
        self.run(f"""
            CREATE TEMP TABLE {MATCH} (
                match_no integer NOT NULL, member_no integer NOT NULL, pass text NOT NULL, rule text NOT NULL,
                li integer, xi integer, currency text NOT NULL, ledger_amount bigint, export_amount bigint,
                rounding_entry_id {uuid_type}, PRIMARY KEY (match_no, member_no)
            ){suffix}
        """)
        self.run(f"CREATE TEMP TABLE {CAND} (xi integer, li integer, rule text){suffix}")
        self.run(f"CREATE TEMP TABLE {HELD} (xi integer, li integer){suffix}")

    def index(self) -> None:
        """Indexes once the sides are loaded (cheaper than keeping them up while loading), then statistics:
        PostgreSQL's autovacuum never analyzes TEMP tables, and its plans need the row counts."""
        for table, columns in (
            (LEDGER, ("payment_ref",)),
            (LEDGER, ("settlement_ref",)),
            (EXPORT, ("reference",)),
            (EXPORT, ("batch_key",)),
            (EXPORT, ("parent",)),
            (MATCH, ("li",)),
            (MATCH, ("xi",)),
            (HELD, ("li",)),
            (HELD, ("xi",)),
        ):
            name = f"{table}_{'_'.join(columns)}"
            self.run(f"CREATE INDEX {name} ON {table} ({', '.join(columns)})")
        self.analyze()

    def analyze(self) -> None:
        if self.postgres:
            for table in (LEDGER, EXPORT, MATCH):
                self.run(f"ANALYZE {table}")

    def drop(self) -> None:
        for table in TABLES:
            self.run(f"DROP TABLE IF EXISTS {table}")

    # Loading the two sides ---------------------------------------------------------------------------

    def day_case(self, column: str) -> str:
        """A SQL CASE putting an instant (microseconds) on its local day number, for the search range."""
        bounds = self.day.boundaries(self.search_days)
        whens = " ".join(
            f"WHEN {column} < {to_micros(bounds[k + 1][1])} THEN {bounds[k][0]}"
            for k in range(len(bounds) - 1)
        )
        return f"CASE {whens} ELSE {bounds[-1][0]} END"

    def load_ledger(self, currencies: Sequence[str]) -> int:
        """The ledger side: every entry that moves a clearing or treasury account within the search range,
        one item per entry and currency, with its expected cash (treasury movement, else clearing)."""
        bounds = self.day.boundaries(self.search_days)
        low, high = to_micros(bounds[0][1]), to_micros(bounds[-1][1])
        day_start, day_end = to_micros(self.day.start), to_micros(self.day.end)
        wanted = ", ".join(f"'{currency}'" for currency in currencies if currency.isalpha())
        result = self.run(f"""
            INSERT INTO {LEDGER} (item, entry_id, kind, cls, currency, cash, treasury, gross, fee, provider,
                consulate, payment_ref, settlement_ref, import_line_ref, effective_at, day, in_day,
                reverses_id, reversed_by)
            SELECT row_number() OVER (ORDER BY s.effective_at, s.entry_id, s.currency),
                   s.entry_id, s.kind, {LEDGER_CLASS}, s.currency,
                   CASE WHEN s.treasury <> 0 THEN s.treasury ELSE s.clearing END,
                   s.treasury, -s.clearing, s.fee, s.provider, s.consulate, s.payment_ref, s.settlement_ref,
                   s.import_line_ref, s.effective_at, {self.day_case("s.effective_at")},
                   CASE WHEN s.effective_at >= {day_start} AND s.effective_at < {day_end} THEN 1 ELSE 0 END,
                   s.reverses_id, r.id
              FROM (
                SELECT e.id AS entry_id, e.kind, p.currency, e.effective_at, e.consulate, e.payment_ref,
                       e.settlement_ref, e.import_line_ref, e.reverses_id,
                       sum(CASE WHEN a.role = 'treasury' THEN p.amount ELSE 0 END) AS treasury,
                       sum(CASE WHEN a.role = 'clearing' THEN p.amount ELSE 0 END) AS clearing,
                       sum(CASE WHEN a.role = 'acquirer_fees' THEN p.amount ELSE 0 END) AS fee,
                       max(CASE WHEN a.role = 'clearing' THEN a.provider ELSE '' END) AS provider
                  FROM entries e
                  JOIN postings p ON p.entry_id = e.id
                  JOIN accounts a ON a.id = p.account_id
                 WHERE e.effective_at >= {low} AND e.effective_at < {high}
                   AND p.effective_at >= {low} AND p.effective_at < {high}
                   AND e.kind <> 'reconciliation' AND p.currency IN ({wanted or "''"})
                 GROUP BY e.id, e.kind, p.currency, e.effective_at, e.consulate, e.payment_ref,
                          e.settlement_ref, e.import_line_ref, e.reverses_id
              ) s
              LEFT JOIN entries r ON r.reverses_id = s.entry_id
             WHERE s.treasury <> 0
                OR (s.clearing <> 0 AND s.kind IN ({PAYMENT_EVENTS}))
                OR (s.clearing <> 0 AND s.kind = 'reversal' AND EXISTS (
                    SELECT 1 FROM entries o WHERE o.id = s.reverses_id AND o.kind IN ({PAYMENT_EVENTS})))
        """)
        return int(result.rowcount or 0)

    def load_export(self, import_ids: Sequence[int]) -> int:
        """The export side: the lines of the run's imports; a batch entry's details are items of their own."""
        ids = ", ".join(str(int(i)) for i in import_ids) or "NULL"
        categories = ", ".join(f"'{c}'" for c in PAYMENT_CATEGORIES)
        detail_suffix = "CASE WHEN l.detail_no > 0 THEN ':' || CAST(l.detail_no AS TEXT) ELSE '' END"
        result = self.run(f"""
            INSERT INTO {EXPORT} (item, import_id, item_no, parent, is_batch, src, cls, amt, amount, fee,
                currency, reference, batch_reference, batch_key, line_key, description, counterparty,
                provider, day, reversal)
            SELECT row_number() OVER (ORDER BY l.import_id, l.item_no), l.import_id, l.item_no,
                   -- Items are numbered without gaps within an import and kept in that order here, so a
                   -- detail's batch line sits (item_no - parent_no) items before it.
                   CASE WHEN l.parent_no IS NULL THEN NULL
                        ELSE row_number() OVER (ORDER BY l.import_id, l.item_no)
                             - (l.item_no - l.parent_no) END,
                   l.is_batch,
                   CASE WHEN i.source = 'settlement' THEN 'settlement' ELSE 'treasury' END,
                   CASE WHEN i.source = 'settlement' THEN l.category
                        WHEN l.amount >= 0 THEN 'credit' ELSE 'debit' END,
                   CASE WHEN i.source = 'settlement' AND l.category IN ({categories}) THEN l.gross
                        ELSE l.amount END,
                   l.amount, l.fee, l.currency, l.reference, l.batch_reference,
                   CASE WHEN l.batch_reference <> '' THEN l.batch_reference ELSE l.reference END,
                   substr(i.sha256, 1, 16) || ':' || CAST(l.line_number AS TEXT) || {detail_suffix},
                   l.description, l.counterparty, l.provider, l.booking_day, l.reversal
              FROM recon_import_lines l JOIN recon_imports i ON i.id = l.import_id
             WHERE l.import_id IN ({ids})
        """)
        return int(result.rowcount or 0)
