"""Ledger benchmark on PostgreSQL: payments per second (uncontended and on one hot account) beside raw
psycopg inserts of the same rows, batched ingestion, as-of balance latency on a 1,000,000-posting account,
and bytes per posting.

    python tests/bench/ledger.py [--quick] [--json]

The server comes from ETIMBRE_BENCH_DATABASE_URL (default: the local one at 127.0.0.1:5432); the script
creates its own database there and drops it at the end. Figures are ratios against baselines measured in
the same run, because the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import secrets
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ledger.db import migrate
from ledger.db.engine import Database, make_engine
from ledger.db.types import to_micros
from ledger.domain.chart import Chart, Role
from ledger.domain.entries import EntryDraft, EntryKind, References, credit, debit
from ledger.money import Money
from ledger.services import checkpoints
from ledger.services.balances import account_balance
from ledger.services.journal import post_entries, post_entry
from ledger.settings import load_settings

SERVER = os.environ.get("ETIMBRE_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
CLIENTS = 20
PROCESSES = 4  # 20 clients as 4 processes of 5 threads: the GIL is not the thing measured


@dataclass(frozen=True)
class Sizes:
    seconds: float
    rounds: int
    batches: int
    history_postings: int
    probes: int


FULL = Sizes(seconds=8.0, rounds=3, batches=60, history_postings=1_000_000, probes=2000)
QUICK = Sizes(seconds=1.0, rounds=1, batches=3, history_postings=20_000, probes=50)


def _admin(url: str) -> psycopg.Connection[tuple[object, ...]]:
    parsed = make_url(url)
    return psycopg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        dbname=parsed.database or "postgres",
        autocommit=True,
    )


def _libpq(url: str) -> str:
    parsed = make_url(url)
    return f"host={parsed.host} port={parsed.port or 5432} user={parsed.username} dbname={parsed.database}"


def payment(chart: Chart, client: int, number: int, hot: bool) -> EntryDraft:
    """One captured payment of DESIGN.md §3; uncontended payments each go to their own clearing account."""
    consulate = ("FR-PAR", "BE-BRU", "ES-MAD")[client % 3]
    provider = "cmi" if hot else f"acquirer{client:02d}"
    amount = Money(5500 + number % 100, "EUR")
    return EntryDraft(
        kind=EntryKind.PAYMENT_CAPTURED,
        lines=(
            debit(chart.account(Role.CLEARING, currency="EUR", provider=provider), amount, "PASSPORT"),
            credit(
                chart.account(Role.STAMPS_OUTSTANDING, currency="EUR", consulate=consulate),
                amount,
                "PASSPORT",
            ),
        ),
        consulate=consulate,
        references=References(payment=f"pay-{client}-{number}-{secrets.token_hex(4)}"),
    )


# Client processes ----------------------------------------------------------------------------------------


def _run_threads(run: Callable[[int], None], threads: int) -> None:
    errors: list[BaseException] = []

    def guarded(slot: int) -> None:
        try:
            run(slot)
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=guarded, args=(slot,)) for slot in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]


Ready = Callable[[], None]


def _service_clients(url: str, first: int, threads: int, hot: bool, ready: Ready, seconds: float) -> int:
    chart = load_settings(environ={}).chart
    database = Database.from_url(url, pool_size=threads)
    run_id = secrets.token_hex(4)  # rounds repeat: keys of one run never meet another's
    counts = [0] * threads
    gate = threading.Barrier(threads, action=ready)  # every thread connected, then the whole run starts

    def run(slot: int) -> None:
        client = first + slot
        database.ping()
        gate.wait()
        until = time.perf_counter() + seconds
        number = 0
        while time.perf_counter() < until:
            with database.write() as session:
                post_entry(
                    session,
                    payment(chart, client, number, hot),
                    idempotency_key=f"k-{run_id}-{client}-{number}",
                )
            number += 1
        counts[slot] = number

    _run_threads(run, threads)
    database.dispose()
    return sum(counts)


def _raw_clients(url: str, first: int, threads: int, hot: bool, ready: Ready, seconds: float) -> int:
    """The same rows with plain psycopg: what the database itself can do with this schema."""
    counts = [0] * threads
    with psycopg.connect(_libpq(url), autocommit=True) as connection:
        accounts: dict[str, int] = dict(connection.execute("SELECT code, id FROM accounts").fetchall())
    gate = threading.Barrier(threads, action=ready)
    run_id = secrets.token_hex(4)

    def run(slot: int) -> None:
        client = first + slot
        consulate = ("FR-PAR", "BE-BRU", "ES-MAD")[client % 3]
        provider = "cmi" if hot else f"acquirer{client:02d}"
        clearing = accounts[f"assets:clearing:{provider}:EUR"]
        outstanding = accounts[f"liabilities:stamps-outstanding:{consulate}"]
        number = 0
        with psycopg.connect(_libpq(url)) as connection:
            gate.wait()
            until = time.perf_counter() + seconds
            while time.perf_counter() < until:
                entry = uuid.uuid4()
                moment = to_micros(datetime.now(UTC))
                with connection.cursor() as cursor:
                    cursor.execute(
                        "INSERT INTO idempotency_keys (key, request_hash, entry_id) VALUES (%s, %s, %s)"
                        " ON CONFLICT (key) DO NOTHING RETURNING key",
                        (f"raw-{run_id}-{client}-{number}", "0" * 64, entry),
                    )
                    cursor.executemany(
                        "INSERT INTO postings (entry_id, line_no, account_id, currency, amount, effective_at,"
                        " consulate, fee_code) VALUES (%s, %s, %s, 'EUR', %s, %s, %s, 'PASSPORT')",
                        [
                            (entry, 1, clearing, 5500, moment, consulate),
                            (entry, 2, outstanding, -5500, moment, consulate),
                        ],
                    )
                    cursor.execute(
                        "INSERT INTO entries (id, kind, consulate, effective_at, posting_count, payment_ref, memo)"
                        " VALUES (%s, 'payment_captured', %s, %s, 2, %s, '{}')",
                        (entry, consulate, moment, f"raw-{client}-{number}"),
                    )
                connection.commit()
                number += 1
        counts[slot] = number

    _run_threads(run, threads)
    return sum(counts)


def _process(
    target: Callable[..., int],
    url: str,
    first: int,
    threads: int,
    hot: bool,
    ready: object,
    go: object,
    seconds: float,
    results: object,
) -> None:
    def announce() -> None:
        ready.put(first)  # type: ignore[attr-defined]
        go.wait()  # type: ignore[attr-defined]

    results.put(target(url, first, threads, hot, announce, seconds))  # type: ignore[attr-defined]


def _clients(target: Callable[..., int], url: str, hot: bool, seconds: float) -> float:
    """Run CLIENTS clients in PROCESSES processes for `seconds`, all starting together; payments per second."""
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    per_process = CLIENTS // PROCESSES
    processes = [
        context.Process(
            target=_process,
            args=(target, url, index * per_process, per_process, hot, ready, go, seconds, results),
        )
        for index in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=120)
    go.set()
    total: int = sum(results.get(timeout=300) for _ in processes)
    for process in processes:
        process.join()
        if process.exitcode:
            raise RuntimeError(f"a client process failed ({process.exitcode})")
    return total / seconds


# Phases --------------------------------------------------------------------------------------------------


def throughput(url: str, sizes: Sizes) -> dict[str, float]:
    """The four payment figures, measured in alternating rounds (raw, service, raw hot, service hot) so
    that a noisy neighbour or a growing table weighs on all four alike; the median round of each."""
    phases = {
        "raw_baseline_per_s": (_raw_clients, False),
        "payments_per_s": (_service_clients, False),
        "raw_hot_baseline_per_s": (_raw_clients, True),
        "hot_payments_per_s": (_service_clients, True),
    }
    rounds: dict[str, list[float]] = {key: [] for key in phases}
    for _ in range(sizes.rounds):
        for key, (target, hot) in phases.items():
            rounds[key].append(_clients(target, url, hot, sizes.seconds))
    return {key: round(statistics.median(values), 1) for key, values in rounds.items()}


def warm_accounts(database: Database, chart: Chart) -> None:
    with database.write() as session:
        for client in range(CLIENTS):
            for hot in (True, False):
                post_entry(session, payment(chart, client, -1, hot))


def batched(database: Database, chart: Chart, batches: int) -> float:
    drafts = [[payment(chart, b, n, hot=False) for n in range(100)] for b in range(batches)]
    started = time.perf_counter()
    for batch in drafts:
        with database.write() as session:
            post_entries(session, batch)
    return batches * 100 * 2 / (time.perf_counter() - started)


def load_history(url: str, chart: Chart, postings: int) -> str:
    """An account with `postings` postings spread over a year (bulk-loaded, guards off for the load only)."""
    database = Database.from_url(url, pool_size=1)
    with database.write() as session:
        post_entry(session, payment(chart, 99, -1, hot=True))  # opens the accounts
    database.dispose()
    code = "assets:clearing:cmi:EUR"
    with psycopg.connect(_libpq(url), autocommit=True) as connection:
        accounts: dict[str, int] = dict(connection.execute("SELECT code, id FROM accounts").fetchall())
        hot, other = accounts[code], accounts["liabilities:stamps-outstanding:FR-PAR"]
        connection.execute("SET session_replication_role = replica")  # bulk load: triggers off, then on
        end = to_micros(datetime.now(UTC) - timedelta(days=4))
        span = 365 * 86_400 * 1_000_000
        rng = random.Random(7)
        times = sorted(end - rng.randrange(span) for _ in range(postings))
        with connection.cursor() as cursor:
            with cursor.copy(
                "COPY entries (id, kind, consulate, effective_at, recorded_at, posting_count, memo)"
                " FROM STDIN"
            ) as copy:
                ids = []
                for moment in times:
                    entry = uuid.uuid4()
                    ids.append((entry, moment))
                    copy.write_row((entry, "payment_captured", "FR-PAR", moment, moment, 2, "{}"))
            with cursor.copy(
                "COPY postings (entry_id, line_no, account_id, currency, amount, effective_at,"
                " consulate, fee_code) FROM STDIN"
            ) as copy:
                for entry, moment in ids:
                    copy.write_row((entry, 1, hot, "EUR", 5500, moment, "FR-PAR", "PASSPORT"))
                    copy.write_row((entry, 2, other, "EUR", -5500, moment, "FR-PAR", "PASSPORT"))
        connection.execute("SET session_replication_role = DEFAULT")
        connection.execute("ANALYZE")
    database = Database.from_url(url, pool_size=1)
    cut_at = datetime.fromtimestamp(times[0] / 1e6, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    closed_through = datetime.fromtimestamp(end / 1e6, UTC)
    while cut_at < closed_through:  # close the books hour by hour, as the service does
        with database.write() as session:
            for _ in range(24 * 7):
                cut_at += timedelta(hours=1)
                checkpoints.cut(session, cut_at)
    database.dispose()
    return code


def asof_p99(url: str, code: str, probes: int) -> tuple[float, int]:
    database = Database.from_url(url, pool_size=1)
    rng = random.Random(11)
    now = datetime.now(UTC)
    latencies: list[float] = []
    with database.read() as session:
        total = account_balance(session, code)
    for _ in range(probes):
        instant = now - timedelta(seconds=rng.randrange(366 * 86_400))
        with database.read() as session:
            started = time.perf_counter()
            account_balance(session, code, as_of=instant)
            latencies.append((time.perf_counter() - started) * 1000)
    database.dispose()
    latencies.sort()
    return latencies[int(len(latencies) * 0.99) - 1], total.minor if total else 0


def bytes_per_posting(url: str) -> float:
    with psycopg.connect(_libpq(url), autocommit=True) as connection:
        size, count = connection.execute(
            "SELECT pg_total_relation_size('postings'), (SELECT count(*) FROM postings)"
        ).fetchone()  # type: ignore[misc]
    return float(size) / float(count)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for the test suite")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    chart = load_settings(environ={}).chart
    name = f"etimbre_bench_{secrets.token_hex(4)}"
    with _admin(SERVER) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    history_name = f"{name}_history"
    try:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        database = Database.from_url(url, pool_size=2)
        warm_accounts(database, chart)
        report: dict[str, float | int | str] = {}
        report.update(throughput(url, sizes))
        report["batched_postings_per_s"] = round(batched(database, chart, sizes.batches), 1)
        report["bytes_per_posting"] = round(bytes_per_posting(url), 1)
        database.dispose()
        with _admin(SERVER) as admin:
            admin.execute(f'CREATE DATABASE "{history_name}"')
        history_url = make_url(SERVER).set(database=history_name).render_as_string(hide_password=False)
        engine = make_engine(history_url)
        migrate.upgrade(engine)
        engine.dispose()
        code = load_history(history_url, chart, sizes.history_postings)
        report["asof_p99_ms"], _ = asof_p99(history_url, code, sizes.probes)
        report["asof_p99_ms"] = round(float(report["asof_p99_ms"]), 3)
        report["history_postings_on_account"] = sizes.history_postings
        report["ratio_to_raw"] = round(
            float(report["payments_per_s"]) / float(report["raw_baseline_per_s"]), 3
        )
        report["hot_ratio_to_uncontended"] = round(
            float(report["hot_payments_per_s"]) / float(report["payments_per_s"]), 3
        )
        report["mode"] = "quick" if args.quick else "full"
    finally:
        with _admin(SERVER) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'DROP DATABASE IF EXISTS "{history_name}" WITH (FORCE)')
    for key, value in report.items():
        print(f"{key:>28}: {value}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
