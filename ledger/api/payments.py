"""Payments over HTTP: a citizen's online checkout and its status, the providers' returns and webhooks,
sales on integrated counter terminals, and the manual queue. Thin: each handler calls one service."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from anyio import to_thread
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import JSONBody, PathParameter
from litestar.response import Redirect
from litestar.types import ControllerRouterHandler

from ledger.api import problems
from ledger.api.auth import principal_of, requires
from ledger.api.idempotency import JSON, IdempotencyKey, canonical
from ledger.api.payments_schemas import (
    NextActionOut,
    PaymentIn,
    PaymentOut,
    QueuedOut,
    TerminalSaleIn,
    TerminalSaleOut,
    stamps_out,
    state_of,
)
from ledger.api.schemas import Amount
from ledger.api.stamps import RequiredIdempotencyKey
from ledger.money import Money
from ledger.services import clock
from ledger.services.apikeys import Role
from ledger.services.idempotency import StoredResponse, claim, release, request_hash, store
from ledger.services.payments.checkout import StartedPayment, start_online_payment
from ledger.services.payments.context import Payments
from ledger.services.payments.errors import PaymentNotFoundError, PaymentRefusedError, TerminalBusyError
from ledger.services.payments.pricing import choose_variant, price
from ledger.services.payments.resolver import manual_queue, resolve_payment
from ledger.services.payments.returning import check_on_return
from ledger.services.payments.terminal import TerminalSale, sale_view, start_terminal_sale
from ledger.services.payments.views import PaymentView, payment_view
from ledger.services.payments.webhooks import receive_webhook
from providers.model import Mode

_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
PaymentId = Annotated[
    uuid.UUID, PathParameter(description="the payment's id, as returned when it was started")
]
Variant = Annotated[
    str, PathParameter(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", description="the provider variant that sends")
]


def _payments(state: State) -> Payments:
    payments: Payments | None = state.get("payments")
    if payments is None:
        raise problems.ApiProblem(
            503,
            "payments-unavailable",
            "Payments are not available",
            detail=state.get("payments_problem", ""),
        )
    return payments


def _status_url(payments: Payments, payment_id: uuid.UUID) -> str:
    return f"{payments.public_url}/payments/{payment_id}"


def _return_url(payments: Payments, payment_id: uuid.UUID) -> str:
    """Where the citizen's browser lands after the provider's page: the payment's page (ledger.web)."""
    return f"{payments.public_url}/web/pay/{payment_id}"


def _payment_out(payments: Payments, view: PaymentView, started: StartedPayment | None = None) -> PaymentOut:
    return PaymentOut(
        id=view.id,
        reference=view.reference,
        state=state_of(view.state),
        consulate=view.consulate,
        fee_codes=list(view.fee_codes),
        amount=Amount.of(view.amount),
        status_url=_status_url(payments, view.id),
        expires_at=view.expires_at,
        next_action=NextActionOut.of(started.next_action) if started else None,
        stamps=stamps_out(view.stamps, payments.public_url),
    )


def _sale_out(payments: Payments, sale: TerminalSale) -> TerminalSaleOut:
    return TerminalSaleOut(
        id=sale.payment_id,
        reference=sale.reference,
        state=state_of(sale.state),
        variant=sale.variant,
        terminal_id=sale.terminal_id,
        amount=Amount.of(sale.amount),
        stamps=stamps_out(sale.stamps, payments.public_url),
        message=sale.message,
    )


async def _idempotent(
    payments: Payments, scope: str, key: str | None, digest: str, work: Any
) -> Response[Any]:
    """Claim the key (its own transaction), do the work (which calls a provider), store the answer: the
    same key and body replay it, another body is a 422, a concurrent copy is told it is in progress."""

    def claimed() -> StoredResponse | None:
        with payments.database.write() as session:
            return None if key is None else claim(session, scope, key, digest)

    earlier = await to_thread.run_sync(claimed)
    if earlier is not None:
        headers = {**_NO_STORE, "Idempotent-Replayed": "true"}
        return Response(
            earlier.body, status_code=earlier.status, media_type=earlier.media_type, headers=headers
        )
    try:
        status, body = await work()
    except (PaymentRefusedError, TerminalBusyError):
        if key is not None:  # refused before anything happened: the same key may be tried again

            def forget() -> None:
                with payments.database.write() as session:
                    release(session, scope, key)

            await to_thread.run_sync(forget)
        raise
    if key is not None:

        def remember() -> None:
            with payments.database.write() as session:
                store(session, scope, key, StoredResponse(status, body, JSON))

        await to_thread.run_sync(remember)
    return Response(body, status_code=status, media_type=JSON, headers=_NO_STORE)


