"""A local fake of CMI: the hosted payment page, hashed callbacks whose reply drives capture, CC5 API.

For tests and demos only; it speaks what `providers.cmi.provider` expects and keeps orders in memory.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

import httpx
import jinja2
import msgspec
from litestar import Litestar, Request, Response, get, post, put
from litestar.params import FromPath

from ledger.money import Money, MoneyError, currency_from_numeric, numeric_code
from providers.cmi.cc5 import Cc5Request, Cc5Response
from providers.cmi.hashing import compute_hash, hash_matches
from providers.faults import Fault, parse_faults
from providers.transport import ProviderResponseError

AnyRequest = Request[Any, Any, Any]
_pages = jinja2.Environment(
    loader=jinja2.PackageLoader("providers.cmi", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_CASABLANCA = ZoneInfo("Africa/Casablanca")
_REQUIRED = (
    "clientid", "storetype", "TranType", "amount", "currency", "oid", "okUrl", "failUrl", "callbackUrl",
    "rnd", "hashAlgorithm", "HASH",
)  # fmt: skip


class _RefusedError(Exception):
    """The fake gateway refuses a form or an API call; the message is what CMI would say."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeCmiSettings:
    client_id: str = "600000000"
    store_keys: tuple[str, ...] = ("TEST-STORE-KEY",)  # the first signs callbacks; all verify forms
    api_user: str = "etimbre-api"
    api_password: str = "api-password"  # noqa: S105 - the fake's own test credential
    hang_seconds: float = 30.0  # how late a "timeout-after-charge" API answer comes
    callback_timeout: float = 10.0


@dataclass(slots=True, kw_only=True)
class FakeOrder:
    oid: str
    amount: Money
    tran_type: str
    status: Literal["", "A", "C", "V", "D"] = ""  # nothing yet, authorized, captured, voided, declined
    trans_id: str = ""
    captured: Money
    refunded: Money


@dataclass(slots=True, kw_only=True)
class CallbackRecord:
    oid: str
    body: str  # the form-encoded body as posted
    state: Literal["delivered", "lost", "failed"]
    reply: str | None = None


@dataclass(slots=True)
class FakeCmi:
    settings: FakeCmiSettings
    orders: dict[str, FakeOrder] = field(default_factory=dict)
    sessions: dict[str, dict[str, str]] = field(default_factory=dict)
    callbacks: list[CallbackRecord] = field(default_factory=list)
    order_faults: dict[str, frozenset[Fault]] = field(default_factory=dict)
    counter: int = 0

    def next_trans_id(self) -> str:
        self.counter += 1
        return f"{datetime.now(_CASABLANCA):%y%j}{self.counter:08d}"


def _fake(request: AnyRequest) -> FakeCmi:
    found: FakeCmi = request.app.state.cmi
    return found


def _html(template: str, status: int = 200, **context: object) -> Response[bytes]:
    body = _pages.get_template(template).render(**context).encode()
    return Response(body, status_code=status, media_type="text/html; charset=utf-8")


# -- the hosted payment page ----------------------------------------------------------------------------


@post("/fim/est3Dgate", status_code=200)
async def payment_page(request: AnyRequest) -> Response[bytes]:
    fake = _fake(request)
    fields = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
    try:
        order = _order_for_form(fake, fields)
    except _RefusedError as exc:
        return _html("error.html", exc.status, message=exc.message)
    session = secrets.token_hex(8)
    fake.sessions[session] = fields
    return _html(
        "payment.html", oid=order.oid, amount=str(order.amount), lang=fields.get("lang", "fr"),
        action=f"/fim/est3Dgate/{session}",
    )  # fmt: skip


def _order_for_form(fake: FakeCmi, fields: dict[str, str]) -> FakeOrder:
    missing = [name for name in _REQUIRED if not fields.get(name)]
    if missing:
        raise _RefusedError(f"Champs manquants : {', '.join(missing)}")
    if fields["clientid"] != fake.settings.client_id or fields["storetype"] != "3D_PAY_HOSTING":
        raise _RefusedError("Marchand ou type de boutique inconnu")
    if fields["hashAlgorithm"] != "ver3" or not hash_matches(
        fields, fields["HASH"], fake.settings.store_keys
    ):
        raise _RefusedError("Hash invalide")
    try:
        amount = Money.parse(fields["amount"], currency_from_numeric(int(fields["currency"])))
    except (ValueError, MoneyError) as exc:
        raise _RefusedError(f"Montant invalide : {exc}") from exc
    if fields["TranType"] not in {"PreAuth", "Auth"}:
        raise _RefusedError("TranType invalide")
    order = fake.orders.get(fields["oid"])
    if order is None:
        zero = Money.zero(amount.currency)
        order = FakeOrder(
            oid=fields["oid"], amount=amount, tran_type=fields["TranType"], captured=zero, refunded=zero
        )
        fake.orders[order.oid] = order
    elif order.status in {"A", "C", "V"}:
        raise _RefusedError(f"La commande {order.oid} est déjà traitée", 409)
    elif order.amount != amount:
        raise _RefusedError(f"La commande {order.oid} a un autre montant", 409)
    return order


