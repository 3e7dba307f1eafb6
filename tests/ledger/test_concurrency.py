"""Many writers at once on PostgreSQL: one idempotency key gives one entry; a hot account loses nothing."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from ledger.db.engine import Database
from ledger.db.types import from_micros
from ledger.money import Money
from ledger.services import clock
from ledger.services.balances import account_balance
from ledger.services.checkpoints import cut
from ledger.services.journal import post_entry
from ledger.settings import Settings
from tests.ledger.builders import captured

WORKERS = 16


def _together(work: list, db: Database) -> list:  # type: ignore[type-arg]
    barrier = threading.Barrier(len(work))

    def run(job):  # type: ignore[no-untyped-def]
        barrier.wait()
        return job()

    with ThreadPoolExecutor(len(work)) as pool:
        return list(pool.map(run, work))


def test_sixteen_workers_with_one_idempotency_key_record_one_entry(
    pg_db: Database, settings: Settings
) -> None:
    draft = captured(settings.chart, Money(5500, "EUR"))
    with pg_db.write() as session:  # the accounts exist, as they would in a running service
        post_entry(session, captured(settings.chart, Money(1, "EUR"), payment="warm-up"))

    def attempt():  # type: ignore[no-untyped-def]
        with pg_db.write() as session:
            return post_entry(session, draft, idempotency_key="same-click")

    results = _together([attempt] * WORKERS, pg_db)
    assert len({r.entry_id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    with pg_db.read() as session:
        assert (
            session.execute(text("SELECT count(*) FROM idempotency_keys WHERE key = 'same-click'")).scalar()
            == 1
        )
        assert account_balance(session, "assets:clearing:sandbox:EUR") == Money(5501, "EUR")


def test_sixteen_workers_on_one_hot_account_lose_no_posting(pg_db: Database, settings: Settings) -> None:
    per_worker = 25

    def pay(worker: int):  # type: ignore[no-untyped-def]
        def run() -> int:
            for number in range(per_worker):
                with pg_db.write() as session:
                    post_entry(
                        session,
                        captured(settings.chart, Money(100 + worker, "EUR"), payment=f"p-{worker}-{number}"),
                    )
            return per_worker

        return run

    assert sum(_together([pay(w) for w in range(WORKERS)], pg_db)) == WORKERS * per_worker
    expected = sum((100 + w) * per_worker for w in range(WORKERS))
    with pg_db.read() as session:
        assert account_balance(session, "assets:clearing:sandbox:EUR") == Money(expected, "EUR")
        assert session.execute(text("SELECT count(*) FROM postings")).scalar() == 2 * WORKERS * per_worker


def test_a_cut_during_payments_never_misses_a_late_committing_entry(
    pg_db: Database, settings: Settings
) -> None:
    stop = threading.Event()
    posted: list[int] = []

    refused: list[str] = []

    def payments() -> None:
        while not stop.is_set():
            try:
                with pg_db.write() as session:
                    post_entry(session, captured(settings.chart, Money(7, "EUR")))
            except IntegrityError as error:  # dated before a cut that committed first: refused, never lost
                assert "closed" in str(error)
                refused.append("closed")
                continue
            posted.append(7)

    workers = [threading.Thread(target=payments) for _ in range(6)]
    for worker in workers:
        worker.start()
    try:
        for _ in range(5):
            time.sleep(0.2)
            with pg_db.write() as session:
                cut(session, clock.now() - timedelta(milliseconds=50))
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    with pg_db.read() as session:
        assert account_balance(session, "assets:clearing:sandbox:EUR") == Money(7 * len(posted), "EUR")
        summed = session.execute(text("SELECT sum(amount) FROM postings WHERE amount > 0")).scalar()
        assert summed == 7 * len(posted)
        for (as_of,) in session.execute(text("SELECT as_of FROM checkpoint_cuts")).all():
            raw = session.execute(
                text("SELECT coalesce(sum(amount), 0) FROM postings WHERE amount > 0 AND effective_at <= :t"),
                {"t": as_of},
            ).scalar()
            assert account_balance(session, "assets:clearing:sandbox:EUR", as_of=from_micros(as_of)) == Money(
                int(raw or 0), "EUR"
            )
