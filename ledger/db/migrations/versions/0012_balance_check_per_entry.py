"""PostgreSQL: the ledger's guards probe the rows just written by key, never scan the journal.

The statement-level triggers of 0001 checked a statement's entries with set-based queries (joins and
`GROUP BY .. LIMIT 1` over `postings`). Their plans depend on statistics: on a fresh or fast-growing
table the planner chose an ordered scan of the whole primary key for the balance check, and once ANALYZE
had run it estimated a hundred postings per entry and hash-joined a sequential scan of `postings` for the
account check (seen with auto_explain; the payment benchmark fell from 1,200 to 300 a second within a
minute, raw psycopg included). Every check is now written as a probe from each new row (a LATERAL
subquery or a correlated EXISTS by primary key, which the planner cannot turn into a join over the
table), and the two functions run with sequential scans off, so their cost is that of the rows being
written whatever the statistics say. Same rules, same messages; SQLite's row triggers already probe by
entry.

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

# (function, text of 0001, text from here on)
REWRITES = (
    (
        "etimbre_entries_check",
        """SELECT e.id, format('declares %s postings but has %s', e.posting_count, coalesce(c.found, 0))
              INTO bad, detail
              FROM new_entries e
              LEFT JOIN (SELECT p.entry_id, count(*) AS found FROM postings p
                          WHERE p.entry_id IN (SELECT id FROM new_entries) GROUP BY p.entry_id) c
                     ON c.entry_id = e.id
             WHERE coalesce(c.found, 0) <> e.posting_count LIMIT 1;""",
        """SELECT e.id, format('declares %s postings but has %s', e.posting_count, c.found)
              INTO bad, detail
              FROM new_entries e
             CROSS JOIN LATERAL (SELECT count(*) AS found FROM postings p WHERE p.entry_id = e.id) c
             WHERE c.found <> e.posting_count LIMIT 1;""",
    ),
    (
        "etimbre_entries_check",
        """SELECT e.id INTO bad
              FROM new_entries e JOIN postings p ON p.entry_id = e.id LEFT JOIN accounts a ON a.id = p.account_id
             WHERE a.id IS NULL OR a.currency <> p.currency
                OR p.effective_at <> e.effective_at OR p.consulate <> e.consulate
             LIMIT 1;""",
        """SELECT e.id INTO bad
              FROM new_entries e
             CROSS JOIN LATERAL (
                SELECT 1 FROM postings p LEFT JOIN accounts a ON a.id = p.account_id
                 WHERE p.entry_id = e.id
                   AND (a.id IS NULL OR a.currency <> p.currency
                        OR p.effective_at <> e.effective_at OR p.consulate <> e.consulate)
                 LIMIT 1) wrong
             LIMIT 1;""",
    ),
    (
        "etimbre_entries_check",
        """SELECT p.entry_id INTO bad
              FROM postings p WHERE p.entry_id IN (SELECT id FROM new_entries)
             GROUP BY p.entry_id, p.currency HAVING sum(p.amount) <> 0 LIMIT 1;""",
        """SELECT e.id INTO bad
              FROM new_entries e
             WHERE EXISTS (SELECT 1 FROM postings p WHERE p.entry_id = e.id
                            GROUP BY p.currency HAVING sum(p.amount) <> 0)
             LIMIT 1;""",
    ),
    (
        "etimbre_postings_check",
        "SELECT p.entry_id INTO bad FROM new_postings p JOIN entries e ON e.id = p.entry_id LIMIT 1;",
        """SELECT p.entry_id INTO bad FROM new_postings p
             CROSS JOIN LATERAL (SELECT 1 FROM entries e WHERE e.id = p.entry_id LIMIT 1) known
             LIMIT 1;""",
    ),
)
GUARDS = ("etimbre_entries_check", "etimbre_postings_check")


def _rewrite(function: str, old: str, new: str) -> None:
    connection = op.get_bind()
    definition: str = connection.exec_driver_sql(
        f"SELECT pg_get_functiondef('{function}'::regproc)"
    ).scalar_one()
    if old not in definition:
        raise RuntimeError(f"{function} is not the version this migration replaces")
    connection.exec_driver_sql(definition.replace(old, new).replace("%", "%%"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for function, old, new in REWRITES:
        _rewrite(function, old, new)
    for function in GUARDS:
        op.execute(f"ALTER FUNCTION {function}() SET enable_seqscan = off")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for function in GUARDS:
        op.execute(f"ALTER FUNCTION {function}() RESET ALL")
    for function, old, new in reversed(REWRITES):
        _rewrite(function, new, old)
