"""The sandbox simulator as a web app: payment API, hosted checkout page, terminal and fault controls.

Run it standalone with `serve()` (what `etimbre sandbox serve` calls) or build it with `create_app()`.
Everything lives in memory and the app only ever listens on loopback.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

import jinja2
import msgspec
from litestar import Litestar, Request, Response, get, post, put
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from providers.faults import Fault, parse_faults
from providers.loopback import LOCALHOST
from providers.loopback import serve as serve_on_loopback
from providers.sandbox.outbox import Outbox
from providers.sandbox.state import Bank, SimError, SimPayment, SimulatorSettings
from providers.sandbox.wire import (
    FAULTS_HEADER,
    IDEMPOTENCY_HEADER,
    CaptureBody,
    CreateCheckout,
    ErrorBody,
    PaymentList,
    RefundBody,
    StartSale,
    WireError,
)

AnyRequest = Request[Any, Any, Any]
_pages = jinja2.Environment(
    loader=jinja2.PackageLoader("providers.sandbox", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True, slots=True)
class _Stored:
    fingerprint: tuple[str, str, bytes]
    status: int
    content: bytes


@dataclass(slots=True)
class SandboxSimulator:
    """The simulator's state, kept on `app.state.sandbox`."""

    settings: SimulatorSettings
    outbox: Outbox
    bank: Bank
    idempotency: dict[str, _Stored] = field(default_factory=dict)
    key_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: SimulatorSettings) -> SandboxSimulator:
        outbox = Outbox(settings.webhook_secrets, settings.delivery)
        return cls(settings, outbox, Bank(settings, outbox))


def _sim(request: AnyRequest) -> SandboxSimulator:
    simulator: SandboxSimulator = request.app.state.sandbox
    return simulator


