"""Benchmark of reconciliation: a day of 1,000,000 ledger lines against 1,000,000 export lines on
PostgreSQL beside a plain COPY + SQL join of the same data, and camt.053 parsing (50,000 entries) beside a
plain lxml pass over the same file.

    python tests/bench/reconcile.py [--quick] [--json] [--parts reconcile,camt]

Each figure is measured in a fresh subprocess, so its peak memory (the process's maximum resident set,
libxml2, psycopg and the interpreter included) belongs to that measurement alone. CPU seconds are printed
beside elapsed seconds: on the shared 2-core machine the difference is time spent waiting for a core (or
for PostgreSQL, which shares the machine).
Goals (DESIGN.md §8): reconcile ≤ 60 s, ≤ 256 MiB; camt parse ≤ 3 s, ≤ 64 MiB.
PostgreSQL comes from ETIMBRE_BENCH_DATABASE_URL (default: the local server); the script creates its own
database there and drops it at the end.
With --json the last line is one JSON object: reconcile_s, reconcile_peak_mib, baseline_s, import_s,
camt_parse_s, camt_peak_mib, camt_baseline_s, ...
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
# Run as a script, this folder comes first on sys.path, where tests/bench/ledger.py would shadow the
# `ledger` package: the project root goes first.
sys.path.insert(0, str(ROOT))
CAMT_GOAL_S = 3.0
CAMT_GOAL_MIB = 64.0
RECONCILE_GOAL_S = 60.0
RECONCILE_GOAL_MIB = 256.0
SERVER = os.environ.get("ETIMBRE_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
Figures = dict[str, Any]


# --- camt.053 -------------------------------------------------------------------------------------------


def _entry_amount(n: int) -> int:
    return 33_00 if n % 50 == 0 else 1_000 + (n * 37) % 50_000


def _money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def write_camt053(path: Path, entries: int) -> None:
    """A realistic camt.053.001.08 with `entries` booked entries (every 50th a 3-detail batch), balanced.

    Written entry by entry, so generating the file does not weigh on the measurements.
    """
    opening = 1_000_000_00
    closing = opening + sum(_entry_amount(n) for n in range(1, entries + 1))
    with path.open("w", encoding="utf-8") as out:
        out.write(
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{NAMESPACE}">\n<BkToCstmrStmt>\n'
            "<GrpHdr><MsgId>BENCH-1</MsgId><CreDtTm>2026-11-23T06:00:00+01:00</CreDtTm></GrpHdr>\n"
            "<Stmt>\n<Id>BENCH-STMT-1</Id><ElctrncSeqNb>311</ElctrncSeqNb><LglSeqNb>311</LglSeqNb>\n"
            "<CreDtTm>2026-11-23T06:00:00+01:00</CreDtTm>\n"
            "<Acct><Id><IBAN>MA64011519000001205000534921</IBAN></Id><Ccy>EUR</Ccy></Acct>\n"
        )
        for code, value in (("OPBD", opening), ("CLBD", closing)):
            out.write(
                f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
                f'<Amt Ccy="EUR">{_money(value)}</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
                "<Dt><Dt>2026-11-22</Dt></Dt></Bal>\n"
            )
        out.write(f"<TxsSummry><TtlNtries><NbOfNtries>{entries}</NbOfNtries></TtlNtries></TxsSummry>\n")
        for n in range(1, entries + 1):
            amount = _entry_amount(n)
            if n % 50 == 0:
                inner = f"<Btch><PmtInfId>BATCH-{n:07d}</PmtInfId><NbOfTxs>3</NbOfTxs></Btch>" + "".join(
                    f"<TxDtls><Refs><EndToEndId>ET-PAY-{n:07d}-{k}</EndToEndId></Refs>"
                    f'<Amt Ccy="EUR">{10 + k}.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
                    f"<RmtInf><Ustrd>Frais consulaires lot {n} {k}</Ustrd></RmtInf></TxDtls>"
                    for k in range(3)
                )
            else:
                inner = (
                    f"<TxDtls><Refs><EndToEndId>ET-PAY-{n:07d}</EndToEndId></Refs>"
                    f'<Amt Ccy="EUR">{_money(amount)}</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
                    f"<RltdPties><Dbtr><Pty><Nm>Demandeur {n}</Nm></Pty></Dbtr></RltdPties>"
                    f"<RmtInf><Ustrd>Timbre consulaire ET-PAY-{n:07d}</Ustrd></RmtInf></TxDtls>"
                )
            out.write(
                f'<Ntry><NtryRef>{n}</NtryRef><Amt Ccy="EUR">{_money(amount)}</Amt>'
                "<CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2026-11-22</Dt></BookgDt>"
                f"<ValDt><Dt>2026-11-22</Dt></ValDt><AcctSvcrRef>TGR-{n:08d}</AcctSvcrRef>"
                "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>"
                f"<NtryDtls>{inner}</NtryDtls></Ntry>\n"
            )
        out.write("</Stmt>\n</BkToCstmrStmt>\n</Document>\n")


def _rss_mib() -> float:
    # Current resident set, from /proc (Linux): the interpreter and its imports, before the work starts.
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mib() -> float:
    # VmHWM is this process's own peak resident set; ru_maxrss would carry the parent's over from fork.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_camt_parse(path: str) -> Figures:
    """Stream the file through the importer and the import checks, keeping nothing (as a database load)."""
    from reconciliation.importers import ImportChecks, stream_import

    before = _rss_mib()
    start, cpu = time.perf_counter(), time.process_time()
    checks = ImportChecks("camt053")
    lines = 0
    for item in stream_import(Path(path), "camt053"):
        checks.add(item)
        lines += 1
    verdict = checks.verdict()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert not verdict.findings, verdict.findings
    return {"seconds": seconds, "cpu": cpu, "items": lines, "rss_before_mib": before, "peak_mib": _peak_mib()}


def child_camt_baseline(path: str) -> Figures:
    """The floor: lxml iterparse over the same file, counting entries and clearing them, reading nothing."""
    from lxml import etree

    before = _rss_mib()
    start, cpu = time.perf_counter(), time.process_time()
    count = 0
    for _, element in etree.iterparse(path, tag="{*}Ntry"):
        count += 1
        element.clear()
        parent = element.getparent()
        while element.getprevious() is not None and parent is not None:
            del parent[0]
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": seconds, "cpu": cpu, "items": count, "rss_before_mib": before, "peak_mib": _peak_mib()}


# --- a day of 1,000,000 ledger lines against 1,000,000 export lines ----------------------------------------

FEES = (6000, 8000, 12500, 9900, 3500, 4000)


def _bench_day() -> date:
    from ledger.services import clock
    from reconciliation.days import today_in

    return today_in("Africa/Casablanca", clock.now()) - timedelta(days=3)


def _amount(n: int) -> int:
    return FEES[n % len(FEES)]


def write_export(path: Path, lines: int, missing: int, day: date) -> None:
    """The treasury export of the day: one line per payment, except `missing` payments the treasury never
    received, replaced by as many lines the ledger never heard of."""
    booked = day.isoformat()
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(
            "entry_id,booking_date,value_date,amount,currency,reference,counterparty,description,batch_reference\r\n"
        )
        for n in range(lines):
            reference = f"ET-PAY-{n:07d}" if n >= missing else f"ET-PAY-X{n:06d}"
            amount = _amount(n) if n >= missing else 7777
            out.write(
                f"TGR-{n:08d},{booked},{booked},{amount // 100}.{amount % 100:02d},EUR,{reference},"
                f"Demandeur {n % 997},Droits consulaires,\r\n"
            )


def load_ledger(url: str, entries: int, day: date) -> None:
    """The ledger side, bulk-loaded with COPY (the entries' triggers are off for the load only): `entries`
    captured payments spread over the business day, two postings each."""
    import uuid as uuid_module
    from datetime import UTC, datetime
    from datetime import time as clock_time
    from zoneinfo import ZoneInfo

    from ledger.db.engine import Database
    from ledger.db.types import to_micros
    from ledger.domain.chart import Role
    from ledger.services.accounts import account_ids
    from ledger.settings import load_settings

    settings = load_settings(environ={})
    clearing = settings.chart.account(Role.CLEARING, currency="EUR", provider="transfer")
    outstanding = settings.chart.account(Role.STAMPS_OUTSTANDING, currency="EUR", consulate="FR-PAR")
    database = Database.from_url(url, pool_size=2)
    with database.write() as session:
        ids = account_ids(session, [clearing, outstanding])
    database.dispose()
    start = datetime.combine(day, clock_time(0), tzinfo=ZoneInfo("Africa/Casablanca")).astimezone(UTC)
    step = (24 * 3600 * 1_000_000 - 1) // max(entries, 1)
    base = to_micros(start)
    recorded = to_micros(datetime.now(UTC))
    parsed = make_url(url)
    import psycopg

    with (
        psycopg.connect(
            host=parsed.host, port=parsed.port or 5432, user=parsed.username, dbname=parsed.database
        ) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute("SET session_replication_role = replica")
        with cursor.copy(
            "COPY postings (entry_id, line_no, account_id, currency, amount, effective_at, consulate, fee_code)"
            " FROM STDIN"
        ) as copy:
            for n in range(entries):
                entry = uuid_module.UUID(int=(1 << 127) | n)
                moment = base + n * step
                copy.write_row((entry, 1, ids[clearing.code], "EUR", _amount(n), moment, "FR-PAR", "VISA-C"))
                copy.write_row(
                    (entry, 2, ids[outstanding.code], "EUR", -_amount(n), moment, "FR-PAR", "VISA-C")
                )
        with cursor.copy(
            "COPY entries (id, kind, consulate, effective_at, recorded_at, posting_count, payment_ref, memo)"
            " FROM STDIN"
        ) as copy:
            for n in range(entries):
                entry = uuid_module.UUID(int=(1 << 127) | n)
                copy.write_row(
                    (
                        entry,
                        "payment_captured",
                        "FR-PAR",
                        base + n * step,
                        recorded,
                        2,
                        f"ET-PAY-{n:07d}",
                        "{}",
                    )
                )
        connection.commit()
    # A ledger posted to all day has been vacuumed by the time it is reconciled; a bulk load has not.
    with psycopg.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        dbname=parsed.database,
        autocommit=True,
    ) as connection:
        connection.execute("VACUUM ANALYZE entries")
        connection.execute("VACUUM ANALYZE postings")
        connection.execute("VACUUM ANALYZE accounts")


def child_import(argument: str) -> Figures:
    """The real importer and its database load: the export, streamed into recon_import_lines."""
    from ledger.db.engine import Database
    from ledger.settings import load_settings
    from reconciliation.imports import import_file, profiles_for

    url, path = json.loads(argument)
    settings = load_settings(environ={})
    database = Database.from_url(url, pool_size=2)
    before = _rss_mib()
    start, cpu = time.perf_counter(), time.process_time()
    outcome = import_file(
        database, Path(path), profiles_for(settings).get("treasury-default"), file_name="tgr.csv"
    )
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    database.dispose()
    assert outcome.status == "imported", outcome.message
    return {
        "seconds": seconds,
        "cpu": cpu,
        "items": outcome.lines,
        "import_id": outcome.import_id,
        "rss_before_mib": before,
        "peak_mib": _peak_mib(),
    }


def child_reconcile(argument: str) -> Figures:
    """The real matcher: one run of the day against the imported export, everything recorded."""
    from ledger.db.engine import Database
    from ledger.settings import load_settings
    from reconciliation.runs import RunPlan, reconcile

    url, import_id, day = json.loads(argument)
    settings = load_settings(environ={})
    database = Database.from_url(url, pool_size=2)
    before = _rss_mib()
    start, cpu = time.perf_counter(), time.process_time()
    summary = reconcile(
        database,
        RunPlan(date.fromisoformat(day), (import_id,), actor="bench"),
        settings=settings.service.reconciliation,
        timezone=settings.service.treasury.timezone,
        chart=settings.chart,
    )
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    database.dispose()
    return {
        "seconds": seconds,
        "cpu": cpu,
        "run_id": summary.run_id,
        "matches": summary.match_count,
        "exceptions": summary.exceptions,
        "phases": summary.timings,
        "rss_before_mib": before,
        "peak_mib": _peak_mib(),
    }


def child_report(argument: str) -> Figures:
    """The run's CSV report (every match and exception), streamed to a file, and its JSON report."""
    from ledger.db.engine import Database
    from reconciliation.reports import report_csv, report_json

    url, run_id, path = json.loads(argument)
    database = Database.from_url(url, pool_size=2)
    start = time.perf_counter()
    rows = 0
    with database.read() as session, Path(path).open("wb") as out:
        for chunk in report_csv(session, run_id):
            out.write(chunk)
            rows += 1
        json_bytes = len(report_json(session, run_id))
    seconds = time.perf_counter() - start
    database.dispose()
    return {"seconds": seconds, "rows": rows - 1, "json_bytes": json_bytes, "peak_mib": _peak_mib()}


def child_baseline(argument: str) -> Figures:
    """The floor: COPY the same export into a plain table and join it with the ledger on reference and
    amount in one SQL statement, counting the pairs; nothing checked, categorised or recorded."""
    import psycopg

    url, path = json.loads(argument)
    parsed = make_url(url)
    before = _rss_mib()
    start, cpu = time.perf_counter(), time.process_time()
    with (
        psycopg.connect(
            host=parsed.host, port=parsed.port or 5432, user=parsed.username, dbname=parsed.database
        ) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "CREATE TEMP TABLE plain (entry_id text, booking_date date, value_date date, amount numeric, "
            "currency text, reference text, counterparty text, description text, batch_reference text)"
        )
        with (
            Path(path).open("rb") as source,
            cursor.copy("COPY plain FROM STDIN (FORMAT csv, HEADER true)") as copy,
        ):
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        cursor.execute("""
            SELECT count(*) FROM plain t
              JOIN entries e ON e.payment_ref = t.reference
              JOIN postings p ON p.entry_id = e.id AND p.line_no = 1
             WHERE p.amount = (t.amount * 100)::bigint AND p.currency = t.currency
        """)
        row = cursor.fetchone()
        pairs = int(row[0]) if row else 0
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"seconds": seconds, "cpu": cpu, "pairs": pairs, "rss_before_mib": before, "peak_mib": _peak_mib()}


