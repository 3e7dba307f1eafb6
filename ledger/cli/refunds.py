"""`etimbre payments refund / refunds / void`: an administrator's refunds and voids from the shell.

    etimbre payments refund ET4F2A9C01B7D3E5A6F08 --stamp 48210933756102841 --reason "appointment cancelled"
    etimbre payments refunds ET4F2A9C01B7D3E5A6F08
    etimbre payments void ET4F2A9C01B7D3E5A6F08

A refund exits 0 when the provider refunded, 3 when its answer is not known yet (the resolver settles it),
1 when it was refused (before any call) or declined by the provider.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING

import click
from rich.table import Table

from ledger.cli import Context, console, pass_context
from ledger.cli.payments import _run_with_payments, payments

if TYPE_CHECKING:
    from ledger.services.payments.context import Payments
    from ledger.services.refunds import RefundView
    from ledger.services.voids import VoidView

NOT_KNOWN_YET = 3


def _as_dict(view: RefundView) -> dict[str, object]:
    return {
        "id": str(view.id),
        "reference": view.reference,
        "payment_reference": view.payment_ref,
        "state": view.state,
        "amount": view.amount.to_str(),
        "currency": view.amount.currency,
        "reason": view.reason,
        "requested_by": view.requested_by,
        "provider_reference": view.provider_reference,
        "detail": view.detail,
        "created_at": view.created_at.isoformat(),
        "stamps": [
            {"number": s.number, "fee_code": s.fee_code, "amount": s.amount.to_str(), "was_used": s.was_used}
            for s in view.stamps
        ],
        "payment_state": view.payment_state,
        "payment_refunded": view.refunded.to_str(),
        "payment_captured": view.captured.to_str(),
    }


def _table(views: list[RefundView]) -> Table:
    table = Table(title="Refunds")
    for column in ("reference", "state", "amount", "stamps", "reason", "by", "created"):
        table.add_column(column)
    for view in views:
        table.add_row(
            view.reference, view.state, str(view.amount), ", ".join(s.number for s in view.stamps),
            view.reason, view.requested_by, view.created_at.isoformat(timespec="seconds"),
        )  # fmt: skip
    return table


@payments.command("refund")
@click.argument("payment_reference")
@click.option(
    "--stamp", "stamps", multiple=True, help="A stamp to refund (repeat); default: every unused one."
)
@click.option("--amount", help="What you expect to refund, checked against the stamps (e.g. 55.00).")
@click.option("--reason", required=True, help="Why the money is given back (kept on the entries).")
@click.option("--key", help="Idempotency key: the same key and order again is the same refund.")
@click.option("--actor", default="cli", show_default=True, help="Who asks (kept on the refund).")
@click.option("--json", "as_json", is_flag=True, help="Print the refund as JSON.")
@pass_context
def refund(
    ctx: Context,
    *,
    payment_reference: str,
    stamps: tuple[str, ...],
    amount: str | None,
    reason: str,
    key: str | None,
    actor: str,
    as_json: bool,
) -> None:
    """Refund whole stamps of a captured payment through its provider (never more than captured)."""
    from ledger.money import Money, MoneyError
    from ledger.services.refunds import (
        PaymentNotFoundError,
        RefundError,
        RefundOrder,
        payment_currency,
        refund_payment,
    )

    request_key = key or f"cli-{secrets.token_hex(8)}"
    try:
        expected = None
        if amount is not None:
            expected = Money.parse(amount, payment_currency(ctx.database, payment_reference))
    except PaymentNotFoundError as error:
        raise click.ClickException(str(error)) from None
    except MoneyError as error:
        raise click.BadParameter(str(error), param_hint="--amount") from None
    order = RefundOrder(
        payment_ref=payment_reference, reason=reason, actor=actor, request_key=f"cli:{request_key}",
        stamps=stamps or None, amount=expected,
    )  # fmt: skip

    async def work(service: Payments) -> RefundView:
        return await refund_payment(service.database, service.settings, service.registry.get, order)

    try:
        view: RefundView = _run_with_payments(ctx, work)  # type: ignore[assignment]
    except (RefundError, PaymentNotFoundError) as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps({**_as_dict(view), "key": request_key}, indent=2))
    else:
        console.print(_table([view]))
        console.print(f"idempotency key: {request_key} (give it with --key to retry this same refund)")
    if view.state == "declined":
        raise click.ClickException(f"the provider declined the refund: {view.detail}")
    if view.state in ("pending", "unknown"):
        click.get_current_context().exit(NOT_KNOWN_YET)


@payments.command("refunds")
@click.argument("payment_reference")
@click.option("--json", "as_json", is_flag=True, help="Print the refunds as JSON.")
@pass_context
def list_refunds(ctx: Context, *, payment_reference: str, as_json: bool) -> None:
    """The refunds of one payment, oldest first."""
    from ledger.services.refunds import PaymentNotFoundError, refunds_of

    try:
        with ctx.database.read() as session:
            views = refunds_of(session, payment_reference)
    except PaymentNotFoundError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps([_as_dict(view) for view in views], indent=2))
    else:
        console.print(_table(views))


@payments.command("void")
@click.argument("payment_reference")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_context
def void(ctx: Context, *, payment_reference: str, as_json: bool) -> None:
    """Release an authorization that was never captured (the payment is canceled)."""
    from ledger.services.refunds import PaymentNotFoundError, RefundConflictError
    from ledger.services.voids import void_payment

    async def work(service: Payments) -> VoidView:
        return await void_payment(service.database, service.registry.get, payment_reference)

    try:
        view: VoidView = _run_with_payments(ctx, work)  # type: ignore[assignment]
    except (RefundConflictError, PaymentNotFoundError) as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps({"payment_reference": view.payment_ref, "attempt_state": view.attempt_state,
                               "payment_state": view.payment_state, "detail": view.detail}))  # fmt: skip
    else:
        console.print(f"void {view.attempt_state}: payment {view.payment_ref} is {view.payment_state}")
    if view.attempt_state == "declined":
        raise click.ClickException(f"the provider declined the void: {view.detail}")


@payments.command("disputes")
@click.argument("payment_reference")
@click.option("--json", "as_json", is_flag=True, help="Print the disputes as JSON.")
@pass_context
def list_disputes(ctx: Context, *, payment_reference: str, as_json: bool) -> None:
    """The chargebacks of one payment, with the entries they posted."""
    from ledger.services.disputes import disputes_of
    from ledger.services.refunds import PaymentNotFoundError

    try:
        with ctx.database.read() as session:
            views = disputes_of(session, payment_reference)
    except PaymentNotFoundError as error:
        raise click.ClickException(str(error)) from None
    rows = [
        {
            "provider_reference": v.provider_reference, "variant": v.variant, "state": v.state,
            "amount": v.amount.to_str(), "currency": v.amount.currency, "reason": v.reason,
            "entry_id": str(v.entry_id), "closing_entry_id": str(v.closing_entry_id or "") or None,
            "opened_at": v.opened_at.isoformat(),
            "closed_at": v.closed_at.isoformat() if v.closed_at else None,
        }
        for v in views
    ]  # fmt: skip
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Disputes")
    for column in ("provider_reference", "state", "amount", "reason", "opened_at", "closed_at"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            *(
                str(row[c] or "")
                for c in ("provider_reference", "state", "amount", "reason", "opened_at", "closed_at")
            )
        )
    console.print(table)