def _json(status: int, payload: msgspec.Struct, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(
        msgspec.json.encode(payload), status_code=status, media_type="application/json", headers=headers
    )


def _authenticate(request: AnyRequest) -> None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or key not in _sim(request).settings.api_keys:
        raise SimError(401, "authentication", "invalid_api_key", "missing or unknown API key")


def _decode(body: bytes, type_: type[Any]) -> Any:
    try:
        return msgspec.json.decode(body, type=type_)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise SimError(400, "invalid_request", "body_invalid", str(exc)) from exc


Execute = Callable[[bytes, frozenset[Fault]], Awaitable[tuple[int, msgspec.Struct, str]]]


async def _mutating(request: AnyRequest, execute: Execute) -> Response[bytes]:
    """Authenticate, replay by idempotency key, run, then apply after-charge faults to the answer."""
    _authenticate(request)
    sim = _sim(request)
    key = request.headers.get(IDEMPOTENCY_HEADER.lower())
    if not key:
        raise SimError(
            400, "invalid_request", "idempotency_key_missing", f"send an {IDEMPOTENCY_HEADER} header"
        )
    try:
        faults = parse_faults(request.headers.get(FAULTS_HEADER.lower()))
    except ValueError as exc:
        raise SimError(400, "invalid_request", "faults_invalid", str(exc)) from exc
    body = await request.body()
    fingerprint = (request.method, request.url.path, body)
    async with sim.key_locks.setdefault(key, asyncio.Lock()):
        stored = sim.idempotency.get(key)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                raise SimError(
                    422,
                    "idempotency_conflict",
                    "idempotency_key_reused",
                    f"idempotency key {key!r} was used for another request",
                )
            return Response(
                stored.content,
                status_code=stored.status,
                media_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        try:
            status, payload, reference = await execute(body, faults)
        except SimError as exc:
            status, payload, reference = (
                exc.status,
                ErrorBody(WireError(type=exc.type, code=exc.code, message=exc.message)),
                "",
            )
        content = msgspec.json.encode(payload)
        sim.idempotency[key] = _Stored(fingerprint, status, content)
    effective = faults | sim.bank.order_faults.get(reference, frozenset())
    if status < 400 and Fault.ERROR_AFTER_CHARGE in effective:
        return _json(
            500, ErrorBody(WireError(type="api_error", code="internal", message="simulated failure"))
        )
    if status < 400 and Fault.TIMEOUT_AFTER_CHARGE in effective:
        await _hang(request, sim.settings.hang_seconds)
    return Response(content, status_code=status, media_type="application/json")


async def _hang(request: AnyRequest, seconds: float) -> None:
    """Hold the answer back for `seconds`, or until the client gives up and disconnects."""
    try:
        async with asyncio.timeout(seconds):
            while (await request.receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        pass


def _with_faults(sim: SandboxSimulator, faults: frozenset[Fault]) -> _FaultScope:
    return _FaultScope(sim.bank, faults)


class _FaultScope:
    """Per-request faults for the synchronous bank calls of one request (no await inside)."""

    def __init__(self, bank: Bank, faults: frozenset[Fault]) -> None:
        self.bank, self.faults = bank, faults

    def __enter__(self) -> Bank:
        self.bank.request_faults = self.faults
        return self.bank

    def __exit__(self, *exc: object) -> None:
        self.bank.request_faults = frozenset()


def _checkout_url(request: AnyRequest, payment: SimPayment) -> str:
    base = _sim(request).settings.public_url or str(request.base_url).rstrip("/")
    return f"{base}/checkout/{payment.id}"


# -- payment API ------------------------------------------------------------------------------------------


@post("/v1/checkouts", status_code=201)
async def create_checkout(request: AnyRequest) -> Response[bytes]:
    sim = _sim(request)

    async def execute(body: bytes, faults: frozenset[Fault]) -> tuple[int, msgspec.Struct, str]:
        order: CreateCheckout = _decode(body, CreateCheckout)
        with _with_faults(sim, faults) as bank:
            payment = bank.open_payment(
                reference=order.reference,
                amount=order.amount,
                channel="online",
                capture_method=order.capture_method,
                description=order.description,
                return_url=order.return_url,
                cancel_url=order.cancel_url,
                notify_url=order.notify_url,
            )
            if faults:  # faults sent with the order stay with the order
                bank.order_faults[order.reference] = (
                    bank.order_faults.get(order.reference, frozenset()) | faults
                )
        return 201, bank.wire(payment, _checkout_url(request, payment)), order.reference

    return await _mutating(request, execute)


@post("/v1/terminals/{terminal_id:str}/sales", status_code=200)
async def start_sale(request: AnyRequest, terminal_id: FromPath[str]) -> Response[bytes]:
    sim = _sim(request)

    async def execute(body: bytes, faults: frozenset[Fault]) -> tuple[int, msgspec.Struct, str]:
        sale: StartSale = _decode(body, StartSale)
        with _with_faults(sim, faults) as bank:
            payment = bank.open_payment(
                reference=sale.reference,
                amount=sale.amount,
                channel="terminal",
                capture_method="automatic",
                description=sale.description,
                notify_url=sale.notify_url,
                terminal_id=terminal_id,
            )
        await asyncio.sleep(sim.settings.card_delay_seconds)  # the cardholder presents the card
        with _with_faults(sim, faults) as bank:
            bank.approve(payment, bank.faults_for(payment.reference))
        return 200, bank.wire(payment), sale.reference

    return await _mutating(request, execute)


@post("/v1/payments/{payment_id:str}/capture", status_code=200)
async def capture(request: AnyRequest, payment_id: FromPath[str]) -> Response[bytes]:
    sim = _sim(request)

    async def execute(body: bytes, faults: frozenset[Fault]) -> tuple[int, msgspec.Struct, str]:
        order: CaptureBody = _decode(body, CaptureBody)
        with _with_faults(sim, faults) as bank:
            payment = bank.payment(payment_id)
            bank.capture(payment, order.amount.money())
        return 200, bank.wire(payment), payment.reference

    return await _mutating(request, execute)


@post("/v1/payments/{payment_id:str}/void", status_code=200)
async def void(request: AnyRequest, payment_id: FromPath[str]) -> Response[bytes]:
    sim = _sim(request)

    async def execute(body: bytes, faults: frozenset[Fault]) -> tuple[int, msgspec.Struct, str]:  # noqa: ARG001
        with _with_faults(sim, faults) as bank:
            payment = bank.payment(payment_id)
            bank.void(payment)
        return 200, bank.wire(payment), payment.reference

    return await _mutating(request, execute)


@post("/v1/payments/{payment_id:str}/refunds", status_code=201)
async def refund(request: AnyRequest, payment_id: FromPath[str]) -> Response[bytes]:
    sim = _sim(request)

    async def execute(body: bytes, faults: frozenset[Fault]) -> tuple[int, msgspec.Struct, str]:
        order: RefundBody = _decode(body, RefundBody)
        with _with_faults(sim, faults) as bank:
            payment = bank.payment(payment_id)
            made = bank.refund(payment, order.amount.money(), order.refund_reference)
        return 201, bank.wire_refund(payment, made), payment.reference

    return await _mutating(request, execute)


@get("/v1/payments/{payment_id:str}")
async def show_payment(request: AnyRequest, payment_id: FromPath[str]) -> Response[bytes]:
    _authenticate(request)
    bank = _sim(request).bank
    payment = bank.payment(payment_id)
    return _json(200, bank.wire(payment, _checkout_url(request, payment)))


@get("/v1/payments")
async def find_payments(request: AnyRequest, reference: FromQuery[str]) -> Response[bytes]:
    _authenticate(request)
    bank = _sim(request).bank
    return _json(
        200, PaymentList(tuple(bank.wire(p, _checkout_url(request, p)) for p in bank.find(reference)))
    )


@get("/v1/settlements/{day:str}")
async def settlement(request: AnyRequest, day: FromPath[str]) -> Response[bytes]:
    _authenticate(request)
    try:
        settled = date.fromisoformat(day)
    except ValueError as exc:
        raise SimError(400, "invalid_request", "day_invalid", f"day must be YYYY-MM-DD, got {day!r}") from exc
    return _json(200, _sim(request).bank.settlement(settled))


# -- hosted checkout page -------------------------------------------------------------------------------


def _page(payment: SimPayment, error: str | None = None) -> Response[bytes]:
    html = _pages.get_template("checkout.html").render(
        description=payment.description,
        reference=payment.reference,
        amount=str(payment.amount),
        status=payment.status,
        error=error,
        action=f"/checkout/{payment.id}",
    )
    return Response(html.encode(), media_type="text/html; charset=utf-8", status_code=200)


def _back_to(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query))


@get("/checkout/{payment_id:str}")
async def checkout_page(request: AnyRequest, payment_id: FromPath[str]) -> Response[bytes]:
    return _page(_sim(request).bank.payment(payment_id))


@post("/checkout/{payment_id:str}", status_code=200)
async def checkout_decision(request: AnyRequest, payment_id: FromPath[str]) -> Response[bytes] | Redirect:
    bank = _sim(request).bank
    payment = bank.payment(payment_id)
    decision = (await request.form()).get("decision")
    if payment.status != "pending":
        return _page(payment, f"this payment is already {payment.status}")
    if decision == "cancel":
        bank.cancel_checkout(payment)
        return Redirect(
            _back_to(
                payment.cancel_url or payment.return_url or "/",
                sandbox_payment=payment.id,
                status=payment.status,
            ),
            status_code=303,
        )
    if decision == "approve":
        bank.approve(payment, bank.faults_for(payment.reference))
    elif decision == "decline":
        bank.decline(payment)
    else:
        raise SimError(
            400, "invalid_request", "decision_invalid", "decision must be approve, decline or cancel"
        )
    if payment.status == "pending":  # declined: the cardholder may try again
        return _page(payment, "The card was declined. Try again or cancel.")
    return Redirect(
        _back_to(payment.return_url or "/", sandbox_payment=payment.id, status=payment.status),
        status_code=303,
    )


# -- controls for tests and demos -------------------------------------------------------------------------


class _FaultsBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    faults: list[str]


class _DisputeBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    outcome: Literal["open", "won", "lost"] = "open"


class _DeliveryView(msgspec.Struct, frozen=True, kw_only=True):
    event_id: str
    type: str
    reference: str
    target: str | None
    state: str
    attempts: int
    copies: int
    headers: dict[str, str]
    body: str


class _DeliveryList(msgspec.Struct, frozen=True):
    data: list[_DeliveryView]


class _Count(msgspec.Struct, frozen=True):
    delivered: int


@put("/sandbox/orders/{reference:str}/faults", status_code=200)
async def set_order_faults(request: AnyRequest, reference: FromPath[str]) -> Response[bytes]:
    order: _FaultsBody = _decode(await request.body(), _FaultsBody)
    try:
        faults = parse_faults(",".join(order.faults))
    except ValueError as exc:
        raise SimError(400, "invalid_request", "faults_invalid", str(exc)) from exc
    _sim(request).bank.order_faults[reference] = faults
    return _json(200, order)


@get("/sandbox/webhooks")
async def list_webhooks(request: AnyRequest) -> Response[bytes]:
    outbox = _sim(request).outbox
    return _json(
        200,
        _DeliveryList(
            [
                _DeliveryView(
                    event_id=d.event.id,
                    type=d.event.type,
                    reference=d.event.data.reference,
                    target=d.target,
                    state=d.state,
                    attempts=d.attempts,
                    copies=d.copies,
                    headers=outbox.headers(d),
                    body=d.body.decode(),
                )
                for d in outbox.deliveries
            ]
        ),
    )


@post("/sandbox/webhooks/flush", status_code=200)
async def flush_webhooks(request: AnyRequest) -> Response[bytes]:
    return _json(200, _Count(await _sim(request).outbox.flush()))


@post("/sandbox/payments/{payment_id:str}/dispute", status_code=200)
async def dispute(request: AnyRequest, payment_id: FromPath[str]) -> Response[bytes]:
    body = await request.body()
    order: _DisputeBody = _decode(body or b"{}", _DisputeBody)
    bank = _sim(request).bank
    payment = bank.payment(payment_id)
    bank.dispute(payment, order.outcome)
    return _json(200, bank.wire(payment))


@post("/sandbox/payments/{payment_id:str}/expire", status_code=200)
async def expire(request: AnyRequest, payment_id: FromPath[str]) -> Response[bytes]:
    bank = _sim(request).bank
    payment = bank.payment(payment_id)
    bank.expire(payment)
    return _json(200, bank.wire(payment))


def _on_sim_error(request: AnyRequest, exc: SimError) -> Response[bytes]:  # noqa: ARG001 - litestar's signature
    return _json(exc.status, ErrorBody(WireError(type=exc.type, code=exc.code, message=exc.message)))


def create_app(settings: SimulatorSettings | None = None) -> Litestar:
    """The simulator app; state is in memory and starts empty."""
    simulator = SandboxSimulator.build(settings or SimulatorSettings())

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:  # noqa: ARG001 - litestar's signature
        await simulator.outbox.start()
        try:
            yield
        finally:
            await simulator.outbox.stop()

    app = Litestar(
        route_handlers=[
            create_checkout,
            start_sale,
            capture,
            void,
            refund,
            show_payment,
            find_payments,
            settlement,
            checkout_page,
            checkout_decision,
            set_order_faults,
            list_webhooks,
            flush_webhooks,
            dispute,
            expire,
        ],
        exception_handlers={SimError: _on_sim_error},
        lifespan=[lifespan],
        openapi_config=None,
        logging_config=None,  # leave the host application's logging alone
    )
    app.state.sandbox = simulator
    return app


def serve(host: str = LOCALHOST, port: int = 8765, settings: SimulatorSettings | None = None) -> None:
    """Run the simulator in the foreground on loopback (`etimbre sandbox serve`).

    Without settings, secrets come from ETIMBRE_SANDBOX_API_KEY, ETIMBRE_SANDBOX_WEBHOOK_SECRET and
    webhooks go to ETIMBRE_SANDBOX_NOTIFY_URL, so the simulator and the service agree.
    """
    serve_on_loopback(create_app(settings or SimulatorSettings.from_env(os.environ)), host=host, port=port)
