"""The public pages: home, the published fee schedule, choosing and paying for stamps, receipts, and the
stamp status check."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.params import PathParameter, QueryParameter
from litestar.response import Redirect, Template

from ledger.db.engine import Database
from ledger.domain.consulates import Consulate
from ledger.domain.fees import Fee, FeeError, ScheduleVersion
from ledger.money import Money
from ledger.services import clock, receipt_files
from ledger.services.issuance import MAX_FEES_PER_PAYMENT
from ledger.services.stamp_status import public_status
from ledger.settings import Settings
from ledger.web.pages import Message, page, translator
from receipts.numbers import StampNumber, StampNumberError

# Anyone may check a number, but not enumerate them: checks per client address and minute.
STATUS_CHECKS_PER_MINUTE = 20
_status_checks = RateLimitConfig(
    rate_limit=("minute", STATUS_CHECKS_PER_MINUTE),
    store="web_stamp_checks",  # its own counters, apart from any other limit
    check_throttle_handler=lambda request: "number" in request.query_params,  # the empty form is free
)

ConsulateCode = Annotated[str | None, QueryParameter(name="consulate", max_length=8, required=False)]
FeeCodes = Annotated[list[str] | None, QueryParameter(name="fee", required=False)]
TypedNumber = Annotated[str | None, QueryParameter(name="number", max_length=64, required=False)]
ReceiptToken = Annotated[str, PathParameter(pattern=r"^[A-Za-z0-9_-]{16,128}$", max_length=128)]


@dataclass(frozen=True, slots=True)
class PricedFee:
    fee: Fee
    amount: Money


@dataclass(frozen=True, slots=True)
class Schedule:
    """What one consulate charges now: the version in force and each fee's price there."""

    consulate: Consulate
    version: ScheduleVersion
    fees: tuple[PricedFee, ...]


def _schedule(settings: Settings, consulate: Consulate) -> Schedule:
    version = settings.fees.version_at(clock.now())
    priced = []
    for fee in version.fees.values():
        amount = fee.price_at(consulate)
        if amount is not None:  # a fee without a price in this currency is not offered here
            priced.append(PricedFee(fee, amount))
    return Schedule(consulate, version, tuple(priced))


def _consulate(settings: Settings, code: str | None) -> Consulate | None:
    return settings.consulates.get(code) if code else None


class CitizenController(Controller):
    path = "/"

    @get("/", name="web-home", sync_to_thread=False)
    def home(self, request: Request[Any, Any, Any]) -> Template:
        return page(request, "home.html")

    @get("/fees", name="web-fees", sync_to_thread=False)
    def fees(
        self, request: Request[Any, Any, Any], state: State, consulate: ConsulateCode = None
    ) -> Template:
        """The published schedule of one consulate (the first one until another is chosen)."""
        settings: Settings = state.settings
        chosen = _consulate(settings, consulate)
        messages = []
        if consulate and chosen is None:
            messages.append(Message("error", translator(request)("fees.unknown_consulate", code=consulate)))
        chosen = chosen or next(iter(settings.consulates.values()))
        try:
            schedule: Schedule | None = _schedule(settings, chosen)
        except FeeError:  # no version in force yet
            schedule = None
        return page(
            request,
            "citizen/fees.html",
            status_code=404 if messages else 200,
            messages=messages,
            consulates=list(settings.consulates.values()),
            chosen=chosen,
            schedule=schedule,
        )

    @get("/pay", name="web-pay", sync_to_thread=False)
    def choose(
        self,
        request: Request[Any, Any, Any],
        state: State,
        consulate: ConsulateCode = None,
        fee: FeeCodes = None,
        change: Annotated[str | None, QueryParameter(name="change", max_length=1, required=False)] = None,
    ) -> Template:
        """Step 1: the consulate, then the services, priced from the schedule in force; then the review."""
        settings: Settings = state.settings
        t = translator(request)
        chosen = _consulate(settings, consulate)
        messages: list[Message] = []
        if consulate and chosen is None:
            messages.append(Message("error", t("fees.unknown_consulate", code=consulate)))
        schedule = _schedule(settings, chosen) if chosen else None
        selected = [code for code in (fee or []) if schedule and code in _codes(schedule)]
        if fee is not None and schedule and not selected:
            messages.append(Message("error", t("pay.choose_one")))
        if schedule and selected and not messages and change is None:
            return self._review(request, schedule, selected)
        return page(
            request,
            "citizen/pay.html",
            status_code=400 if messages else 200,
            messages=messages,
            consulates=list(settings.consulates.values()),
            chosen=chosen,
            schedule=schedule,
            selected=selected,
            max_fees=MAX_FEES_PER_PAYMENT,
        )

    def _review(self, request: Request[Any, Any, Any], schedule: Schedule, selected: list[str]) -> Template:
        lines = [priced for priced in schedule.fees if priced.fee.code in selected]
        total = Money.zero(schedule.consulate.currency)
        for line in lines:
            total += line.amount
        return page(request, "citizen/review.html", schedule=schedule, lines=lines, total=total)

    @get("/check", name="web-check", middleware=[_status_checks.middleware], sync_to_thread=True)
    def check(self, request: Request[Any, Any, Any], state: State, number: TypedNumber = None) -> Template:
        """A stamp's status by its printed number: valid, used, refunded, expired or unknown."""
        if number is None:
            return page(request, "citizen/check.html", typed="", result=None, error=None)
        t = translator(request)
        try:
            wanted = StampNumber.parse(number)
        except StampNumberError:
            return page(
                request,
                "citizen/check.html",
                status_code=400,
                typed=number,
                result=None,
                error=t("check.bad_number"),
            )
        database: Database = state.database
        with database.read() as session:
            result = public_status(session, state.settings, wanted)
        return page(request, "citizen/check.html", typed=number, result=result, error=None)

    @get("/receipts/{token:str}", name="web-receipt", sync_to_thread=True)
    def receipt(self, request: Request[Any, Any, Any], state: State, token: ReceiptToken) -> Template:
        """A citizen's receipt by its secret link: the QR, the printed number, the PDF to download."""
        database: Database = state.database
        settings: Settings = state.settings
        try:
            with database.read() as session:
                stamp = receipt_files.find_receipt(session, token)
        except receipt_files.ReceiptNotFoundError:
            raise NotFoundException("no receipt behind this link") from None
        qr = base64.b64encode(receipt_files.receipt_qr_svg(stamp)).decode()
        return page(
            request,
            "citizen/receipt.html",
            stamp=stamp,
            consulate=settings.consulate(stamp.consulate),
            fee=settings.fees.latest_fees()[stamp.fee_code],
            qr_data_uri=f"data:image/svg+xml;base64,{qr}",
            pdf_url=f"/receipts/{token}.pdf",
        )

    @get("/{rest:path}", name="web-not-found", sync_to_thread=False)
    def not_found(self, rest: Annotated[str, PathParameter()]) -> Template:
        """Any other address under /web answers the HTML 404 page, not the API's problem+json."""
        raise NotFoundException(f"no page {rest}")


def _codes(schedule: Schedule) -> set[str]:
    return {priced.fee.code for priced in schedule.fees}


@get("/", name="web-root", include_in_schema=False, sync_to_thread=False, status_code=302)
def root() -> Redirect:
    """People who open the service's address land on the citizen pages."""
    return Redirect("/web/")


CITIZEN_ROUTES: list[Any] = [CitizenController]
