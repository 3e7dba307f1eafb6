"""Closing the books through an instant: balance checkpoints, so that no balance read sums all history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ledger.db.models import CheckpointCut
from ledger.db.types import to_micros

# The same lock number the migration's entry trigger takes in shared mode (PostgreSQL).
CUT_LOCK = 0x45544D42


class PeriodError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Cut:
    as_of: datetime
    slices: int  # checkpoints written


def last_cut(session: Session, at_or_before: datetime | None = None) -> datetime | None:
    query = select(func.max(CheckpointCut.as_of))
    if at_or_before is not None:
        query = query.where(CheckpointCut.as_of <= at_or_before)
    return session.scalar(query)


def cut(session: Session, through: datetime) -> Cut:
    """Close the books through `through`: write each slice's balance then; later entries dated at or
    before it are refused by the database. On PostgreSQL the cut first waits for entries in flight."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": CUT_LOCK})
    previous = last_cut(session)
    if previous is not None and through <= previous:
        raise PeriodError(f"the books are already closed through {previous.isoformat()}")
    params = {"previous": to_micros(previous) if previous else -(2**62), "through": to_micros(through)}
    session.execute(text("INSERT INTO checkpoint_cuts (as_of) VALUES (:through)"), params)
    window = """
        SELECT p.account_id, p.consulate, p.fee_code, sum(p.amount) AS total, count(*) AS lines
          FROM entries e JOIN postings p ON p.entry_id = e.id
         WHERE e.effective_at > :previous AND e.effective_at <= :through
         GROUP BY p.account_id, p.consulate, p.fee_code
    """
    session.execute(
        text(f"""
            INSERT INTO balance_keys (account_id, consulate, fee_code)
            SELECT w.account_id, w.consulate, w.fee_code FROM ({window}) w
             WHERE NOT EXISTS (SELECT 1 FROM balance_keys k WHERE k.account_id = w.account_id
                                 AND k.consulate = w.consulate AND k.fee_code = w.fee_code)
        """),
        params,
    )
    latest = """
        SELECT {column} FROM balance_checkpoints c
         WHERE c.account_id = w.account_id AND c.consulate = w.consulate AND c.fee_code = w.fee_code
         ORDER BY c.as_of DESC LIMIT 1
    """
    written = session.execute(
        text(f"""
            INSERT INTO balance_checkpoints (account_id, consulate, fee_code, as_of, balance, posting_count)
            SELECT w.account_id, w.consulate, w.fee_code, :through,
                   coalesce(({latest.format(column="c.balance")}), 0) + w.total,
                   coalesce(({latest.format(column="c.posting_count")}), 0) + w.lines
              FROM ({window}) w
        """),
        params,
    )
    return Cut(through, int(getattr(written, "rowcount", 0) or 0))


def due_cuts(session: Session, now: datetime, *, lateness: timedelta, interval: timedelta) -> list[datetime]:
    """The interval boundaries old enough to close: at most `now - lateness`, after the last cut."""
    newest = now - lateness
    previous = last_cut(session)
    step = int(interval.total_seconds())
    boundary = datetime.fromtimestamp((int(newest.timestamp()) // step) * step, tz=newest.tzinfo)
    if previous is None:
        return [boundary]
    cuts: list[datetime] = []
    while boundary > previous and len(cuts) < 10_000:
        cuts.append(boundary)
        boundary -= interval
    return sorted(cuts)
