"""Idempotency keys of API requests, with the first response kept to replay it byte for byte.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NOW_MICROS = {
    "postgresql": "(extract(epoch FROM transaction_timestamp()) * 1000000)::bigint",
    "sqlite": "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)",
}


def upgrade() -> None:
    now = sa.text(f"({NOW_MICROS[op.get_bind().dialect.name]})")
    op.create_table(
        "request_keys",
        sa.Column("scope", sa.String(80), primary_key=True),
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=True),
        sa.Column("body", sa.LargeBinary, nullable=True),
        sa.Column("media_type", sa.String(80), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False, server_default=now),
        sa.Column("completed_at", sa.BigInteger, nullable=True),
        sa.CheckConstraint("length(request_hash) = 64", name="request_hash"),
        sa.CheckConstraint(
            "(status IS NULL AND body IS NULL AND completed_at IS NULL)"
            " OR (status IS NOT NULL AND body IS NOT NULL AND completed_at IS NOT NULL)",
            name="response_complete",
        ),
    )


def downgrade() -> None:
    op.drop_table("request_keys")
