"""`etimbre reconcile` as cron runs it and as auditors use it, in a real process, on both engines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ledger.db.engine import Database
from ledger.settings import Settings
from tests.reconciliation.helpers import capture, export, past_day
from tests.reconciliation.statement_files import Entry, Stmt, camt053


def etimbre(
    database_url: str, tmp_path: Path, *args: str, auditor: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ETIMBRE_DATABASE_URL": database_url, "ETIMBRE_DATA_DIR": str(tmp_path)}
    env.pop("ETIMBRE_AUDITOR", None)
    if auditor is not None:
        env["ETIMBRE_AUDITOR"] = auditor
    return subprocess.run(
        [sys.executable, "-c", "from ledger.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_a_daily_run_exits_3_while_exceptions_remain_and_0_once_all_match(
    db: Database, database_url: str, settings: Settings, tmp_path: Path
) -> None:
    day = past_day(settings)
    capture(db, settings, day, "ET-PAY-0001", 12500)
    file = tmp_path / "tgr.csv"
    file.write_bytes(export(day, ("125.00", "EUR", "ET-PAY-0001"), ("300.00", "EUR", "")))
    out = tmp_path / "reports"
    done = etimbre(
        database_url,
        tmp_path,
        "reconcile",
        "--day",
        day.isoformat(),
        "--export",
        str(file),
        "--profile",
        "treasury-default",
        "--out",
        str(out),
        "--quiet",
    )
    assert done.returncode == 3, done.stderr
    assert "1 exception(s)" in done.stdout
    reports = sorted(path.name for path in out.iterdir())
    assert reports == [f"reconciliation-{day.isoformat()}-run1.{s}" for s in ("csv", "json", "pdf")]

    listed = etimbre(database_url, tmp_path, "reconcile", "exceptions", "--json")
    assert listed.returncode == 0, listed.stderr
    (exception,) = json.loads(listed.stdout)
    assert (exception["category"], exception["export_amount"]) == ("missing_in_ledger", "300.00")

    nobody = etimbre(database_url, tmp_path, "reconcile", "post", str(exception["id"]), "--reason", "deposit")
    assert nobody.returncode == 2
    assert "--auditor" in nobody.stderr
    posted = etimbre(
        database_url,
        tmp_path,
        "reconcile",
        "post",
        str(exception["id"]),
        "--reason",
        "cash deposit",
        auditor="A. Benali",
    )
    assert posted.returncode == 0, posted.stderr
    assert "pending approval" in posted.stdout  # 300.00 EUR is above the 100.00 EUR threshold
    resolution = posted.stdout.split()[1].rstrip(":")
    own = etimbre(
        database_url, tmp_path, "reconcile", "approve", resolution, "--reason", "ok", auditor="A. Benali"
    )
    assert own.returncode == 1
    assert "another auditor" in own.stderr
    approved = etimbre(
        database_url,
        tmp_path,
        "reconcile",
        "approve",
        resolution,
        "--reason",
        "slip seen",
        auditor="S. Haddad",
    )
    assert approved.returncode == 0, approved.stderr
    assert "entries" in approved.stdout

    again = etimbre(
        database_url,
        tmp_path,
        "reconcile",
        "--day",
        day.isoformat(),
        "--export",
        str(file),
        "--profile",
        "treasury-default",
        "--json",
    )
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout.strip().splitlines()[-1])
    assert summary["exceptions"] == {}
    assert "already imported" in again.stderr

    report = etimbre(database_url, tmp_path, "reconcile", "report", str(summary["run"]), "--format", "csv")
    assert report.returncode == 0
    assert "resolved,posted" in report.stdout


def test_a_quarantined_statement_stops_the_run_with_its_reason(
    database_url: str, settings: Settings, tmp_path: Path
) -> None:
    file = tmp_path / "stmt.xml"
    file.write_bytes(camt053(Stmt([Entry("100.00", account_ref="A1")], opening="0.00", closing="90.00")))
    done = etimbre(
        database_url,
        tmp_path,
        "reconcile",
        "--day",
        past_day(settings).isoformat(),
        "--export",
        str(file),
        "--profile",
        "camt053",
        "--quiet",
    )
    assert done.returncode == 1
    assert "quarantined" in done.stderr
    assert "does not add up" in done.stderr
