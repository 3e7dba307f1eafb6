"""A bad configuration stops the service with the file, the key and what is wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger.cli import main
from ledger.settings import DEFAULT_CONFIG_DIR, ConfigError, load_settings


@pytest.fixture
def config(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_example_configuration_is_valid_and_complete() -> None:
    settings = load_settings(environ={})
    assert len(settings.consulates) >= 8
    currencies = {c.currency for c in settings.consulates.values()}
    assert {"KWD", "JPY"} <= currencies or {"TND", "JPY"} <= currencies
    assert settings.fees.example_data
    assert settings.database_url.startswith("sqlite:///")


@pytest.mark.parametrize(
    ("file", "old", "new", "key", "problem"),
    [
        ("settings.toml", "port = 8000", 'port = "eighty"', "server.port", "Expected `int`"),
        ("settings.toml", "port = 8000", "port = 99999", "server.port", "<= 65535"),
        ("settings.toml", "[server]", "[server]\nhots = 1", "server", "unknown field `hots`"),
        (
            "settings.toml",
            'timezone = "Africa/Casablanca"',
            'timezone = "Mars/Olympus"',
            "treasury.timezone",
            "unknown time zone",
        ),
        ("settings.toml", "[server]", "[server", "", "not valid TOML"),
        ("consulates.toml", 'currency = "JPY"', 'currency = "YEN"', "consulate.9.currency", "ISO 4217"),
        ("consulates.toml", 'code = "FR-PAR"', 'code = "PARIS"', "consulate.0.code", "not of the form"),
        (
            "consulates.toml",
            'timezone = "Asia/Tokyo"',
            'timezone = "Tokyo"',
            "consulate.9.timezone",
            "time zone",
        ),
        ("fees.toml", 'EUR = "55.00"', 'EUR = "55.005"', "version.1.fee.0.prices.EUR", "3 decimal places"),
        ("fees.toml", 'JPY = "9000"', 'JPY = "9000.5"', "version.1.fee.0.prices.JPY", "JPY allows none"),
        ("fees.toml", 'FR-PAR = "5.00"', 'XX-YYY = "5.00"', "consulate_prices.XX-YYY", "unknown consulate"),
        (
            "fees.toml",
            "2026-01-01T00:00:00Z",
            "2024-01-01T00:00:00Z",
            "version.1.effective_from",
            "increasing",
        ),
        ("accounts.toml", "[role.rounding]", "[role.roundings]", "role.roundings", "unknown account role"),
        (
            "accounts.toml",
            'code = "assets:suspense:{currency}"',
            'code = "assets:suspense:{curency}"',
            "role.suspense.code",
            "unknown placeholder",
        ),
    ],
)
def test_a_bad_file_names_the_file_the_key_and_the_problem(
    config: Path, file: str, old: str, new: str, key: str, problem: str
) -> None:
    _edit(config / file, old, new)
    with pytest.raises(ConfigError) as raised:
        load_settings(config, environ={})
    assert raised.value.source.endswith(file)
    assert key in raised.value.key
    assert problem in raised.value.problem


def test_environment_overrides_are_typed_and_named_when_wrong(config: Path) -> None:
    settings = load_settings(config, environ={"ETIMBRE_SERVER_PORT": "9001", "ETIMBRE_LOG_FORMAT": "json"})
    assert (settings.service.server.port, settings.service.log.format) == (9001, "json")
    with pytest.raises(ConfigError, match="ETIMBRE_SERVER_PORT"):
        load_settings(config, environ={"ETIMBRE_SERVER_PORT": "many"})
    with pytest.raises(ConfigError, match="ETIMBRE_DATABASE_URL"):
        load_settings(config, environ={"ETIMBRE_DATABASE_URL": "mysql://x/y"})
    with pytest.raises(ConfigError, match="production needs an explicit database URL"):
        load_settings(config, environ={"ETIMBRE_ENVIRONMENT": "production"})


def test_the_service_refuses_to_start_on_a_bad_configuration(config: Path) -> None:
    _edit(config / "fees.toml", 'EUR = "55.00"', 'EUR = "55,00"')
    from ledger.settings import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["serve"], env={"ETIMBRE_CONFIG_DIR": str(config)})
    finally:
        get_settings.cache_clear()
    assert result.exit_code != 0
    assert "fees.toml" in result.output
    assert "version.1.fee.0.prices.EUR" in result.output
