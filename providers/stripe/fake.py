"""A local fake of Stripe's API: Checkout, PaymentIntents, refunds, disputes, payouts, signed webhooks.

It speaks Stripe's HTTP shape (form-encoded bodies, `Idempotency-Key`, JSON objects and error objects,
`Stripe-Signature`) for what `providers.stripe.provider` uses, and keeps everything in memory.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jinja2
import msgspec
from litestar import Litestar, Request, Response, get, post, put
from litestar.params import FromPath
from litestar.response import Redirect

from providers.faults import Fault, parse_faults
from providers.signing import signature_header
from providers.stripe import forms
from providers.stripe.provider import REFERENCE_KEY

AnyRequest = Request[Any, Any, Any]
Obj = dict[str, Any]
_pages = jinja2.Environment(
    loader=jinja2.PackageLoader("providers.sandbox", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_SEARCH = re.compile(r"metadata\['([A-Za-z0-9_]+)'\]:'([^']*)'")
_IDEMPOTENCY_MESSAGE = (
    "Keys for idempotent requests can only be used with the same parameters they were first used with. "
    "Try using a key other than '{key}' if you meant to execute a different request."
)


class StripeFakeError(Exception):
    def __init__(
        self, status: int, type_: str, message: str, code: str | None = None, param: str | None = None
    ):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type_, "message": message, "code": code, "param": param}}


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeStripeSettings:
    api_keys: tuple[str, ...] = ("sk_test_fake",)
    webhook_secrets: tuple[str, ...] = ("whsec_fake",)  # each event is signed with all of them
    webhook_url: str | None = None  # where POST /_fake/webhooks/flush delivers
    hang_seconds: float = 30.0
    fee_bp: int = 150
    fee_fixed: int = 25


@dataclass(slots=True)
class _Stored:
    fingerprint: tuple[str, tuple[tuple[str, str], ...]]
    status: int
    content: bytes


@dataclass(slots=True)
class FakeStripe:
    settings: FakeStripeSettings
    intents: dict[str, Obj] = field(default_factory=dict)
    charges: dict[str, Obj] = field(default_factory=dict)
    sessions: dict[str, Obj] = field(default_factory=dict)
    refunds: dict[str, Obj] = field(default_factory=dict)
    disputes: dict[str, Obj] = field(default_factory=dict)
    balance: dict[str, Obj] = field(default_factory=dict)
    payouts: dict[str, Obj] = field(default_factory=dict)
    events: list[Obj] = field(default_factory=list)
    delivered: set[str] = field(default_factory=set)
    idempotency: dict[str, _Stored] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    faults: dict[str, frozenset[Fault]] = field(default_factory=dict)  # by our reference

    # -- objects -----------------------------------------------------------------------------------------

    def emit(self, type_: str, obj: Obj) -> None:
        self.events.append({
            "id": _id("evt"), "object": "event", "api_version": "2024-06-20", "created": int(time.time()),
            "livemode": False, "pending_webhooks": 1, "type": type_, "data": {"object": dict(obj)},
        })  # fmt: skip

    def reference_of(self, intent: Obj) -> str:
        return str(intent["metadata"].get(REFERENCE_KEY, ""))

    def faults_of(self, intent: Obj) -> frozenset[Fault]:
        return self.faults.get(self.reference_of(intent), frozenset())

    def intent(self, intent_id: str) -> Obj:
        if intent_id not in self.intents:
            raise StripeFakeError(
                404,
                "invalid_request_error",
                f"No such payment_intent: '{intent_id}'",
                "resource_missing",
                "intent",
            )
        return self.intents[intent_id]

    def expanded(self, intent: Obj, expand: list[str], prefix: str = "") -> Obj:
        if f"{prefix}latest_charge" in expand and intent.get("latest_charge"):
            return {**intent, "latest_charge": self.charges[intent["latest_charge"]]}
        return intent

    def fee(self, amount: int) -> int:
        return (amount * self.settings.fee_bp + 5_000) // 10_000 + self.settings.fee_fixed

    def book(self, type_: str, amount: int, fee: int, currency: str, *, source: str, category: str) -> str:
        txn = _id("txn")
        self.balance[txn] = {
            "id": txn, "object": "balance_transaction", "amount": amount, "fee": fee, "net": amount - fee,
            "currency": currency, "type": type_, "source": source, "reporting_category": category,
            "available_on": int(time.time()), "created": int(time.time()), "payout": None,
        }  # fmt: skip
        return txn

    def pay(self, intent: Obj) -> None:
        """The cardholder's card is accepted on the Checkout page."""
        charge_id = _id("ch")
        captured = intent["capture_method"] != "manual"
        self.charges[charge_id] = {
            "id": charge_id, "object": "charge", "amount": intent["amount"],
            "amount_captured": intent["amount"] if captured else 0, "amount_refunded": 0,
            "currency": intent["currency"], "payment_intent": intent["id"], "captured": captured,
            "refunded": False, "disputed": False, "metadata": dict(intent["metadata"]),
        }  # fmt: skip
        intent.update(latest_charge=charge_id, last_payment_error=None)
        if captured:
            self.capture(intent, intent["amount"])
        else:
            intent.update(status="requires_capture", amount_capturable=intent["amount"])
            self.emit("payment_intent.amount_capturable_updated", intent)

    def capture(self, intent: Obj, amount: int) -> None:
        charge = self.charges[intent["latest_charge"]]
        intent.update(status="succeeded", amount_capturable=0, amount_received=amount)
        charge.update(captured=True, amount_captured=amount)
        self.book(
            "charge", amount, self.fee(amount), intent["currency"], source=charge["id"], category="charge"
        )
        self.emit("charge.succeeded", charge)
        self.emit("payment_intent.succeeded", intent)

    def decline(self, intent: Obj) -> None:
        intent["last_payment_error"] = {
            "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
            "message": "Your card was declined.",
        }  # fmt: skip
        self.emit("payment_intent.payment_failed", intent)

    def cancel(self, intent: Obj, reason: str) -> None:
        intent.update(
            status="canceled", cancellation_reason=reason, amount_capturable=0, canceled_at=int(time.time())
        )
        self.emit("payment_intent.canceled", intent)


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _fake(request: AnyRequest) -> FakeStripe:
    found: FakeStripe = request.app.state.stripe
    return found


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        msgspec.json.encode(body), status_code=status, media_type="application/json", headers=headers
    )


