"""`etimbre payments settle`: post what an acquirer paid out (its API for a day, or its report file).

    etimbre payments settle --variant stripe-online --day 2026-11-22
    etimbre payments settle --report payouts.csv --profile settlement-stripe
    etimbre payments settle --import 12      # a settlement report already imported by `etimbre reconcile`

Each payout (per currency) becomes one settlement entry: treasury and acquirer fees debited, the
provider's clearing account credited. Running it again posts nothing new; a payout whose figures changed
since it was posted is refused (exit 1) and nothing of the run is posted.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from ledger.cli import Context, console, pass_context
from ledger.cli.payments import payments

if TYPE_CHECKING:
    from ledger.services.settlement import SettledBatch, SettlementBatch
    from providers.registry import ProviderRegistry


def provider_registry(ctx: Context) -> ProviderRegistry:
    """The configured provider variants, secrets from the environment (as the payments commands do)."""
    from ledger.services.payments.context import load_providers, provider_environment
    from providers.errors import ProviderConfigError
    from providers.registry import ProviderRegistry

    settings = ctx.settings
    try:
        return ProviderRegistry(load_providers(settings), env=provider_environment(settings))
    except ProviderConfigError as error:
        raise click.ClickException(str(error)) from None


def _fetch(ctx: Context, variant: str, day: date) -> list[SettlementBatch]:
    from ledger.services.settlement import fetch_batches
    from providers.errors import ProviderConfigError, ProviderError

    registry = provider_registry(ctx)

    async def fetch() -> list[SettlementBatch]:
        async with registry:
            return await fetch_batches(registry.get(variant), day)

    try:
        return asyncio.run(fetch())
    except (ProviderConfigError, ProviderError, KeyError, LookupError) as error:
        raise click.ClickException(f"{variant}: {error}") from None


def _read(ctx: Context, report: Path, profile: str) -> list[SettlementBatch]:
    from ledger.services.settlement import SettlementError, read_report
    from reconciliation.importers import ImportRejectedError
    from reconciliation.imports import profiles_for

    try:
        chosen = profiles_for(ctx.settings).get(profile)
    except LookupError as error:
        raise click.BadParameter(str(error), param_hint="--profile") from None
    try:
        return read_report(report, chosen)[1]
    except (ImportRejectedError, SettlementError) as error:
        raise click.ClickException(str(error)) from None


def _show(settled: list[SettledBatch], *, as_json: bool) -> None:
    if as_json:
        rows = [
            {
                "provider": s.batch.provider,
                "batch": s.batch.batch,
                "currency": s.batch.currency,
                "lines": len(s.batch.items),
                "gross": s.batch.gross.to_str(),
                "fee": s.batch.fee.to_str(),
                "net": s.batch.net.to_str(),
                "entry_id": str(s.entry_id) if s.entry_id else None,
                "status": "zero" if s.entry_id is None else "already posted" if s.replayed else "posted",
            }
            for s in settled
        ]
        click.echo(json.dumps({"batches": rows}, indent=2))
        return
    table = Table(title="Settlement")
    for column in ("provider", "batch", "currency", "lines", "gross", "fee", "net", "entry", "status"):
        table.add_column(column, justify="right" if column in {"lines", "gross", "fee", "net"} else "left")
    for s in settled:
        status = "nothing to post" if s.entry_id is None else "already posted" if s.replayed else "posted"
        table.add_row(
            s.batch.provider, s.batch.batch, s.batch.currency, str(len(s.batch.items)),
            s.batch.gross.to_str(), s.batch.fee.to_str(), s.batch.net.to_str(),
            str(s.entry_id or "-"), status,
        )  # fmt: skip
    console.print(table)
    if not settled:
        console.print("nothing was settled")


@payments.command("settle")
@click.option("--variant", help="Ask this provider variant for its settlement of --day.")
@click.option("--day", help="The settlement day (YYYY-MM-DD), with --variant.")
@click.option("--report", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An acquirer's settlement report file, with --profile.")  # fmt: skip
@click.option("--profile", help="The settlement import profile of --report (e.g. settlement-stripe).")
@click.option(
    "--import", "import_id", type=int, help="A settlement report imported for reconciliation, by id."
)
@click.option("--actor", default="cli", show_default=True, help="Who posts (kept on the entries).")
@click.option("--json", "as_json", is_flag=True, help="Print the batches as JSON.")
@pass_context
def settle(
    ctx: Context,
    *,
    variant: str | None,
    day: str | None,
    report: Path | None,
    profile: str | None,
    import_id: int | None,
    actor: str,
    as_json: bool,
) -> None:
    """Post settlement entries: treasury and acquirer fees debited, the provider's clearing credited."""
    from ledger.services.settlement import SettlementError, batches_from_import, post_settlement

    batches: list[SettlementBatch] = []
    if [variant, report, import_id].count(None) != 2:
        raise click.UsageError("give one of: --variant and --day, --report and --profile, or --import")
    if variant is not None:
        if day is None:
            raise click.UsageError("--variant needs --day")
        try:
            settled_day = date.fromisoformat(day)
        except ValueError:
            raise click.BadParameter(f"{day!r} is not a date (YYYY-MM-DD)", param_hint="--day") from None
        batches = _fetch(ctx, variant, settled_day)
    elif report is not None:
        if profile is None:
            raise click.UsageError("--report needs --profile")
        batches = _read(ctx, report, profile)
    try:
        with ctx.database.write() as session:
            if import_id is not None:
                batches = batches_from_import(session, import_id)[1]
            settled = post_settlement(session, ctx.settings.chart, batches, actor=actor)
    except SettlementError as error:
        raise click.ClickException(str(error)) from None
    _show(settled, as_json=as_json)
