"""The operator's command line on both engines: schema, keys, balances, closing the books."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from ledger.cli import main
from ledger.db.engine import Database
from ledger.money import Money
from ledger.services.journal import post_entry
from ledger.settings import Settings, get_settings
from tests.ledger.builders import captured


@pytest.fixture
def run(database_url: str) -> Iterator[object]:
    get_settings.cache_clear()

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), env={"ETIMBRE_DATABASE_URL": database_url})

    yield invoke
    get_settings.cache_clear()


def test_schema_keys_and_balances_from_the_command_line(run, database_url: str, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    assert run("db", "current").exit_code == 0
    down = run("db", "downgrade", "base")
    assert down.exit_code == 0, down.output
    assert run("db", "current").exit_code == 1
    assert run("db", "upgrade").exit_code == 0
    created = run("apikey", "create", "--role", "cashier", "--consulate", "FR-PAR", "--label", "counter 1")
    assert created.exit_code == 0, created.output
    assert created.stdout.strip().startswith("etk_")
    refused = run("apikey", "create", "--role", "cashier")
    assert refused.exit_code != 0
    assert "bound to one consulate" in refused.output
    assert "counter 1" in run("apikey", "list").output
    database = Database.from_url(database_url)
    with database.write() as session:
        post_entry(session, captured(settings.chart, Money(17250, "KWD"), consulate="KW-KWI"))
    database.dispose()
    balances = run("ledger", "balances", "--slice", "consulate=KW-KWI", "--json")
    assert balances.exit_code == 0, balances.output
    rows = json.loads(balances.stdout)["balances"]
    assert {(r["account"], r["amount"]) for r in rows} == {
        ("assets:clearing:sandbox:KWD", "17.250"),
        ("liabilities:stamps-outstanding:KW-KWI", "17.250"),
    }
    assert run("ledger", "balances", "--as-of", "yesterday").exit_code == 2
    assert run("ledger", "balances", "--slice", "colour=red").exit_code == 2
    closed = run("ledger", "close", "--through", "2026-01-01T00:00:00Z")
    assert closed.exit_code == 0, closed.output
    again = run("ledger", "close", "--through", "2025-01-01T00:00:00Z")
    assert again.exit_code != 0
    assert "already closed" in again.output