@post("/fim/est3Dgate/{session:str}", status_code=200)
async def payment_decision(request: AnyRequest, session: FromPath[str]) -> Response[bytes]:
    fake = _fake(request)
    form = fake.sessions.pop(session, None)
    if form is None:
        return _html("error.html", 404, message="Session inconnue ou expirée")
    decision = (await request.form()).get("decision")
    order = fake.orders[form["oid"]]
    faults = fake.order_faults.get(order.oid, frozenset())
    approved = decision == "approve" and Fault.DECLINE not in faults
    trans_id = fake.next_trans_id()
    result = {
        "Response": "Approved" if approved else "Declined",
        "ProcReturnCode": "00" if approved else "05",
        "ErrMsg": "" if approved else "Transaction refusée",
        "AuthCode": f"{secrets.randbelow(10**6):06d}" if approved else "",
        "TransId": trans_id,
        "HostRefNum": f"{secrets.randbelow(10**12):012d}",
        "mdStatus": "1",
        "EXTRA.TRXDATE": f"{datetime.now(_CASABLANCA):%Y%m%d %H:%M:%S}",
    }
    fields = {name: value for name, value in form.items() if name != "HASH"} | result
    fields["HASH"] = compute_hash(fields, fake.settings.store_keys[0])
    if approved:
        order.trans_id = trans_id
        order.status = "A" if order.tran_type == "PreAuth" else "C"
        if order.status == "C":
            order.captured = order.amount
    elif order.status == "":
        order.status = "D"
    reply = await _callback(fake, order, form["callbackUrl"], fields, faults)
    if approved and order.status == "A" and reply == "ACTION=POSTAUTH":
        order.status, order.captured = "C", order.amount  # the merchant's reply captures
    url = form["okUrl"] if approved else form["failUrl"]
    return _html("return.html", url=url, fields=sorted(fields.items()))


async def _callback(
    fake: FakeCmi, order: FakeOrder, url: str, fields: dict[str, str], faults: frozenset[Fault]
) -> str | None:
    """Post the callback server to server and return the merchant's reply body (the last one)."""
    body = urlencode(fields)
    if Fault.LOST_CALLBACK in faults:
        fake.callbacks.append(CallbackRecord(oid=order.oid, body=body, state="lost"))
        return None
    reply: str | None = None
    async with httpx.AsyncClient(timeout=fake.settings.callback_timeout) as client:
        for _ in range(3 if Fault.DUPLICATE_WEBHOOKS in faults else 1):
            record = CallbackRecord(oid=order.oid, body=body, state="failed")
            fake.callbacks.append(record)
            try:
                answer = await client.post(
                    url, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
                )
            except httpx.TransportError:
                continue
            record.state, record.reply = "delivered", answer.text.strip()
            reply = record.reply
    return reply


# -- CC5 API ----------------------------------------------------------------------------------------------


def _xml(answer: Cc5Response) -> Response[bytes]:
    return Response(answer.to_xml(), status_code=200, media_type="application/xml")


def _error(oid: str, message: str) -> Cc5Response:
    return Cc5Response(order_id=oid, response="Error", proc_return_code="99", err_msg=message)


