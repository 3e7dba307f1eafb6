"""Stamps over HTTP: counter payments, verification and use, refunds, receipts, trust list."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import HeaderParameter, JSONBody, PathParameter

from ledger.api import problems
from ledger.api.auth import principal_of, requires
from ledger.api.idempotency import JSON, IdempotencyKey, canonical, run_once
from ledger.api.schemas import Amount
from ledger.api.stamps_schemas import (
    RECEIPT_FILE,
    STAMP_NUMBER,
    ConsumptionOut,
    CounterPaymentIn,
    CounterPaymentOut,
    IssuedStampOut,
    ReceiptStatusOut,
    RefundIn,
    RefundOut,
    StampOut,
    VerificationOut,
    VerifyIn,
)
from ledger.db.engine import Database
from ledger.money import Money, MoneyError
from ledger.services import clock, receipt_files, stamps
from ledger.services.apikeys import Role
from ledger.services.idempotency import StoredResponse, claim, request_hash, store
from ledger.services.issuance import (
    CapturedPayment,
    IssuedStamp,
    PaymentError,
    issued_stamps,
    record_captured_payment,
)
from ledger.services.signing_keys import StampKeys
from ledger.services.trust_lists import sign_trust_list
from ledger.settings import Settings
from receipts.numbers import StampNumber

TERMINAL = "terminal"  # the provider name of a counter's standalone terminal (its clearing account)
TRUST_LIST_MEDIA_TYPE = 'application/cose; cose-type="cose-sign1"'
_POINTER_MEDIA_TYPE = "application/vnd.etimbre.payment-pointer+json"
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}

RequiredIdempotencyKey = Annotated[
    str,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=100,
        pattern=r"^[\x21-\x7e]+$",
        required=True,
        description="Required: a retry with the same key and body answers the same payment and stamps; "
        "the same key with another body is refused (422).",
    ),
]
NumberPath = Annotated[
    str,
    PathParameter(
        pattern=STAMP_NUMBER,
        min_length=17,
        max_length=40,
        description="the 17 digits under the QR code; spaces and dashes are ignored, the check digit is not",
    ),
]
ReceiptFile = Annotated[
    str,
    PathParameter(pattern=RECEIPT_FILE, description="{token}.pdf, {token}.png, {token}.svg or {token}.json"),
]


class _PaymentPointer(msgspec.Struct):
    """What is kept to replay a counter payment: where to find it, never its receipt links."""

    entry_id: uuid.UUID
    payment_ref: str


def _counter_out(
    settings: Settings,
    data: CounterPaymentIn,
    consulate: str,
    pointer: _PaymentPointer,
    issued: tuple[IssuedStamp, ...],
) -> bytes:
    currency = settings.consulate(consulate).currency
    total = Money.zero(currency)
    for stamp in issued:
        total += stamp.amount
    out = CounterPaymentOut(
        payment_ref=pointer.payment_ref,
        entry_id=pointer.entry_id,
        consulate=consulate,
        amount=Amount.of(total),
        terminal_reference=data.terminal_reference,
        approval_code=data.approval_code,
        stamps=[IssuedStampOut.of(stamp, settings.service.server.public_url) for stamp in issued],
    )
    return msgspec.json.encode(out)


class CounterController(Controller):
    path = "/counter"
    tags = ["counter"]
    guards = [requires(Role.CASHIER)]

    @post(
        "/payments",
        operation_id="recordCounterPayment",
        summary="Record a card payment taken on the counter's terminal and issue its stamps",
        description="One stamp per fee, priced from the published schedule; the ledger entry and the stamps "
        "are written in one transaction. The consulate is the cashier key's.",
        status_code=201,
        responses={
            **problems.responses(400, 401, 403, 409, 422, 503),
            **problems.created(CounterPaymentOut, "The payment recorded and its stamps"),
        },
        sync_to_thread=True,
    )
    def record_payment(
        self,
        request: Request[Any, Any, Any],
        state: State,
        data: JSONBody[CounterPaymentIn],
        idempotency_key: RequiredIdempotencyKey,
    ) -> Response[Any]:
        database: Database = state.database
        settings: Settings = state.settings
        keys: StampKeys = state.stamp_keys
        principal = principal_of(request)
        consulate = principal.consulate
        scope = f"counter-payment:{principal.key_id}"
        digest = request_hash("POST /counter/payments", canonical(data))
        with database.write() as session:
            earlier = claim(session, scope, idempotency_key, digest)
            if earlier is not None:
                # Rebuilt from the ledger: the receipt links are derived again, never stored.
                pointer = msgspec.json.decode(earlier.body, type=_PaymentPointer)
                body = _counter_out(
                    settings, data, consulate, pointer, issued_stamps(session, pointer.entry_id, keys)
                )
                return Response(
                    body,
                    status_code=201,
                    media_type=JSON,
                    headers={**_NO_STORE, "Idempotent-Replayed": "true"},
                )
            now = clock.now()
            try:
                amount = Money.parse(data.amount, settings.consulate(consulate).currency)
            except MoneyError as error:
                raise PaymentError("amount", str(error)) from None
            payment = CapturedPayment(
                payment_ref=f"{TERMINAL}:{consulate}:{data.terminal_reference}",
                consulate=consulate,
                fee_codes=tuple(data.fee_codes),
                channel="counter",
                provider=TERMINAL,
                amount=amount,
                captured_at=now,
                priced_at=now,
                case_reference=data.case_reference,
                memo=(("terminal_reference", data.terminal_reference), ("approval_code", data.approval_code)),
            )
            issued = record_captured_payment(session, settings, keys, payment, actor=principal.actor)
            pointer = _PaymentPointer(issued.entry_id, payment.payment_ref)
            store(
                session,
                scope,
                idempotency_key,
                StoredResponse(201, msgspec.json.encode(pointer), _POINTER_MEDIA_TYPE),
            )
            body = _counter_out(settings, data, consulate, pointer, issued.stamps)
        return Response(body, status_code=201, media_type=JSON, headers=_NO_STORE)


def _number(text: str) -> StampNumber:
    return StampNumber.parse(text)  # StampNumberError -> 400 naming `number`


class StampController(Controller):
    path = "/stamps"
    tags = ["stamps"]

    @post(
        "/verify",
        operation_id="verifyStamp",
        summary="Check a scanned stamp: genuine and unused here, or why not (when, where, by whom if used)",
        guards=[requires(Role.CASHIER)],
        status_code=200,
        responses=problems.responses(400, 401, 403),
        sync_to_thread=True,
    )
    def verify(
        self, request: Request[Any, Any, Any], state: State, data: JSONBody[VerifyIn]
    ) -> VerificationOut:
        database: Database = state.database
        principal = principal_of(request)
        with database.read() as session:
            verification = stamps.verify_presented(
                session, state.settings, data.stamp, consulate=principal.consulate
            )
        return VerificationOut.of(verification)

    @get(
        "/{number:str}",
        operation_id="getStamp",
        summary="A stamp by its typed digits (cashiers: their own consulate's stamps only)",
        guards=[requires(Role.CASHIER, Role.AUDITOR, Role.ADMIN)],
        responses=problems.responses(400, 401, 403, 404),
        sync_to_thread=True,
    )
    def get_stamp(self, request: Request[Any, Any, Any], state: State, number: NumberPath) -> StampOut:
        database: Database = state.database
        principal = principal_of(request)
        wanted = _number(number)
        with database.read() as session:
            if principal.role is Role.CASHIER:
                view = stamps.stamp_for_consulate(session, state.settings, wanted, principal.consulate)
            else:
                view = stamps.find_stamp(session, state.settings, wanted)
        return StampOut.of(view)

    @post(
        "/{number:str}/consume",
        operation_id="consumeStamp",
        summary="Mark a stamp used, exactly once; the fee moves from stamps outstanding to revenue",
        guards=[requires(Role.CASHIER)],
        status_code=200,
        responses=problems.responses(400, 401, 403, 404, 409, 422),
        sync_to_thread=True,
    )
    def consume(
        self,
        request: Request[Any, Any, Any],
        state: State,
        number: NumberPath,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ConsumptionOut]:
        principal = principal_of(request)
        wanted = _number(number)

        def consume(session: Any) -> ConsumptionOut:
            done = stamps.consume_stamp(
                session, state.settings, wanted, consulate=principal.consulate, actor=principal.actor
            )
            return ConsumptionOut(
                number=done.number.printed(),
                consulate=done.consulate,
                fee_code=done.fee_code,
                amount=Amount.of(done.amount),
                at=done.at,
                by=done.actor,
                entry_id=done.entry_id,
            )

        return run_once(
            state.database,
            scope=f"consume:{principal.key_id}",
            key=idempotency_key,
            request=(f"POST /stamps/{wanted.digits}/consume",),
            status=200,
            work=consume,
        )

    @post(
        "/{number:str}/refund",
        operation_id="refundStamp",
        summary="Refund an unused stamp within the refund policy; its number joins the deny list",
        guards=[requires(Role.ADMIN)],
        status_code=200,
        responses=problems.responses(400, 401, 403, 404, 409, 422),
        sync_to_thread=True,
    )
    def refund(
        self,
        request: Request[Any, Any, Any],
        state: State,
        number: NumberPath,
        data: JSONBody[RefundIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[RefundOut]:
        principal = principal_of(request)
        wanted = _number(number)

        def refund(session: Any) -> RefundOut:
            done = stamps.refund_stamp(
                session, state.settings, wanted, reason=data.reason, actor=principal.actor
            )
            return RefundOut(
                number=done.number.printed(),
                amount=Amount.of(done.amount),
                at=done.at,
                by=principal.actor,
                entry_id=done.entry_id,
                provider=done.provider,
                payment_ref=done.payment_ref,
            )

        return run_once(
            state.database,
            scope=f"refund:{principal.key_id}",
            key=idempotency_key,
            request=(f"POST /stamps/{wanted.digits}/refund", canonical(data)),
            status=200,
            work=refund,
        )


class ReceiptController(Controller):
    path = "/receipts"
    tags = ["receipts"]

    @get(
        "/{file:str}",
        operation_id="getReceipt",
        summary="A citizen's receipt by its secret link: PDF, QR code as PNG or SVG, or the stamp's status",
        media_type="application/pdf",
        responses=problems.responses(400, 404),
        security=[{}],
        sync_to_thread=True,
    )
    def receipt(self, state: State, file: ReceiptFile) -> Response[bytes]:
        token, _, kind = file.partition(".")
        database: Database = state.database
        with database.read() as session:
            stamp = receipt_files.find_receipt(session, token)
        if kind == "pdf":
            content, media_type = receipt_files.receipt_pdf(state.settings, stamp, token), "application/pdf"
        elif kind == "png":
            content, media_type = receipt_files.receipt_qr_png(stamp), "image/png"
        elif kind == "svg":
            content, media_type = receipt_files.receipt_qr_svg(stamp), "image/svg+xml"
        else:
            status = ReceiptStatusOut(
                number=stamp.number.printed(),
                consulate=stamp.consulate,
                fee_code=stamp.fee_code,
                amount=Amount.of(stamp.amount),
                issued_at=stamp.issued_at,
                expires_at=stamp.expires_at,
                status=stamp.status,
            )
            content, media_type = msgspec.json.encode(status), JSON
        return Response(content, media_type=media_type, headers=_NO_STORE)


@get(
    "/trust-list",
    operation_id="getTrustList",
    summary="The signed trust list (COSE_Sign1, docs/stamp-format.md section 13) for offline verifiers",
    tags=["stamps"],
    media_type=TRUST_LIST_MEDIA_TYPE,
    responses=problems.responses(503),
    security=[{}],
    sync_to_thread=True,
)
def trust_list_document(state: State) -> Response[bytes]:
    database: Database = state.database
    with database.read() as session:
        signed = sign_trust_list(session, state.settings, state.stamp_keys)
    return Response(
        signed.document, media_type=TRUST_LIST_MEDIA_TYPE, headers={"Cache-Control": "max-age=60"}
    )


@get(
    "/trust-list.json",
    operation_id="getTrustListJson",
    summary="The trust list rendered for people (not signed; verify with the signed document)",
    tags=["stamps"],
    responses=problems.responses(503),
    security=[{}],
    sync_to_thread=True,
)
def trust_list_json(state: State) -> dict[str, Any]:
    database: Database = state.database
    with database.read() as session:
        signed = sign_trust_list(session, state.settings, state.stamp_keys)
    return signed.trust_list.to_json() | {"signed_by_public_key_pem": signed.anchor.to_pem()}


ROUTES: list[Any] = [
    CounterController,
    StampController,
    ReceiptController,
    trust_list_document,
    trust_list_json,
]
