"""Audit benchmark on PostgreSQL: what sealing costs the payment path, and how long verifying a large
journal takes, each beside a baseline measured in the same run.

    python tests/bench/audit.py [--quick] [--json] [--entries N]

1. Payments per second with 20 clients (the ledger benchmark's payment path), alternating rounds on a
   database without the audit migration and on one with it and the sealer running every second.
2. A journal bulk-loaded with N entries (two postings each; 10,000,000 by default), sealed by the real
   sealer, then verified from scratch; beside it, hashing the same records' bytes without the database.

The server comes from ETIMBRE_BENCH_DATABASE_URL (default: the local one); the script creates its own
databases and drops them at the end.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # before tests/bench/ledger.py shadows `ledger`

import argparse
import hashlib
import json
import multiprocessing
import secrets
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import make_url

from ledger.db import migrate
from ledger.db.engine import Database, make_engine
from ledger.services.audit import records
from ledger.services.audit.kinds import ENTRY, POSTING
from ledger.services.audit.runner import seal_pending
from ledger.services.audit.seals import load
from ledger.services.audit.verify import verify
from ledger.services.journal import post_entry
from ledger.settings import load_settings
from tests.bench import ledger as ledger_bench

CLIENTS = 20
PROCESSES = 4
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@dataclass(frozen=True)
class Sizes:
    seconds: float
    rounds: int
    entries: int
    per_seal: int


FULL = Sizes(seconds=8.0, rounds=3, entries=10_000_000, per_seal=250_000)
QUICK = Sizes(seconds=1.0, rounds=1, entries=20_000, per_seal=5_000)


def _url(name: str) -> str:
    return make_url(ledger_bench.SERVER).set(database=name).render_as_string(hide_password=False)


def _create(name: str, revision: str) -> str:
    with ledger_bench._admin(ledger_bench.SERVER) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _url(name)
    engine = make_engine(url)
    migrate.upgrade(engine, revision)
    engine.dispose()
    return url


# 1. Payments with and without sealing ---------------------------------------------------------------------


def _payment_clients(url: str, first: int, threads: int, ready: Callable[[], None], seconds: float) -> int:
    chart = load_settings(environ={}).chart
    database = Database.from_url(url, pool_size=threads)
    counts = [0] * threads
    gate = threading.Barrier(threads, action=ready)

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
                    ledger_bench.payment(chart, client % CLIENTS, number, False),
                    idempotency_key=f"a-{client}-{number}",
                )
            number += 1
        counts[slot] = number

    ledger_bench._run_threads(run, threads)
    database.dispose()
    return sum(counts)


def _client_process(
    url: str, first: int, threads: int, ready: object, go: object, seconds: float, out: object
) -> None:
    def announce() -> None:
        ready.put(first)  # type: ignore[attr-defined]
        go.wait()  # type: ignore[attr-defined]

    out.put(_payment_clients(url, first, threads, announce, seconds))  # type: ignore[attr-defined]


def payments_per_second(url: str, round_no: int, seconds: float) -> float:
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    per_process = CLIENTS // PROCESSES
    base = round_no * 1000  # fresh idempotency keys every round
    processes = [
        context.Process(
            target=_client_process,
            args=(url, base + i * per_process, per_process, ready, go, seconds, results),
        )
        for i in range(PROCESSES)
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


def _sealer(url: str, interval: float, stop: object, sealed: object) -> None:
    database = Database.from_url(url, pool_size=1)
    count = 0
    while not stop.is_set():  # type: ignore[attr-defined]
        count += sum(header.record_count for header in seal_pending(database, max_records=100_000))
        stop.wait(interval)  # type: ignore[attr-defined]
    count += sum(header.record_count for header in seal_pending(database, max_records=100_000))
    database.dispose()
    sealed.put(count)  # type: ignore[attr-defined]


def sealing_cost(sizes: Sizes, report: dict[str, object]) -> None:
    token = secrets.token_hex(3)
    plain_name, sealed_name = f"etimbre_bench_audit_{token}_plain", f"etimbre_bench_audit_{token}_sealed"
    try:
        plain = _create(plain_name, "0002")  # the ledger alone: no audit column, index or sealer
        sealed = _create(sealed_name, "heads")
        chart = load_settings(environ={}).chart
        for url in (plain, sealed):
            database = Database.from_url(url, pool_size=2)
            ledger_bench.warm_accounts(database, chart)
            database.dispose()
        without: list[float] = []
        with_sealing: list[float] = []
        context = multiprocessing.get_context("spawn")
        stop, sealed_count = context.Event(), context.Queue()
        sealer = context.Process(target=_sealer, args=(sealed, 1.0, stop, sealed_count))
        sealer.start()
        try:
            for round_no in range(sizes.rounds):
                without.append(payments_per_second(plain, round_no, sizes.seconds))
                with_sealing.append(payments_per_second(sealed, round_no, sizes.seconds))
        finally:
            stop.set()
            records_sealed = sealed_count.get(timeout=600)
            sealer.join()
        database = Database.from_url(sealed, pool_size=1)
        with database.read() as session:
            report_unsealed = verify(session).unsealed
        database.dispose()
        report["payments_per_s_without_sealing"] = round(statistics.median(without), 1)
        report["payments_per_s_with_sealing"] = round(statistics.median(with_sealing), 1)
        report["sealing_rounds"] = {
            "without": [round(x, 1) for x in without],
            "with": [round(x, 1) for x in with_sealing],
        }
        report["records_sealed_during_run"] = records_sealed
        report["records_left_unsealed"] = sum(report_unsealed.values())
        base = statistics.median(without)
        report["sealing_slowdown_pct"] = round((base - statistics.median(with_sealing)) / base * 100, 2)
    finally:
        with ledger_bench._admin(ledger_bench.SERVER) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{plain_name}" WITH (FORCE)')
            admin.execute(f'DROP DATABASE IF EXISTS "{sealed_name}" WITH (FORCE)')


# 2. Verifying a large journal ------------------------------------------------------------------------------


def _entry_id(number: int) -> uuid.UUID:
    """A UUIDv7-shaped id, time-ordered like the service's (one millisecond per 10 entries)."""
    millis = BASE_MS + number // 10
    return uuid.UUID(int=(millis << 80) | (0x7 << 76) | (0b10 << 62) | number)


