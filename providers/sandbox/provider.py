"""The sandbox provider adapter: talks to the sandbox simulator's API like to a real gateway."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar

import httpx
import msgspec

from ledger.money import Money, MoneyError
from providers.base import Provider, ProviderContext
from providers.errors import (
    IdempotencyConflictError,
    ProviderConfigError,
    ProviderUnavailableError,
    WebhookPayloadError,
)
from providers.faults import parse_faults
from providers.model import (
    Capabilities,
    CaptureRequest,
    EventKind,
    Mode,
    Outcome,
    PaymentRequest,
    PaymentState,
    ProviderEvent,
    ProviderResult,
    Redirect,
    RefundRequest,
    SettlementKind,
    SettlementLine,
    StatusReport,
    UnknownCause,
    VerifiedWebhook,
    VoidRequest,
    WebhookAck,
    WebhookDecision,
)
from providers.sandbox.wire import (
    FAULTS_HEADER,
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    CaptureBody,
    CreateCheckout,
    ErrorBody,
    PaymentList,
    RefundBody,
    SettlementReport,
    StartSale,
    WireAmount,
    WireEvent,
    WirePayment,
    WireRefund,
)
from providers.signing import verify_timestamped
from providers.transport import decode_json

_STATES: dict[str, PaymentState] = {state.value: state for state in PaymentState}
# When several payments share our reference (a failed sale, then a new one), the furthest one counts.
_RANK = {
    PaymentState.DISPUTED: 6,
    PaymentState.REFUNDED: 5,
    PaymentState.PARTIALLY_REFUNDED: 5,
    PaymentState.CAPTURED: 4,
    PaymentState.AUTHORIZED: 3,
    PaymentState.PENDING: 2,
    PaymentState.FAILED: 1,
    PaymentState.CANCELED: 1,
    PaymentState.EXPIRED: 1,
}
_EVENT_KINDS: dict[str, EventKind] = {
    "payment.authorized": EventKind.AUTHORIZED,
    "payment.captured": EventKind.CAPTURED,
    "payment.declined": EventKind.DECLINED,
    "payment.failed": EventKind.FAILED,
    "payment.canceled": EventKind.CANCELED,
    "payment.expired": EventKind.EXPIRED,
    "refund.succeeded": EventKind.REFUNDED,
    "dispute.opened": EventKind.DISPUTED,
    "dispute.won": EventKind.DISPUTE_WON,
    "dispute.lost": EventKind.DISPUTE_LOST,
}
_ACKS = {
    WebhookDecision.ACCEPTED: WebhookAck(
        status_code=200, media_type="application/json", body=b'{"received":true}'
    ),
    WebhookDecision.CAPTURE: WebhookAck(
        status_code=200, media_type="application/json", body=b'{"received":true}'
    ),
    WebhookDecision.REJECTED: WebhookAck(
        status_code=400, media_type="application/json", body=b'{"received":false}'
    ),
    WebhookDecision.RETRY_LATER: WebhookAck(
        status_code=503, media_type="application/json", body=b'{"received":false}'
    ),
}


class SandboxProvider(Provider):
    """Online checkout or counter terminal against the sandbox simulator (`providers.sandbox.simulator`).

    Options: `notify_url` (where the simulator posts webhooks), `webhook_tolerance_seconds` (300),
    `faults` (fault names sent with every request, to demonstrate failures end to end).
    """

    name: ClassVar[str] = "sandbox"
    modes: ClassVar[frozenset[Mode]] = frozenset({Mode.ONLINE, Mode.TERMINAL})
    required_secrets: ClassVar[Mapping[str, str]] = {
        "api_key": "sandbox API key",
        "webhook_secrets": "sandbox webhook signing secret",
    }

    def __init__(self, context: ProviderContext) -> None:
        super().__init__(context)
        variant = context.variant
        self._notify_url = variant.option_optional_str("notify_url")
        self._tolerance = timedelta(seconds=variant.option_int("webhook_tolerance_seconds", 300, minimum=1))
        raw_faults = variant.options.get("faults", [])
        try:
            faults = parse_faults(",".join(raw_faults) if isinstance(raw_faults, list) else str(raw_faults))
        except ValueError as exc:
            raise ProviderConfigError(f"{variant.where('options.faults')}: {exc}") from exc
        self._fault_header = ",".join(sorted(faults))

    def capabilities(self) -> Capabilities:
        return Capabilities(
            provider=self.name,
            modes=frozenset({self.variant.mode}),
            currencies=self.variant.currencies,
            manual_capture=self.variant.mode is Mode.ONLINE,
            partial_capture=True,
            void=self.variant.mode is Mode.ONLINE,
            partial_refunds=True,
            multiple_refunds=True,
            disputes=True,
            native_idempotency=True,
            signed_timestamps=True,
            capture_by_webhook_reply=False,
            settlement_lines=True,
        )

    # -- calls -------------------------------------------------------------------------------------------

    def _headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.context.secrets.one('api_key')}"}
        if idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        if self._fault_header:
            headers[FAULTS_HEADER] = self._fault_header
        return headers

    async def _post(self, path: str, body: msgspec.Struct, idempotency_key: str) -> httpx.Response:
        return await self.context.http.post(
            path,
            content=msgspec.json.encode(body),
            headers={**self._headers(idempotency_key), "Content-Type": "application/json"},
        )

    async def _create_payment(self, request: PaymentRequest, idempotency_key: str) -> ProviderResult:
        amount = WireAmount.of(request.amount)
        notify_url = request.notify_url or self._notify_url
        if self.variant.mode is Mode.ONLINE:
            assert request.return_url is not None  # checked by Provider.create_payment
            order = CreateCheckout(
                reference=request.reference,
                amount=amount,
                description=request.description,
                capture_method=request.capture.value,
                return_url=request.return_url,
                cancel_url=request.cancel_url,
                notify_url=notify_url,
            )
            response = await self._post("/v1/checkouts", order, idempotency_key)
        else:
            sale = StartSale(
                reference=request.reference,
                amount=amount,
                description=request.description,
                notify_url=notify_url,
            )
            response = await self._post(f"/v1/terminals/{request.terminal_id}/sales", sale, idempotency_key)
        refused = self._refusal(response)
        if refused is not None:
            return refused
        payment = decode_json(response, WirePayment)
        result = _result_of(payment, amount=payment.amount.money())
        if payment.channel == "online" and payment.checkout_url:
            return ProviderResult(
                outcome=result.outcome,
                state=result.state,
                provider_reference=payment.id,
                amount=payment.amount.money(),
                next_action=Redirect(url=payment.checkout_url),
            )
        return result

    async def _capture(self, request: CaptureRequest, idempotency_key: str) -> ProviderResult:
        payment_id = request.provider_reference or await self._payment_id(request.reference)
        response = await self._post(
            f"/v1/payments/{payment_id}/capture", CaptureBody(WireAmount.of(request.amount)), idempotency_key
        )
        refused = self._refusal(response)
        if refused is not None:
            return refused
        payment = decode_json(response, WirePayment)
        return _result_of(payment, amount=Money(payment.captured_minor, payment.amount.currency))

    async def _void(self, request: VoidRequest, idempotency_key: str) -> ProviderResult:
        payment_id = request.provider_reference or await self._payment_id(request.reference)
        response = await self.context.http.post(
            f"/v1/payments/{payment_id}/void", headers=self._headers(idempotency_key)
        )
        refused = self._refusal(response)
        if refused is not None:
            return refused
        payment = decode_json(response, WirePayment)
        return _result_of(payment, amount=Money(payment.authorized_minor, payment.amount.currency))

    async def _refund(self, request: RefundRequest, idempotency_key: str) -> ProviderResult:
        payment_id = request.provider_reference or await self._payment_id(request.reference)
        body = RefundBody(
            amount=WireAmount.of(request.amount),
            refund_reference=request.refund_reference,
            reason=request.reason,
        )
        response = await self._post(f"/v1/payments/{payment_id}/refunds", body, idempotency_key)
        refused = self._refusal(response)
        if refused is not None:
            return refused
        made = decode_json(response, WireRefund)
        return ProviderResult(
            outcome=Outcome.succeeded(),
            provider_reference=made.payment_id,
            operation_reference=made.id,
            amount=made.amount.money(),
        )

    def _refusal(self, response: httpx.Response) -> ProviderResult | None:
        """None for a 2xx; otherwise the result an error answer means (or raise for a reused key)."""
        if response.is_success:
            return None
        if response.status_code >= 500:
            return ProviderResult.unknown(
                UnknownCause.PROVIDER_ERROR, f"sandbox answered HTTP {response.status_code}"
            )
        if response.status_code == 429:
            return ProviderResult.unknown(UnknownCause.NOT_SENT, "sandbox is rate limiting")
        error = decode_json(response, ErrorBody).error
        if error.type == "idempotency_conflict":
            raise IdempotencyConflictError(error.message)
        return ProviderResult(outcome=Outcome.declined(error.code, error.message))

    async def _payment_id(self, reference: str) -> str:
        payments = await self._find(reference)
        if not payments:
            raise ProviderUnavailableError(f"the sandbox knows no payment {reference}")
        return _furthest(payments).id

    async def _find(self, reference: str) -> list[WirePayment]:
        response = await self.context.http.get(
            "/v1/payments", params={"reference": reference}, headers=self._headers()
        )
        _raise_unavailable(response)
        return list(decode_json(response, PaymentList).data)

    async def _fetch_status(self, reference: str, provider_reference: str | None) -> StatusReport:
        payments: list[WirePayment] = []
        if provider_reference is not None:
            response = await self.context.http.get(
                f"/v1/payments/{provider_reference}", headers=self._headers()
            )
            if response.status_code != 404:
                _raise_unavailable(response)
                payments = [decode_json(response, WirePayment)]
        if not payments:
            payments = await self._find(reference)
        now = self.context.clock()
        if not payments:
            return StatusReport(
                state=PaymentState.NOT_FOUND,
                reference=reference,
                provider_reference=None,
                amount=None,
                captured=None,
                refunded=None,
                checked_at=now,
            )
        payment = _furthest(payments)
        currency = payment.amount.currency
        return StatusReport(
            state=_STATES[payment.status],
            reference=reference,
            provider_reference=payment.id,
            amount=payment.amount.money(),
            captured=Money(payment.captured_minor, currency),
            refunded=Money(payment.refunded_minor, currency),
            checked_at=now,
            detail=payment.last_error or "",
        )

    async def _settlement_lines(self, day: date) -> list[SettlementLine]:
        response = await self.context.http.get(f"/v1/settlements/{day.isoformat()}", headers=self._headers())
        _raise_unavailable(response)
        report = decode_json(response, SettlementReport)
        return [
            SettlementLine(
                kind=SettlementKind(line.kind),
                our_reference=line.reference,
                provider_reference=line.payment_id,
                operation_reference=line.operation_id,
                payout_reference=line.payout_id,
                gross=line.gross.money(),
                fee=line.fee.money(),
                net=line.net.money(),
                value_date=day,
            )
            for line in report.lines
        ]

    # -- webhooks ------------------------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes, now: datetime) -> VerifiedWebhook:
        lowered = {name.lower(): value for name, value in headers.items()}
        signed_at = verify_timestamped(
            lowered.get(SIGNATURE_HEADER.lower()),
            raw_body,
            secrets=self.context.secrets.all("webhook_secrets"),
            now=now,
            tolerance=self._tolerance,
            header_name=SIGNATURE_HEADER,
        )
        return VerifiedWebhook(headers=lowered, body=raw_body, signed_at=signed_at)

    def parse_webhook(self, webhook: VerifiedWebhook) -> tuple[ProviderEvent, ...]:
        try:
            event = msgspec.json.decode(webhook.body, type=WireEvent)
            amount = event.data.amount.money()
        except (msgspec.ValidationError, msgspec.DecodeError, MoneyError) as exc:
            raise WebhookPayloadError(f"sandbox webhook body is not a sandbox event: {exc}") from exc
        return (
            ProviderEvent(
                provider=self.name,
                event_id=event.id,
                kind=_EVENT_KINDS[event.type],
                our_reference=event.data.reference,
                provider_reference=event.data.payment_id,
                amount=amount,
                occurred_at=datetime.fromtimestamp(event.created, UTC),
                operation_reference=event.data.refund_id or event.data.dispute_id,
                our_operation_reference=event.data.refund_reference,
                reason=event.data.reason or "",
            ),
        )

    def webhook_ack(self, decision: WebhookDecision) -> WebhookAck:
        return _ACKS[decision]


def _furthest(payments: list[WirePayment]) -> WirePayment:
    return max(payments, key=lambda p: (_RANK[_STATES[p.status]], p.created))


def _result_of(payment: WirePayment, *, amount: Money) -> ProviderResult:
    state = _STATES[payment.status]
    if state is PaymentState.FAILED:
        return ProviderResult(
            outcome=Outcome.declined(payment.last_error or "declined"),
            state=state,
            provider_reference=payment.id,
            amount=payment.amount.money(),
        )
    return ProviderResult(
        outcome=Outcome.succeeded(), state=state, provider_reference=payment.id, amount=amount
    )


def _raise_unavailable(response: httpx.Response) -> None:
    if not response.is_success:
        raise ProviderUnavailableError(
            f"sandbox answered HTTP {response.status_code} to "
            f"{response.request.method} {response.request.url.path}"
        )
