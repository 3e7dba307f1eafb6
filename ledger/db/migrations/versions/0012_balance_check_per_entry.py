"""PostgreSQL: check each new entry's balance through its own postings, never by scanning the table.

The balance check of `etimbre_entries_check` grouped the postings of the statement's entries and took the
first unbalanced one (`GROUP BY .. HAVING .. LIMIT 1`). On a table whose statistics lag behind its size
(a fresh or fast-growing database, before autovacuum's ANALYZE), the planner answered that with an ordered
scan of the whole primary key: every payment then cost time in proportion to the journal, and the
payment benchmark lost two thirds of its throughput within a minute. The check is now driven by the
statement's own entries (a correlated probe of the primary key per entry), so its cost is that of the
rows being written whatever the statistics say. Same rule, same message; SQLite's row trigger already
probes by entry.

The other checks of both triggers join the statement's rows to `postings` or `entries`; once ANALYZE
had run, the planner estimated a hundred postings per entry and chose a hash join over a sequential scan
of the whole table (seen in auto_explain: 1,200 payments a second falling to 300). Every query in these
two functions is a probe by primary key from the rows just written, so the functions now run with
sequential scans, hash joins and merge joins off: their plans are index probes whatever the statistics.

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


GUARDS = ("etimbre_entries_check()", "etimbre_postings_check()")
PROBES_ONLY = ("enable_seqscan", "enable_hashjoin", "enable_mergejoin")


def upgrade() -> None:
    _rewrite(GROUPED, PER_ENTRY)
    if op.get_bind().dialect.name == "postgresql":
        for function in GUARDS:
            for setting in PROBES_ONLY:
                op.execute(f"ALTER FUNCTION {function} SET {setting} = off")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for function in GUARDS:
            op.execute(f"ALTER FUNCTION {function} RESET ALL")
    _rewrite(PER_ENTRY, GROUPED)
