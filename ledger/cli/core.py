"""Core operator commands: serve, the database schema, configuration, API keys, the books."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.table import Table

from ledger import logs
from ledger.cli import Context, console, instant, main, pass_context
from ledger.db import migrate

# serve ---------------------------------------------------------------------------------------------------


@main.command()
@click.option("--host", help="Address to listen on (default from config: server.host).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default from config: server.port).")
@click.option("--no-migrate", is_flag=True, help="Do not upgrade the database schema at start-up.")
@pass_context
def serve(ctx: Context, host: str | None, port: int | None, no_migrate: bool) -> None:
    """Run the service (migrations run by themselves unless --no-migrate)."""
    import uvicorn

    from ledger.api.app import create_app

    settings = ctx.settings
    logs.configure(
        json=settings.production or settings.service.log.format == "json", level=settings.service.log.level
    )
    if not no_migrate:
        migrate.upgrade(ctx.database.engine)
    from ledger.cli.stamps import prepare_keys

    prepare_keys(ctx)  # development keys on first run; production refuses to start without keys
    app = create_app(settings, ctx.database)
    host = host or settings.service.server.host
    port = port or settings.service.server.port
    console.print(f"[bold]eTimbre ledger[/] on http://{host}:{port}  (database: {ctx.database.dialect})")
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)


# db ------------------------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema (Alembic migrations; they run on SQLite and PostgreSQL)."""


@db.command("upgrade")
@click.option("--revision", default="heads", show_default=True)
@pass_context
def db_upgrade(ctx: Context, revision: str) -> None:
    """Upgrade the schema."""
    migrate.upgrade(ctx.database.engine, revision)
    console.print(f"schema at {migrate.current_revision(ctx.database.engine)}")


@db.command("downgrade")
@click.argument("revision")
@pass_context
def db_downgrade(ctx: Context, revision: str) -> None:
    """Downgrade the schema to REVISION (e.g. -1, or base to drop everything)."""
    migrate.downgrade(ctx.database.engine, revision)
    console.print(f"schema at {migrate.current_revision(ctx.database.engine) or 'base (empty)'}")


@db.command("current")
@pass_context
def db_current(ctx: Context) -> None:
    """Show the schema revision and whether it is current."""
    revision = migrate.current_revision(ctx.database.engine)
    head = migrate.head_revision()
    console.print(f"schema at {revision or 'base (empty)'}; newest is {head}")
    if revision != head:
        sys.exit(1)


# config --------------------------------------------------------------------------------------------------


@main.group()
def config() -> None:
    """Configuration files in config/ and ETIMBRE_* environment variables."""


@config.command("check")
@pass_context
def config_check(ctx: Context) -> None:
    """Validate the configuration and say what it holds."""
    settings = ctx.settings
    versions = ", ".join(f"{v.version} from {v.effective_from.date()}" for v in settings.fees.versions)
    console.print(f"config directory: {settings.config_dir}")
    console.print(
        f"environment: {settings.service.environment}; database: {settings.database_url.split('@')[-1]}"
    )
    console.print(f"{len(settings.consulates)} consulates; fee schedule versions: {versions}")
    if settings.fees.example_data:
        console.print("[yellow]the fee schedule is EXAMPLE DATA[/]")


# apikey --------------------------------------------------------------------------------------------------


@main.group()
def apikey() -> None:
    """API keys (shown once, stored hashed)."""


@apikey.command("create")
@click.option("--role", type=click.Choice(["cashier", "auditor", "admin"]), required=True)
@click.option("--consulate", default="", help="The consulate a cashier key serves (cashiers only).")
@click.option("--label", default="", help="Who or what holds the key, for the audit trail.")
@pass_context
def apikey_create(ctx: Context, role: str, consulate: str, label: str) -> None:
    """Create a key and print it once."""
    from ledger.services.apikeys import ApiKeyError, Role, create_key

    try:
        with ctx.database.write() as session:
            issued = create_key(
                session,
                Role(role),
                consulate=consulate,
                label=label,
                known_consulates=set(ctx.settings.consulates),
            )
    except ApiKeyError as error:
        raise click.UsageError(str(error)) from None
    where = f" for {issued.consulate}" if issued.consulate else ""
    click.echo(f"# {issued.role} key {issued.key_id}{where}; store it now, it is not shown again", err=True)
    click.echo(issued.secret)


