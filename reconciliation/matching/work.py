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
FREE_X = "recon_w_free_x"
FREE_L = "recon_w_free_l"
RESOLVED = "recon_w_res"
SAME_DAY = "recon_w_same_day"
TABLES = (LEDGER, EXPORT, MATCH, CAND, HELD, FREE_X, FREE_L, RESOLVED, SAME_DAY)
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
        self.narrowed = False

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

    def free(self, alias: str, side: str) -> str:
        """SQL: the item `alias` of side `li`/`xi` is in no match and held by no exception (and not taken)."""
        if self.narrowed:
            return f"{alias}.item IN (SELECT item FROM {FREE_X if side == 'xi' else FREE_L})"
        return (
            f"{alias}.taken = 0"
            f" AND NOT EXISTS (SELECT 1 FROM {MATCH} fm WHERE fm.{side} = {alias}.item)"
            f" AND NOT EXISTS (SELECT 1 FROM {HELD} fh WHERE fh.{side} = {alias}.item)"
        )

    def narrow(self) -> None:
        """Once the exact passes matched the bulk, the free items are few: they are kept in two small
        tables that later passes start from (and `refresh` keeps true), so that no pass scans both sides
        again, and the planner knows how few they are."""
        suffix = " ON COMMIT DROP" if self.postgres else ""
        for table, source, alias, side in ((FREE_X, EXPORT, "x", "xi"), (FREE_L, LEDGER, "l", "li")):
            self.run(f"CREATE TEMP TABLE {table} (item integer PRIMARY KEY){suffix}")
            free = self.free(alias, side)
            self.run(f"INSERT INTO {table} (item) SELECT {alias}.item FROM {source} {alias} WHERE {free}")
        self.narrowed = True
        self._analyze_free()

    def refresh(self) -> None:
        """Between passes: items a pass matched or an exception now holds are no longer free."""
        if not self.narrowed:
            return
        for table, side in ((FREE_X, "xi"), (FREE_L, "li")):
            # One indexed look-up per free item (they are few), not a scan of every match.
            self.run(f"""
                DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM {MATCH} m WHERE m.{side} = {table}.item)
                   OR EXISTS (SELECT 1 FROM {HELD} h WHERE h.{side} = {table}.item)
            """)
        self._analyze_free()

    def _analyze_free(self) -> None:
        if self.postgres:
            self.run(f"ANALYZE {FREE_X}")
            self.run(f"ANALYZE {FREE_L}")

    def next_match_no(self) -> int:
        return int(self.scalar(f"SELECT coalesce(max(match_no), 0) FROM {MATCH}") or 0)

    # Tables --------------------------------------------------------------------------------------------

    def create(self) -> None:
        uuid_type = "uuid" if self.postgres else "BLOB"
        suffix = " ON COMMIT DROP" if self.postgres else ""
        if not self.postgres:
            self.drop()  # a run that failed on this pooled connection may have left them
        else:
            # Hash joins and sorts of a million rows stay in memory (on the server, for this run only);
            # no JIT: the big statements are few and simple, and compiling them costs seconds each.
            self.run("SET LOCAL work_mem = '256MB'")
            self.run("SET LOCAL jit = off")
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
                line_key text NOT NULL,
                provider text NOT NULL, day integer NOT NULL, reversal smallint NOT NULL,
                taken smallint NOT NULL DEFAULT 0
            ){suffix}
        """)
        self.run(f"""
            CREATE TEMP TABLE {MATCH} (
                match_no integer NOT NULL, member_no integer NOT NULL, pass text NOT NULL, rule text NOT NULL,
                li integer, xi integer, currency text NOT NULL, ledger_amount bigint, export_amount bigint,
                rounding_entry_id {uuid_type}, entry_id {uuid_type}, import_id integer, item_no integer,
                PRIMARY KEY (match_no, member_no)
            ){suffix}
        """)
        self.run(f"CREATE TEMP TABLE {CAND} (xi integer, li integer, rule text){suffix}")
        self.run(f"CREATE TEMP TABLE {HELD} (xi integer, li integer){suffix}")

    def index(self, facts: set[str]) -> None:
        """Indexes once the sides are loaded, only for lookups of a few items by reference (the big joins
        hash or merge); then statistics: PostgreSQL's autovacuum never analyzes TEMP tables."""
        self.run(f"CREATE INDEX {LEDGER}_payment_ref ON {LEDGER} (payment_ref)")
        if "ledger:settlement" in facts:
            self.run(f"CREATE INDEX {LEDGER}_settlement_ref ON {LEDGER} (settlement_ref)")
        for side in ("li", "xi"):
            self.run(f"CREATE INDEX {HELD}_{side} ON {HELD} ({side})")
        self.analyze()

    def index_matches(self) -> None:
        """After the bulk of the matches is in: for the passes that look up a few items."""
        self.run(f"CREATE INDEX {MATCH}_li ON {MATCH} (li)")
        self.run(f"CREATE INDEX {MATCH}_xi ON {MATCH} (xi)")
        self.analyze()

    def analyze(self) -> None:
        if self.postgres:
            # A small sample is enough to know the sizes; the default one takes seconds on a million rows.
            self.run("SET LOCAL default_statistics_target = 10")
            for table in (LEDGER, EXPORT, MATCH):
                self.run(f"ANALYZE {table}")
            self.run("RESET default_statistics_target")

    def drop(self) -> None:
        for table in TABLES:
            self.run(f"DROP TABLE IF EXISTS {table}")

    def facts(self) -> set[str]:
        """What the two sides hold, so that passes with nothing to look at are skipped."""
        found = {f"export:{src}" for (src,) in self.run(f"SELECT DISTINCT src FROM {EXPORT}")}
        found |= {
            f"export:{kind}"
            for (kind,) in self.run(f"SELECT 'batch' FROM {EXPORT} WHERE parent IS NOT NULL LIMIT 1")
        }
        found |= {f"ledger:{cls}" for (cls,) in self.run(f"SELECT DISTINCT cls FROM {LEDGER}")}
        found |= {
            "ledger:import_line"
            for _ in self.run(f"SELECT 1 FROM {LEDGER} WHERE import_line_ref <> '' LIMIT 1")
        }
        return found

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
        one item per entry and currency, with its expected cash (treasury movement, else clearing).

        Only the postings on those accounts (and acquirer fees) are summed, per entry; the entries' own
        columns are joined afterwards, by key.
        """
        bounds = self.day.boundaries(self.search_days)
        low, high = to_micros(bounds[0][1]), to_micros(bounds[-1][1])
        day_start, day_end = to_micros(self.day.start), to_micros(self.day.end)
        wanted = ", ".join(f"'{currency}'" for currency in currencies if currency.isalpha())
        # Entries and their postings are both read in key order and merged, so the groups come out in
        # entry order and numbering them needs no sort; the entry's own columns depend on its key.
        result = self.run(f"""
            INSERT INTO {LEDGER} (item, entry_id, kind, cls, currency, cash, treasury, gross, fee, provider,
                consulate, payment_ref, settlement_ref, import_line_ref, effective_at, day, in_day,
                reverses_id)
            SELECT row_number() OVER (ORDER BY s.entry_id, s.currency),
                   s.entry_id, s.kind, {LEDGER_CLASS}, s.currency,
                   CASE WHEN s.treasury <> 0 THEN s.treasury ELSE s.clearing END,
                   s.treasury, -s.clearing, s.fee, s.provider, s.consulate, s.payment_ref, s.settlement_ref,
                   s.import_line_ref, s.effective_at, {self.day_case("s.effective_at")},
                   CASE WHEN s.effective_at >= {day_start} AND s.effective_at < {day_end} THEN 1 ELSE 0 END,
                   s.reverses_id
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
                 GROUP BY e.id, p.currency
              ) s
             WHERE s.treasury <> 0
                OR (s.clearing <> 0 AND s.kind IN ({PAYMENT_EVENTS}))
                OR (s.clearing <> 0 AND s.kind = 'reversal' AND EXISTS (
                    SELECT 1 FROM entries o WHERE o.id = s.reverses_id AND o.kind IN ({PAYMENT_EVENTS})))
        """)
        # Which of them were reversed (at any time): few entries are, and the index on reverses_id finds
        # them without reading every entry.
        self.run(f"""
            UPDATE {LEDGER}
               SET reversed_by = (SELECT r.id FROM entries r WHERE r.reverses_id = {LEDGER}.entry_id)
             WHERE entry_id IN (SELECT reverses_id FROM entries WHERE reverses_id IS NOT NULL)
        """)
        return int(result.rowcount or 0)

    def load_export(self, import_ids: Sequence[int]) -> int:
        """The export side: the lines of the run's imports; a batch entry's details are items of their own."""
        ids = ", ".join(str(int(i)) for i in import_ids) or "NULL"
        categories = ", ".join(f"'{c}'" for c in PAYMENT_CATEGORIES)
        detail_suffix = "CASE WHEN l.detail_no > 0 THEN ':' || CAST(l.detail_no AS TEXT) ELSE '' END"
        result = self.run(f"""
            INSERT INTO {EXPORT} (item, import_id, item_no, parent, is_batch, src, cls, amt, amount, fee,
                currency, reference, batch_reference, batch_key, line_key,
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
                   l.provider, l.booking_day, l.reversal
              FROM recon_import_lines l JOIN recon_imports i ON i.id = l.import_id
             WHERE l.import_id IN ({ids})
        """)
        return int(result.rowcount or 0)