@post("/fim/api", status_code=200)
async def api(request: AnyRequest) -> Response[bytes]:
    fake = _fake(request)
    try:
        call = Cc5Request.from_xml(await request.body())
    except ProviderResponseError as exc:
        return _xml(_error("", str(exc)))
    settings = fake.settings
    if (call.name, call.password, call.client_id) != (
        settings.api_user,
        settings.api_password,
        settings.client_id,
    ):
        return _xml(_error(call.order_id, "Invalid credentials"))
    order = fake.orders.get(call.order_id)
    if call.extra.get("ORDERSTATUS") == "QUERY":
        return _xml(_order_status(call.order_id, order))
    if order is None:
        return _xml(_error(call.order_id, "No record found"))
    answer = _operate(fake, order, call)
    faults = fake.order_faults.get(order.oid, frozenset())
    if answer.approved and Fault.ERROR_AFTER_CHARGE in faults:
        return Response(b"Internal Server Error", status_code=500, media_type="text/plain")
    if answer.approved and Fault.TIMEOUT_AFTER_CHARGE in faults:
        try:
            async with asyncio.timeout(settings.hang_seconds):
                while (await request.receive())["type"] != "http.disconnect":
                    pass
        except TimeoutError:
            pass
    return _xml(answer)


def _order_status(oid: str, order: FakeOrder | None) -> Cc5Response:
    if order is None or order.status == "":
        return _error(oid, "No record found")
    return Cc5Response(
        order_id=oid, response="Approved", proc_return_code="00", trans_id=order.trans_id,
        extra={
            "ORD_ID": oid, "TRANS_ID": order.trans_id, "TRANS_STAT": order.status,
            "CHARGE_TYPE_CD": "PA" if order.tran_type == "PreAuth" else "S",
            "ORIG_TRANS_AMT": order.amount.to_str(), "CAPTURE_AMT": order.captured.to_str(),
            "REFUND_AMT": order.refunded.to_str(), "CURRENCY": f"{numeric_code(order.amount.currency):03d}",
        },
    )  # fmt: skip


def _operate(fake: FakeCmi, order: FakeOrder, call: Cc5Request) -> Cc5Response:
    try:
        amount = _call_amount(order, call)
        if call.type == "PostAuth":
            _require(order, "A", call.type)
            capture = amount or order.amount
            if capture > order.amount:
                raise _RefusedError("PostAuth amount exceeds the authorization")
            order.status, order.captured = "C", capture
        elif call.type == "Void":
            _require(order, "A", call.type)
            order.status = "V"
        elif call.type == "Credit":
            _require(order, "C", call.type)
            if amount is None or order.refunded + amount > order.captured:
                raise _RefusedError("Credit needs a Total within the captured amount")
            order.refunded += amount
        else:
            raise _RefusedError(f"Unsupported Type {call.type!r}")
    except _RefusedError as exc:
        return _error(order.oid, exc.message)
    return Cc5Response(
        order_id=order.oid, response="Approved", proc_return_code="00", trans_id=fake.next_trans_id()
    )


def _call_amount(order: FakeOrder, call: Cc5Request) -> Money | None:
    if call.total is None:
        return None
    try:
        amount = Money.parse(call.total, currency_from_numeric(int(call.currency or "0")))
    except (ValueError, MoneyError) as exc:
        raise _RefusedError(f"Invalid amount: {exc}") from exc
    if amount.currency != order.amount.currency:
        raise _RefusedError("Currency does not match the order")
    return amount


def _require(order: FakeOrder, status: str, operation: str | None) -> None:
    if order.status != status:
        raise _RefusedError(f"{operation} not allowed on an order in state {order.status or 'none'}")


# -- controls for tests -----------------------------------------------------------------------------------


class _FaultsBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    faults: list[str]


class _CallbackView(msgspec.Struct, frozen=True):
    oid: str
    body: str
    state: str
    reply: str | None


@put("/_fake/orders/{oid:str}/faults", status_code=200)
async def set_faults(request: AnyRequest, oid: FromPath[str]) -> Response[bytes]:
    body = msgspec.json.decode(await request.body(), type=_FaultsBody)
    _fake(request).order_faults[oid] = parse_faults(",".join(body.faults))
    return Response(b"{}", media_type="application/json")


@get("/_fake/callbacks")
async def list_callbacks(request: AnyRequest) -> Response[bytes]:
    views = [_CallbackView(c.oid, c.body, c.state, c.reply) for c in _fake(request).callbacks]
    return Response(msgspec.json.encode({"data": views}), media_type="application/json")


def create_app(settings: FakeCmiSettings | None = None) -> Litestar:
    fake = FakeCmi(settings or FakeCmiSettings())

    app = Litestar(
        route_handlers=[payment_page, payment_decision, api, set_faults, list_callbacks],
        openapi_config=None,
        logging_config=None,
    )
    app.state.cmi = fake
    return app
