"""`etimbre payments refund / refunds / void` on the test database, against the sandbox on loopback."""

from __future__ import annotations

import json
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

from ledger import cli
from ledger.db.engine import Database
from ledger.settings import load_settings
from providers.config import parse_providers_config
from providers.registry import ProviderRegistry
from tests.providers.conformance import Harness
from tests.providers.conftest import ENV, _sandbox_harness, providers_toml
from tests.providers.receiver import WebhookReceiver
from tests.refunds.conftest import Paid, stamp_status

Run = Callable[..., str]


@pytest.fixture
def urls(
    sandbox_url: str, cmi_url: str, stripe_url: str, receiver: tuple[WebhookReceiver, str]
) -> tuple[str, ...]:
    return sandbox_url, cmi_url, stripe_url, receiver[1]


@pytest.fixture
def run(
    db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, urls: tuple[str, str, str, str]
) -> Run:
    config = tmp_path / "config"
    shutil.copytree(Path(cli.__file__).parents[2] / "config", config)
    (config / "providers.toml").write_text(providers_toml(*urls))
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


def _paid(pay: Callable[[Harness], Awaitable[Paid]], urls: tuple[str, str, str, str]) -> Paid:
    async def paying() -> Paid:
        config = parse_providers_config(providers_toml(*urls), source="test")
        async with ProviderRegistry(config, env=ENV) as registry:
            return await pay(_sandbox_harness(registry, urls[0], "sandbox-online"))

    return anyio.run(paying)


def test_an_operator_refunds_stamp_by_stamp_and_lists_them(
    run: Run, db: Database, pay: Callable[[Harness], Awaitable[Paid]], urls: tuple[str, str, str, str]
) -> None:
    paid = _paid(pay, urls)
    passport, legalization = paid.stamps
    refused = run("payments", "refund", paid.reference, "--amount", "60.01", "--reason", "x", code=1)
    assert "more than the 60.00 EUR left" in refused
    first = json.loads(
        run(
            "payments",
            "refund",
            paid.reference,
            "--stamp",
            passport,
            "--reason",
            "cancelled",
            "--key",
            "k1",
            "--json",
        )
    )
    assert (first["state"], first["amount"], first["payment_state"]) == (
        "succeeded",
        "55.00",
        "partially_refunded",
    )
    again = json.loads(
        run(
            "payments",
            "refund",
            paid.reference,
            "--stamp",
            passport,
            "--reason",
            "cancelled",
            "--key",
            "k1",
            "--json",
        )
    )
    assert again["id"] == first["id"]
    run("payments", "refund", paid.reference, "--reason", "cancelled")  # every unused stamp left
    assert (stamp_status(db, passport), stamp_status(db, legalization)) == ("refunded", "refunded")
    listed = json.loads(run("payments", "refunds", paid.reference, "--json"))
    assert [r["amount"] for r in listed] == ["55.00", "5.00"]
    assert "no payment nope" in run("payments", "refunds", "nope", code=1)
    assert "only an authorization can be voided" in run("payments", "void", paid.reference, code=1)
    assert json.loads(run("payments", "disputes", paid.reference, "--json")) == []