def reconcile_part(quick: bool) -> Figures:
    import secrets

    import psycopg

    from ledger.db import migrate
    from ledger.db.engine import make_engine

    lines = 20_000 if quick else 1_000_000
    missing = lines // 1000
    parsed = make_url(SERVER)
    name = f"etimbre_bench_recon_{secrets.token_hex(4)}"

    def admin() -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(
            host=parsed.host,
            port=parsed.port or 5432,
            user=parsed.username,
            password=parsed.password,
            dbname=parsed.database or "postgres",
            autocommit=True,
        )

    with admin() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = parsed.set(database=name).render_as_string(hide_password=False)
    day = _bench_day()
    try:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        setup = time.perf_counter()
        load_ledger(url, lines, day)
        with tempfile.TemporaryDirectory(prefix="etimbre-bench-") as tmp:
            export = Path(tmp) / "tgr.csv"
            write_export(export, lines, missing, day)
            setup = time.perf_counter() - setup
            size_mib = export.stat().st_size / 2**20
            baseline = run_child("baseline", json.dumps([url, str(export)]))
            imported = run_child("import", json.dumps([url, str(export)]))
            run = run_child("reconcile", json.dumps([url, imported["import_id"], day.isoformat()]))
            report = run_child("report", json.dumps([url, run["run_id"], str(Path(tmp) / "report.csv")]))
    finally:
        with admin() as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    expected = {"missing_in_export": missing, "missing_in_ledger": missing}
    assert run["exceptions"] == expected, run["exceptions"]
    assert baseline["pairs"] == lines - missing
    phases = ", ".join(f"{k} {v:.1f}" for k, v in run["phases"].items() if k != "total")
    print(
        f"reconciliation: {lines:,} ledger lines against {lines:,} export lines ({size_mib:.0f} MiB CSV), "
        f"PostgreSQL; {missing:,} missing on each side (set-up {setup:.1f} s)\n"
        f"  import (parse, check, COPY)  {imported['seconds']:7.2f} s (CPU {imported['cpu']:.2f} s)   "
        f"peak {imported['peak_mib']:6.1f} MiB\n"
        f"  reconcile (every pass, run recorded)  {run['seconds']:7.2f} s (CPU {run['cpu']:.2f} s)   "
        f"peak {run['peak_mib']:6.1f} MiB (process at start {run['rss_before_mib']:.1f} MiB)\n"
        f"    phases: {phases}\n"
        f"  reports: CSV of {report['rows']:,} rows + JSON  {report['seconds']:7.2f} s   "
        f"peak {report['peak_mib']:6.1f} MiB\n"
        f"  baseline COPY + SQL join  {baseline['seconds']:7.2f} s   ({baseline['pairs']:,} pairs)\n"
        f"  ratio {run['seconds'] / baseline['seconds']:.1f}x the baseline's time "
        f"({(run['seconds'] + imported['seconds']) / baseline['seconds']:.1f}x with the import); "
        f"goal ≤ {RECONCILE_GOAL_S:.0f} s and ≤ {RECONCILE_GOAL_MIB:.0f} MiB"
        + (" (quick mode: goals apply to the full run)" if quick else "")
    )
    return {
        "reconcile_lines": lines,
        "reconcile_s": round(run["seconds"], 3),
        "reconcile_cpu_s": round(run["cpu"], 3),
        "reconcile_peak_mib": round(run["peak_mib"], 1),
        "reconcile_start_mib": round(run["rss_before_mib"], 1),
        "reconcile_phases_s": run["phases"],
        "reconcile_exceptions": sum(run["exceptions"].values()),
        "import_s": round(imported["seconds"], 3),
        "import_peak_mib": round(imported["peak_mib"], 1),
        "report_s": round(report["seconds"], 3),
        "report_peak_mib": round(report["peak_mib"], 1),
        "baseline_s": round(baseline["seconds"], 3),
        "baseline_peak_mib": round(baseline["peak_mib"], 1),
        "reconcile_goal_met": run["seconds"] <= RECONCILE_GOAL_S and run["peak_mib"] <= RECONCILE_GOAL_MIB,
    }


