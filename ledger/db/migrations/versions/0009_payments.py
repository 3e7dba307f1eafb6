"""Payments: payments, their attempts (one provider call each) and the provider events applied to them.

States only move forward: the edges below are those of ledger.domain.payments, written out here so that
the migration never changes with the code; a trigger on each engine refuses any other change of state,
and a payment's identity (reference, consulate, fees, amount, variant, channel) never changes.
Provider events are append-only. A counter terminal holds at most one sale in flight (partial unique
index). Refunds, disputes and settlement add their own tables on top (0011) and use the refunded /
disputed columns and states already here.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.db.types import UUID

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

PAYMENT_STATES = (
    "created",
    "pending",
    "authorized",
    "captured",
    "partially_refunded",
    "refunded",
    "failed",
    "canceled",
    "expired",
    "unknown",
    "disputed",
    "charged_back",
    "parked",
)
_OPEN = ("created", "pending", "unknown", "authorized")
_CLOSED = ("failed", "canceled", "expired")
PAYMENT_EDGES = tuple(
    sorted(
        {
            ("created", "pending"),
            ("created", "unknown"),
            ("unknown", "pending"),
            *((s, "authorized") for s in ("created", "pending", "unknown")),
            *((s, "captured") for s in _OPEN),
            *((s, c) for s in _OPEN for c in _CLOSED),
            *((s, "parked") for s in _OPEN),
            *((s, "parked") for s in _CLOSED),
            ("parked", "captured"),
            ("parked", "refunded"),
            ("parked", "failed"),
            ("parked", "canceled"),
            ("parked", "expired"),
            ("captured", "partially_refunded"),
            ("captured", "refunded"),
            ("partially_refunded", "refunded"),
            ("captured", "disputed"),
            ("partially_refunded", "disputed"),
            ("disputed", "captured"),
            ("disputed", "partially_refunded"),
            ("disputed", "charged_back"),
        }
    )
)
ATTEMPT_STATES = ("prepared", "dispatched", "succeeded", "declined", "unknown")
ATTEMPT_EDGES = (
    ("prepared", "dispatched"),
    ("prepared", "succeeded"),
    ("prepared", "declined"),
    ("prepared", "unknown"),
    ("dispatched", "succeeded"),
    ("dispatched", "declined"),
    ("dispatched", "unknown"),
    ("unknown", "succeeded"),
    ("unknown", "declined"),
)
ATTEMPT_KINDS = ("create", "capture", "void", "refund", "status")
EVENT_OUTCOMES = ("applied", "ignored", "parked", "unplaced")
IN_FLIGHT = ("created", "pending", "authorized", "unknown")
PAYMENT_FIXED = (
    "id",
    "reference",
    "consulate",
    "fee_codes",
    "amount",
    "currency",
    "priced_at",
    "channel",
    "variant",
    "provider",
    "terminal_id",
    "created_at",
)
ATTEMPT_FIXED = ("id", "payment_id", "kind", "idempotency_key", "amount", "operation_reference", "created_at")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _edges(old: str, new: str, edges: tuple[tuple[str, str], ...]) -> str:
    pairs = ", ".join(repr(f"{a}>{b}") for a, b in edges)
    return f"({old} || '>' || {new}) IN ({pairs})"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "payments",
        sa.Column("id", UUID, primary_key=True),  # random (uuid4): the citizen's status link names it
        sa.Column("reference", sa.String(64), nullable=False),  # ours; the gateway's order id
        sa.Column("consulate", sa.String(8), nullable=False),
        sa.Column("fee_codes", sa.String(500), nullable=False),  # comma-separated, one stamp each
        sa.Column("amount", sa.BigInteger, nullable=False),  # minor units
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("priced_at", sa.BigInteger, nullable=False),  # the fee schedule's instant
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("variant", sa.String(40), nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("terminal_id", sa.String(40), nullable=True),
        sa.Column("cashier", sa.String(64), nullable=True),
        sa.Column("state", sa.String(20), nullable=False, server_default="created"),
        sa.Column("provider_reference", sa.String(255), nullable=True),
        sa.Column("captured_amount", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("refunded_amount", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("disputed_amount", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("entry_id", UUID, nullable=True),  # the payment_captured entry: the receipt link
        sa.Column("captured_at", sa.BigInteger, nullable=True),
        sa.Column("parked_reason", sa.Text, nullable=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),  # abandoned after this
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("reference"),
        sa.CheckConstraint(_in("state", PAYMENT_STATES), name="state"),
        sa.CheckConstraint(_in("channel", ("online", "counter")), name="channel"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("length(currency) = 3", name="currency"),
        sa.CheckConstraint("length(fee_codes) > 0", name="fee_codes"),
        sa.CheckConstraint(
            "captured_amount >= 0 AND refunded_amount >= 0 AND disputed_amount >= 0 "
            "AND refunded_amount <= captured_amount AND captured_amount <= amount",
            name="amounts",
        ),
        sa.CheckConstraint("(channel = 'counter') = (terminal_id IS NOT NULL)", name="terminal_when_counter"),
        sa.CheckConstraint("(state = 'parked') <= (parked_reason IS NOT NULL)", name="parked_has_reason"),
        sa.CheckConstraint(
            "(entry_id IS NULL) = (captured_at IS NULL) AND (entry_id IS NULL OR captured_amount > 0)",
            name="captured_has_entry",
        ),
        sa.CheckConstraint(
            _in("state", ("captured", "partially_refunded", "refunded", "disputed", "charged_back"))
            + " <= (entry_id IS NOT NULL)",
            name="paid_has_entry",
        ),
    )
    op.create_index("ix_payments_state_expires_at", "payments", ["state", "expires_at"])
    op.create_index("ix_payments_provider_reference", "payments", ["variant", "provider_reference"])
    # One sale in flight per terminal: no new sale starts while one is pending or unknown.
    busy = f"terminal_id IS NOT NULL AND {_in('state', IN_FLIGHT)}"
    op.create_index(
        "uq_payments_terminal_in_flight",
        "payments",
        ["variant", "terminal_id"],
        unique=True,
        sqlite_where=sa.text(busy),
        postgresql_where=sa.text(busy),
    )
    op.create_table(
        "payment_attempts",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("payment_id", UUID, sa.ForeignKey("payments.id"), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("state", sa.String(12), nullable=False, server_default="prepared"),
        sa.Column("amount", sa.BigInteger, nullable=True),  # capture/void/refund amount, minor units
        sa.Column("operation_reference", sa.String(64), nullable=True),  # our refund reference
        sa.Column("provider_operation_reference", sa.String(255), nullable=True),
        sa.Column("unknown_cause", sa.String(20), nullable=True),
        sa.Column("code", sa.String(64), nullable=False, server_default=""),  # decline/error code
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("checks", sa.Integer, nullable=False, server_default="0"),  # status queries so far
        sa.Column("next_check_at", sa.BigInteger, nullable=True),  # when the resolver looks again
        sa.Column("manual", sa.Boolean, nullable=False, server_default=sa.false()),  # in the manual queue
        sa.Column("manual_reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("dispatched_at", sa.BigInteger, nullable=True),
        sa.Column("resolved_at", sa.BigInteger, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("idempotency_key"),
        sa.CheckConstraint(_in("kind", ATTEMPT_KINDS), name="kind"),
        sa.CheckConstraint(_in("state", ATTEMPT_STATES), name="state"),
        sa.CheckConstraint("amount IS NULL OR amount > 0", name="amount_positive"),
        sa.CheckConstraint("checks >= 0", name="checks"),
        sa.CheckConstraint("(state = 'unknown') <= (unknown_cause IS NOT NULL)", name="unknown_has_cause"),
        sa.CheckConstraint(
            _in("state", ("succeeded", "declined")) + " = (resolved_at IS NOT NULL)", name="resolved_when"
        ),
        sa.CheckConstraint("manual <= (manual_reason IS NOT NULL)", name="manual_has_reason"),
    )
    op.create_index("ix_payment_attempts_payment_id", "payment_attempts", ["payment_id"])
    # The resolver's work list: open attempts by when they are due.
    op.create_index(
        "ix_payment_attempts_due",
        "payment_attempts",
        ["next_check_at"],
        sqlite_where=sa.text("next_check_at IS NOT NULL"),
        postgresql_where=sa.text("next_check_at IS NOT NULL"),
    )
    op.create_table(
        "provider_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("variant", sa.String(40), nullable=False),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("payment_id", UUID, sa.ForeignKey("payments.id"), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),  # hex of the raw delivery
        sa.Column("occurred_at", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.UniqueConstraint("variant", "event_id"),
        sa.CheckConstraint(_in("outcome", EVENT_OUTCOMES), name="outcome"),
        sa.CheckConstraint("length(body_sha256) = 64", name="body_sha256"),
        sa.CheckConstraint("length(currency) = 3", name="currency"),
    )
    op.create_index("ix_provider_events_payment_id", "provider_events", ["payment_id"])
    if dialect == "postgresql":
        _postgresql_guards()
    else:
        _sqlite_guards()


def _changed(columns: tuple[str, ...], *, postgresql: bool) -> str:
    operator = "IS DISTINCT FROM" if postgresql else "IS NOT"
    return " OR ".join(f"NEW.{c} {operator} OLD.{c}" for c in columns)


def _postgresql_guards() -> None:
    op.execute(f"""
        CREATE FUNCTION etimbre_payment_transition() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.state <> OLD.state AND NOT {_edges("OLD.state", "NEW.state", PAYMENT_EDGES)} THEN
                RAISE EXCEPTION 'etimbre: payment % is % and cannot become %', OLD.reference, OLD.state, NEW.state
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            IF {_changed(PAYMENT_FIXED, postgresql=True)} THEN
                RAISE EXCEPTION 'etimbre: payment %: what was priced and where it is paid never change', OLD.reference
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$;

        CREATE FUNCTION etimbre_attempt_transition() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.state <> OLD.state AND NOT {_edges("OLD.state", "NEW.state", ATTEMPT_EDGES)} THEN
                RAISE EXCEPTION 'etimbre: attempt % is % and cannot become %', OLD.idempotency_key, OLD.state, NEW.state
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            IF {_changed(ATTEMPT_FIXED, postgresql=True)} THEN
                RAISE EXCEPTION 'etimbre: attempt %: its call and key never change', OLD.idempotency_key
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$;

        CREATE TRIGGER payments_transition BEFORE UPDATE ON payments
            FOR EACH ROW EXECUTE FUNCTION etimbre_payment_transition();
        CREATE TRIGGER payment_attempts_transition BEFORE UPDATE ON payment_attempts
            FOR EACH ROW EXECUTE FUNCTION etimbre_attempt_transition();
        CREATE TRIGGER provider_events_append_only BEFORE UPDATE ON provider_events
            FOR EACH ROW EXECUTE FUNCTION etimbre_append_only();
    """)
    for table in ("payments", "payment_attempts", "provider_events"):
        op.execute(f"""
            CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION etimbre_append_only();
            CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION etimbre_append_only();
        """)


def _sqlite_guards() -> None:
    op.execute(f"""
        CREATE TRIGGER payments_transition BEFORE UPDATE ON payments
        WHEN (NEW.state <> OLD.state AND NOT {_edges("OLD.state", "NEW.state", PAYMENT_EDGES)})
            OR {_changed(PAYMENT_FIXED, postgresql=False)}
        BEGIN SELECT RAISE(ABORT, 'etimbre: a payment only moves forward, and what was priced and where it is paid never change'); END
    """)
    op.execute(f"""
        CREATE TRIGGER payment_attempts_transition BEFORE UPDATE ON payment_attempts
        WHEN (NEW.state <> OLD.state AND NOT {_edges("OLD.state", "NEW.state", ATTEMPT_EDGES)})
            OR {_changed(ATTEMPT_FIXED, postgresql=False)}
        BEGIN SELECT RAISE(ABORT, 'etimbre: an attempt only moves forward, and its call and key never change'); END
    """)
    op.execute("""
        CREATE TRIGGER provider_events_no_update BEFORE UPDATE ON provider_events
        BEGIN SELECT RAISE(ABORT, 'etimbre: provider_events is append-only; UPDATE refused'); END
    """)
    for table in ("payments", "payment_attempts", "provider_events"):
        op.execute(f"""
            CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
            BEGIN SELECT RAISE(ABORT, 'etimbre: {table} rows are kept; DELETE refused'); END
        """)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in ("provider_events", "payment_attempts", "payments"):
        op.drop_table(table)  # dropping a table drops its triggers on both engines
    if dialect == "postgresql":
        op.execute("DROP FUNCTION etimbre_attempt_transition(); DROP FUNCTION etimbre_payment_transition();")
