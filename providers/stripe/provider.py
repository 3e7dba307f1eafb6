"""The Stripe adapter: Checkout for the card page, PaymentIntents for capture, cancel, refunds and status."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import httpx
import msgspec

from ledger.money import MoneyError
from providers.base import Provider, ProviderContext
from providers.errors import IdempotencyConflictError, ProviderUnavailableError, WebhookPayloadError
from providers.model import (
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
from providers.signing import verify_timestamped
from providers.stripe import forms
from providers.stripe.amounts import from_stripe, to_stripe
from providers.stripe.objects import (
    BalanceTransaction,
    BalanceTransactionList,
    Charge,
    CheckoutSession,
    Dispute,
    ErrorEnvelope,
    Event,
    PaymentIntent,
    PayoutList,
    Refund,
    SearchResult,
)
from providers.transport import decode_json

SIGNATURE_HEADER = "Stripe-Signature"
REFERENCE_KEY = "etimbre_reference"  # metadata key carrying our payment reference
REFUND_KEY = "etimbre_refund_reference"
_LOCALES = {"fr": "fr", "en": "en"}  # Checkout has no Arabic: it falls back to the browser's language
_PENDING = {"requires_payment_method", "requires_confirmation", "requires_action", "processing"}
_RANK = {
    PaymentState.DISPUTED: 6, PaymentState.REFUNDED: 5, PaymentState.PARTIALLY_REFUNDED: 5,
    PaymentState.CAPTURED: 4, PaymentState.AUTHORIZED: 3, PaymentState.PENDING: 2,
    PaymentState.CANCELED: 1, PaymentState.EXPIRED: 1,
}  # fmt: skip
_ACK = {
    WebhookDecision.ACCEPTED: (200, b'{"received":true}'),
    WebhookDecision.CAPTURE: (200, b'{"received":true}'),
    WebhookDecision.REJECTED: (400, b'{"received":false}'),
    WebhookDecision.RETRY_LATER: (503, b'{"received":false}'),
}
_PAGE = 100


class StripeProvider(Provider):
    """Online payments with Stripe: hosted Checkout, PaymentIntents, `Stripe-Signature` webhooks.

    Options: `api_version` (sent as Stripe-Version), `webhook_tolerance_seconds` (300),
    `checkout_minutes` (how long the Checkout page stays open, 30 to 1440; Stripe's default when unset).
    Secrets: `api_key`, `webhook_secrets` (several endpoint secrets during a rotation).
    """

    name: ClassVar[str] = "stripe"
    modes: ClassVar[frozenset[Mode]] = frozenset({Mode.ONLINE})
    required_secrets: ClassVar[Mapping[str, str]] = {
        "api_key": "Stripe secret API key",
        "webhook_secrets": "Stripe webhook endpoint signing secret",
    }

    def __init__(self, context: ProviderContext) -> None:
        super().__init__(context)
        variant = context.variant
        self._api_version = variant.option_str("api_version", "2024-06-20")
        self._tolerance = timedelta(seconds=variant.option_int("webhook_tolerance_seconds", 300, minimum=1))
        minutes = variant.options.get("checkout_minutes")
        self._checkout_ttl = (
            timedelta(minutes=variant.option_int("checkout_minutes", 60, minimum=30)) if minutes else None
        )

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
            disputes=True,
            native_idempotency=True,
            signed_timestamps=True,
            capture_by_webhook_reply=False,
            settlement_lines=True,
        )

    # -- HTTP --------------------------------------------------------------------------------------------

    def _headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.context.secrets.one('api_key')}",
            "Stripe-Version": self._api_version,
        }
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    async def _post(self, path: str, params: forms.Params, idempotency_key: str) -> httpx.Response:
        return await self.context.http.post(
            path, data=dict(forms.encode(params)), headers=self._headers(idempotency_key)
        )

    async def _get(self, path: str, params: forms.Params) -> httpx.Response:
        query: list[tuple[str, str | int | float | bool | None]] = list(forms.encode(params))
        response = await self.context.http.get(path, params=query, headers=self._headers())
        if response.status_code != 404 and not response.is_success:
            raise ProviderUnavailableError(f"Stripe answered HTTP {response.status_code} to GET {path}")
        return response

    @staticmethod
    def _refusal(response: httpx.Response) -> ProviderResult | None:
        """None for a 2xx; otherwise what Stripe's error answer means for the call's outcome."""
        if response.is_success:
            return None
        if response.status_code >= 500:
            # Stripe: the result of a 500 is indeterminate; a retry with the same key tells.
            return ProviderResult.unknown(
                UnknownCause.PROVIDER_ERROR, f"Stripe answered HTTP {response.status_code}"
            )
        if response.status_code in {409, 429}:
            # A concurrent request with this key, or rate limiting: nothing was executed; retry with the key.
            return ProviderResult.unknown(
                UnknownCause.NOT_SENT, f"Stripe answered HTTP {response.status_code}"
            )
        error = decode_json(response, ErrorEnvelope).error
        if error.type == "idempotency_error":
            raise IdempotencyConflictError(f"Stripe: {error.message}")
        code = error.decline_code or error.code or error.type
        return ProviderResult(outcome=Outcome.declined(code, error.message))

    # -- calls -------------------------------------------------------------------------------------------

    async def _create_payment(self, request: PaymentRequest, idempotency_key: str) -> ProviderResult:
        currency = request.amount.currency.lower()
        expires = request.expires_at or (
            self.context.clock() + self._checkout_ttl if self._checkout_ttl else None
        )
        metadata = {REFERENCE_KEY: request.reference, "etimbre_consulate": request.consulate}
        params: dict[str, forms.ParamValue] = {
            "mode": "payment",
            "success_url": request.return_url,
            "cancel_url": request.cancel_url or request.return_url,
            "client_reference_id": request.reference,
            "metadata": metadata,
            "payment_method_types": ["card"],
            "line_items": [
                {
                    "price_data": {
                        "currency": currency,
                        "unit_amount": to_stripe(request.amount),
                        "product_data": {"name": request.description},
                    },
                    "quantity": 1,
                }
            ],
            "payment_intent_data": {
                "capture_method": "manual" if request.capture is CaptureMode.MANUAL else "automatic",
                "description": request.description,
                "metadata": metadata,
            },
            "locale": _LOCALES.get(request.locale[:2], "auto"),
            "expires_at": int(expires.timestamp()) if expires else None,
        }
        response = await self._post("/v1/checkout/sessions", params, idempotency_key)
        refused = self._refusal(response)
        if refused is not None:
            return refused
        session = decode_json(response, CheckoutSession)
        if not session.url:
            return ProviderResult.unknown(
                UnknownCause.BAD_RESPONSE, f"Checkout session {session.id} has no url"
            )
        return ProviderResult(
            outcome=Outcome.succeeded(),
            state=PaymentState.PENDING,
            provider_reference=session.payment_intent,
            amount=request.amount,
            next_action=Redirect(url=session.url),
        )

    async def _intent_id(self, reference: str, provider_reference: str | None) -> str:
        if provider_reference:
            return provider_reference
        intents = await self._search(reference)
        if not intents:
            raise ProviderUnavailableError(f"Stripe has no PaymentIntent for {reference} (yet)")
        return _furthest(intents)[1].id

    async def _capture(self, request: CaptureRequest, idempotency_key: str) -> ProviderResult:
        intent_id = await self._intent_id(request.reference, request.provider_reference)
        response = await self._post(
            f"/v1/payment_intents/{intent_id}/capture",
            {"amount_to_capture": to_stripe(request.amount)},
            idempotency_key,
        )
        refused = self._refusal(response)
        if refused is not None:
            return refused
        intent = decode_json(response, PaymentIntent)
        return ProviderResult(
            outcome=Outcome.succeeded(),
            state=_intent_state(intent),
            provider_reference=intent.id,
            amount=from_stripe(intent.amount_received, intent.currency),
        )

    async def _void(self, request: VoidRequest, idempotency_key: str) -> ProviderResult:
        intent_id = await self._intent_id(request.reference, request.provider_reference)
        response = await self._post(
            f"/v1/payment_intents/{intent_id}/cancel",
            {"cancellation_reason": "requested_by_customer"},
            idempotency_key,
        )
        refused = self._refusal(response)
        if refused is not None:
            return refused
        intent = decode_json(response, PaymentIntent)
        return ProviderResult(
            outcome=Outcome.succeeded(),
            state=_intent_state(intent),
            provider_reference=intent.id,
            amount=from_stripe(intent.amount, intent.currency),
        )

    async def _refund(self, request: RefundRequest, idempotency_key: str) -> ProviderResult:
        intent_id = await self._intent_id(request.reference, request.provider_reference)
        params: dict[str, forms.ParamValue] = {
            "payment_intent": intent_id,
            "amount": to_stripe(request.amount),
            "reason": "requested_by_customer",
            "metadata": {REFERENCE_KEY: request.reference, REFUND_KEY: request.refund_reference},
        }
        response = await self._post("/v1/refunds", params, idempotency_key)
        refused = self._refusal(response)
        if refused is not None:
            return refused
        refund = decode_json(response, Refund)
        if refund.status in {"failed", "canceled"}:
            return ProviderResult(
                outcome=Outcome.declined(f"refund_{refund.status}"),
                provider_reference=intent_id,
                operation_reference=refund.id,
            )
        # "pending" refunds are accepted; a later refund.failed event would report otherwise.
        return ProviderResult(
            outcome=Outcome.succeeded(),
            provider_reference=intent_id,
            operation_reference=refund.id,
            amount=from_stripe(refund.amount, refund.currency),
        )

    async def _search(self, reference: str) -> list[PaymentIntent]:
        # Our references are letters, digits, '-' and '_': nothing to escape in the query.
        response = await self._get(
            "/v1/payment_intents/search",
            {"query": f"metadata['{REFERENCE_KEY}']:'{reference}'", "expand": ["data.latest_charge"]},
        )
        return decode_json(response, SearchResult).data

    async def _fetch_status(self, reference: str, provider_reference: str | None) -> StatusReport:
        intents: list[PaymentIntent] = []
        if provider_reference:
            response = await self._get(
                f"/v1/payment_intents/{provider_reference}", {"expand": ["latest_charge"]}
            )
            if response.status_code != 404:
                intents = [decode_json(response, PaymentIntent)]
        if not intents:
            intents = await self._search(reference)
        now = self.context.clock()
        if not intents:
            return StatusReport(
                state=PaymentState.NOT_FOUND,
                reference=reference,
                provider_reference=None,
                amount=None,
                captured=None,
                refunded=None,
                checked_at=now,
            )
        state, intent = _furthest(intents)
        charge = intent.latest_charge if isinstance(intent.latest_charge, Charge) else None
        error = intent.last_payment_error
        return StatusReport(
            state=state,
            reference=reference,
            provider_reference=intent.id,
            amount=from_stripe(intent.amount, intent.currency),
            captured=from_stripe(intent.amount_received, intent.currency),
            refunded=from_stripe(charge.amount_refunded if charge else 0, intent.currency),
            checked_at=now,
            detail=(error.decline_code or error.code or "") if error else "",
        )

    async def _settlement_lines(self, day: date) -> list[SettlementLine]:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        payouts = await self._list(
            "/v1/payouts",
            {
                "arrival_date": {
                    "gte": int(start.timestamp()),
                    "lt": int((start + timedelta(days=1)).timestamp()),
                }
            },
            PayoutList,
        )
        lines: list[SettlementLine] = []
        for payout in payouts:
            if payout.status in {"failed", "canceled"}:
                continue
            transactions = await self._list(
                "/v1/balance_transactions",
                {"payout": payout.id, "expand": ["data.source"]},
                BalanceTransactionList,
            )
            lines.extend(_line(t, payout.id, day) for t in transactions if t.type != "payout")
        return lines

    async def _list(self, path: str, params: dict[str, Any], type_: Any) -> list[Any]:
        items: list[Any] = []
        after: str | None = None
        while True:
            response = await self._get(path, {**params, "limit": _PAGE, "starting_after": after})
            page = decode_json(response, type_)
            items.extend(page.data)
            if not page.has_more or not page.data:
                return items
            after = page.data[-1].id

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
            event = msgspec.json.decode(webhook.body, type=Event)
            return _events(event)
        except (msgspec.ValidationError, msgspec.DecodeError, MoneyError, ValueError) as exc:
            raise WebhookPayloadError(f"Stripe event is not readable: {exc}") from exc

    def webhook_ack(self, decision: WebhookDecision) -> WebhookAck:
        status, body = _ACK[decision]
        return WebhookAck(status_code=status, media_type="application/json", body=body)


def _intent_state(intent: PaymentIntent) -> PaymentState:
    if intent.status in _PENDING:
        return PaymentState.PENDING
    if intent.status == "requires_capture":
        return PaymentState.AUTHORIZED
    if intent.status == "canceled":
        return PaymentState.EXPIRED if intent.cancellation_reason == "abandoned" else PaymentState.CANCELED
    charge = intent.latest_charge if isinstance(intent.latest_charge, Charge) else None
    if charge is not None and charge.disputed:
        return PaymentState.DISPUTED
    if charge is not None and charge.amount_refunded:
        return (
            PaymentState.REFUNDED
            if charge.amount_refunded >= intent.amount_received
            else PaymentState.PARTIALLY_REFUNDED
        )
    return PaymentState.CAPTURED


def _furthest(intents: list[PaymentIntent]) -> tuple[PaymentState, PaymentIntent]:
    ranked = [(_intent_state(i), i) for i in intents]
    return max(ranked, key=lambda pair: (_RANK[pair[0]], pair[1].created))


def _event(event: Event, kind: EventKind, **fields: Any) -> tuple[ProviderEvent, ...]:
    return (
        ProviderEvent(
            provider=StripeProvider.name,
            event_id=event.id,
            kind=kind,
            occurred_at=datetime.fromtimestamp(event.created, UTC),
            **fields,
        ),
    )


def _events(event: Event) -> tuple[ProviderEvent, ...]:  # noqa: PLR0911 - one branch per event type
    raw = event.data.object
    if event.type.startswith("payment_intent."):
        intent = msgspec.json.decode(raw, type=PaymentIntent)
        common = {"our_reference": intent.metadata.get(REFERENCE_KEY), "provider_reference": intent.id}
        if event.type == "payment_intent.amount_capturable_updated" and intent.status == "requires_capture":
            return _event(
                event,
                EventKind.AUTHORIZED,
                amount=from_stripe(intent.amount_capturable, intent.currency),
                **common,
            )
        if event.type == "payment_intent.succeeded":
            return _event(
                event,
                EventKind.CAPTURED,
                amount=from_stripe(intent.amount_received, intent.currency),
                **common,
            )
        if event.type == "payment_intent.payment_failed":
            error = intent.last_payment_error
            reason = (error.decline_code or error.code or "") if error else ""
            return _event(
                event,
                EventKind.DECLINED,
                amount=from_stripe(intent.amount, intent.currency),
                reason=reason,
                **common,
            )
        if event.type == "payment_intent.canceled":
            kind = EventKind.EXPIRED if intent.cancellation_reason == "abandoned" else EventKind.CANCELED
            return _event(event, kind, amount=from_stripe(intent.amount, intent.currency), **common)
        return ()
    if event.type == "checkout.session.expired":
        session = msgspec.json.decode(raw, type=CheckoutSession)
        if session.amount_total is None or session.currency is None:
            return ()
        return _event(
            event,
            EventKind.EXPIRED,
            our_reference=session.client_reference_id,
            provider_reference=session.payment_intent,
            amount=from_stripe(session.amount_total, session.currency),
        )
    if event.type in {"refund.created", "refund.updated", "refund.failed"}:
        refund = msgspec.json.decode(raw, type=Refund)
        refund_kind = {"succeeded": EventKind.REFUNDED, "failed": EventKind.REFUND_FAILED}.get(refund.status)
        if refund_kind is None:  # pending: wait for the update that settles it
            return ()
        return _event(
            event,
            refund_kind,
            our_reference=refund.metadata.get(REFERENCE_KEY),
            provider_reference=refund.payment_intent,
            amount=from_stripe(refund.amount, refund.currency),
            operation_reference=refund.id,
            our_operation_reference=refund.metadata.get(REFUND_KEY),
        )
    if event.type in {"charge.dispute.created", "charge.dispute.closed"}:
        dispute = msgspec.json.decode(raw, type=Dispute)
        dispute_kind = (
            EventKind.DISPUTED if event.type == "charge.dispute.created"
            else {"won": EventKind.DISPUTE_WON, "lost": EventKind.DISPUTE_LOST}.get(dispute.status)
        )  # fmt: skip
        if dispute_kind is None:
            return ()
        return _event(
            event,
            dispute_kind,
            our_reference=None,
            provider_reference=dispute.payment_intent or dispute.charge,
            amount=from_stripe(dispute.amount, dispute.currency),
            operation_reference=dispute.id,
            reason=dispute.reason,
        )
    return ()


def _line(transaction: BalanceTransaction, payout_id: str, day: date) -> SettlementLine:
    source = transaction.source if isinstance(transaction.source, dict) else {}
    source_id = transaction.source if isinstance(transaction.source, str) else str(source.get("id", ""))
    metadata = source.get("metadata") or {}
    if transaction.type in {"charge", "payment"}:
        kind = SettlementKind.CAPTURE
    elif transaction.type in {"refund", "payment_refund"}:
        kind = SettlementKind.REFUND
    elif transaction.reporting_category == "dispute" or source.get("object") == "dispute":
        kind = SettlementKind.CHARGEBACK
    else:
        kind = SettlementKind.ADJUSTMENT
    return SettlementLine(
        kind=kind,
        our_reference=metadata.get(REFERENCE_KEY),
        provider_reference=source.get("payment_intent"),
        operation_reference=source_id or transaction.id,
        payout_reference=payout_id,
        gross=from_stripe(transaction.amount, transaction.currency),
        fee=from_stripe(transaction.fee, transaction.currency),
        net=from_stripe(transaction.net, transaction.currency),
        value_date=day,
        metadata={"balance_transaction": transaction.id},
    )
