"""`etimbre demo`: a realistic day that reconciles with exactly its three planted differences; refuses a
ledger that is not empty; prints where to click first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger.db.engine import Database
from ledger.db.models import Entry
from ledger.services import clock, stamps
from ledger.services.demo import DemoRefusedError, seed_demo_day
from ledger.services.signing_keys import StampKeys
from ledger.services.stamp_status import PublicStatus, public_status
from ledger.settings import Settings
from reconciliation.imports import import_file, profiles_for, resolve_layout
from reconciliation.runs import RunPlan, reconcile


def _entries(db: Database) -> int:
    with db.read() as session:
        return session.execute(select(func.count()).select_from(Entry)).scalar_one()


def test_the_demo_day_reconciles_with_its_three_differences(
    db: Database, settings: Settings, stamp_keys: dict[str, str], tmp_path: Path
) -> None:
    day = seed_demo_day(db, settings, StampKeys(settings), now=clock.now(), out_dir=tmp_path, seed=11)
    assert len(day.online) == 18 and len(day.counter) == 8
    assert day.used and day.unused and len(day.refunded) == 1
    with db.read() as session:
        assert public_status(session, settings, day.used[0].number).status is PublicStatus.USED
        assert public_status(session, settings, day.unused[0].number).status is PublicStatus.VALID
        assert public_status(session, settings, day.refunded[0].number).status is PublicStatus.REFUNDED
    assert day.export_path is not None and day.report_path is not None
    assert {settled.batch.currency for settled in day.settled} <= {"EUR", "GBP", "TND"}
    assert all(settled.entry_id is not None for settled in day.settled)  # the payouts are in the ledger
    profiles = profiles_for(settings)
    imported = import_file(db, day.export_path, resolve_layout("treasury-default", profiles), actor="test")
    report = import_file(db, day.report_path, resolve_layout("settlement-sandbox", profiles), actor="test")
    assert imported.status == report.status == "imported"
    assert imported.error_count == report.error_count == 0
    summary = reconcile(
        db,
        RunPlan(day.business_day, (imported.import_id, report.import_id), actor="test"),
        settings=settings.service.reconciliation,
        timezone=settings.service.treasury.timezone,
        chart=settings.chart,
    )
    assert summary.exceptions == {"missing_in_export": 1, "amount_mismatch": 1, "missing_in_ledger": 1}
    assert len(day.differences) == 3
    roles = sorted(member.role.value for member, _ in day.staff)
    assert roles == ["admin", "auditor", "auditor", "cashier", "cashier"]
    cashiers = {member.consulate: member.actor for member, _ in day.staff if member.consulate}
    with db.read() as session:  # a stamp used in Paris or Brussels names the cashier who took it
        views = [stamps.find_stamp(session, settings, stamp.number) for stamp in day.used]
    named = [view for view in views if view.consulate in cashiers]
    assert named
    assert all(view.final is not None and view.final.actor == cashiers[view.consulate] for view in named)


def test_the_demo_refuses_a_ledger_that_is_not_empty(
    db: Database, settings: Settings, stamp_keys: dict[str, str], tmp_path: Path
) -> None:
    seed_demo_day(db, settings, StampKeys(settings), now=clock.now(), out_dir=tmp_path, seed=1)
    before = _entries(db)
    with pytest.raises(DemoRefusedError, match=f"already holds {before} entries"):
        seed_demo_day(db, settings, StampKeys(settings), now=clock.now(), out_dir=tmp_path / "again")
    assert _entries(db) == before
    assert not (tmp_path / "again").exists()


@pytest.mark.slow
def test_etimbre_demo_prints_where_to_click_first(database_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ETIMBRE_DATABASE_URL": database_url,
        "ETIMBRE_DATA_DIR": str(tmp_path),
        "COLUMNS": "60",  # links must not be wrapped, however narrow the terminal
    }
    for name in ("ETIMBRE_KEY_PASSPHRASE", "ETIMBRE_RECEIPT_SECRET"):
        env.pop(name, None)  # the embedded default makes its development secrets

    def etimbre(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from ledger.cli import main; main()", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
            check=False,
        )

    first = etimbre("demo", "--seed", "5")
    assert first.returncode == 0, first.stderr
    assert "/web/receipts/" in first.stdout and "/web/check?number=" in first.stdout
    assert "missing in the ledger" in first.stdout
    assert list((tmp_path / "demo").glob("treasury-*.csv"))
    assert list((tmp_path / "demo").glob("settlement-sandbox-*.csv"))
    again = etimbre("demo")
    assert again.returncode == 1
    assert "the demo seeds only an empty database" in again.stderr
