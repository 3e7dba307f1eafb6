"""`etimbre payments settle`: from a provider variant for a day, and from an acquirer's report file."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

from ledger import cli
from ledger.db.engine import Database
from ledger.money import Money
from ledger.services.balances import account_balance
from ledger.settings import Settings, load_settings
from providers.config import parse_providers_config
from providers.registry import ProviderRegistry
from tests.providers.conftest import ENV, providers_toml
from tests.reconciliation.test_settlement_import import STRIPE_HEADER
from tests.settlement.conftest import pay_online

Run = Callable[..., str]
REPORT = (
    STRIPE_HEADER
    + "po_1QxA,2026-11-24 00:00:00,txn_1,2026-11-22 09:14:03,x,2026-11-24 00:00:00,x,eur,60.00,1.15,58.85,"
    "charge,ch_1,,,,,pi_1,ch_1,ET-PAY-0001\n"
    + "po_1QxA,2026-11-24 00:00:00,txn_2,2026-11-22 15:40:00,x,2026-11-24 00:00:00,x,eur,-60.00,0.00,-60.00,"
    "refund,re_1,,,,,pi_2,ch_2,ET-PAY-0002\n"
    + "po_1QxA,2026-11-24 00:00:00,txn_3,2026-11-22 18:02:00,x,2026-11-24 00:00:00,x,eur,-25.00,15.00,-40.00,"
    "dispute,dp_1,,,,,pi_3,ch_3,ET-PAY-0003\n"
    + "po_1QxB,2026-11-24 00:00:00,txn_4,2026-11-22 18:02:00,x,2026-11-24 00:00:00,x,usd,10.00,0.59,9.41,"
    "charge,ch_4,,,,,pi_4,ch_4,ET-PAY-0004\n"
)


@pytest.fixture
def run(db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_urls: tuple[str, str]) -> Run:
    """`run(*args)` runs `etimbre` on the test database, with providers.toml pointing at the test's fakes."""
    config = tmp_path / "config"
    shutil.copytree(Path(cli.__file__).parents[2] / "config", config)
    sandbox, stripe = fake_urls
    (config / "providers.toml").write_text(providers_toml(sandbox, "http://127.0.0.1:9", stripe, "http://x"))
    url = db.engine.url.render_as_string(hide_password=False)
    settings = load_settings(config, environ={"ETIMBRE_DATABASE_URL": url})
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.setattr(cli.Context, "database", property(lambda _: db))
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)

    def invoke(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def _balance(db: Database, code: str) -> Money | None:
    with db.read() as session:
        return account_balance(session, code)


def test_a_stripe_report_settles_each_payout_once(run: Run, db: Database, tmp_path: Path) -> None:
    report = tmp_path / "payouts.csv"
    report.write_text(REPORT)
    first = json.loads(
        run("payments", "settle", "--report", str(report), "--profile", "settlement-stripe", "--json")
    )
    assert [(b["batch"], b["currency"], b["net"], b["status"]) for b in first["batches"]] == [
        ("po_1QxA", "EUR", "-41.15", "posted"),
        ("po_1QxB", "USD", "9.41", "posted"),
    ]
    again = json.loads(
        run("payments", "settle", "--report", str(report), "--profile", "settlement-stripe", "--json")
    )
    assert {b["status"] for b in again["batches"]} == {"already posted"}
    assert _balance(db, "assets:clearing:stripe:EUR") == Money(2500, "EUR")  # 60 - 60 - 25 credited
    assert _balance(db, "expenses:acquirer-fees:stripe:EUR") == Money(1615, "EUR")
    assert _balance(db, "assets:treasury-account:EUR") == Money(-4115, "EUR")


def test_bad_reports_and_options_are_named(run: Run, tmp_path: Path) -> None:
    report = tmp_path / "bad.csv"
    report.write_text(REPORT.replace("58.85", "58.00"))
    assert "nothing imported" in run(
        "payments", "settle", "--report", str(report), "--profile", "settlement-stripe", code=1
    )
    assert "no import profile named 'nope'" in run(
        "payments", "settle", "--report", str(report), "--profile", "nope", code=2
    )
    assert "not settlement reports" in run(
        "payments", "settle", "--report", str(report), "--profile", "treasury-default", code=1
    )
    assert "give one of" in run("payments", "settle", code=2)
    assert "no variant named 'nope'" in run(
        "payments", "settle", "--variant", "nope", "--day", "2026-11-22", code=1
    )
    assert "not a date" in run("payments", "settle", "--variant", "sandbox-online", "--day", "22/11", code=2)


def test_a_variant_is_asked_for_its_day(run: Run, db: Database, fake_urls: tuple[str, str]) -> None:
    async def pay() -> None:
        toml = providers_toml(fake_urls[0], "http://127.0.0.1:9", fake_urls[1], "http://x")
        async with ProviderRegistry(parse_providers_config(toml, source="test"), env=ENV) as registry:
            await pay_online(registry.get("sandbox-online"), "CLI-1", Money(10000, "EUR"))

    anyio.run(pay)
    day = datetime.now(UTC).date().isoformat()
    output = run("payments", "settle", "--variant", "sandbox-online", "--day", day)
    assert "posted" in output
    assert _balance(db, "assets:treasury-account:EUR") == Money(9825, "EUR")
    again = json.loads(run("payments", "settle", "--variant", "sandbox-online", "--day", day, "--json"))
    assert [b["status"] for b in again["batches"]] == ["already posted"]


def test_a_report_imported_for_reconciliation_settles_once_whichever_way(
    run: Run, db: Database, tmp_path: Path, settings: Settings
) -> None:
    from reconciliation.imports import import_file, profiles_for

    report = tmp_path / "payouts.csv"
    report.write_text(REPORT)
    imported = import_file(db, report, profiles_for(settings).get("settlement-stripe"))
    assert imported.status == "imported", imported.message
    first = json.loads(run("payments", "settle", "--import", str(imported.import_id), "--json"))
    assert [(b["batch"], b["status"]) for b in first["batches"]] == [
        ("po_1QxA", "posted"),
        ("po_1QxB", "posted"),
    ]
    again = json.loads(
        run("payments", "settle", "--report", str(report), "--profile", "settlement-stripe", "--json")
    )
    assert [b["entry_id"] for b in again["batches"]] == [b["entry_id"] for b in first["batches"]]
    assert {b["status"] for b in again["batches"]} == {"already posted"}
    assert _balance(db, "assets:treasury-account:EUR") == Money(-4115, "EUR")
    assert "no import 999" in run("payments", "settle", "--import", "999", code=1)
