"""Refunds and voids over HTTP, for administrators; auditors read them. Thin: one service call each.

POST /refunds and POST /voids take a required Idempotency-Key (ledger.api.idempotency): the same key and
body give the first answer byte for byte, another body is refused (422), a copy arriving while the first
is at the provider is told it is in progress (409). A refusal keeps nothing: a corrected order may reuse
the key. The refund itself is named after the key, so even a retry after a lost answer refunds once.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from anyio import to_thread
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.types import ControllerRouterHandler

from ledger.api import problems
from ledger.api.auth import principal_of, requires
from ledger.api.idempotency import canonical, run_once_calling_out
from ledger.api.payments import _payments
from ledger.api.refunds_schemas import DisputeOut, RefundIn, RefundOut, VoidIn, VoidOut
from ledger.money import Money, MoneyError
from ledger.services.apikeys import Role
from ledger.services.disputes import disputes_of
from ledger.services.refunds import (
    RefundError,
    RefundOrder,
    get_refund,
    payment_currency,
    refund_payment,
    refunds_of,
)
from ledger.services.voids import void_payment

RequiredKey = Annotated[
    str,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=100,
        pattern=r"^[\x21-\x7e]+$",
        required=True,
        description="Required: a retry with the same key and body is the same refund (or void); the same key "
        "with another body is refused (422).",
    ),
]
PaymentReferenceQuery = Annotated[
    str,
    QueryParameter(
        min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$", description="the payment's reference"
    ),
]


class RefundController(Controller):
    path = "/refunds"
    tags = ["refunds"]

    @post(
        "/",
        operation_id="refundPayment",
        summary="Refund whole stamps of a captured payment through its provider",
        description="Admin. The stamps named (default: every unused stamp) are refunded; the amount, if "
        "given, must be theirs and never more than what is left of the captured amount, which is checked "
        "before the provider is called. On success each stamp's entry is posted and unused stamps go on "
        "the trust list's deny list. `state` is `declined` when the provider refused, `unknown` when its "
        "answer was lost (the resolver settles it).",
        status_code=201,
        guards=[requires(Role.ADMIN)],
        responses={
            **problems.responses(401, 403, 404, 409, 422, 503),
            **problems.created(RefundOut, "The refund and its stamps"),
        },
    )
    async def refund(
        self,
        request: Request[Any, Any, Any],
        state: State,
        data: JSONBody[RefundIn],
        idempotency_key: RequiredKey,
    ) -> Response[Any]:
        payments = _payments(state)
        principal = principal_of(request)
        amount = None
        if data.amount is not None:
            currency = await to_thread.run_sync(payment_currency, payments.database, data.payment_reference)
            try:
                amount = Money.parse(data.amount, currency)
            except MoneyError as error:
                raise RefundError("amount", str(error)) from None
        order = RefundOrder(
            payment_ref=data.payment_reference,
            reason=data.reason,
            actor=principal.actor,
            request_key=f"{principal.key_id}:{idempotency_key}",
            stamps=None if data.stamps is None else tuple(data.stamps),
            amount=amount,
        )

        async def work() -> RefundOut:
            view = await refund_payment(payments.database, payments.settings, payments.registry.get, order)
            return RefundOut.of(view)

        return await run_once_calling_out(
            payments.database, scope=f"refund:{principal.key_id}", key=idempotency_key,
            request=("POST /refunds", canonical(data)), status=201, work=work,
        )  # fmt: skip

    @get(
        "/",
        operation_id="listRefunds",
        summary="The refunds of one payment, oldest first",
        guards=[requires(Role.ADMIN, Role.AUDITOR)],
        responses=problems.responses(401, 403, 404, 503),
        sync_to_thread=True,
    )
    def list_refunds(
        self,
        state: State,
        payment_reference: PaymentReferenceQuery,
    ) -> list[RefundOut]:
        payments = _payments(state)
        with payments.database.read() as session:
            return [RefundOut.of(view) for view in refunds_of(session, payment_reference)]

    @get(
        "/{refund_id:uuid}",
        operation_id="getRefund",
        summary="One refund, with the stamps it refunds and the entries it posted",
        guards=[requires(Role.ADMIN, Role.AUDITOR)],
        responses=problems.responses(401, 403, 404, 503),
        sync_to_thread=True,
    )
    def get_refund(self, state: State, refund_id: FromPath[uuid.UUID]) -> RefundOut:
        payments = _payments(state)
        with payments.database.read() as session:
            return RefundOut.of(get_refund(session, refund_id))


@post(
    "/voids",
    operation_id="voidPayment",
    summary="Release an authorization that was never captured",
    description="Admin. The void attempt is stored before the provider is called; the payment is canceled "
    "when the provider confirms. Nothing is posted: nothing was captured.",
    status_code=201,
    tags=["refunds"],
    guards=[requires(Role.ADMIN)],
    responses={
        **problems.responses(401, 403, 404, 409, 503),
        **problems.created(VoidOut, "The void attempt and the payment's state"),
    },
)
async def void(
    request: Request[Any, Any, Any], state: State, data: JSONBody[VoidIn], idempotency_key: RequiredKey
) -> Response[Any]:
    payments = _payments(state)

    async def work() -> VoidOut:
        # One void per payment: the payment's reference names the attempt, whatever the key.
        return VoidOut.of(
            await void_payment(payments.database, payments.registry.get, data.payment_reference)
        )

    return await run_once_calling_out(
        payments.database, scope=f"void:{principal_of(request).key_id}", key=idempotency_key,
        request=("POST /voids", canonical(data)), status=201, work=work,
    )  # fmt: skip


@get(
    "/disputes",
    operation_id="listDisputes",
    summary="The chargebacks of one payment, oldest first, with the entries they posted",
    tags=["refunds"],
    guards=[requires(Role.ADMIN, Role.AUDITOR)],
    responses=problems.responses(401, 403, 404, 503),
    sync_to_thread=True,
)
def list_disputes(state: State, payment_reference: PaymentReferenceQuery) -> list[DisputeOut]:
    payments = _payments(state)
    with payments.database.read() as session:
        return [DisputeOut.of(view) for view in disputes_of(session, payment_reference)]


ROUTES: list[ControllerRouterHandler] = [RefundController, void, list_disputes]
