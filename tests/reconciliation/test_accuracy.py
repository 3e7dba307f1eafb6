"""On labelled data with every kind of difference: no wrong match is confirmed, and the differences land
in the right category, on both engines."""

from __future__ import annotations

from datetime import timedelta

from ledger.db.engine import Database
from ledger.services import clock
from ledger.settings import Settings
from reconciliation.days import today_in
from reconciliation.importers import ProfileSet
from reconciliation.runs import RunPlan, reconcile
from tests.reconciliation.generator import Generator
from tests.reconciliation.labelled import load, score


def test_labelled_day_has_no_false_match_and_every_difference_in_its_category(
    db: Database, settings: Settings, profiles: ProfileSet
) -> None:
    timezone = settings.service.treasury.timezone
    day = today_in(timezone, clock.now()) - timedelta(days=3)
    data = Generator(settings.chart, day, timezone, seed=11, scale=2, each=3).build()
    loaded = load(db, data, profiles)
    summary = reconcile(
        db,
        RunPlan(day, loaded.run_imports, actor="test"),
        settings=settings.service.reconciliation,
        timezone=timezone,
        chart=settings.chart,
    )
    result = score(db, summary.run_id, loaded)
    print(summary.exceptions, summary.counts["matched"], summary.balances)
    assert result.false_positives == []
    assert result.wrong == []
    assert result.unmatched_normal == []
    assert result.anomalies >= 30
    assert result.accuracy >= 0.999
    assert set(result.categories) >= {
        "missing_in_ledger",
        "missing_in_export",
        "amount_mismatch",
        "duplicate",
        "timing",
        "currency_mismatch",
        "reversed",
        "ambiguous",
    }
    assert [b["status"] for b in summary.balances] == ["explained", "explained"]
