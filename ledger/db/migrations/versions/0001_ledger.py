"""The double-entry ledger: accounts, entries, postings, balance checkpoints, API keys, and their guards.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.db.types import UUID

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ENTRY_KINDS = (
    "payment_captured",
    "stamp_consumed",
    "stamp_refunded",
    "stamp_expired",
    "settlement",
    "chargeback",
    "reconciliation",
    "adjustment",
    "reversal",
)
ACCOUNT_TYPES = ("asset", "liability", "revenue", "expense", "equity")
ROLES = ("cashier", "auditor", "admin")
APPEND_ONLY = (
    "accounts",
    "entries",
    "postings",
    "idempotency_keys",
    "balance_keys",
    "balance_checkpoints",
    "checkpoint_cuts",
)
# Taken shared by every entry insert and exclusively by a checkpoint cut (PostgreSQL): a cut waits for
# entries in flight and entries wait for a cut, so a checkpoint never misses a late-committing entry.
CUT_LOCK = 0x45544D42  # "ETMB"

NOW_MICROS = {
    "postgresql": "(extract(epoch FROM transaction_timestamp()) * 1000000)::bigint",
    "sqlite": "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)",
}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    now = sa.text(f"({NOW_MICROS[dialect]})")

    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(160), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("type", sa.String(10), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("provider", sa.String(40), nullable=False, server_default=""),
        sa.Column("consulate", sa.String(8), nullable=False, server_default=""),
        sa.Column("fee_code", sa.String(24), nullable=False, server_default=""),
        sa.Column("opened_at", sa.BigInteger, nullable=False, server_default=now),
        sa.UniqueConstraint("code"),
        sa.CheckConstraint(_in("type", ACCOUNT_TYPES), name="type"),
        sa.CheckConstraint("length(currency) = 3", name="currency"),
    )
    op.create_table(
        "entries",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("consulate", sa.String(8), nullable=False, server_default=""),
        sa.Column("effective_at", sa.BigInteger, nullable=False),
        sa.Column("recorded_at", sa.BigInteger, nullable=False, server_default=now),
        sa.Column("posting_count", sa.SmallInteger, nullable=False),
        sa.Column("payment_ref", sa.String(64), nullable=False, server_default=""),
        sa.Column("stamp_ref", sa.String(32), nullable=False, server_default=""),
        sa.Column("settlement_ref", sa.String(64), nullable=False, server_default=""),
        sa.Column("import_line_ref", sa.String(64), nullable=False, server_default=""),
        sa.Column("memo", sa.JSON, nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("actor", sa.String(64), nullable=False, server_default=""),
        sa.Column("reverses_id", UUID, sa.ForeignKey("entries.id"), nullable=True),
        sa.UniqueConstraint("reverses_id"),
        sa.CheckConstraint(_in("kind", ENTRY_KINDS), name="kind"),
        sa.CheckConstraint("posting_count BETWEEN 2 AND 1000", name="posting_count"),
        sa.CheckConstraint("effective_at <= recorded_at + 300000000", name="not_future_dated"),
        sa.CheckConstraint(
            "(kind = 'reversal' AND reverses_id IS NOT NULL) OR (kind <> 'reversal' AND reverses_id IS NULL)",
            name="reversal_link",
        ),
        sa.CheckConstraint(
            "kind NOT IN ('adjustment', 'reversal', 'reconciliation') OR length(trim(reason)) > 0",
            name="reason_given",
        ),
    )
    op.create_index("ix_entries_effective_at", "entries", ["effective_at"])
    op.create_index("ix_entries_payment_ref", "entries", ["payment_ref"])
    op.create_index("ix_entries_stamp_ref", "entries", ["stamp_ref"])
    op.create_table(
        "postings",
        sa.Column(
            "entry_id",
            UUID,
            sa.ForeignKey("entries.id", deferrable=True, initially="DEFERRED"),
            primary_key=True,
        ),
        sa.Column("line_no", sa.SmallInteger, primary_key=True),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("effective_at", sa.BigInteger, nullable=False),
        sa.Column("consulate", sa.String(8), nullable=False, server_default=""),
        sa.Column("fee_code", sa.String(24), nullable=False, server_default=""),
        sa.CheckConstraint("amount <> 0", name="amount_not_zero"),
        sa.CheckConstraint("line_no >= 1", name="line_no"),
    )
    if dialect == "postgresql":
        op.create_index(
            "ix_postings_balance",
            "postings",
            ["account_id", "effective_at"],
            postgresql_include=["amount", "consulate", "fee_code"],
        )
    else:
        # SQLite has no INCLUDE: the extra columns make the same index covering.
        op.create_index(
            "ix_postings_balance",
            "postings",
            ["account_id", "effective_at", "amount", "consulate", "fee_code"],
        )
    # An idempotency key is claimed first thing in the unit of work (INSERT .. ON CONFLICT DO NOTHING): a
    # concurrent duplicate waits on the key, then finds it taken and answers with the first entry.
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(160), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column(
            "entry_id",
            UUID,
            sa.ForeignKey("entries.id", deferrable=True, initially="DEFERRED"),
            nullable=False,
        ),
        sa.Column("claimed_at", sa.BigInteger, nullable=False, server_default=now),
        sa.CheckConstraint("length(request_hash) = 64", name="request_hash"),
    )
    op.create_table(
        "balance_keys",
        sa.Column("account_id", sa.Integer, primary_key=True),
        sa.Column("consulate", sa.String(8), primary_key=True),
        sa.Column("fee_code", sa.String(24), primary_key=True),
    )
    op.create_table(
        "balance_checkpoints",
        sa.Column("account_id", sa.Integer, primary_key=True),
        sa.Column("consulate", sa.String(8), primary_key=True),
        sa.Column("fee_code", sa.String(24), primary_key=True),
        sa.Column("as_of", sa.BigInteger, primary_key=True),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.Column("posting_count", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "checkpoint_cuts",
        sa.Column("as_of", sa.BigInteger, primary_key=True),
        sa.Column("made_at", sa.BigInteger, nullable=False, server_default=now),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("consulate", sa.String(8), nullable=False, server_default=""),
        sa.Column("label", sa.String(100), nullable=False, server_default=""),
        sa.Column("created_at", sa.BigInteger, nullable=False, server_default=now),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("prefix"),
        sa.CheckConstraint(_in("role", ROLES), name="role"),
        sa.CheckConstraint(
            "(role = 'cashier' AND consulate <> '') OR (role <> 'cashier' AND consulate = '')",
            name="cashier_consulate",
        ),
    )
    if dialect == "postgresql":
        _postgresql_guards()
    else:
        _sqlite_guards()


def _postgresql_guards() -> None:
    # Statement-level triggers over transition tables: a batch of 100 entries is checked with a handful of
    # set-based queries instead of a trigger call per row.
    op.execute(f"""
        CREATE FUNCTION etimbre_now_micros() RETURNS bigint LANGUAGE sql STABLE
        AS $$ SELECT {NOW_MICROS["postgresql"]} $$;

        CREATE FUNCTION etimbre_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'etimbre: % is append-only; % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'integrity_constraint_violation';
        END $$;

        CREATE FUNCTION etimbre_entries_check() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE closed bigint; bad uuid; detail text;
        BEGIN
            SELECT id INTO bad FROM new_entries WHERE recorded_at <> etimbre_now_micros() LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'etimbre: entry %: recorded_at is set by the database, not by the caller', bad
                    USING ERRCODE = 'check_violation';
            END IF;
            -- A cut waits for entries in flight, and an entry waits for a cut in flight.
            PERFORM pg_advisory_xact_lock_shared({CUT_LOCK});
            SELECT max(as_of) INTO closed FROM checkpoint_cuts;
            SELECT id INTO bad FROM new_entries WHERE effective_at <= closed LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'etimbre: the books are closed through % (microseconds since 1970); '
                    'entry % is dated before that, date a correcting entry later', closed, bad
                    USING ERRCODE = 'check_violation';
            END IF;
            SELECT e.id, format('declares %s postings but has %s', e.posting_count, coalesce(c.found, 0))
              INTO bad, detail
              FROM new_entries e
              LEFT JOIN (SELECT p.entry_id, count(*) AS found FROM postings p
                          WHERE p.entry_id IN (SELECT id FROM new_entries) GROUP BY p.entry_id) c
                     ON c.entry_id = e.id
             WHERE coalesce(c.found, 0) <> e.posting_count LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'etimbre: entry % %', bad, detail USING ERRCODE = 'check_violation';
            END IF;
            SELECT e.id INTO bad
              FROM new_entries e JOIN postings p ON p.entry_id = e.id LEFT JOIN accounts a ON a.id = p.account_id
             WHERE a.id IS NULL OR a.currency <> p.currency
                OR p.effective_at <> e.effective_at OR p.consulate <> e.consulate
             LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'etimbre: entry %: a posting names an unknown account, a currency other than '
                    'its account''s, or a time or consulate other than its entry''s', bad
                    USING ERRCODE = 'check_violation';
            END IF;
            SELECT p.entry_id INTO bad
              FROM postings p WHERE p.entry_id IN (SELECT id FROM new_entries)
             GROUP BY p.entry_id, p.currency HAVING sum(p.amount) <> 0 LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'etimbre: entry % is not balanced per currency', bad
                    USING ERRCODE = 'check_violation';
            END IF;
            SELECT r.id INTO bad FROM new_entries r
             WHERE r.reverses_id IS NOT NULL AND EXISTS (
                SELECT 1 FROM (
                    SELECT account_id, currency, fee_code, amount FROM postings WHERE entry_id = r.id
                    UNION ALL
                    SELECT account_id, currency, fee_code, amount FROM postings WHERE entry_id = r.reverses_id
                ) both_sides GROUP BY account_id, currency, fee_code HAVING sum(amount) <> 0)
             LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'etimbre: reversal % does not exactly undo the entry it reverses', bad
                    USING ERRCODE = 'check_violation';
            END IF;
            RETURN NULL;
        END $$;

        CREATE FUNCTION etimbre_postings_check() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE bad uuid;
        BEGIN
            -- Postings come before their entry: one whose entry already exists is being slipped in.
            SELECT p.entry_id INTO bad FROM new_postings p JOIN entries e ON e.id = p.entry_id LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'etimbre: entry % is already recorded; postings cannot be added to it', bad
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NULL;
        END $$;

        CREATE TRIGGER entries_check AFTER INSERT ON entries
            REFERENCING NEW TABLE AS new_entries
            FOR EACH STATEMENT EXECUTE FUNCTION etimbre_entries_check();
        CREATE TRIGGER postings_check AFTER INSERT ON postings
            REFERENCING NEW TABLE AS new_postings
            FOR EACH STATEMENT EXECUTE FUNCTION etimbre_postings_check();
    """)
    for table in APPEND_ONLY:
        op.execute(f"""
            CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION etimbre_append_only();
            CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION etimbre_append_only();
        """)


def _sqlite_guards() -> None:
    now = NOW_MICROS["sqlite"]
    for table in APPEND_ONLY:
        for operation in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table}
                BEGIN SELECT RAISE(ABORT, 'etimbre: {table} is append-only; {operation} refused'); END
            """)
    op.execute(f"""
        CREATE TRIGGER entries_recorded_now BEFORE INSERT ON entries
        WHEN abs(NEW.recorded_at - {now}) > 5000000
        BEGIN SELECT RAISE(ABORT, 'etimbre: recorded_at is set by the database, not by the caller'); END
    """)
    op.execute("""
        CREATE TRIGGER entries_closed_period BEFORE INSERT ON entries
        WHEN NEW.effective_at <= (SELECT max(as_of) FROM checkpoint_cuts)
        BEGIN SELECT RAISE(ABORT, 'etimbre: the books are closed through that instant; an entry dated then cannot be posted, date a correcting entry later'); END
    """)
    op.execute("""
        CREATE TRIGGER entries_check AFTER INSERT ON entries
        BEGIN
            SELECT RAISE(ABORT, 'etimbre: entry declares another number of postings than it has')
             WHERE (SELECT count(*) FROM postings WHERE entry_id = NEW.id) <> NEW.posting_count;
            SELECT RAISE(ABORT, 'etimbre: a posting names an unknown account, a currency other than its account''s, or a time or consulate other than its entry''s')
             WHERE EXISTS (
                SELECT 1 FROM postings p LEFT JOIN accounts a ON a.id = p.account_id
                 WHERE p.entry_id = NEW.id
                   AND (a.id IS NULL OR a.currency <> p.currency
                        OR p.effective_at <> NEW.effective_at OR p.consulate <> NEW.consulate));
            SELECT RAISE(ABORT, 'etimbre: entry is not balanced per currency')
             WHERE EXISTS (SELECT 1 FROM postings WHERE entry_id = NEW.id GROUP BY currency HAVING sum(amount) <> 0);
            SELECT RAISE(ABORT, 'etimbre: a reversal must exactly undo the entry it reverses')
             WHERE NEW.reverses_id IS NOT NULL AND EXISTS (
                SELECT 1 FROM (
                    SELECT account_id, currency, fee_code, amount FROM postings WHERE entry_id = NEW.id
                    UNION ALL
                    SELECT account_id, currency, fee_code, amount FROM postings WHERE entry_id = NEW.reverses_id
                ) GROUP BY account_id, currency, fee_code HAVING sum(amount) <> 0);
        END
    """)
    op.execute("""
        CREATE TRIGGER postings_entry_open BEFORE INSERT ON postings
        WHEN EXISTS (SELECT 1 FROM entries WHERE id = NEW.entry_id)
        BEGIN SELECT RAISE(ABORT, 'etimbre: that entry is already recorded; postings cannot be added to it'); END
    """)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in (
        "api_keys",
        "checkpoint_cuts",
        "balance_checkpoints",
        "balance_keys",
        "idempotency_keys",
        "postings",
        "entries",
        "accounts",
    ):
        op.drop_table(table)  # dropping a table drops its triggers on both engines
    if dialect == "postgresql":
        op.execute("""
            DROP FUNCTION etimbre_postings_check();
            DROP FUNCTION etimbre_entries_check();
            DROP FUNCTION etimbre_append_only();
            DROP FUNCTION etimbre_now_micros();
        """)