_SECONDARY = {
    "entries": [
        "ix_entries_effective_at",
        "ix_entries_payment_ref",
        "ix_entries_stamp_ref",
        "ix_entries_audit_tx",
    ],
    "postings": ["ix_postings_balance", "ix_postings_audit_tx"],
}


def bulk_load(url: str, entries: int) -> None:
    """`entries` payments (two postings each), as batched transactions (guards off for the load only)."""
    import psycopg

    with psycopg.connect(ledger_bench._libpq(url), autocommit=True) as connection:
        connection.execute(
            "INSERT INTO accounts (code, currency, type, role, provider, consulate) VALUES"
            " ('assets:clearing:cmi:EUR', 'EUR', 'asset', 'clearing', 'cmi', ''),"
            " ('liabilities:stamps-outstanding:FR-PAR', 'EUR', 'liability', 'stamps_outstanding', '', 'FR-PAR')"
        )
        accounts: dict[str, int] = dict(connection.execute("SELECT code, id FROM accounts").fetchall())
        clearing, outstanding = (
            accounts["assets:clearing:cmi:EUR"],
            accounts["liabilities:stamps-outstanding:FR-PAR"],
        )
        horizon = int(connection.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()[0])  # type: ignore[index]
        per_tx = max(1, -(-entries // max(1, horizon // 2)))  # written in transactions of this many entries
        index_sql = {
            name: connection.execute(
                "SELECT indexdef FROM pg_indexes WHERE indexname = %s", (name,)
            ).fetchone()[0]  # type: ignore[index]
            for names in _SECONDARY.values()
            for name in names
        }
        for name in index_sql:
            connection.execute(f"DROP INDEX {name}")
        connection.execute("SET session_replication_role = replica")
        chunk = 100_000
        with connection.cursor() as cursor:
            with cursor.copy(
                "COPY entries (id, kind, consulate, effective_at, recorded_at, posting_count, payment_ref, memo,"
                " actor, audit_tx) FROM STDIN"
            ) as copy:
                for start in range(0, entries, chunk):
                    lines = []
                    for n in range(start, min(entries, start + chunk)):
                        at = (BASE_MS + n // 10) * 1000
                        lines.append(
                            f"{_entry_id(n)}\tpayment_captured\tFR-PAR\t{at}\t{at}\t2\tpay-{n}\t"
                            f'{{"channel": "online"}}\tcashier\t{1 + n // per_tx}\n'
                        )
                    copy.write("".join(lines))
            with cursor.copy(
                "COPY postings (entry_id, line_no, account_id, currency, amount, effective_at, consulate,"
                " fee_code, audit_tx) FROM STDIN"
            ) as copy:
                for start in range(0, entries, chunk):
                    lines = []
                    for n in range(start, min(entries, start + chunk)):
                        at, entry, tx, amount = (
                            (BASE_MS + n // 10) * 1000,
                            _entry_id(n),
                            1 + n // per_tx,
                            5500 + n % 100,
                        )
                        lines.append(f"{entry}\t1\t{clearing}\tEUR\t{amount}\t{at}\tFR-PAR\tPASSPORT\t{tx}\n")
                        lines.append(
                            f"{entry}\t2\t{outstanding}\tEUR\t{-amount}\t{at}\tFR-PAR\tPASSPORT\t{tx}\n"
                        )
                    copy.write("".join(lines))
        connection.execute("SET session_replication_role = DEFAULT")
        for statement in index_sql.values():
            connection.execute(statement)
        connection.execute("VACUUM ANALYZE")


def hashing_baseline(url: str, total_entries: int) -> float:
    """Hash the same records' bytes as verification does (one update per record), without the database:
    the records of the first seal, hashed over and over until as many as the journal holds."""
    database = Database.from_url(url, pool_size=1)
    with database.read() as session:
        first = load(session, 1)
        assert first is not None
        samples = []
        for kind in (ENTRY, POSTING):
            covered = first.header.kind(kind.name)
            assert covered is not None
            samples.append(records.read_range(session, kind, covered.first_position, covered.end_position))
    database.dispose()
    sample_entries, sample_postings = samples
    started = time.perf_counter()
    for sample, total in ((sample_entries, total_entries), (sample_postings, 2 * total_entries)):
        done = 0
        while done < total:
            hasher = hashlib.sha256()
            update = hasher.update
            for record in sample[: total - done]:
                update(record)
            hasher.digest()
            done += min(len(sample), total - done)
    return time.perf_counter() - started


def verification(sizes: Sizes, entries: int, report: dict[str, object]) -> None:
    name = f"etimbre_bench_audit_{secrets.token_hex(3)}_journal"
    try:
        url = _create(name, "heads")
        started = time.perf_counter()
        bulk_load(url, entries)
        report["bulk_load_s"] = round(time.perf_counter() - started, 1)
        database = Database.from_url(url, pool_size=2)
        started = time.perf_counter()
        seals = seal_pending(database, max_records=sizes.per_seal)
        report["seal_journal_s"] = round(time.perf_counter() - started, 1)
        report["seals"] = len(seals)
        with database.read() as session:
            started = time.perf_counter()
            result = verify(session, database=database)
            elapsed = time.perf_counter() - started
        database.dispose()
        if not result.ok or result.records != 3 * entries:
            raise RuntimeError(f"verification of the bulk-loaded journal failed: {result.findings[:3]}")
        report["verified_entries"] = entries
        report["verified_records"] = result.records  # an entry and each of its postings is a record
        report["verify_s"] = round(elapsed, 2)
        report["baseline_s"] = round(hashing_baseline(url, entries), 2)
        # The headline is the stricter reading: 10,000,000 entries (30,000,000 records with their postings).
        report["verify_10m_s"] = round(elapsed * 10_000_000 / entries, 1)
        report["verify_10m_records_s"] = round(elapsed * 10_000_000 / result.records, 1)
        report["verify_10m_extrapolated"] = entries != 10_000_000
    finally:
        with ledger_bench._admin(ledger_bench.SERVER) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for the test suite")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--entries", type=int, help="entries to verify (default 10,000,000; quick 20,000)")
    parser.add_argument("--skip-payments", action="store_true", help="only the verification part")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    report: dict[str, object] = {"mode": "quick" if args.quick else "full"}
    if not args.skip_payments:
        sealing_cost(sizes, report)
    verification(sizes, args.entries or sizes.entries, report)
    for key, value in report.items():
        print(f"{key:>32}: {value}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
