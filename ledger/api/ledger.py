"""The ledger for auditors (read) and administrators (adjust, reverse); cashiers read their own consulate."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy.orm import Session

from ledger.api import problems
from ledger.api.auth import consulate_scope, principal_of, requires
from ledger.api.idempotency import IdempotencyKey, canonical, run_once
from ledger.api.problems import ApiProblem
from ledger.api.schemas import (
    ACCOUNT_CODE,
    CONSULATE,
    FEE_CODE,
    REFERENCE,
    AccountOut,
    AdjustmentIn,
    BalanceOut,
    BalancesOut,
    EntryOut,
    EntryPageOut,
    ReversalIn,
)
from ledger.db.engine import Database
from ledger.db.types import from_micros, to_micros
from ledger.domain.chart import AccountType
from ledger.domain.entries import EntryKind
from ledger.services import adjustments, clock, journal
from ledger.services.accounts import list_accounts
from ledger.services.adjustments import FieldError
from ledger.services.apikeys import Role
from ledger.services.balances import SPLITS, SliceFilter, balances
from ledger.settings import Settings

READERS = requires(Role.AUDITOR, Role.ADMIN, Role.CASHIER)


def _cursor(after: tuple[datetime, uuid.UUID] | None) -> str | None:
    if after is None:
        return None
    raw = f"{to_micros(after[0])}.{after[1].hex}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _uncursor(text: str) -> tuple[datetime, uuid.UUID]:
    try:
        micros, _, key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode().partition(".")
        return from_micros(int(micros)), uuid.UUID(hex=key)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiProblem(
            400,
            "validation",
            "The request is not valid",
            detail="after: not a cursor this service gave out",
            extra={
                "errors": [
                    {"field": "after", "message": "not a cursor this service gave out", "source": "query"}
                ]
            },
        ) from None


def _field_problem(error: FieldError) -> ApiProblem:
    return ApiProblem(
        422,
        "field-invalid",
        "A value cannot be used",
        detail=str(error),
        extra={"errors": [{"field": error.field, "message": error.message, "source": "body"}]},
    )


def _aware(moment: datetime | None, field: str) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        raise ApiProblem(
            400,
            "validation",
            "The request is not valid",
            detail=f"{field}: give a time zone (e.g. 2026-11-22T23:59:59Z)",
            extra={"errors": [{"field": field, "message": "needs a time zone", "source": "query"}]},
        )
    return moment


class LedgerController(Controller):
    path = "/ledger"
    tags = ["ledger"]
    guards = [READERS]

    @get(
        "/accounts",
        operation_id="listAccounts",
        summary="The chart of accounts as opened in the ledger",
        responses=problems.responses(401, 403),
        sync_to_thread=True,
    )
    def accounts(self, state: State) -> list[AccountOut]:
        database: Database = state.database
        with database.read() as session:
            return [
                AccountOut(
                    code=a.code,
                    currency=a.currency,
                    type=a.type,
                    role=a.role,
                    provider=a.provider,
                    consulate=a.consulate,
                    fee_code=a.fee_code,
                    opened_at=a.opened_at,
                )
                for a in list_accounts(session)
            ]

    @get(
        "/entries",
        operation_id="listEntries",
        summary="The journal, oldest first, a page at a time",
        responses=problems.responses(400, 401, 403),
        sync_to_thread=True,
    )
    def entries(
        self,
        request: Request[Any, Any, Any],
        state: State,
        since: Annotated[
            datetime | None, QueryParameter(description="effective at or after (with time zone)")
        ] = None,
        until: Annotated[
            datetime | None, QueryParameter(description="effective before (with time zone)")
        ] = None,
        consulate: Annotated[str | None, QueryParameter(pattern=CONSULATE)] = None,
        kind: Annotated[EntryKind | None, QueryParameter()] = None,
        payment: Annotated[str | None, QueryParameter(max_length=64, pattern=REFERENCE)] = None,
        stamp: Annotated[str | None, QueryParameter(max_length=32, pattern=REFERENCE)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        after: Annotated[
            str | None,
            QueryParameter(max_length=200, pattern=REFERENCE, description="the `next` of the previous page"),
        ] = None,
    ) -> EntryPageOut:
        database: Database = state.database
        scope = consulate_scope(principal_of(request), consulate)
        where = journal.EntryFilter(
            since=_aware(since, "since"),
            until=_aware(until, "until"),
            consulate=scope,
            kind=kind,
            payment=payment,
            stamp=stamp,
        )
        with database.read() as session:
            page = journal.list_entries(
                session, where, limit=limit, after=_uncursor(after) if after else None
            )
        return EntryPageOut(
            entries=[EntryOut.of(view) for view in page.entries], next=_cursor(page.next_after)
        )

    @get(
        "/entries/{entry_id:uuid}",
        operation_id="getEntry",
        summary="One entry with its postings",
        responses=problems.responses(401, 403, 404),
        sync_to_thread=True,
    )
    def entry(self, request: Request[Any, Any, Any], state: State, entry_id: FromPath[uuid.UUID]) -> EntryOut:
        database: Database = state.database
        with database.read() as session:
            view = journal.get_entry(session, entry_id)
        principal = principal_of(request)
        if principal.role is Role.CASHIER and view.consulate != principal.consulate:
            raise ApiProblem(
                403, "forbidden", "Forbidden", detail=f"this cashier key serves {principal.consulate}"
            )
        return EntryOut.of(view)

    @get(
        "/balances",
        operation_id="getBalances",
        summary="Balances now or as of an instant, by account and slice",
        responses=problems.responses(400, 401, 403),
        sync_to_thread=True,
    )
    def balances(
        self,
        request: Request[Any, Any, Any],
        state: State,
        as_of: Annotated[
            datetime | None, QueryParameter(description="inclusive; default now; with time zone")
        ] = None,
        account: Annotated[
            str | None,
            QueryParameter(
                max_length=160, pattern=ACCOUNT_CODE, description="a code, or a prefix ending in ':'"
            ),
        ] = None,
        type: Annotated[AccountType | None, QueryParameter()] = None,
        consulate: Annotated[str | None, QueryParameter(pattern=CONSULATE)] = None,
        fee_code: Annotated[str | None, QueryParameter(max_length=24, pattern=FEE_CODE)] = None,
        provider: Annotated[str | None, QueryParameter(max_length=40, pattern=ACCOUNT_CODE)] = None,
        currency: Annotated[str | None, QueryParameter(pattern=r"^[A-Z]{3}$")] = None,
        split: Annotated[
            list[str] | None,
            QueryParameter(description="split each account's balance by consulate and/or fee_code"),
        ] = None,
    ) -> BalancesOut:
        database: Database = state.database
        wanted = frozenset(split or ())
        if not wanted <= SPLITS:
            raise ApiProblem(
                400,
                "validation",
                "The request is not valid",
                detail="split: use consulate and/or fee_code",
                extra={
                    "errors": [
                        {"field": "split", "message": "use consulate and/or fee_code", "source": "query"}
                    ]
                },
            )
        moment = _aware(as_of, "as_of") or clock.now()
        where = SliceFilter(
            account=account,
            type=type,
            consulate=consulate_scope(principal_of(request), consulate),
            fee_code=fee_code,
            provider=provider,
            currency=currency,
        )
        with database.read() as session:
            rows = balances(session, where, as_of=moment, split=wanted)
        return BalancesOut(as_of=moment, balances=[BalanceOut.of(row) for row in rows])


class LedgerAdminController(Controller):
    path = "/ledger"
    tags = ["ledger"]
    guards = [requires(Role.ADMIN)]

    @post(
        "/adjustments",
        operation_id="postAdjustment",
        summary="Post a manual adjustment entry (reason required)",
        responses=problems.responses(400, 401, 403, 409, 422),
        sync_to_thread=True,
    )
    def adjust(
        self,
        request: Request[Any, Any, Any],
        state: State,
        data: JSONBody[AdjustmentIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[EntryOut]:
        database: Database = state.database
        settings: Settings = state.settings
        principal = principal_of(request)
        lines = [adjustments.AdjustmentLine(ln.account, ln.side, ln.amount, ln.fee_code) for ln in data.lines]

        def post(session: Session) -> EntryOut:
            recorded = adjustments.post_adjustment(
                session,
                lines,
                reason=data.reason,
                consulate=data.consulate,
                effective_at=_aware(data.effective_at, "effective_at"),
                actor=principal.actor,
                known_consulates=set(settings.consulates),
            )
            return EntryOut.of(journal.get_entry(session, recorded.entry_id))

        try:
            return run_once(
                database,
                scope=f"adjustment:{principal.key_id}",
                key=idempotency_key,
                request=("POST /ledger/adjustments", canonical(data)),
                status=201,
                work=post,
            )
        except FieldError as error:
            raise _field_problem(error) from None

    @post(
        "/entries/{entry_id:uuid}/reversal",
        operation_id="reverseEntry",
        summary="Reverse an entry, once, with a reason",
        responses=problems.responses(400, 401, 403, 404, 409, 422),
        sync_to_thread=True,
    )
    def reverse(
        self,
        request: Request[Any, Any, Any],
        state: State,
        entry_id: FromPath[uuid.UUID],
        data: JSONBody[ReversalIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[EntryOut]:
        database: Database = state.database
        principal = principal_of(request)

        def reverse(session: Session) -> EntryOut:
            recorded = journal.reverse_entry(session, entry_id, reason=data.reason, actor=principal.actor)
            return EntryOut.of(journal.get_entry(session, recorded.entry_id))

        return run_once(
            database,
            scope=f"reversal:{principal.key_id}",
            key=idempotency_key,
            request=(f"POST /ledger/entries/{entry_id}/reversal", canonical(data)),
            status=201,
            work=reverse,
        )
