"""The CMI adapter: hosted payment page form, hashed callbacks and the CC5 API for capture and status."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import ClassVar
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.money import Money, MoneyError, currency_from_numeric, numeric_code
from providers.base import Provider, ProviderContext
from providers.cmi.cc5 import Cc5Request, Cc5Response
from providers.cmi.hashing import compute_hash, hash_matches
from providers.errors import (
    ProviderConfigError,
    ProviderUnavailableError,
    WebhookPayloadError,
    WebhookRejectedError,
)
from providers.model import (
    AutoPostForm,
    Capabilities,
    CaptureMode,
    CaptureRequest,
    EventKind,
    Mode,
    Outcome,
    PaymentRequest,
    PaymentState,
    ProviderEvent,
    ProviderResult,
    RefundRequest,
    StatusReport,
    UnknownCause,
    VerifiedWebhook,
    VoidRequest,
    WebhookAck,
    WebhookDecision,
)

_LANGUAGES = {"fr": "fr", "ar": "ar", "en": "en"}
_ACK_BODIES = {
    WebhookDecision.ACCEPTED: b"APPROVED",
    WebhookDecision.CAPTURE: b"ACTION=POSTAUTH",
    WebhookDecision.REJECTED: b"FAILURE",
    WebhookDecision.RETRY_LATER: b"FAILURE",
}
_MAX_FIELDS = 100
_Act = Callable[[StatusReport], Awaitable[ProviderResult]]
# TRANS_STAT of the order-status query: authorized (open pre-authorization), captured, voided, declined.
_TRANS_STATES = {"A": PaymentState.AUTHORIZED, "C": PaymentState.CAPTURED, "V": PaymentState.CANCELED}


class CmiProvider(Provider):
    """Online card payments through CMI's hosted page (storetype 3D_PAY_HOSTING, hash ver3).

    Options: `client_id`, `api_user`, `callback_url` (unless each request names one), `gateway_path`
    (`/fim/est3Dgate`), `api_path` (`/fim/api`), `timezone` of the gateway's dates (Africa/Casablanca).
    Secrets: `store_keys` (several during a rotation: the first signs, all verify), `api_password`.

    CMI has no idempotency keys: replays are answered in process, and capture, void and refund first
    read the order's state so that a retry never repeats what the gateway already did.
    """

    name: ClassVar[str] = "cmi"
    modes: ClassVar[frozenset[Mode]] = frozenset({Mode.ONLINE})
    required_secrets: ClassVar[Mapping[str, str]] = {
        "store_keys": "CMI store key",
        "api_password": "CMI API user's password",
    }

    def __init__(self, context: ProviderContext) -> None:
        super().__init__(context)
        variant = context.variant
        self._client_id = variant.option_str("client_id")
        self._api_user = variant.option_str("api_user")
        self._callback_url = variant.option_optional_str("callback_url")
        self._gateway_url = variant.base_url + variant.option_str("gateway_path", "/fim/est3Dgate")
        self._api_path = variant.option_str("api_path", "/fim/api")
        try:
            self._zone = ZoneInfo(variant.option_str("timezone", "Africa/Casablanca"))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ProviderConfigError(f"{variant.where('options.timezone')}: unknown time zone") from exc

    def capabilities(self) -> Capabilities:
        return Capabilities(
            provider=self.name,
            modes=frozenset({Mode.ONLINE}),
            currencies=self.variant.currencies,
            manual_capture=True,
            partial_capture=True,
            void=True,
            partial_refunds=True,
            multiple_refunds=True,
            disputes=False,  # chargebacks arrive in CMI's reports, not as callbacks
            native_idempotency=False,
            signed_timestamps=False,  # callbacks carry no signed timestamp: replays are caught by event id
            capture_by_webhook_reply=True,
            settlement_lines=False,
        )

    # -- the hosted payment page -----------------------------------------------------------------------

    async def _create_payment(self, request: PaymentRequest, idempotency_key: str) -> ProviderResult:
        callback_url = request.notify_url or self._callback_url
        if callback_url is None:
            raise ProviderConfigError(
                f"{self.variant.where('options.callback_url')}: CMI needs a callback URL "
                "(or a notify_url on each payment)"
            )
        assert request.return_url is not None  # checked by Provider.create_payment
        fields = {
            "clientid": self._client_id,
            "storetype": "3D_PAY_HOSTING",
            "TranType": "PreAuth" if request.capture is CaptureMode.MANUAL else "Auth",
            "amount": request.amount.to_str(),
            "currency": f"{numeric_code(request.amount.currency):03d}",
            "oid": request.reference,
            "okUrl": request.return_url,
            "failUrl": request.cancel_url or request.return_url,
            "shopurl": request.cancel_url or request.return_url,
            "callbackUrl": callback_url,
            "CallbackResponse": "true",
            "AutoRedirect": "true",
            "lang": _LANGUAGES.get(request.locale[:2], "fr"),
            "rnd": self._rnd(idempotency_key),
            "hashAlgorithm": "ver3",
            "encoding": "UTF-8",
        }
        fields["HASH"] = compute_hash(fields, self.context.secrets.one("store_keys"))
        return ProviderResult(
            outcome=Outcome.succeeded(),
            state=PaymentState.PENDING,
            amount=request.amount,
            next_action=AutoPostForm(url=self._gateway_url, fields=tuple(sorted(fields.items()))),
        )

    def _rnd(self, idempotency_key: str) -> str:
        # The nonce is derived from the key, so one key always yields the same form, and cannot be guessed.
        secret = self.context.secrets.one("store_keys").encode()
        return hmac.new(secret, idempotency_key.encode(), hashlib.sha256).hexdigest()[:20]

    # -- callbacks -------------------------------------------------------------------------------------

    def verify_webhook(
        self,
        headers: Mapping[str, str],
        raw_body: bytes,
        now: datetime,  # noqa: ARG002 - CMI signs no timestamp; the event id catches replays
    ) -> VerifiedWebhook:
        """Check a callback (or the browser's return post): the ver3 hash under any configured store key."""
        fields = _form_fields(raw_body, WebhookRejectedError)
        received = fields.get("HASH")
        if not received:
            raise WebhookRejectedError("CMI callback has no HASH field")
        if fields.get("hashAlgorithm") != "ver3":
            raise WebhookRejectedError(
                f"CMI callback uses hashAlgorithm {fields.get('hashAlgorithm')!r}, not ver3"
            )
        if not hash_matches(fields, received, self.context.secrets.all("store_keys")):
            raise WebhookRejectedError("CMI callback HASH does not match under any configured store key")
        if fields.get("clientid") != self._client_id:
            raise WebhookRejectedError(f"CMI callback is for clientid {fields.get('clientid')!r}, not ours")
        return VerifiedWebhook(
            headers={k.lower(): v for k, v in headers.items()}, body=raw_body, signed_at=None
        )

    def parse_webhook(self, webhook: VerifiedWebhook) -> tuple[ProviderEvent, ...]:
        fields = _form_fields(webhook.body, WebhookPayloadError)
        try:
            amount = Money.parse(fields["amount"], currency_from_numeric(int(fields["currency"])))
            reference = fields["oid"]
        except (KeyError, ValueError, MoneyError) as exc:
            raise WebhookPayloadError(
                f"CMI callback lacks a readable oid, amount or currency: {exc}"
            ) from exc
        trans_id = fields.get("TransId", "")
        code = fields.get("ProcReturnCode", "")
        approved = fields.get("Response") == "Approved" and code == "00"
        if approved:
            kind = EventKind.AUTHORIZED if fields.get("TranType") == "PreAuth" else EventKind.CAPTURED
        else:
            kind = EventKind.DECLINED  # the cardholder may try again on the same order
        # One transaction gives one event: the server callback and the browser's return share this id.
        event_id = (
            f"{reference}:{trans_id}:{code or '-'}"
            if trans_id
            else (f"{reference}:h:{hashlib.sha256(fields['HASH'].encode()).hexdigest()[:24]}")
        )
        return (
            ProviderEvent(
                provider=self.name,
                event_id=event_id,
                kind=kind,
                our_reference=reference,
                provider_reference=trans_id or None,
                amount=amount,
                occurred_at=self._gateway_time(fields.get("EXTRA.TRXDATE")),
                reason="" if approved else f"{code} {fields.get('ErrMsg', '')}".strip(),
            ),
        )

    def webhook_ack(self, decision: WebhookDecision) -> WebhookAck:
        """CMI reads the reply body: ACTION=POSTAUTH captures, APPROVED acknowledges, FAILURE refuses."""
        return WebhookAck(status_code=200, media_type="text/plain", body=_ACK_BODIES[decision])

    def _gateway_time(self, text: str | None) -> datetime:
        if text:
            try:
                return datetime.strptime(text, "%Y%m%d %H:%M:%S").replace(tzinfo=self._zone).astimezone(UTC)
            except ValueError:
                pass
        return self.context.clock()

    # -- CC5 API -----------------------------------------------------------------------------------------

    async def _call(
        self,
        *,
        order_id: str,
        type: str | None = None,
        total: str | None = None,
        currency: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> Cc5Response:
        request = Cc5Request(
            name=self._api_user,
            password=self.context.secrets.one("api_password"),
            client_id=self._client_id,
            order_id=order_id,
            type=type,
            total=total,
            currency=currency,
            extra=extra or {},
        )
        response = await self.context.http.post(
            self._api_path, content=request.to_xml(), headers={"Content-Type": "application/xml"}
        )
        if not response.is_success:
            raise _GatewayError(response.status_code)
        return Cc5Response.from_xml(response.content)

    async def _order(self, reference: str) -> Cc5Response:
        return await self._call(order_id=reference, extra={"ORDERSTATUS": "QUERY"})

    async def _fetch_status(
        self,
        reference: str,
        provider_reference: str | None,  # noqa: ARG002 - CMI finds orders by our reference (oid)
    ) -> StatusReport:
        try:
            answer = await self._order(reference)
        except _GatewayError as exc:
            raise ProviderUnavailableError(
                f"CMI answered HTTP {exc.status} to the order-status query"
            ) from exc
        return self._status(reference, answer)

    def _status(self, reference: str, answer: Cc5Response) -> StatusReport:
        now = self.context.clock()
        if answer.response == "Error" and "no record" in answer.err_msg.lower():
            return StatusReport(
                state=PaymentState.NOT_FOUND,
                reference=reference,
                provider_reference=None,
                amount=None,
                captured=None,
                refunded=None,
                checked_at=now,
            )
        extra = answer.extra
        try:
            currency = currency_from_numeric(int(extra["CURRENCY"]))
            amount = Money.parse(extra["ORIG_TRANS_AMT"], currency)
            captured = Money.parse(extra.get("CAPTURE_AMT") or "0", currency)
            refunded = Money.parse(extra.get("REFUND_AMT") or "0", currency)
        except (KeyError, ValueError, MoneyError) as exc:
            raise ProviderUnavailableError(
                f"CMI order status for {reference} is not readable: {exc}"
            ) from exc
        state = _TRANS_STATES.get(extra.get("TRANS_STAT", ""), PaymentState.PENDING)
        if state is PaymentState.CAPTURED and refunded.minor:
            state = PaymentState.REFUNDED if refunded == captured else PaymentState.PARTIALLY_REFUNDED
        return StatusReport(
            state=state,
            reference=reference,
            provider_reference=extra.get("TRANS_ID") or None,
            amount=amount,
            captured=captured,
            refunded=refunded,
            checked_at=now,
            detail=answer.err_msg,
        )

    # CMI has no idempotency key; the order-state check stands in for it.
    async def _capture(self, request: CaptureRequest, idempotency_key: str) -> ProviderResult:  # noqa: ARG002
        return await self._after_check(request.reference, lambda status: self._do_capture(request, status))

    async def _do_capture(self, request: CaptureRequest, status: StatusReport) -> ProviderResult:
        if status.state is PaymentState.CAPTURED and status.captured == request.amount:
            return self._done(status, request.amount)  # a retry: the gateway already captured
        if status.state is not PaymentState.AUTHORIZED:
            return ProviderResult(
                outcome=Outcome.declined("payment_unexpected_state", f"the order is {status.state}"),
                state=status.state,
                provider_reference=status.provider_reference,
            )
        answer = await self._call(
            order_id=request.reference,
            type="PostAuth",
            total=request.amount.to_str(),
            currency=f"{numeric_code(request.amount.currency):03d}",
        )
        return self._answered(answer, PaymentState.CAPTURED, request.amount)

    # CMI has no idempotency key; the order-state check stands in for it.
    async def _void(self, request: VoidRequest, idempotency_key: str) -> ProviderResult:  # noqa: ARG002
        async def act(status: StatusReport) -> ProviderResult:
            if status.state is PaymentState.CANCELED:
                return self._done(status, request.amount)
            if status.state is not PaymentState.AUTHORIZED:
                return ProviderResult(
                    outcome=Outcome.declined("payment_unexpected_state", f"the order is {status.state}"),
                    state=status.state,
                    provider_reference=status.provider_reference,
                )
            answer = await self._call(order_id=request.reference, type="Void")
            return self._answered(answer, PaymentState.CANCELED, request.amount)

        return await self._after_check(request.reference, act)

    # CMI has no idempotency key; the order-state check stands in for it.
    async def _refund(self, request: RefundRequest, idempotency_key: str) -> ProviderResult:  # noqa: ARG002
        async def act(status: StatusReport) -> ProviderResult:
            assert status.refunded is not None
            if status.refunded == request.previously_refunded + request.amount:
                return self._done(status, request.amount)  # a retry: this refund is already at the gateway
            if status.refunded != request.previously_refunded:
                return ProviderResult.unknown(
                    UnknownCause.UNRESOLVED,
                    f"CMI shows {status.refunded} refunded; the service expected "
                    f"{request.previously_refunded}",
                )
            answer = await self._call(
                order_id=request.reference,
                type="Credit",
                total=request.amount.to_str(),
                currency=f"{numeric_code(request.amount.currency):03d}",
            )
            result = self._answered(answer, PaymentState.PARTIALLY_REFUNDED, request.amount)
            return ProviderResult(
                outcome=result.outcome,
                state=None,
                provider_reference=status.provider_reference,
                operation_reference=answer.trans_id or None,
                amount=result.amount,
            )

        return await self._after_check(request.reference, act)

    async def _after_check(self, reference: str, act: _Act) -> ProviderResult:
        try:
            status = self._status(reference, await self._order(reference))
        except _GatewayError as exc:
            # The state read failed: nothing was sent that could move money.
            return ProviderResult.unknown(
                UnknownCause.NOT_SENT, f"CMI answered HTTP {exc.status} to the status query"
            )
        except ProviderUnavailableError as exc:
            return ProviderResult.unknown(UnknownCause.NOT_SENT, str(exc))
        if status.state is PaymentState.NOT_FOUND:
            return ProviderResult(
                outcome=Outcome.declined("order_not_found", f"CMI has no order {reference}")
            )
        try:
            return await act(status)
        except _GatewayError as exc:
            return ProviderResult.unknown(UnknownCause.PROVIDER_ERROR, f"CMI answered HTTP {exc.status}")

    @staticmethod
    def _done(status: StatusReport, amount: Money) -> ProviderResult:
        return ProviderResult(
            outcome=Outcome.succeeded(),
            state=status.state,
            provider_reference=status.provider_reference,
            amount=amount,
        )

    @staticmethod
    def _answered(answer: Cc5Response, state: PaymentState, amount: Money) -> ProviderResult:
        if answer.approved:
            return ProviderResult(
                outcome=Outcome.succeeded(),
                state=state,
                provider_reference=answer.trans_id or None,
                amount=amount,
            )
        return ProviderResult(
            outcome=Outcome.declined(answer.proc_return_code or answer.response, answer.err_msg)
        )


class _GatewayError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def _form_fields(body: bytes, error: type[Exception]) -> dict[str, str]:
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=True, max_num_fields=_MAX_FIELDS
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise error(f"CMI callback body is not a UTF-8 form: {exc}") from exc
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise error(f"CMI callback repeats the field {name!r}")
        fields[name] = value
    return fields