class PaymentController(Controller):
    path = "/payments"
    tags = ["payments"]

    @post(
        "/",
        operation_id="startPayment",
        summary="Start an online payment: the price comes from the fee schedule; go to `next_action` to pay",
        description="Public. The payment and its provider attempt are stored before the provider is called. "
        "With an Idempotency-Key, a retry with the same body answers the same payment.",
        status_code=201,
        responses={
            **problems.responses(400, 409, 422, 503),
            **problems.created(PaymentOut, "The payment, with the provider's next action for the citizen"),
        },
        security=[{}],
    )
    async def start(
        self, state: State, data: JSONBody[PaymentIn], idempotency_key: IdempotencyKey
    ) -> Response[Any]:
        payments = _payments(state)
        fees = tuple(data.fee_codes)
        # Refusals (unknown consulate or fee, no provider) before the key is claimed: nothing is kept.
        priced = price(payments, data.consulate, fees, clock.now())
        choose_variant(payments, Mode.ONLINE, data.consulate, priced.amount.currency)

        async def work() -> tuple[int, bytes]:
            started = await start_online_payment(
                payments, consulate=data.consulate, fee_codes=fees, locale=data.locale
            )
            view = await to_thread.run_sync(payment_view, payments, started.payment_id)
            return 201, msgspec.json.encode(_payment_out(payments, view, started))

        digest = request_hash("POST /payments", canonical(data))
        return await _idempotent(payments, "payments", idempotency_key, digest, work)

    @get(
        "/{payment_id:uuid}",
        operation_id="getPayment",
        summary="A payment's state; once captured, its stamps and receipt links",
        description="Public to whoever holds the payment's id (random, never listed). No personal data.",
        responses=problems.responses(400, 404),
        security=[{}],
        sync_to_thread=True,
    )
    def status(self, state: State, payment_id: PaymentId) -> Response[bytes]:
        payments = _payments(state)
        view = payment_view(payments, payment_id)
        return Response(msgspec.json.encode(_payment_out(payments, view)), media_type=JSON, headers=_NO_STORE)

    @get(
        "/{payment_id:uuid}/return",
        operation_id="returnFromProvider",
        summary="Where the provider sends the citizen's browser back; redirects to the payment's state",
        responses=problems.responses(400, 404),
        security=[{}],
        status_code=303,
    )
    async def back(self, state: State, payment_id: PaymentId) -> Redirect:
        payments = _payments(state)
        await to_thread.run_sync(payment_view, payments, payment_id)  # 404 for an unknown id
        await check_on_return(payments, payment_id)  # news may be lost: ask the provider now
        return Redirect(_return_url(payments, payment_id), status_code=303)

    @post(
        "/{payment_id:uuid}/return",
        operation_id="postReturnFromProvider",
        summary="The browser's signed return post (CMI okUrl/failUrl): applied like a callback, redirected",
        responses=problems.responses(400, 404),
        security=[{}],
        status_code=303,
    )
    async def back_with_fields(
        self, request: Request[Any, Any, Any], state: State, payment_id: PaymentId
    ) -> Redirect:
        payments = _payments(state)
        view = await to_thread.run_sync(payment_view, payments, payment_id)
        body = await request.body()
        if (
            body
        ):  # signed like a callback: verified and applied once, or refused; either way the citizen goes on
            await receive_webhook(payments, view.variant, dict(request.headers), body)
        return Redirect(_return_url(payments, payment_id), status_code=303)


@post(
    "/webhooks/{variant:str}",
    operation_id="receiveWebhook",
    summary="A provider's webhook or server callback, verified on the raw body",
    description="Answered with the exact reply the provider expects (CMI reads the body). Each event is "
    "stored once per (variant, event id) with the change it made; duplicates are acknowledged and skipped.",
    tags=["payments"],
    responses=problems.responses(404, 503),
    security=[{}],
    status_code=200,
)
async def webhook(request: Request[Any, Any, Any], state: State, variant: Variant) -> Response[bytes]:
    payments = _payments(state)
    result = await receive_webhook(payments, variant, dict(request.headers), await request.body())
    return Response(result.ack.body, status_code=result.ack.status_code, media_type=result.ack.media_type)


