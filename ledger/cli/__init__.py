"""The `etimbre` command: everything an operator does. Each area adds its commands in its own module."""

from __future__ import annotations

from datetime import datetime

import click
from rich.console import Console

from ledger.db.engine import Database
from ledger.settings import ConfigError, Settings, get_settings

console = Console(stderr=False)


class Context:
    def __init__(self) -> None:
        self._database: Database | None = None

    @property
    def settings(self) -> Settings:
        try:
            return get_settings()
        except ConfigError as error:
            raise click.ClickException(f"configuration error: {error}") from None

    @property
    def database(self) -> Database:
        if self._database is None:
            settings = self.settings
            self._database = Database.from_url(
                settings.database_url, pool_size=settings.service.database.pool_size
            )
        return self._database

    def close(self) -> None:
        if self._database is not None:
            self._database.dispose()
            self._database = None


pass_context = click.make_pass_decorator(Context, ensure=True)


def instant(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 instant with a time zone, from an option."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 instant", param_hint=option) from None
    if moment.tzinfo is None:
        raise click.BadParameter(
            "give a time zone, e.g. 2026-11-22T23:59:59+01:00 or ...Z", param_hint=option
        )
    return moment


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option("0.1.0", prog_name="etimbre")
@click.pass_context
def main(ctx: click.Context) -> None:
    """eTimbre ledger: consular fee payments, e-stamps and their double-entry ledger."""
    ctx.obj = Context()
    ctx.call_on_close(ctx.obj.close)  # the root context closes however the command ends


# Each module below adds its commands to `main` when imported.
from ledger.cli import (  # noqa: E402
    audit,
    core,
    demo,
    payments,
    reconciliation,
    refunds,
    settlement,
    staff,
    stamps,
)

__all__ = [
    "Context",
    "audit",
    "console",
    "core",
    "demo",
    "instant",
    "main",
    "pass_context",
    "payments",
    "reconciliation",
    "refunds",
    "settlement",
    "staff",
    "stamps",
]
