"""Refunds (with the stamps each one names) and disputes, on top of the payments of 0009.

A refund reserves its amount on `payments.refunded_amount` (whose CHECK keeps it within the captured
amount) in the same transaction as its attempt, before the provider is called; a declined refund gives the
reservation back. A stamp is in at most one live refund (partial unique index on `refund_stamps`).
A dispute is stored once per (variant, provider dispute id) with the chargeback entry it posted.

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.db.types import UUID

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

REFUND_STATES = ("pending", "succeeded", "declined", "unknown")
DISPUTE_STATES = ("open", "won", "lost")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "refunds",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("reference", sa.String(64), nullable=False),  # ours, sent to the provider
        sa.Column("payment_id", UUID, sa.ForeignKey("payments.id"), nullable=False),
        sa.Column("attempt_id", UUID, sa.ForeignKey("payment_attempts.id"), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("provider_reference", sa.String(255), nullable=True),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("resolved_at", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("reference"),
        sa.UniqueConstraint("attempt_id"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint(_in("state", REFUND_STATES), name="state"),
        sa.CheckConstraint(
            _in("state", ("succeeded", "declined")) + " = (resolved_at IS NOT NULL)", name="resolved_when"
        ),
        sa.CheckConstraint("length(reason) > 0", name="reason"),
    )
    op.create_index("ix_refunds_payment_id", "refunds", ["payment_id"])
    op.create_table(
        "refund_stamps",
        sa.Column("refund_id", UUID, sa.ForeignKey("refunds.id"), primary_key=True),
        sa.Column("number", sa.String(17), primary_key=True),
        sa.Column("fee_code", sa.String(24), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("was_used", sa.Boolean, nullable=False),  # consumed before the refund: revenue is reversed
        sa.Column("live", sa.Boolean, nullable=False),  # false once the refund was declined
        sa.Column("entry_id", UUID, nullable=True),  # the refund entry, once the provider refunded
        sa.CheckConstraint("amount > 0", name="amount_positive"),
    )
    op.create_index(
        "uq_refund_stamps_live",
        "refund_stamps",
        ["number"],
        unique=True,
        sqlite_where=sa.text("live"),
        postgresql_where=sa.text("live"),
    )
    op.create_table(
        "disputes",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("payment_id", UUID, sa.ForeignKey("payments.id"), nullable=False),
        sa.Column("variant", sa.String(40), nullable=False),
        sa.Column("provider_reference", sa.String(255), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("entry_id", UUID, nullable=False),  # the chargeback entry
        sa.Column("closing_entry_id", UUID, nullable=True),  # its reversal (won) or the stamps revoked (lost)
        sa.Column("opened_at", sa.BigInteger, nullable=False),
        sa.Column("closed_at", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("variant", "provider_reference"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint(_in("state", DISPUTE_STATES), name="state"),
        sa.CheckConstraint("(state = 'open') = (closed_at IS NULL)", name="closed_when"),
    )
    op.create_index("ix_disputes_payment_id", "disputes", ["payment_id"])


def downgrade() -> None:
    for table in ("disputes", "refund_stamps", "refunds"):
        op.drop_table(table)
