"""The cashier's counter: scan or type a stamp, see the verdict at once, use it once; record a terminal
payment and print its receipt. Everything is bound to the cashier's own consulate.

Scanned text travels only in POST bodies (a stamp is a bearer token: never in a URL or an access log)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, PathParameter
from litestar.response import Redirect, Template

from ledger.db.engine import Database
from ledger.domain.consulates import Consulate
from ledger.domain.fees import FeeError
from ledger.money import Money, MoneyError
from ledger.services import clock
from ledger.services.apikeys import Role
from ledger.services.counter_checks import CounterCheck, Verdict, check_scan, consume_scanned
from ledger.services.issuance import CapturedPayment, PaymentError, issued_stamps, record_captured_payment
from ledger.services.signing_keys import KeySetupError, StampKeys
from ledger.services.stamps import OtherConsulateError, StampNotFoundError, stamp_for_consulate
from ledger.settings import Settings
from ledger.web.access import StaffMember, current_staff, staff_only
from ledger.web.i18n import Translator
from ledger.web.pages import Message, page, translator
from receipts.keyring import NoSigningKeyError

TERMINAL = "terminal"  # the provider name of a counter's standalone terminal, as in the API
MAX_SCAN = 1000
# What a terminal slip carries, as the API accepts it (ledger.api.stamps_schemas.CounterPaymentIn).
REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,47}$")
APPROVAL = re.compile(r"^[A-Za-z0-9]{2,12}$")
CASE_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9./_-]{0,31}$")
# How each verdict looks: a colour class and an icon, always with words (never colour alone).
LOOKS = {
    Verdict.GENUINE: ("ok", "✔"),
    Verdict.USED: ("bad", "✖"),
    Verdict.WRONG_CONSULATE: ("bad", "⛔"),
    Verdict.EXPIRED: ("warn", "⌛"),
    Verdict.REFUNDED: ("warn", "↩"),
    Verdict.FORGED: ("bad", "⚠"),
    Verdict.UNREADABLE: ("warn", "↻"),
}
STATUS_OF = {
    Verdict.GENUINE: 200,
    Verdict.USED: 409,
    Verdict.WRONG_CONSULATE: 403,
    Verdict.EXPIRED: 409,
    Verdict.REFUNDED: 409,
    Verdict.FORGED: 422,
    Verdict.UNREADABLE: 422,
}


@dataclass
class ScanForm:
    scan: str = ""
    csrf_token: str = ""


@dataclass
class PaymentForm:
    amount: str = ""
    terminal_reference: str = ""
    approval_code: str = ""
    case_reference: str = ""
    csrf_token: str = ""
    # One checked box arrives as text, several as a list.
    fee_codes: list[str] | str = field(default_factory=list)

    @property
    def chosen_fees(self) -> list[str]:
        codes = [self.fee_codes] if isinstance(self.fee_codes, str) else self.fee_codes
        return [code for code in codes if code]


def _cashier(request: Request[Any, Any, Any]) -> StaffMember:
    staff = current_staff(request)
    assert staff is not None  # the guard let only a signed-in cashier in
    return staff


def _counter_page(
    request: Request[Any, Any, Any],
    check: CounterCheck | None = None,
    *,
    scanned: str = "",
    consumed_now: bool = False,
    status_code: int = 200,
) -> Template:
    settings: Settings = request.app.state.settings
    staff = _cashier(request)
    look = LOOKS[check.verdict] if check is not None else ("", "")
    return page(
        request,
        "cashier/counter.html",
        status_code=status_code,
        consulate=settings.consulate(staff.consulate),
        check=check,
        look=look[0],
        icon=look[1],
        scanned=scanned if check is not None and check.consumable else "",
        consumed_now=consumed_now,
    )


def _payment_page(
    request: Request[Any, Any, Any],
    form: PaymentForm | None = None,
    *,
    error: tuple[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    settings: Settings = request.app.state.settings
    staff = _cashier(request)
    consulate = settings.consulate(staff.consulate)
    version = settings.fees.version_at(clock.now())
    fees = [(fee, fee.price_at(consulate)) for fee in version.fees.values()]
    messages = [Message("error", error[1])] if error is not None else []
    return page(
        request,
        "cashier/payment.html",
        status_code=status_code,
        messages=messages,
        consulate=consulate,
        version=version,
        fees=[(fee, price) for fee, price in fees if price is not None],
        form=form or PaymentForm(),
        error_field=error[0] if error is not None else "",
    )


class _FormError(Exception):
    def __init__(self, field: str, text: str) -> None:
        super().__init__(text)
        self.field, self.text = field, text


def _captured(form: PaymentForm, settings: Settings, consulate: Consulate, t: Translator) -> CapturedPayment:
    """The payment the form describes, checked field by field against what the terminal can print and the
    published prices (the service checks the price again; here the cashier is told in their language)."""
    fee_codes = form.chosen_fees
    reference = form.terminal_reference.strip()
    approval = form.approval_code.strip()
    if not fee_codes:
        raise _FormError("fee_codes", t("counter_payment.no_fee"))
    if not REFERENCE.fullmatch(reference):
        raise _FormError("terminal_reference", t("counter_payment.bad_reference"))
    if not APPROVAL.fullmatch(approval):
        raise _FormError("approval_code", t("counter_payment.bad_approval"))
    case_reference = form.case_reference.strip() or None
    if case_reference is not None and not CASE_REFERENCE.fullmatch(case_reference):
        raise _FormError("case_reference", t("counter_payment.bad_case"))
    try:
        amount = Money.parse(form.amount.strip().replace(",", "."), consulate.currency)
    except MoneyError:
        raise _FormError("amount", t("counter_payment.bad_amount")) from None
    now = clock.now()
    published = Money.zero(consulate.currency)
    try:
        for code in fee_codes:
            published += settings.fees.price(code, consulate, now).amount
    except FeeError:
        raise _FormError("fee_codes", t("counter_payment.no_fee")) from None
    if amount != published:
        text = t("counter_payment.price_mismatch", charged=t.money(amount), price=t.money(published))
        raise _FormError("amount", text)
    return CapturedPayment(
        payment_ref=f"{TERMINAL}:{consulate.code}:{reference}",
        consulate=consulate.code,
        fee_codes=tuple(fee_codes),
        channel="counter",
        provider=TERMINAL,
        amount=amount,
        captured_at=now,
        priced_at=now,
        case_reference=case_reference,
        memo=(("terminal_reference", reference), ("approval_code", approval)),
    )


EntryPath = Annotated[uuid.UUID, PathParameter(description="the payment's ledger entry")]


class CounterController(Controller):
    path = "/counter"
    guards = [staff_only(Role.CASHIER)]

    @get("/", name="web-counter", sync_to_thread=False)
    def counter(self, request: Request[Any, Any, Any]) -> Template:
        return _counter_page(request)

    @post("/", name="web-counter-check", sync_to_thread=True)
    def check(
        self,
        request: Request[Any, Any, Any],
        state: State,
        data: Annotated[ScanForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        database: Database = state.database
        staff = _cashier(request)
        scanned = data.scan[:MAX_SCAN]
        with database.read() as session:
            check = check_scan(session, state.settings, scanned, consulate=staff.consulate)
        return _counter_page(request, check, scanned=scanned, status_code=STATUS_OF[check.verdict])

    @post("/consume", name="web-counter-consume", sync_to_thread=True)
    def consume(
        self,
        request: Request[Any, Any, Any],
        state: State,
        data: Annotated[ScanForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        database: Database = state.database
        staff = _cashier(request)
        with database.write() as session:
            used = consume_scanned(
                session, state.settings, data.scan[:MAX_SCAN], consulate=staff.consulate, actor=staff.actor
            )
        if used.consumption is None:
            return _counter_page(request, used.check, status_code=STATUS_OF[used.check.verdict])
        return _counter_page(request, used.check, consumed_now=True)

    @get("/payment", name="web-counter-payment", sync_to_thread=False)
    def payment_form(self, request: Request[Any, Any, Any]) -> Template:
        return _payment_page(request)

    @post("/payment", name="web-counter-payment-post", sync_to_thread=True, status_code=303)
    def record_payment(
        self,
        request: Request[Any, Any, Any],
        state: State,
        data: Annotated[PaymentForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template | Redirect:
        t = translator(request)
        settings: Settings = state.settings
        database: Database = state.database
        keys: StampKeys = state.stamp_keys
        staff = _cashier(request)
        try:
            payment = _captured(data, settings, settings.consulate(staff.consulate), t)
            with database.write() as session:
                issued = record_captured_payment(session, settings, keys, payment, actor=staff.actor)
        except _FormError as refused:
            return _payment_page(request, data, error=(refused.field, refused.text), status_code=422)
        except PaymentError as refused:
            return _payment_page(request, data, error=(refused.field, refused.message), status_code=422)
        except (NoSigningKeyError, KeySetupError):
            return _payment_page(request, data, error=("", t("counter_payment.no_key")), status_code=503)
        return Redirect(f"/web/counter/payment/{issued.entry_id}", status_code=303)

    @get("/payment/{entry_id:uuid}", name="web-counter-receipt", sync_to_thread=True)
    def receipt(self, request: Request[Any, Any, Any], state: State, entry_id: EntryPath) -> Template:
        database: Database = state.database
        staff = _cashier(request)
        with database.read() as session:
            stamps = issued_stamps(session, entry_id, state.stamp_keys)
            try:
                for stamp in stamps[:1]:
                    stamp_for_consulate(session, state.settings, stamp.number, staff.consulate)
            except (OtherConsulateError, StampNotFoundError):
                stamps = ()
        if not stamps:
            raise NotFoundException(f"no counter payment {entry_id} at {staff.consulate}")
        total = Money.zero(stamps[0].amount.currency)
        for stamp in stamps:
            total += stamp.amount
        return page(
            request,
            "cashier/receipt.html",
            consulate=state.settings.consulate(staff.consulate),
            stamps=stamps,
            fee_labels={
                s.fee_code: state.settings.fees.version_at(s.issued_at).fees[s.fee_code].label for s in stamps
            },
            total=total,
            printed_at=datetime.now(UTC),
        )


CASHIER_ROUTES: list[Any] = [CounterController]
