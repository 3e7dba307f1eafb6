"""Paying online from the pages: start the payment with the payments service, send the citizen to the
provider's hosted page, then show the payment's progress and, once captured, its receipts."""

from __future__ import annotations

import uuid
from contextlib import suppress
from dataclasses import dataclass
from typing import Annotated, Any

from anyio import to_thread
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.exceptions import NotFoundException, ServiceUnavailableException
from litestar.params import PathParameter
from litestar.response import Redirect, Template

from ledger.db.engine import Database
from ledger.domain.payments import PaymentStatus
from ledger.money import Money
from ledger.services.issuance import IssuedStamp, issued_stamps
from ledger.services.payments.checkout import start_online_payment
from ledger.services.payments.context import Payments
from ledger.services.payments.errors import PaymentRefusedError
from ledger.services.payments.records import money, payment_by_id
from ledger.services.payments.returning import WAITING, check_on_return
from ledger.settings import Settings
from ledger.web.pages import Message, page, translator
from providers.errors import ProviderError
from providers.model import AutoPostForm

PaymentId = Annotated[uuid.UUID, PathParameter(description="the payment's random id (its status link)")]
# What the citizen is told, by payment state: still waiting (the page refreshes), or how it ended.
_OUTCOME = {
    PaymentStatus.FAILED: "failed",
    PaymentStatus.CANCELED: "canceled",
    PaymentStatus.EXPIRED: "expired",
    PaymentStatus.PARKED: "review",
}  # every other closed state took the money: "paid", with the receipts


class PaymentsUnavailableError(Exception):
    """The service could not open its payment providers (see the log); payments wait for an operator."""


def payments_of(state: State) -> Payments:
    """The process's payment service, opened by the app factory with the providers' HTTP clients."""
    payments = state.get("payments")
    if not isinstance(payments, Payments):
        raise PaymentsUnavailableError(state.get("payments_problem", "payments are not configured"))
    return payments


@dataclass(frozen=True, slots=True)
class PaymentView:
    """What the citizen's payment page shows: no card data (there is none), no reference to anyone."""

    id: uuid.UUID
    state: PaymentStatus
    consulate: str
    fee_codes: tuple[str, ...]
    amount: Money
    stamps: tuple[IssuedStamp, ...]


def _view(database: Database, payments: Payments, payment_id: uuid.UUID) -> PaymentView | None:
    with database.read() as session:
        payment = payment_by_id(session, payment_id)
        if payment is None or payment.channel != "online":
            return None
        entry_id = payment.entry_id
        return PaymentView(
            id=payment.id,
            state=PaymentStatus(payment.state),
            consulate=payment.consulate,
            fee_codes=tuple(payment.fee_codes.split(",")),
            amount=money(payment),
            stamps=issued_stamps(session, entry_id, payments.keys) if entry_id is not None else (),
        )


class CheckoutController(Controller):
    path = "/pay"

    @post("/checkout", name="web-checkout", status_code=303)
    async def checkout(self, request: Request[Any, Any, Any], state: State) -> Redirect | Template:
        """Start the payment (priced again from the schedule, never from the form) and leave for the
        provider's page."""
        form = await request.form()
        consulate = str(form.get("consulate") or "")
        fee_codes = tuple(str(code) for code in form.getall("fee", []))
        t = translator(request)
        try:
            started = await start_online_payment(
                payments_of(state), consulate=consulate, fee_codes=fee_codes, locale=t.language
            )
        except PaymentRefusedError as refused:
            return page(
                request,
                "citizen/checkout_failed.html",
                status_code=422,
                messages=[Message("error", t("checkout.refused"))],
                detail=refused.message,
                consulate=consulate,
            )
        except (ProviderError, PaymentsUnavailableError):
            return page(
                request,
                "citizen/checkout_failed.html",
                status_code=503,
                messages=[Message("error", t("checkout.unavailable"))],
                detail=None,
                consulate=consulate,
            )
        action = started.next_action
        if isinstance(action, AutoPostForm):  # the gateway wants a form posted by the browser
            return page(request, "citizen/autopost.html", action=action)
        if action is None:  # declined at once, or nothing to do in a browser: the status page says
            return Redirect(f"/web/pay/{started.payment_id}", status_code=303)
        return Redirect(action.url, status_code=303)

    @get("/{payment_id:uuid}", name="web-payment")
    async def payment(self, request: Request[Any, Any, Any], state: State, payment_id: PaymentId) -> Template:
        """The payment's progress; receipts once it is captured. A payment still open is asked about
        at the provider (the citizen may come back before the provider's notification)."""
        try:
            payments = payments_of(state)
        except PaymentsUnavailableError:
            raise ServiceUnavailableException("payments are not available") from None
        view = await to_thread.run_sync(_view, state.database, payments, payment_id)
        if view is None:
            raise NotFoundException("no online payment behind this link")
        if view.state in WAITING:
            # An unreachable provider: the page shows the state we know, and refreshes.
            with suppress(ProviderError):
                await check_on_return(payments, payment_id)
            view = await to_thread.run_sync(_view, state.database, payments, payment_id) or view
        settings: Settings = state.settings
        fees = settings.fees.latest_fees()
        return page(
            request,
            "citizen/payment.html",
            view=view,
            consulate=settings.consulate(view.consulate),
            fees=fees,
            outcome="waiting" if view.state in WAITING else _OUTCOME.get(view.state, "paid"),
        )
