"""Payment commands: resolve unknown outcomes, the manual queue, the providers, the sandbox simulator."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable
from typing import TYPE_CHECKING

import click
from rich.table import Table

from ledger.cli import Context, console, main, pass_context

if TYPE_CHECKING:
    from ledger.services.payments.context import Payments


def _run_with_payments(ctx: Context, work: object) -> object:
    """Open the providers on an event loop of our own, run `work(payments)`, close them again."""
    from ledger.services.payments.context import Payments, load_providers, provider_environment
    from ledger.services.signing_keys import StampKeys
    from providers.errors import ProviderConfigError
    from providers.registry import ProviderRegistry

    settings = ctx.settings
    try:
        config = load_providers(settings)
    except ProviderConfigError as error:
        raise click.ClickException(str(error)) from None

    async def run() -> object:
        async with ProviderRegistry(config, env=provider_environment(settings)) as registry:
            payments = Payments(
                database=ctx.database, settings=settings, registry=registry, keys=StampKeys(settings)
            )
            return await work(payments)  # type: ignore[operator]

    return asyncio.run(run())


@main.group()
def payments() -> None:
    """Online and terminal payments: unknown outcomes and the manual queue."""


@payments.command("resolve")
@click.option("--limit", default=200, show_default=True, help="at most this many attempts and payments")
@pass_context
def resolve(ctx: Context, limit: int) -> None:
    """Ask the providers about unknown and stale attempts that are due, and expire abandoned payments.

    What cannot be settled is checked again later (10 s, doubling) and goes to the manual queue after
    [payments] give_up_hours. The service does the same on its own every resolver_interval_seconds.
    """
    from ledger.cli.stamps import prepare_keys
    from ledger.services.payments.resolver import ResolverReport, run_once

    prepare_keys(ctx)  # a settled capture issues stamps

    async def work(payments: Payments) -> ResolverReport:
        return await run_once(payments, limit=limit)

    report = _run_with_payments(ctx, work)
    assert isinstance(report, ResolverReport)
    console.print(
        f"resolved {report.resolved}, checked again later {report.rescheduled}, "
        f"to the manual queue {report.queued}, expired {report.expired}"
    )
    for error in report.errors:
        console.print(f"[red]error[/] {error}")
    if report.errors:
        raise SystemExit(1)


@payments.command("queue")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@pass_context
def queue(ctx: Context, as_json: bool) -> None:
    """The manual queue: attempts the resolver could not settle and parked payments, oldest first."""
    from ledger.money import Money
    from ledger.services.payments.context import Payments
    from ledger.services.payments.resolver import manual_queue
    from ledger.services.signing_keys import StampKeys
    from providers.config import ProvidersConfig
    from providers.registry import ProviderRegistry

    settings = ctx.settings
    # Reading the queue calls no provider: an empty registry will do.
    empty = ProviderRegistry(ProvidersConfig("none", {}), env={}, installed={})
    items = manual_queue(
        Payments(database=ctx.database, settings=settings, registry=empty, keys=StampKeys(settings))
    )
    if as_json:
        for item in items:
            click.echo(
                json.dumps(
                    {
                        "payment_id": str(item.payment_id),
                        "reference": item.reference,
                        "variant": item.variant,
                        "payment_state": item.payment_state,
                        "amount": Money(item.amount, item.currency).to_str(),
                        "currency": item.currency,
                        "attempt_id": str(item.attempt_id) if item.attempt_id else None,
                        "attempt_kind": item.attempt_kind,
                        "reason": item.reason,
                        "since": item.since.isoformat(),
                    }
                )
            )
        return
    if not items:
        console.print("the manual queue is empty")
        return
    table = Table("since", "reference", "variant", "state", "amount", "attempt", "reason")
    for item in items:
        table.add_row(
            item.since.isoformat(timespec="seconds"), item.reference, item.variant, item.payment_state,
            f"{Money(item.amount, item.currency)}", item.attempt_kind or "-", item.reason,
        )  # fmt: skip
    console.print(table)


@payments.command("requeue")
@click.argument("attempt_id", type=click.UUID)
@pass_context
def requeue_attempt(ctx: Context, attempt_id: uuid.UUID) -> None:
    """Put an attempt of the manual queue back before the resolver (checked on its next round)."""
    from ledger.services.payments.errors import PaymentNotFoundError
    from ledger.services.payments.manual import requeue

    def work(payments: Payments) -> Awaitable[None]:
        async def run() -> None:
            requeue(payments, attempt_id)

        return run()

    try:
        _run_with_payments(ctx, work)
    except PaymentNotFoundError as error:
        raise click.ClickException(str(error)) from None
    console.print(f"attempt {attempt_id} is due again")


@payments.command("decide")
@click.argument("reference")
@click.option(
    "--issue", "decision", flag_value="issue", help="the provider captured the price: issue the stamps"
)
@click.option("--close", "decision", flag_value="close", help="close it without stamps (say why)")
@click.option("--reason", default="", help="why (required with --close)")
@click.option("--actor", default="operator", show_default=True, help="who decides, kept with the payment")
@pass_context
def decide(ctx: Context, reference: str, decision: str | None, reason: str, actor: str) -> None:
    """Decide a parked payment: issue its stamps (only if the provider captured exactly the price) or
    close it without stamps."""
    from ledger.cli.stamps import prepare_keys
    from ledger.services.payments.errors import PaymentNotFoundError, PaymentRefusedError
    from ledger.services.payments.manual import close_parked, issue_parked

    if decision is None:
        raise click.UsageError("say --issue or --close")
    if decision == "issue":
        prepare_keys(ctx)

    def work(payments: Payments) -> Awaitable[None]:
        if decision == "issue":
            return issue_parked(payments, reference, actor=f"cli:{actor}")

        async def run() -> None:
            close_parked(payments, reference, reason=reason, actor=f"cli:{actor}")

        return run()

    try:
        _run_with_payments(ctx, work)
    except (PaymentNotFoundError, PaymentRefusedError) as error:
        raise click.ClickException(str(error)) from None
    console.print(
        f"payment {reference}: {'stamps issued' if decision == 'issue' else 'closed without stamps'}"
    )


@main.group()
def providers() -> None:
    """Payment providers: what is installed and how it is configured."""


@providers.command("list")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
@pass_context
def list_providers(ctx: Context, as_json: bool) -> None:
    """Installed providers (entry points `etimbre.providers`) and the configured variants: ready, or why not
    (a missing provider, a disabled variant, a secret not set in the environment). Secrets are never shown."""
    from ledger.services.payments.context import load_providers, provider_environment
    from providers.errors import ProviderConfigError
    from providers.registry import ProviderRegistry

    settings = ctx.settings
    try:
        config = load_providers(settings)
    except ProviderConfigError as error:
        raise click.ClickException(str(error)) from None
    registry = ProviderRegistry(config, env=provider_environment(settings))
    installed = registry.installed
    statuses = registry.describe()
    if as_json:
        for name, found in sorted(installed.items()):
            click.echo(
                json.dumps({"installed": name, "distribution": found.distribution, "version": found.version})
            )
        for status in statuses:
            click.echo(
                json.dumps(
                    {
                        "variant": status.variant,
                        "provider": status.provider,
                        "mode": status.mode.value,
                        "enabled": status.enabled,
                        "ready": status.ready,
                        "currencies": list(status.currencies),
                        "consulates": list(status.consulates) if status.consulates else ["*"],
                        "problem": status.problem,
                    }
                )
            )
        return
    table = Table("installed provider", "distribution", "version")
    for name, found in sorted(installed.items()):
        table.add_row(name, found.distribution or "-", found.version or "-")
    console.print(table)
    variants = Table("variant", "provider", "mode", "currencies", "consulates", "ready")
    for status in statuses:
        ready = "[green]yes[/]" if status.ready else f"[red]no[/]: {status.problem or 'disabled'}"
        variants.add_row(
            status.variant, status.provider, status.mode.value, " ".join(status.currencies),
            " ".join(status.consulates) if status.consulates else "*", ready,
        )  # fmt: skip
    console.print(variants)


@main.group()
def sandbox() -> None:
    """The sandbox payment simulator (hosted checkout and counter terminal), on loopback only."""


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="a loopback address")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
def serve_sandbox(host: str, port: int) -> None:
    """Run the simulator in the foreground, so that the embedded default can pay end to end.

    It shares the service's sandbox secrets (ETIMBRE_SANDBOX_API_KEY, ETIMBRE_SANDBOX_WEBHOOK_SECRET;
    development defaults when unset) and posts its webhooks where each payment says.
    """
    import os

    from ledger.services.payments.context import SANDBOX_DEVELOPMENT_ENV
    from providers.loopback import check_loopback
    from providers.sandbox.simulator import serve
    from providers.sandbox.state import SimulatorSettings

    try:
        check_loopback(host)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--host") from None
    console.print(f"[bold]sandbox simulator[/] on http://{host}:{port}  (test cards only, nothing is real)")
    serve(host, port, SimulatorSettings.from_env({**SANDBOX_DEVELOPMENT_ENV, **os.environ}))
