"""`etimbre demo`: seed an empty database with a realistic day, so that `scripts/serve` shows a living
service, and say where to click first."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import click

from ledger.cli import Context, console, main, pass_context

say = partial(console.print, soft_wrap=True)  # links stay whole, whatever the terminal's width


@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the day's treasury export is written (default: <data_dir>/demo).",
)
@click.option("--seed", type=int, help="Draw the same day again (random otherwise).")
@pass_context
def demo(ctx: Context, out: Path | None, seed: int | None) -> None:
    """Seed today: payments online and at counters, stamps used and unused, a refund, the acquirer's
    settlement and its report, a treasury export with three differences. Refuses a database that already
    holds ledger entries."""
    from ledger.cli.stamps import prepare_keys
    from ledger.db import migrate
    from ledger.services import clock
    from ledger.services.demo import DemoRefusedError, seed_demo_day
    from ledger.services.signing_keys import StampKeys

    settings = ctx.settings
    migrate.upgrade(ctx.database.engine)
    prepare_keys(ctx)
    try:
        day = seed_demo_day(
            ctx.database,
            settings,
            StampKeys(settings),
            now=clock.now(),
            out_dir=out or settings.data_dir / "demo",
            seed=seed,
        )
    except DemoRefusedError as error:
        raise click.ClickException(str(error)) from None
    base = settings.service.server.public_url.rstrip("/")
    say(
        f"[bold]Demo day {day.business_day}[/] seeded: {len(day.online)} online and {len(day.counter)} "
        f"counter payments; stamps: {len(day.unused)} unused, {len(day.used)} used, "
        f"{len(day.refunded)} refunded."
    )
    payouts = ", ".join(f"{s.batch.batch} {s.batch.net}" for s in day.settled)
    say(f"The sandbox acquirer settled the online payments: {payouts}")
    say(f"Acquirer's settlement report: {day.report_path}  (profile settlement-sandbox)")
    say(f"Treasury export of the day: {day.export_path}  (profile treasury-default)")
    for difference in day.differences:
        say(f"  - {difference}")
    say("\n[bold]Staff accounts[/] (passwords made for this demo, shown once):")
    for member, password in day.staff:
        where = f" at {member.consulate}" if member.consulate else ""
        say(f"  {member.role.value:8} {member.username:20} {password}   {member.display_name}{where}")
    say("\n[bold]Where to click first[/] (run scripts/serve, then open):")
    say(f"  {base}/web/                      the citizen's home (switch to العربية at the top)")
    say(f"  {base}/web/fees                  the published fee schedule per consulate")
    say(f"  {base}/web/pay                   pay online (with `etimbre sandbox serve` running beside it)")
    if day.unused:
        stamp = day.unused[0]
        say(f"  {base}/web/receipts/{stamp.receipt_token}  a citizen's receipt (QR, PDF)")
        say(f"  {base}/web/check?number={stamp.number.digits}  an unused stamp: valid")
    if day.used:
        say(f"  {base}/web/check?number={day.used[0].number.digits}  a used stamp: already used")
    say(f"  {base}/web/sign-in                sign in as caissier.paris: scan or type a stamp at the counter")
    say(f"  {base}/web/sign-in                sign in as auditeur.amina: import both files above, reconcile")
