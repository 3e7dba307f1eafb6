"""Staff sign-in: accounts (Argon2id hashes, lockout) and sessions (hashed tokens, CSRF secrets).

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_accounts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(40), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("consulate", sa.String(8), nullable=False, server_default=""),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("failed_attempts", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("locked_until", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_sign_in_at", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("username"),
        sa.CheckConstraint("role IN ('cashier', 'auditor', 'admin')", name="role"),
        # A cashier serves exactly one consulate; the other roles none.
        sa.CheckConstraint("(role = 'cashier') = (consulate <> '')", name="cashier_consulate"),
        sa.CheckConstraint("length(username) BETWEEN 3 AND 40", name="username_length"),
        sa.CheckConstraint("password_hash LIKE '$argon2id$%'", name="argon2id"),
        sa.CheckConstraint("failed_attempts >= 0", name="failed_attempts"),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("staff_id", sa.Integer, sa.ForeignKey("staff_accounts.id"), nullable=False),
        sa.Column("csrf_secret", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("token_hash"),
        sa.CheckConstraint("length(token_hash) = 64", name="token_hash"),
        sa.CheckConstraint("expires_at > created_at", name="validity"),
    )
    op.create_index("ix_staff_sessions_staff_id", "staff_sessions", ["staff_id"])
    op.create_index("ix_staff_sessions_expires_at", "staff_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_staff_sessions_expires_at", "staff_sessions")
    op.drop_index("ix_staff_sessions_staff_id", "staff_sessions")
    op.drop_table("staff_sessions")
    op.drop_table("staff_accounts")
