"""Tamper evidence: seals over the journal's records, their per-kind digests and member lists, and the
signed daily seals; on PostgreSQL, the writing transaction of every sealed row (`audit_tx`).

Revision ID: 0006
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ledger.db.audit_ddl import add_writing_tx, drop_writing_tx

revision = "0006"
down_revision = "0002"
branch_labels = None
depends_on = None

APPEND_ONLY = ("audit_seals", "audit_seal_kinds", "audit_daily_seals")
# Tables whose rows are sealed. On PostgreSQL each gets the id of the transaction that wrote the row, so the
# sealer knows which rows are final (see docs/audit-seals.md, "Which records a seal covers"); on SQLite,
# where writers take turns, the rowid does that job and nothing is added.
SEALED_TABLES = ("entries", "postings")


def _digest(name: str) -> sa.CheckConstraint:
    length = "octet_length" if op.get_bind().dialect.name == "postgresql" else "length"
    return sa.CheckConstraint(f"{length}({name}) = 32", name=name)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "audit_seals",
        sa.Column("seal_no", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("format", sa.SmallInteger, nullable=False),
        sa.Column("made_at", sa.BigInteger, nullable=False),
        sa.Column("complete_through", sa.BigInteger, nullable=False),
        sa.Column("record_count", sa.BigInteger, nullable=False),
        sa.Column("merkle_root", sa.LargeBinary, nullable=False),
        sa.Column("previous_hash", sa.LargeBinary, nullable=False),
        sa.Column("seal_hash", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("seal_hash"),
        sa.CheckConstraint("seal_no >= 1", name="seal_no"),
        sa.CheckConstraint("record_count >= 0", name="record_count"),
        sa.CheckConstraint("complete_through <= made_at", name="complete_through"),
        _digest("merkle_root"),
        _digest("previous_hash"),
        _digest("seal_hash"),
    )
    op.create_index("ix_audit_seals_made_at", "audit_seals", ["made_at"])
    op.create_table(
        "audit_seal_kinds",
        sa.Column("seal_no", sa.BigInteger, sa.ForeignKey("audit_seals.seal_no"), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("first_position", sa.BigInteger, nullable=False),
        sa.Column("end_position", sa.BigInteger, nullable=False),
        sa.Column("record_count", sa.BigInteger, nullable=False),
        sa.Column("content_digest", sa.LargeBinary, nullable=False),
        sa.Column("members", sa.LargeBinary, nullable=False),
        sa.CheckConstraint("first_position <= end_position", name="positions"),
        sa.CheckConstraint("record_count >= 0", name="record_count"),
        _digest("content_digest"),
    )
    op.create_table(
        "audit_daily_seals",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("seal_no", sa.BigInteger, sa.ForeignKey("audit_seals.seal_no"), nullable=False),
        sa.Column("seal_hash", sa.LargeBinary, nullable=False),
        sa.Column("kid", sa.LargeBinary, nullable=False),
        sa.Column("signed_at", sa.BigInteger, nullable=False),
        sa.Column("document", sa.LargeBinary, nullable=False),
        _digest("seal_hash"),
    )
    for table in SEALED_TABLES:
        add_writing_tx(table)
    if dialect == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"""
                CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                    FOR EACH ROW EXECUTE FUNCTION etimbre_append_only();
                CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                    FOR EACH STATEMENT EXECUTE FUNCTION etimbre_append_only();
            """)
    else:
        for table in APPEND_ONLY:
            for operation in ("UPDATE", "DELETE"):
                op.execute(f"""
                    CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table}
                    BEGIN SELECT RAISE(ABORT, 'etimbre: {table} is append-only; {operation} refused'); END
                """)


def downgrade() -> None:
    for table in SEALED_TABLES:
        drop_writing_tx(table)
    for table in ("audit_daily_seals", "audit_seal_kinds", "audit_seals"):
        op.drop_table(table)
