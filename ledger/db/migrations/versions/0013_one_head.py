"""Join the payments and refunds (0011), staff (0010) and ledger guard (0012) branches of the history.

Nothing changes in the schema: after this, `etimbre db upgrade` and `etimbre db current` name one head.

Revision ID: 0013
Revises: 0010, 0011, 0012
Create Date: 2026-11-23
"""

from __future__ import annotations

revision = "0013"
down_revision = ("0010", "0011", "0012")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
