"""Reconciliation: imported files and lines, runs, matches, exceptions and resolutions, and their guards.

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.db.types import UUID

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None

IMPORT_STATUSES = ("importing", "imported", "quarantined", "rejected")
SOURCES = ("treasury_csv", "treasury_xlsx", "camt053", "mt940", "settlement")
CATEGORIES = (
    "missing_in_ledger",
    "missing_in_export",
    "amount_mismatch",
    "duplicate",
    "timing",
    "currency_mismatch",
    "reversed",
    "ambiguous",
    "balance",
)
PASSES = ("resolved", "exact", "aggregate", "window", "tolerance", "ledger")
ACTIONS = ("match", "post", "approve", "reject")
RESOLUTION_STATUSES = ("done", "pending_approval")
# Written once and never changed (recon_imports has its own rule: one change, out of `importing`).
APPEND_ONLY = (
    "recon_import_statements",
    "recon_import_lines",
    "recon_import_errors",
    "recon_runs",
    "recon_run_imports",
    "recon_matches",
    "recon_exceptions",
    "recon_resolutions",
)
TABLES = ("recon_imports", *APPEND_ONLY)

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
        "recon_imports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False, server_default=""),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("profile", sa.String(80), nullable=False, server_default=""),
        sa.Column("profile_digest", sa.String(64), nullable=False, server_default=""),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("flags", sa.JSON, nullable=False),
        sa.Column("last_sequences", sa.JSON, nullable=False),
        sa.Column("line_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("currencies", sa.String(64), nullable=False, server_default=""),
        sa.Column("first_day", sa.Integer, nullable=True),
        sa.Column("last_day", sa.Integer, nullable=True),
        sa.Column("imported_at", sa.BigInteger, nullable=False, server_default=now),
        sa.Column("imported_by", sa.String(100), nullable=False, server_default=""),
        sa.CheckConstraint(_in("status", IMPORT_STATUSES), name="status"),
        sa.CheckConstraint(_in("source", SOURCES), name="source"),
        sa.CheckConstraint("length(sha256) = 64", name="sha256"),
        sa.CheckConstraint("status <> 'quarantined' OR line_count = 0", name="quarantine_keeps_no_lines"),
        sa.CheckConstraint("status <> 'rejected' OR (line_count = 0 AND error_count > 0)", name="rejected"),
    )
    op.create_index(
        "uq_recon_imports_sha256",
        "recon_imports",
        ["sha256"],
        unique=True,
        sqlite_where=sa.text("status <> 'rejected'"),
        postgresql_where=sa.text("status <> 'rejected'"),
    )
    op.create_table(
        "recon_import_statements",
        sa.Column("import_id", sa.Integer, sa.ForeignKey("recon_imports.id"), primary_key=True),
        sa.Column("statement_index", sa.Integer, primary_key=True),
        sa.Column("line_number", sa.Integer, nullable=False),
        sa.Column("statement_id", sa.String(140), nullable=False, server_default=""),
        sa.Column("account", sa.String(70), nullable=False, server_default=""),
        sa.Column("seq_number", sa.Integer, nullable=True),
        sa.Column("seq_page", sa.Integer, nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("opening_minor", sa.BigInteger, nullable=True),
        sa.Column("opening_day", sa.Integer, nullable=True),
        sa.Column("closing_minor", sa.BigInteger, nullable=True),
        sa.Column("closing_day", sa.Integer, nullable=True),
        sa.Column("line_count", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_recon_import_statements_account", "recon_import_statements", ["account"])
    op.create_table(
        "recon_import_lines",
        sa.Column("import_id", sa.Integer, primary_key=True),
        sa.Column("item_no", sa.Integer, primary_key=True),
        sa.Column("parent_no", sa.Integer, nullable=True),
        sa.Column("detail_no", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("is_batch", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("line_number", sa.Integer, nullable=False),
        sa.Column("statement_index", sa.Integer, nullable=False, server_default="1"),
        sa.Column("entry_index", sa.Integer, nullable=True),
        sa.Column("booking_day", sa.Integer, nullable=False),
        sa.Column("value_day", sa.Integer, nullable=True),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("gross", sa.BigInteger, nullable=True),
        sa.Column("fee", sa.BigInteger, nullable=True),
        sa.Column("category", sa.String(24), nullable=False, server_default=""),
        sa.Column("provider", sa.String(40), nullable=False, server_default=""),
        sa.Column("reference", sa.String(140), nullable=False, server_default=""),
        sa.Column("batch_reference", sa.String(140), nullable=False, server_default=""),
        sa.Column("entry_reference", sa.String(140), nullable=False, server_default=""),
        sa.Column("counterparty", sa.Text, nullable=False, server_default=""),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("reversal", sa.SmallInteger, nullable=False, server_default="0"),
        sa.CheckConstraint("length(currency) = 3", name="currency"),
        sa.CheckConstraint("(parent_no IS NULL) = (detail_no = 0)", name="detail_has_parent"),
        sa.CheckConstraint("is_batch IN (0, 1) AND reversal IN (0, 1)", name="flags"),
    )
    op.create_index("ix_recon_import_lines_reference", "recon_import_lines", ["reference"])
    op.create_index("ix_recon_import_lines_batch_reference", "recon_import_lines", ["batch_reference"])
    op.create_table(
        "recon_import_errors",
        sa.Column("import_id", sa.Integer, sa.ForeignKey("recon_imports.id"), primary_key=True),
        sa.Column("error_no", sa.Integer, primary_key=True),
        sa.Column("line", sa.Integer, nullable=True),
        sa.Column("column", sa.Text, nullable=True),
        sa.Column("problem", sa.Text, nullable=False),
    )
    op.create_table(
        "recon_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("business_day", sa.String(10), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("day_start", sa.BigInteger, nullable=False),
        sa.Column("day_end", sa.BigInteger, nullable=False),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("balances", sa.JSON, nullable=False),
        sa.Column("engine_version", sa.String(40), nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=False),
        sa.Column("timings", sa.JSON, nullable=False),
        sa.Column("started_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("match_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("exception_count", sa.Integer, nullable=False, server_default="0"),
        sa.CheckConstraint("day_start < day_end", name="day"),
        sa.CheckConstraint("started_at <= finished_at", name="timing"),
    )
    op.create_index("ix_recon_runs_business_day", "recon_runs", ["business_day", "scope", "id"])
    op.create_table(
        "recon_run_imports",
        sa.Column("run_id", sa.Integer, primary_key=True),
        sa.Column("import_id", sa.Integer, sa.ForeignKey("recon_imports.id"), primary_key=True),
    )
    op.create_table(
        "recon_matches",
        sa.Column("run_id", sa.Integer, primary_key=True),
        sa.Column("match_no", sa.Integer, primary_key=True),
        sa.Column("member_no", sa.Integer, primary_key=True),
        sa.Column("pass", sa.String(12), nullable=False),
        sa.Column("rule", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("entry_id", UUID, nullable=True),
        sa.Column("import_id", sa.Integer, nullable=True),
        sa.Column("item_no", sa.Integer, nullable=True),
        sa.Column("ledger_amount", sa.BigInteger, nullable=True),
        sa.Column("export_amount", sa.BigInteger, nullable=True),
        sa.Column("rounding_entry_id", UUID, nullable=True),
        sa.CheckConstraint(_in('"pass"', PASSES), name="pass"),
        sa.CheckConstraint("entry_id IS NOT NULL OR import_id IS NOT NULL", name="member"),
        sa.CheckConstraint("(import_id IS NULL) = (item_no IS NULL)", name="line"),
    )
    op.create_index("ix_recon_matches_entry_id", "recon_matches", ["entry_id"])
    op.create_index("ix_recon_matches_line", "recon_matches", ["import_id", "item_no"])
    op.create_table(
        "recon_exceptions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "run_id",
            sa.Integer,
            sa.ForeignKey("recon_runs.id", deferrable=True, initially="DEFERRED"),
            nullable=False,
        ),
        sa.Column("category", sa.String(20), nullable=False),
        sa.Column("business_day", sa.String(10), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("entry_id", UUID, nullable=True),
        sa.Column("import_id", sa.Integer, nullable=True),
        sa.Column("item_no", sa.Integer, nullable=True),
        sa.Column("ledger_amount", sa.BigInteger, nullable=True),
        sa.Column("export_amount", sa.BigInteger, nullable=True),
        sa.Column("reference", sa.String(140), nullable=False, server_default=""),
        sa.Column("cash_role", sa.String(16), nullable=False, server_default=""),
        sa.Column("provider", sa.String(40), nullable=False, server_default=""),
        sa.Column("consulate", sa.String(8), nullable=False, server_default=""),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.CheckConstraint(_in("category", CATEGORIES), name="category"),
        sa.CheckConstraint("(import_id IS NULL) = (item_no IS NULL)", name="line"),
        sa.CheckConstraint(
            "category = 'balance' OR entry_id IS NOT NULL OR import_id IS NOT NULL", name="has_item"
        ),
    )
    op.create_index("ix_recon_exceptions_run_id", "recon_exceptions", ["run_id", "category"])
    op.create_index("ix_recon_exceptions_entry_id", "recon_exceptions", ["entry_id"])
    op.create_index("ix_recon_exceptions_line", "recon_exceptions", ["import_id", "item_no"])
    op.create_table(
        "recon_resolutions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("exception_id", sa.Integer, sa.ForeignKey("recon_exceptions.id"), nullable=False),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False, server_default=now),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("account", sa.String(160), nullable=False, server_default=""),
        sa.Column("currency", sa.String(3), nullable=False, server_default=""),
        sa.Column("amount", sa.BigInteger, nullable=True),
        sa.Column("matched_entry_id", UUID, nullable=True),
        sa.Column("matched_import_id", sa.Integer, nullable=True),
        sa.Column("matched_item_no", sa.Integer, nullable=True),
        sa.Column("decides_id", sa.Integer, sa.ForeignKey("recon_resolutions.id"), nullable=True),
        sa.Column("entry_ids", sa.JSON, nullable=False),
        sa.UniqueConstraint("decides_id"),
        sa.CheckConstraint(_in("action", ACTIONS), name="action"),
        sa.CheckConstraint(_in("status", RESOLUTION_STATUSES), name="status"),
        sa.CheckConstraint("length(trim(reason)) > 0", name="reason_given"),
        sa.CheckConstraint("length(trim(actor)) > 0", name="actor_given"),
        sa.CheckConstraint(
            "(action IN ('approve', 'reject')) = (decides_id IS NOT NULL)", name="decision_names_resolution"
        ),
        sa.CheckConstraint("action IN ('match', 'post') OR status = 'done'", name="decisions_are_final"),
    )
    op.create_index("ix_recon_resolutions_exception_id", "recon_resolutions", ["exception_id"])
    if dialect == "postgresql":
        _postgresql_guards()
    else:
        _sqlite_guards()


def _postgresql_guards() -> None:
    op.execute("""
        CREATE FUNCTION etimbre_recon_import_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' OR OLD.status <> 'importing' OR NEW.id <> OLD.id OR NEW.sha256 <> OLD.sha256 THEN
                RAISE EXCEPTION 'etimbre: a recorded import never changes; % refused', TG_OP
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$;

        CREATE TRIGGER recon_imports_recorded BEFORE UPDATE OR DELETE ON recon_imports
            FOR EACH ROW EXECUTE FUNCTION etimbre_recon_import_change();

        CREATE FUNCTION etimbre_recon_decision() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE decided recon_resolutions%ROWTYPE;
        BEGIN
            IF NEW.decides_id IS NULL THEN
                RETURN NEW;
            END IF;
            SELECT * INTO decided FROM recon_resolutions WHERE id = NEW.decides_id;
            IF decided.status <> 'pending_approval' THEN
                RAISE EXCEPTION 'etimbre: resolution % does not wait for approval', NEW.decides_id
                    USING ERRCODE = 'check_violation';
            END IF;
            IF decided.actor = NEW.actor THEN
                RAISE EXCEPTION 'etimbre: resolution % must be decided by another auditor than %', NEW.decides_id, NEW.actor
                    USING ERRCODE = 'check_violation';
            END IF;
            RETURN NEW;
        END $$;

        CREATE TRIGGER recon_resolutions_decision BEFORE INSERT ON recon_resolutions
            FOR EACH ROW EXECUTE FUNCTION etimbre_recon_decision();
        CREATE TRIGGER recon_imports_no_truncate BEFORE TRUNCATE ON recon_imports
            FOR EACH STATEMENT EXECUTE FUNCTION etimbre_append_only();
    """)
    for table in APPEND_ONLY:
        # etimbre_append_only() comes with the ledger's migration (0001), which this one follows.
        op.execute(f"""
            CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION etimbre_append_only();
            CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION etimbre_append_only();
        """)


def _sqlite_guards() -> None:
    for table in APPEND_ONLY:
        for operation in ("UPDATE", "DELETE"):
            op.execute(f"""
                CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table}
                BEGIN SELECT RAISE(ABORT, 'etimbre: {table} is append-only; {operation} refused'); END
            """)
    op.execute("""
        CREATE TRIGGER recon_imports_recorded BEFORE UPDATE ON recon_imports
        WHEN OLD.status <> 'importing' OR NEW.id <> OLD.id OR NEW.sha256 <> OLD.sha256
        BEGIN SELECT RAISE(ABORT, 'etimbre: a recorded import never changes; UPDATE refused'); END
    """)
    op.execute("""
        CREATE TRIGGER recon_imports_no_delete BEFORE DELETE ON recon_imports
        BEGIN SELECT RAISE(ABORT, 'etimbre: a recorded import never changes; DELETE refused'); END
    """)
    op.execute("""
        CREATE TRIGGER recon_resolutions_decision BEFORE INSERT ON recon_resolutions
        WHEN NEW.decides_id IS NOT NULL
        BEGIN
            SELECT RAISE(ABORT, 'etimbre: that resolution does not wait for approval')
             WHERE (SELECT status FROM recon_resolutions WHERE id = NEW.decides_id) IS NOT 'pending_approval';
            SELECT RAISE(ABORT, 'etimbre: a resolution must be decided by another auditor than the one who made it')
             WHERE (SELECT actor FROM recon_resolutions WHERE id = NEW.decides_id) = NEW.actor;
        END
    """)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in reversed(TABLES):
        op.drop_table(table)  # dropping a table drops its triggers on both engines
    if dialect == "postgresql":
        op.execute("""
            DROP FUNCTION etimbre_recon_decision();
            DROP FUNCTION etimbre_recon_import_change();
        """)
