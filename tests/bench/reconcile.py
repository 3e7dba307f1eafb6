"""Benchmark of reconciliation: camt.053 parsing (50,000 entries) beside a plain lxml pass over the same file.

    python tests/bench/reconcile.py [--quick] [--json] [--parts camt]

Each figure is measured in a fresh subprocess, so its peak memory (the process's maximum resident set,
libxml2 and the interpreter included) belongs to that measurement alone. CPU seconds are printed beside
elapsed seconds: on the shared 2-core machine the difference is time spent waiting for a core.
Goals (DESIGN.md §8): camt parse ≤ 3 s, ≤ 64 MiB.
With --json the last line is one JSON object: camt_parse_s, camt_peak_mib, camt_baseline_s, ...
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# Run as a script, this folder comes first on sys.path, where tests/bench/ledger.py would shadow the
# `ledger` package: the project root goes first.
sys.path.insert(0, str(ROOT))
CAMT_GOAL_S = 3.0
CAMT_GOAL_MIB = 64.0
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


CHILDREN: dict[str, Callable[[str], Figures]] = {
    "camt-parse": child_camt_parse,
    "camt-baseline": child_camt_baseline,
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


# Each part prints its figures and returns its JSON keys. The reconciliation part (1,000,000 ledger
# lines against 1,000,000 export lines on PostgreSQL: reconcile_s, reconcile_peak_mib, baseline_s) goes here.
PARTS: dict[str, Callable[[bool], Figures]] = {"camt": camt_part}


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
