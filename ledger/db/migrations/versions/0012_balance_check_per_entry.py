"""PostgreSQL: check each new entry's balance through its own postings, never by scanning the table.

The balance check of `etimbre_entries_check` grouped the postings of the statement's entries and took the
first unbalanced one (`GROUP BY .. HAVING .. LIMIT 1`). On a table whose statistics lag behind its size
(a fresh or fast-growing database, before autovacuum's ANALYZE), the planner answered that with an ordered
scan of the whole primary key: every payment then cost time in proportion to the journal, and the
payment benchmark lost two thirds of its throughput within a minute. The check is now driven by the
statement's own entries (a correlated probe of the primary key per entry), so its cost is that of the
rows being written whatever the statistics say. Same rule, same message; SQLite's row trigger already
probes by entry.

Revision ID: 0012
Revises: 0008
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0008"
branch_labels = None
depends_on = None

GROUPED = """SELECT p.entry_id INTO bad
              FROM postings p WHERE p.entry_id IN (SELECT id FROM new_entries)
             GROUP BY p.entry_id, p.currency HAVING sum(p.amount) <> 0 LIMIT 1;"""
PER_ENTRY = """SELECT e.id INTO bad
              FROM new_entries e
             WHERE EXISTS (SELECT 1 FROM postings p WHERE p.entry_id = e.id
                            GROUP BY p.currency HAVING sum(p.amount) <> 0)
             LIMIT 1;"""


def _rewrite(old: str, new: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    connection = op.get_bind()
    definition: str = connection.exec_driver_sql(
        "SELECT pg_get_functiondef('etimbre_entries_check'::regproc)"
    ).scalar_one()
    if old not in definition:
        raise RuntimeError("etimbre_entries_check is not the version this migration replaces")
    connection.exec_driver_sql(definition.replace(old, new).replace("%", "%%"))


def upgrade() -> None:
    _rewrite(GROUPED, PER_ENTRY)


def downgrade() -> None:
    _rewrite(PER_ENTRY, GROUPED)