@apikey.command("list")
@pass_context
def apikey_list(ctx: Context) -> None:
    from ledger.services.apikeys import list_keys

    with ctx.database.read() as session:
        keys = list_keys(session)
    table = Table("id", "role", "consulate", "label", "created", "revoked")
    for key in keys:
        table.add_row(
            str(key.key_id),
            key.role,
            key.consulate,
            key.label,
            key.created_at.isoformat(timespec="seconds"),
            key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "",
        )
    console.print(table)


@apikey.command("revoke")
@click.argument("key_id", type=int)
@pass_context
def apikey_revoke(ctx: Context, key_id: int) -> None:
    from ledger.services.apikeys import revoke_key

    with ctx.database.write() as session:
        if not revoke_key(session, key_id):
            raise click.ClickException(f"no active key {key_id}")
    console.print(f"key {key_id} revoked")


# ledger --------------------------------------------------------------------------------------------------


@main.group("ledger")
def ledger_group() -> None:
    """Read the books and close periods."""


def _slice(values: tuple[str, ...]) -> dict[str, Any]:
    allowed = {"account", "type", "consulate", "fee_code", "provider", "currency"}
    result: dict[str, Any] = {}
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or key not in allowed or not wanted:
            raise click.BadParameter(
                f"{value!r}: use KEY=VALUE with KEY one of {', '.join(sorted(allowed))}", param_hint="--slice"
            )
        result[key] = wanted
    return result


@ledger_group.command("balances")
@click.option("--as-of", "as_of", help="Instant with time zone (default: now).")
@click.option(
    "--slice", "slices", multiple=True, help="Narrow: consulate=FR-PAR, account=assets:, provider=cmi ..."
)
@click.option("--split", type=click.Choice(["consulate", "fee_code"]), multiple=True, help="Split by slice.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@pass_context
def ledger_balances(
    ctx: Context, as_of: str | None, slices: tuple[str, ...], split: tuple[str, ...], as_json: bool
) -> None:
    """Balances by account (and slice), now or as of an instant."""
    from ledger.domain.chart import AccountType
    from ledger.services import clock
    from ledger.services.balances import SliceFilter, balances

    narrowing = _slice(slices)
    if "type" in narrowing:
        try:
            narrowing["type"] = AccountType(narrowing["type"])
        except ValueError:
            raise click.BadParameter(
                f"type must be one of {', '.join(AccountType)}", param_hint="--slice"
            ) from None
    moment = instant(as_of, "--as-of") or clock.now()
    with ctx.database.read() as session:
        rows = balances(session, SliceFilter(**narrowing), as_of=moment, split=frozenset(split))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "as_of": moment.isoformat(),
                    "balances": [
                        {
                            "account": r.account,
                            "type": r.type.value,
                            "amount": r.balance.to_str(),
                            "currency": r.balance.currency,
                            "minor": r.balance.minor,
                            "consulate": r.consulate,
                            "fee_code": r.fee_code,
                        }
                        for r in rows
                    ],
                },
                ensure_ascii=False,
            )
        )
        return
    table = Table(
        "account", *split, "balance", title=f"Balances as of {moment.isoformat(timespec='seconds')}"
    )
    for row in rows:
        extra = [row.consulate or "" if s == "consulate" else row.fee_code or "" for s in split]
        table.add_row(row.account, *extra, f"{row.balance.to_str()} {row.balance.currency}")
    console.print(table)


@ledger_group.command("close")
@click.option("--through", help="Close through this instant (default: every due interval, per config).")
@pass_context
def ledger_close(ctx: Context, through: str | None) -> None:
    """Close the books: cut balance checkpoints; nothing may be dated at or before them afterwards."""
    from datetime import timedelta

    from ledger.services import checkpoints, clock

    settings = ctx.settings.service.ledger
    moment = instant(through, "--through")
    with ctx.database.write() as session:
        if moment is not None:
            cuts = [moment]
        else:
            cuts = checkpoints.due_cuts(
                session,
                clock.now(),
                lateness=timedelta(hours=settings.close_after_hours),
                interval=timedelta(seconds=settings.checkpoint_interval_seconds or 3600),
            )
        try:
            written = [checkpoints.cut(session, cut) for cut in cuts]
        except checkpoints.PeriodError as error:
            raise click.ClickException(str(error)) from None
    for cut in written:
        console.print(f"closed through {cut.as_of.isoformat()} ({cut.slices} slices)")
    if not written:
        console.print("nothing due")
