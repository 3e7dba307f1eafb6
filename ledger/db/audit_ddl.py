"""What a migration calls to make a table's rows sealable (docs/audit-seals.md, "Adding a record kind")."""

from __future__ import annotations

from alembic import op

# The top-level transaction that wrote the row (64-bit, never wraps). Read as a bigint so that seals can
# hold it; the sealer only takes rows whose transaction is older than every one still running.
WRITING_TX = "(pg_current_xact_id()::text::bigint)"


def add_writing_tx(table: str) -> None:
    """PostgreSQL: an `audit_tx` column filled by the database and indexed; SQLite needs nothing (the
    rowid does it, since writers take turns)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE {table} ADD COLUMN audit_tx bigint NOT NULL DEFAULT {WRITING_TX}")
    op.execute(f"CREATE INDEX ix_{table}_audit_tx ON {table} (audit_tx)")


def drop_writing_tx(table: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP INDEX ix_{table}_audit_tx")
    op.execute(f"ALTER TABLE {table} DROP COLUMN audit_tx")
