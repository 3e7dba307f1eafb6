"""E-stamps: stamps (used exactly once), their append-only events, and the signing keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.db.types import UUID

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATUSES = ("issued", "consumed", "refunded", "expired")
FINAL = ("consumed", "refunded", "expired")
PURPOSES = ("stamp", "trust-list", "audit")
# Columns of a stamp that never change once it is issued (only status and status_changed_at move).
STAMP_FIXED = (
    "number",
    "consulate",
    "fee_code",
    "fee_number",
    "amount",
    "currency",
    "schedule_version",
    "channel",
    "provider",
    "payment_ref",
    "entry_id",
    "line_no",
    "case_reference",
    "kid",
    "text",
    "receipt_token_hash",
    "issued_at",
    "expires_at",
)
KEY_FIXED = (
    "kid",
    "purpose",
    "algorithm",
    "public_key",
    "not_before",
    "not_after",
    "created_at",
    "sealed_private_key",
    "label",
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "stamps",
        sa.Column("number", sa.String(17), primary_key=True),
        sa.Column("consulate", sa.String(8), nullable=False),
        sa.Column("fee_code", sa.String(24), nullable=False),
        sa.Column("fee_number", sa.Integer, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("schedule_version", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("payment_ref", sa.String(64), nullable=False),
        sa.Column("entry_id", UUID, nullable=False),
        sa.Column("line_no", sa.SmallInteger, nullable=False),
        sa.Column("case_reference", sa.String(32), nullable=True),
        sa.Column("kid", sa.String(16), nullable=False),
        sa.Column("text", sa.String(220), nullable=False),
        sa.Column("receipt_token_hash", sa.String(64), nullable=False),
        sa.Column("issued_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(10), nullable=False, server_default="issued"),
        sa.Column("status_changed_at", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("receipt_token_hash"),
        sa.CheckConstraint("length(number) = 17", name="number_digits"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("length(currency) = 3", name="currency"),
        sa.CheckConstraint("fee_number BETWEEN 1 AND 65535", name="fee_number"),
        sa.CheckConstraint("schedule_version >= 1", name="schedule_version"),
        sa.CheckConstraint("line_no >= 1", name="line_no"),
        sa.CheckConstraint(_in("channel", ("online", "counter")), name="channel"),
        sa.CheckConstraint(_in("status", STATUSES), name="status"),
        sa.CheckConstraint("expires_at > issued_at", name="validity"),
        sa.CheckConstraint("length(receipt_token_hash) = 64", name="receipt_token_hash"),
        sa.CheckConstraint("text LIKE 'ET1:%'", name="text_prefix"),
        sa.CheckConstraint(
            "(status = 'issued') = (status_changed_at IS NULL)", name="status_changed_when_final"
        ),
    )
    op.create_index("ix_stamps_payment_ref", "stamps", ["payment_ref"])
    op.create_index("ix_stamps_entry_id", "stamps", ["entry_id"])
    op.create_index("ix_stamps_status_expires_at", "stamps", ["status", "expires_at"])
    op.create_table(
        "stamp_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("number", sa.String(17), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("consulate", sa.String(8), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("entry_id", UUID, nullable=True),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.CheckConstraint(_in("kind", STATUSES), name="kind"),
        sa.CheckConstraint("kind = 'issued' OR entry_id IS NOT NULL", name="final_has_entry"),
    )
    op.create_index("ix_stamp_events_number", "stamp_events", ["number"])
    # The database itself keeps a stamp to one end: consumed, refunded or expired, once.
    op.create_index(
        "uq_stamp_events_final",
        "stamp_events",
        ["number"],
        unique=True,
        sqlite_where=sa.text("kind <> 'issued'"),
        postgresql_where=sa.text("kind <> 'issued'"),
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(16), primary_key=True),
        sa.Column("purpose", sa.String(12), nullable=False),
        sa.Column("algorithm", sa.SmallInteger, nullable=False),
        sa.Column("public_key", sa.LargeBinary, nullable=False),
        sa.Column("not_before", sa.BigInteger, nullable=False),
        sa.Column("not_after", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("retired_at", sa.BigInteger, nullable=True),
        sa.Column("sealed_private_key", sa.LargeBinary, nullable=True),
        sa.Column("label", sa.String(100), nullable=False, server_default=""),
        sa.CheckConstraint("length(kid) = 16", name="kid"),
        sa.CheckConstraint(_in("purpose", PURPOSES), name="purpose"),
        sa.CheckConstraint("algorithm IN (-7, -8)", name="algorithm"),
        sa.CheckConstraint("not_after > not_before", name="validity"),
        sa.CheckConstraint(
            "(status = 'active' AND retired_at IS NULL) OR (status = 'retired' AND retired_at IS NOT NULL)",
            name="retired_when",
        ),
    )
    if dialect == "postgresql":
        _postgresql_guards()
    else:
        _sqlite_guards()


def _changed(columns: tuple[str, ...], *, postgresql: bool) -> str:
    operator = "IS DISTINCT FROM" if postgresql else "IS NOT"
    return " OR ".join(f"NEW.{c} {operator} OLD.{c}" for c in columns)


def _postgresql_guards() -> None:
    op.execute(f"""
        CREATE FUNCTION etimbre_stamp_transition() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF OLD.status <> 'issued' OR NEW.status NOT IN ({", ".join(repr(s) for s in FINAL)}) THEN
                RAISE EXCEPTION 'etimbre: stamp % is % and cannot become %', OLD.number, OLD.status, NEW.status
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            IF {_changed(STAMP_FIXED, postgresql=True)} THEN
                RAISE EXCEPTION 'etimbre: stamp %: only its status changes once issued', OLD.number
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$;

        CREATE FUNCTION etimbre_key_retirement() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF OLD.status <> 'active' OR NEW.status <> 'retired' OR {_changed(KEY_FIXED, postgresql=True)} THEN
                RAISE EXCEPTION 'etimbre: signing key %: the only change allowed is active to retired', OLD.kid
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$;

        CREATE TRIGGER stamps_transition BEFORE UPDATE ON stamps
            FOR EACH ROW EXECUTE FUNCTION etimbre_stamp_transition();
        CREATE TRIGGER signing_keys_retirement BEFORE UPDATE ON signing_keys
            FOR EACH ROW EXECUTE FUNCTION etimbre_key_retirement();
        CREATE TRIGGER stamp_events_append_only BEFORE UPDATE ON stamp_events
            FOR EACH ROW EXECUTE FUNCTION etimbre_append_only();
    """)
    for table in ("stamps", "stamp_events", "signing_keys"):
        op.execute(f"""
            CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION etimbre_append_only();
            CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION etimbre_append_only();
        """)


def _sqlite_guards() -> None:
    final = ", ".join(repr(s) for s in FINAL)
    op.execute(f"""
        CREATE TRIGGER stamps_transition BEFORE UPDATE ON stamps
        WHEN OLD.status <> 'issued' OR NEW.status NOT IN ({final}) OR {_changed(STAMP_FIXED, postgresql=False)}
        BEGIN SELECT RAISE(ABORT, 'etimbre: a stamp only moves once, from issued to consumed, refunded or expired; nothing else of it changes'); END
    """)
    op.execute(f"""
        CREATE TRIGGER signing_keys_retirement BEFORE UPDATE ON signing_keys
        WHEN OLD.status <> 'active' OR NEW.status <> 'retired' OR {_changed(KEY_FIXED, postgresql=False)}
        BEGIN SELECT RAISE(ABORT, 'etimbre: signing key: the only change allowed is active to retired'); END
    """)
    op.execute("""
        CREATE TRIGGER stamp_events_no_update BEFORE UPDATE ON stamp_events
        BEGIN SELECT RAISE(ABORT, 'etimbre: stamp_events is append-only; UPDATE refused'); END
    """)
    for table in ("stamps", "stamp_events", "signing_keys"):
        op.execute(f"""
            CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
            BEGIN SELECT RAISE(ABORT, 'etimbre: {table} is append-only; DELETE refused'); END
        """)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in ("signing_keys", "stamp_events", "stamps"):
        op.drop_table(table)  # dropping a table drops its triggers on both engines
    if dialect == "postgresql":
        op.execute("DROP FUNCTION etimbre_key_retirement(); DROP FUNCTION etimbre_stamp_transition();")