CHILDREN: dict[str, Callable[[str], Figures]] = {
    "camt-parse": child_camt_parse,
    "camt-baseline": child_camt_baseline,
    "import": child_import,
    "reconcile": child_reconcile,
    "report": child_report,
    "baseline": child_baseline,
}


def run_child(name: str, argument: str) -> Figures:
    done = subprocess.run(
        [sys.executable, __file__, "--child", name, argument],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    figures: Figures = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def camt_part(quick: bool) -> Figures:
    entries = 2_000 if quick else 50_000
    with tempfile.TemporaryDirectory(prefix="etimbre-bench-") as tmp:
        path = Path(tmp) / "statement.camt053.xml"
        write_camt053(path, entries)
        size_mib = path.stat().st_size / 2**20
        baseline = run_child("camt-baseline", str(path))
        parsed = run_child("camt-parse", str(path))
    assert baseline["items"] == entries
    assert parsed["items"] == entries + 1  # every entry, then the statement
    print(
        f"camt.053: {entries:,} entries, {size_mib:.1f} MiB file\n"
        f"  importer + checks  {parsed['seconds']:7.3f} s (CPU {parsed['cpu']:.3f} s)   "
        f"peak {parsed['peak_mib']:6.1f} MiB (process at start {parsed['rss_before_mib']:.1f} MiB)\n"
        f"  baseline iterparse {baseline['seconds']:7.3f} s (CPU {baseline['cpu']:.3f} s)   "
        f"peak {baseline['peak_mib']:6.1f} MiB (process at start {baseline['rss_before_mib']:.1f} MiB)\n"
        f"  ratio {parsed['seconds'] / baseline['seconds']:.1f}x the baseline's time; "
        f"goal ≤ {CAMT_GOAL_S:.0f} s and ≤ {CAMT_GOAL_MIB:.0f} MiB"
        + (" (quick mode: goals apply to the full run)" if quick else "")
    )
    return {
        "camt_entries": entries,
        "camt_file_mib": round(size_mib, 2),
        "camt_parse_s": round(parsed["seconds"], 3),
        "camt_parse_cpu_s": round(parsed["cpu"], 3),
        "camt_peak_mib": round(parsed["peak_mib"], 1),
        "camt_start_mib": round(parsed["rss_before_mib"], 1),
        "camt_baseline_s": round(baseline["seconds"], 3),
        "camt_baseline_cpu_s": round(baseline["cpu"], 3),
        "camt_baseline_peak_mib": round(baseline["peak_mib"], 1),
        "camt_goal_met": parsed["seconds"] <= CAMT_GOAL_S and parsed["peak_mib"] <= CAMT_GOAL_MIB,
    }


# Each part prints its figures and returns its JSON keys.
PARTS: dict[str, Callable[[bool], Figures]] = {"reconcile": reconcile_part, "camt": camt_part}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small inputs, for a smoke test")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of: {', '.join(PARTS)}")
    parser.add_argument("--child", nargs=2, metavar=("NAME", "ARG"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        name, argument = args.child
        print(json.dumps(CHILDREN[name](argument)))
        return 0
    figures: Figures = {"quick": args.quick}
    for name in args.parts.split(","):
        figures.update(PARTS[name.strip()](args.quick))
    if args.json:
        print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
