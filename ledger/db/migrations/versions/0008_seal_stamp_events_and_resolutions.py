"""Seal stamp events and reconciliation resolutions too: their tables get the writing transaction.

Joins the stamps, reconciliation and audit branches of the history.

Revision ID: 0008
Revises: 0003, 0005, 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from ledger.db.audit_ddl import add_writing_tx, drop_writing_tx

revision = "0008"
down_revision = ("0003", "0005", "0006")
branch_labels = None
depends_on = None

TABLES = ("stamp_events", "recon_resolutions")


def upgrade() -> None:
    for table in TABLES:
        add_writing_tx(table)


def downgrade() -> None:
    for table in TABLES:
        drop_writing_tx(table)