def _authenticate(request: AnyRequest) -> None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or key not in _fake(request).settings.api_keys:
        raise StripeFakeError(401, "invalid_request_error", "Invalid API Key provided.")


def _as_list(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [value[k] for k in sorted(value, key=int)]
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


def _int(params: Obj, name: str) -> int:
    try:
        return int(params[name])
    except (KeyError, ValueError):
        raise StripeFakeError(
            400, "invalid_request_error", f"Missing or invalid {name}", "parameter_invalid_integer", name
        ) from None


async def _params(request: AnyRequest) -> tuple[Obj, tuple[tuple[str, str], ...]]:
    pairs = tuple(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
    try:
        return forms.decode(pairs), pairs
    except ValueError as exc:
        raise StripeFakeError(400, "invalid_request_error", str(exc)) from exc


async def _mutating(request: AnyRequest, execute: Any) -> Response[bytes]:
    """Authenticate, replay the first answer for a reused Idempotency-Key, refuse it with other parameters."""
    _authenticate(request)
    fake = _fake(request)
    params, pairs = await _params(request)
    key = request.headers.get("idempotency-key")
    fingerprint = (request.url.path, tuple(sorted(pairs)))
    lock = fake.locks.setdefault(key, asyncio.Lock()) if key else asyncio.Lock()
    async with lock:
        stored = fake.idempotency.get(key) if key else None
        if stored is not None:
            if stored.fingerprint != fingerprint:
                raise StripeFakeError(400, "idempotency_error", _IDEMPOTENCY_MESSAGE.format(key=key))
            return Response(
                stored.content,
                status_code=stored.status,
                media_type="application/json",
                headers={"Idempotent-Replayed": "true", "Idempotency-Key": key or ""},
            )
        try:
            obj, reference = execute(fake, params)
            status, content = 200, msgspec.json.encode(obj)
        except StripeFakeError as exc:
            reference, status, content = "", exc.status, msgspec.json.encode(exc.body)
        if key:
            fake.idempotency[key] = _Stored(fingerprint, status, content)
    faults = fake.faults.get(reference, frozenset())
    if status == 200 and Fault.ERROR_AFTER_CHARGE in faults:
        return _json({"error": {"type": "api_error", "message": "simulated failure"}}, 500)
    if status == 200 and Fault.TIMEOUT_AFTER_CHARGE in faults:
        try:
            async with asyncio.timeout(fake.settings.hang_seconds):
                while (await request.receive())["type"] != "http.disconnect":
                    pass
        except TimeoutError:
            pass
    return Response(
        content, status_code=status, media_type="application/json", headers={"Request-Id": _id("req")}
    )


# -- API ----------------------------------------------------------------------------------------------------


@post("/v1/checkout/sessions", status_code=200)
async def create_session(request: AnyRequest) -> Response[bytes]:
    base = str(request.base_url).rstrip("/")

    def execute(fake: FakeStripe, params: Obj) -> tuple[Obj, str]:
        if params.get("mode") != "payment" or not params.get("success_url"):
            raise StripeFakeError(400, "invalid_request_error", "mode=payment and success_url are required")
        item = (params.get("line_items") or {}).get("0") or {}
        price = item.get("price_data") or {}
        amount, currency = _int(price, "unit_amount"), str(price.get("currency", ""))
        if amount <= 0 or not re.fullmatch(r"[a-z]{3}", currency):
            raise StripeFakeError(
                400, "invalid_request_error", "Invalid amount or currency", "amount_too_small"
            )
        intent_data = params.get("payment_intent_data") or {}
        intent_id, session_id = _id("pi"), _id("cs_test")
        fake.intents[intent_id] = {
            "id": intent_id, "object": "payment_intent", "amount": amount, "currency": currency,
            "status": "requires_payment_method",
            "capture_method": intent_data.get("capture_method", "automatic"),
            "amount_capturable": 0, "amount_received": 0, "metadata": dict(intent_data.get("metadata") or {}),
            "description": intent_data.get("description"), "latest_charge": None, "last_payment_error": None,
            "cancellation_reason": None, "created": int(time.time()),
        }  # fmt: skip
        fake.sessions[session_id] = {
            "id": session_id, "object": "checkout.session", "url": f"{base}/pay/{session_id}",
            "status": "open", "payment_status": "unpaid", "payment_intent": intent_id,
            "client_reference_id": params.get("client_reference_id"), "amount_total": amount,
            "currency": currency, "metadata": dict(params.get("metadata") or {}),
            "success_url": params["success_url"], "cancel_url": params.get("cancel_url"),
            "expires_at": int(params.get("expires_at") or time.time() + 86_400),
        }  # fmt: skip
        return fake.sessions[session_id], fake.reference_of(fake.intents[intent_id])

    return await _mutating(request, execute)


@post("/v1/payment_intents/{intent_id:str}/capture", status_code=200)
async def capture_intent(request: AnyRequest, intent_id: FromPath[str]) -> Response[bytes]:
    def execute(fake: FakeStripe, params: Obj) -> tuple[Obj, str]:
        intent = fake.intent(intent_id)
        if intent["status"] != "requires_capture":
            raise StripeFakeError(
                400, "invalid_request_error",
                f"This PaymentIntent could not be captured because it has a status of {intent['status']}.",
                "payment_intent_unexpected_state",
            )  # fmt: skip
        amount = (
            _int(params, "amount_to_capture")
            if "amount_to_capture" in params
            else intent["amount_capturable"]
        )
        if not 0 < amount <= intent["amount_capturable"]:
            raise StripeFakeError(
                400, "invalid_request_error", "amount_to_capture is too large", "amount_too_large"
            )
        fake.capture(intent, amount)
        return fake.expanded(intent, _as_list(params.get("expand"))), fake.reference_of(intent)

    return await _mutating(request, execute)


@post("/v1/payment_intents/{intent_id:str}/cancel", status_code=200)
async def cancel_intent(request: AnyRequest, intent_id: FromPath[str]) -> Response[bytes]:
    def execute(fake: FakeStripe, params: Obj) -> tuple[Obj, str]:
        intent = fake.intent(intent_id)
        if intent["status"] not in {"requires_payment_method", "requires_capture", "requires_confirmation"}:
            raise StripeFakeError(
                400, "invalid_request_error",
                f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}.",
                "payment_intent_unexpected_state",
            )  # fmt: skip
        fake.cancel(intent, str(params.get("cancellation_reason") or "requested_by_customer"))
        return intent, fake.reference_of(intent)

    return await _mutating(request, execute)


@post("/v1/refunds", status_code=200)
async def create_refund(request: AnyRequest) -> Response[bytes]:
    def execute(fake: FakeStripe, params: Obj) -> tuple[Obj, str]:
        intent = fake.intent(str(params.get("payment_intent", "")))
        if intent["status"] != "succeeded":
            raise StripeFakeError(
                400,
                "invalid_request_error",
                "This PaymentIntent has no successful charge to refund.",
                "charge_not_refundable",
            )
        charge = fake.charges[intent["latest_charge"]]
        amount = (
            _int(params, "amount")
            if "amount" in params
            else charge["amount_captured"] - charge["amount_refunded"]
        )
        if not 0 < amount <= charge["amount_captured"] - charge["amount_refunded"]:
            raise StripeFakeError(
                400, "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({charge['amount_captured'] - charge['amount_refunded']})",
                "amount_too_large", "amount",
            )  # fmt: skip
        refund_id = _id("re")
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
        refund = fake.refunds[refund_id] = {
            "id": refund_id, "object": "refund", "amount": amount, "currency": intent["currency"],
            "payment_intent": intent["id"], "charge": charge["id"], "status": "succeeded",
            "reason": params.get("reason"), "metadata": dict(params.get("metadata") or {}),
            "created": int(time.time()),
        }  # fmt: skip
        fake.book("refund", -amount, 0, intent["currency"], source=refund_id, category="refund")
        fake.emit("refund.created", refund)
        fake.emit("charge.refunded", charge)
        return refund, fake.reference_of(intent)

    return await _mutating(request, execute)


@get("/v1/payment_intents/search")
async def search_intents(request: AnyRequest) -> Response[bytes]:
    _authenticate(request)
    fake = _fake(request)
    query = request.query_params.get("query", "")
    match = _SEARCH.fullmatch(query.strip())
    if match is None:
        raise StripeFakeError(400, "invalid_request_error", f"Unsupported search query {query!r}")
    expand = _expand(request)
    found = [
        fake.expanded(i, expand, "data.")
        for i in fake.intents.values()
        if i["metadata"].get(match[1]) == match[2]
    ]
    return _json(
        {"object": "search_result", "data": found, "has_more": False, "url": "/v1/payment_intents/search"}
    )


@get("/v1/payment_intents/{intent_id:str}")
async def show_intent(request: AnyRequest, intent_id: FromPath[str]) -> Response[bytes]:
    _authenticate(request)
    fake = _fake(request)
    expand = _expand(request)
    return _json(fake.expanded(fake.intent(intent_id), expand))


def _expand(request: AnyRequest) -> list[str]:
    return [value for name, value in request.query_params.multi_items() if name.startswith("expand[")]


def _page_of(items: list[Obj], request: AnyRequest) -> Response[bytes]:
    limit = int(request.query_params.get("limit", "10"))
    after = request.query_params.get("starting_after")
    if after:
        ids = [i["id"] for i in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    return _json(
        {"object": "list", "data": items[:limit], "has_more": len(items) > limit, "url": request.url.path}
    )


@get("/v1/payouts")
async def list_payouts(request: AnyRequest) -> Response[bytes]:
    _authenticate(request)
    q = request.query_params
    low, high = int(q.get("arrival_date[gte]", "0")), int(q.get("arrival_date[lt]", str(2**40)))
    payouts = [p for p in _fake(request).payouts.values() if low <= p["arrival_date"] < high]
    return _page_of(payouts, request)


@get("/v1/balance_transactions")
async def list_balance(request: AnyRequest) -> Response[bytes]:
    _authenticate(request)
    fake = _fake(request)
    payout = request.query_params.get("payout")
    expand = _expand(request)
    items = []
    for txn in fake.balance.values():
        if payout and txn["payout"] != payout:
            continue
        source = txn["source"]
        tables = (fake.charges, fake.refunds, fake.disputes, fake.payouts) if "data.source" in expand else ()
        expanded = next((table[source] for table in tables if source in table), source)
        items.append({**txn, "source": expanded})
    return _page_of(items, request)


# -- Checkout page ----------------------------------------------------------------------------------------


@get("/pay/{session_id:str}")
async def checkout_page(request: AnyRequest, session_id: FromPath[str]) -> Response[bytes]:
    return _checkout(_fake(request), session_id)


def _checkout(fake: FakeStripe, session_id: str, error: str | None = None) -> Response[bytes]:
    session = fake.sessions.get(session_id)
    if session is None:
        return Response(b"unknown session", status_code=404, media_type="text/plain")
    intent = fake.intents[session["payment_intent"]]
    html = _pages.get_template("checkout.html").render(
        description=intent.get("description") or "Stripe Checkout (fake)",
        reference=session["client_reference_id"],
        amount=f"{session['amount_total']} {session['currency'].upper()} (minor units)",
        status="pending" if session["status"] == "open" else session["status"], error=error,
        action=f"/pay/{session_id}",
    )  # fmt: skip
    return Response(html.encode(), media_type="text/html; charset=utf-8")


@post("/pay/{session_id:str}", status_code=200)
async def checkout_decision(request: AnyRequest, session_id: FromPath[str]) -> Response[bytes] | Redirect:
    fake = _fake(request)
    session = fake.sessions.get(session_id)
    if session is None or session["status"] != "open":
        return _checkout(fake, session_id, "This Checkout session is no longer open.")
    intent = fake.intents[session["payment_intent"]]
    decision = (await request.form()).get("decision")
    if decision == "cancel":
        return Redirect(session["cancel_url"] or session["success_url"], status_code=303)
    if decision == "approve" and Fault.DECLINE not in fake.faults_of(intent):
        fake.pay(intent)
        session.update(
            status="complete", payment_status="paid" if intent["status"] == "succeeded" else "unpaid"
        )
        fake.emit("checkout.session.completed", session)
        return Redirect(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id), status_code=303)
    fake.decline(intent)
    return _checkout(fake, session_id, "Your card was declined.")


# -- controls for tests -------------------------------------------------------------------------------------


class _FaultsBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    faults: list[str]


class _DisputeBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    status: str = "needs_response"  # or won, lost


class _PayoutBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    day: str


@put("/_fake/orders/{reference:str}/faults", status_code=200)
async def set_faults(request: AnyRequest, reference: FromPath[str]) -> Response[bytes]:
    body = msgspec.json.decode(await request.body(), type=_FaultsBody)
    _fake(request).faults[reference] = parse_faults(",".join(body.faults))
    return _json({})


@post("/_fake/checkout/{session_id:str}/expire", status_code=200)
async def expire_session(request: AnyRequest, session_id: FromPath[str]) -> Response[bytes]:
    fake = _fake(request)
    session = fake.sessions[session_id]
    if session["status"] == "open":
        session["status"] = "expired"
        fake.emit("checkout.session.expired", session)
        intent = fake.intents[session["payment_intent"]]
        if intent["status"] == "requires_payment_method":
            fake.cancel(intent, "abandoned")
    return _json(session)


@post("/_fake/payment_intents/{intent_id:str}/dispute", status_code=200)
async def dispute_intent(request: AnyRequest, intent_id: FromPath[str]) -> Response[bytes]:
    fake = _fake(request)
    body = await request.body()
    status = msgspec.json.decode(body or b"{}", type=_DisputeBody).status
    intent = fake.intent(intent_id)
    charge = fake.charges[intent["latest_charge"]]
    dispute = next((d for d in fake.disputes.values() if d["charge"] == charge["id"]), None)
    if dispute is None:
        dispute_id = _id("dp")
        dispute = fake.disputes[dispute_id] = {
            "id": dispute_id, "object": "dispute", "amount": charge["amount_captured"],
            "currency": charge["currency"],
            "charge": charge["id"], "payment_intent": intent["id"], "reason": "fraudulent",
            "status": "needs_response", "created": int(time.time()),
        }  # fmt: skip
        charge["disputed"] = True
        fake.book(
            "adjustment", -dispute["amount"], 1500, charge["currency"], source=dispute_id, category="dispute"
        )
        fake.emit("charge.dispute.created", dispute)
    if status in {"won", "lost"}:
        dispute["status"] = status
        if status == "won":
            reversal = {"source": dispute["id"], "category": "dispute_reversal"}
            fake.book("adjustment", dispute["amount"], 0, charge["currency"], **reversal)
        fake.emit("charge.dispute.closed", dispute)
    return _json(dispute)


@post("/_fake/payouts", status_code=200)
async def make_payout(request: AnyRequest) -> Response[bytes]:
    """Pay out every balance transaction not yet paid out, arriving on `day`, one payout per currency."""
    fake = _fake(request)
    day = date.fromisoformat(msgspec.json.decode(await request.body(), type=_PayoutBody).day)
    arrival = int(datetime(day.year, day.month, day.day, 12, tzinfo=UTC).timestamp())
    made = []
    for currency in sorted({t["currency"] for t in fake.balance.values() if t["payout"] is None}):
        open_txns = [t for t in fake.balance.values() if t["payout"] is None and t["currency"] == currency]
        payout_id = _id("po")
        total = sum(t["net"] for t in open_txns)
        for txn in open_txns:
            txn["payout"] = payout_id
        fake.payouts[payout_id] = {
            "id": payout_id, "object": "payout", "amount": total, "currency": currency,
            "arrival_date": arrival,
            "status": "paid", "automatic": True,
        }  # fmt: skip
        payout_txn = fake.book("payout", -total, 0, currency, source=payout_id, category="payout")
        fake.balance[payout_txn]["payout"] = payout_id
        made.append(fake.payouts[payout_id])
    return _json({"data": made})


def _signed(fake: FakeStripe, event: Obj) -> tuple[dict[str, str], bytes]:
    body = msgspec.json.encode(event)
    return {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": signature_header(fake.settings.webhook_secrets, int(time.time()), body),
    }, body


@get("/_fake/webhooks")
async def list_webhooks(request: AnyRequest) -> Response[bytes]:
    """Every event as Stripe would deliver it now: headers signed afresh and the exact body."""
    fake = _fake(request)
    deliveries = []
    for event in fake.events:
        headers, body = _signed(fake, event)
        deliveries.append(
            {"event_id": event["id"], "type": event["type"], "headers": headers, "body": body.decode()}
        )
    return _json({"data": deliveries})


@post("/_fake/webhooks/flush", status_code=200)
async def flush_webhooks(request: AnyRequest) -> Response[bytes]:
    """Deliver undelivered events to the configured endpoint, with the order's webhook faults."""
    fake = _fake(request)
    url = fake.settings.webhook_url
    sent = 0
    if url:
        async with httpx.AsyncClient(timeout=10) as client:
            for event in [e for e in fake.events if e["id"] not in fake.delivered]:
                fake.delivered.add(event["id"])
                metadata = event["data"]["object"].get("metadata") or {}
                faults = fake.faults.get(str(metadata.get(REFERENCE_KEY, "")), frozenset())
                if Fault.LOST_CALLBACK in faults:
                    continue
                for _ in range(3 if Fault.DUPLICATE_WEBHOOKS in faults else 1):
                    headers, body = _signed(fake, event)
                    await client.post(url, content=body, headers=headers)
                    sent += 1
    return _json({"delivered": sent})


def _on_error(request: AnyRequest, exc: StripeFakeError) -> Response[bytes]:  # noqa: ARG001 - litestar's signature
    return _json(exc.body, exc.status, headers={"Request-Id": _id("req")})


def create_app(settings: FakeStripeSettings | None = None) -> Litestar:
    app = Litestar(
        route_handlers=[
            create_session, capture_intent, cancel_intent, create_refund, search_intents, show_intent,
            list_payouts, list_balance, checkout_page, checkout_decision, set_faults, expire_session,
            dispute_intent, make_payout, list_webhooks, flush_webhooks,
        ],
        exception_handlers={StripeFakeError: _on_error},
        openapi_config=None,
        logging_config=None,
    )  # fmt: skip
    app.state.stripe = FakeStripe(settings or FakeStripeSettings())
    return app
