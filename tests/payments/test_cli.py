"""The operator's payment commands: providers list, payments resolve, payments queue."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger import cli
from ledger.db.engine import Database
from ledger.db.models_payments import Payment
from ledger.services import clock
from ledger.services.payments.context import Payments
from ledger.services.payments.terminal import start_terminal_sale
from ledger.services.signing_keys import StampKeys
from ledger.settings import Settings, load_settings
from providers.config import parse_providers_config
from providers.registry import ProviderRegistry
from tests.payments.conftest import SLOW_VARIANTS, count
from tests.providers.conftest import ENV, providers_toml
from tests.stamps.conftest import SECRETS, make_keys


@pytest.fixture
def cli_settings(
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    sandbox_url: str,
    cmi_url: str,
    stripe_url: str,
) -> Settings:
    toml = providers_toml(sandbox_url, cmi_url, stripe_url, "http://127.0.0.1:9") + SLOW_VARIANTS.format(
        sandbox=sandbox_url
    )
    toml += (
        '\n[variants.unset-secret]\nprovider = "sandbox"\nmode = "online"\nbase_url = "http://127.0.0.1:9"\n'
    )
    toml += 'consulates = ["*"]\ncurrencies = ["EUR"]\nsecrets = { api_key = "NOT_SET_ANYWHERE", webhook_secrets = "HOOK" }\n'
    (tmp_path / "providers.toml").write_text(toml)
    url = db.engine.url.render_as_string(hide_password=False)
    settings = load_settings(
        environ={
            "ETIMBRE_DATABASE_URL": url,
            "ETIMBRE_STAMPS_KEYS_DIR": str(tmp_path / "keys"),
            "ETIMBRE_PAYMENTS_PROVIDERS_FILE": str(tmp_path / "providers.toml"),
        }
    )
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.setattr(cli.Context, "database", property(lambda _: db))
    monkeypatch.setenv("ETIMBRE_KEY_PASSPHRASE", SECRETS.passphrase)
    monkeypatch.setenv("ETIMBRE_RECEIPT_SECRET", SECRETS.receipt_secret.decode())
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    make_keys(db)
    return settings


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_providers_list_shows_what_is_installed_and_ready_never_a_secret(cli_settings: Settings) -> None:
    lines = [json.loads(line) for line in run("providers", "list", "--json").splitlines()]
    installed = {line["installed"] for line in lines if "installed" in line}
    assert {"sandbox", "cmi", "stripe"} <= installed
    variants = {line["variant"]: line for line in lines if "variant" in line}
    assert variants["sandbox-online"]["ready"] is True
    assert variants["unset-secret"]["ready"] is False
    assert "NOT_SET_ANYWHERE" in variants["unset-secret"]["problem"]
    assert ENV["KEY"] not in json.dumps(lines)
    assert "installed provider" in run("providers", "list")


def test_resolve_settles_an_unknown_sale_and_queue_lists_parked_payments(
    cli_settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = parse_providers_config(Path("providers.toml").read_text(), source="test")

    async def unknown_sale() -> None:
        async with ProviderRegistry(config, env=ENV) as registry:
            payments = Payments(
                database=db, settings=cli_settings, registry=registry, keys=StampKeys(cli_settings, SECRETS)
            )
            sale = await start_terminal_sale(
                payments, variant="sandbox-counter-slow", consulate="FR-PAR", fee_codes=("PASSPORT",),
                terminal_id="T-CLI", cashier="c",
            )  # fmt: skip
            assert sale.state.value == "unknown"

    asyncio.run(unknown_sale())
    assert "resolved 0" in run("payments", "resolve"), "not due yet"
    later = clock.now() + timedelta(minutes=5)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert "resolved 1" in run("payments", "resolve")
    assert count(db, "payments", "WHERE state = 'captured'") == 1
    assert count(db, "stamps") == 1

    assert "empty" in run("payments", "queue")
    with db.write() as session:
        session.add(
            Payment(
                id=uuid.uuid4(),
                reference="ETPARKED1",
                consulate="FR-PAR",
                fee_codes="PASSPORT",
                amount=5500,
                currency="EUR",
                priced_at=later,
                channel="online",
                variant="sandbox-online",
                provider="sandbox",
                state="parked",
                parked_reason="the provider reported captured of USD 55.00",
                captured_amount=0,
                refunded_amount=0,
                disputed_amount=0,
                expires_at=later,
                created_at=later,
                updated_at=later,
            )
        )
    queued = [json.loads(line) for line in run("payments", "queue", "--json").splitlines()]
    assert [(q["reference"], q["payment_state"]) for q in queued] == [("ETPARKED1", "parked")]
    assert "USD 55.00" in queued[0]["reason"]

    assert "say --issue or --close" in run("payments", "decide", "ETPARKED1", code=2)
    assert "say why" in run("payments", "decide", "ETPARKED1", "--close", code=1)
    closed = run(
        "payments", "decide", "ETPARKED1", "--close", "--reason", "refunded by hand", "--actor", "amina"
    )
    assert "closed without stamps" in closed
    assert "empty" in run("payments", "queue")
    assert "no parked payment" in run("payments", "decide", "ETPARKED1", "--close", "--reason", "x", code=1)


def test_the_sandbox_listens_on_loopback_only() -> None:
    result = CliRunner().invoke(cli.main, ["sandbox", "serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "loopback only" in result.output