class TerminalSaleController(Controller):
    path = "/counter/terminal-sales"
    tags = ["counter"]
    guards = [requires(Role.CASHIER)]

    @post(
        "/",
        operation_id="startTerminalSale",
        summary="Sell at an integrated terminal of the cashier's consulate; stamps once captured",
        description="201 with the stamps when the terminal captured; 202 when its answer did not come "
        "(state unknown): check the sale's status before anything else, no new sale starts on that "
        "terminal until it is known (409).",
        status_code=201,
        responses={
            **problems.responses(400, 401, 403, 409, 422, 503),
            **problems.created(TerminalSaleOut, "The sale as the terminal left it (unknown until resolved)"),
        },
    )
    async def start(
        self,
        request: Request[Any, Any, Any],
        state: State,
        data: JSONBody[TerminalSaleIn],
        idempotency_key: RequiredIdempotencyKey,
    ) -> Response[Any]:
        payments = _payments(state)
        principal = principal_of(request)

        async def work() -> tuple[int, bytes]:
            sale = await start_terminal_sale(
                payments,
                variant=data.variant,
                consulate=principal.consulate,
                fee_codes=tuple(data.fee_codes),
                terminal_id=data.terminal_id,
                cashier=principal.actor,
            )
            status = 202 if sale.state.value == "unknown" else 201
            return status, msgspec.json.encode(_sale_out(payments, sale))

        digest = request_hash("POST /counter/terminal-sales", canonical(data))
        return await _idempotent(payments, f"terminal-sale:{principal.key_id}", idempotency_key, digest, work)

    @get(
        "/{payment_id:uuid}",
        operation_id="getTerminalSale",
        summary="A terminal sale's state and stamps",
        responses=problems.responses(400, 401, 403, 404),
        sync_to_thread=True,
    )
    def show(self, request: Request[Any, Any, Any], state: State, payment_id: PaymentId) -> TerminalSaleOut:
        payments = _payments(state)
        return _sale_out(payments, _own_sale(payments, request, payment_id))

    @post(
        "/{payment_id:uuid}/status-check",
        operation_id="checkTerminalSale",
        summary="Ask the terminal's provider now how an unknown sale ended, and settle it",
        status_code=200,
        responses=problems.responses(400, 401, 403, 404),
    )
    async def check(
        self, request: Request[Any, Any, Any], state: State, payment_id: PaymentId
    ) -> TerminalSaleOut:
        payments = _payments(state)
        await to_thread.run_sync(_own_sale, payments, request, payment_id)
        await resolve_payment(payments, payment_id)
        return _sale_out(payments, await to_thread.run_sync(sale_view, payments, payment_id))


def _own_sale(payments: Payments, request: Request[Any, Any, Any], payment_id: uuid.UUID) -> TerminalSale:
    """A sale of the cashier's own consulate (another consulate's is not found, not forbidden)."""
    view = payment_view(payments, payment_id)
    if view.terminal_id is None or view.consulate != principal_of(request).consulate:
        raise PaymentNotFoundError(f"no terminal sale {payment_id} at your consulate")
    return sale_view(payments, payment_id)


@get(
    "/admin/payments/queue",
    operation_id="getPaymentQueue",
    summary="The manual queue: attempts nobody could settle and parked payments, oldest first",
    tags=["payments"],
    guards=[requires(Role.ADMIN)],
    responses=problems.responses(401, 403),
    sync_to_thread=True,
)
def payment_queue(state: State) -> list[QueuedOut]:
    payments = _payments(state)
    return [
        QueuedOut(
            payment_id=item.payment_id,
            reference=item.reference,
            variant=item.variant,
            payment_state=state_of(item.payment_state),
            amount=Amount.of(Money(item.amount, item.currency)),
            reason=item.reason,
            since=item.since,
            attempt_id=item.attempt_id,
            attempt_kind=item.attempt_kind,
        )
        for item in manual_queue(payments)
    ]


ROUTES: list[ControllerRouterHandler] = [PaymentController, webhook, TerminalSaleController, payment_queue]
