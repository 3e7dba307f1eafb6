"""Exceptions as auditors work them: listed with their age, matched by hand, or posted to suspense (or a
named account) with a reason; a posting above the approval threshold waits for a second, different auditor.

Every resolution is a new row (who, when, why, the entries it made); nothing is ever changed. Later runs
read them: items matched by hand or posted count as settled.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, text
from sqlalchemy.orm import Session, aliased

from ledger.db.models import Account
from ledger.db.models_reconciliation import (
    ReconException,
    ReconImport,
    ReconImportLine,
    ReconMatch,
    ReconResolution,
    ReconRun,
)
from ledger.domain.chart import AccountSpec, Chart, Role
from ledger.domain.entries import EntryDraft, EntryKind, PostingLine, References
from ledger.money import Money
from ledger.services import clock
from ledger.services.accounts import spec_of
from ledger.services.journal import post_entry
from ledger.settings import ReconciliationSettings
from reconciliation.matching.work import PAYMENT_CATEGORIES

BUCKETS = ("0-2", "3-7", "8-30", ">30")
STATUSES = ("open", "pending_approval", "resolved", "cleared", "superseded")


class ExceptionNotFoundError(LookupError):
    pass


class ResolutionNotFoundError(LookupError):
    pass


class ResolutionConflictError(Exception):
    """The exception or resolution is not in a state that allows this (already resolved, same auditor)."""


class ResolutionInvalidError(ValueError):
    """The request cannot be carried out as given; `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def aging_bucket(business_day: date, today: date) -> str:
    """0-2, 3-7, 8-30 or >30 days since the business day the difference belongs to."""
    age = (today - business_day).days
    if age <= 2:
        return "0-2"
    if age <= 7:
        return "3-7"
    if age <= 30:
        return "8-30"
    return ">30"


@dataclass(frozen=True, slots=True)
class ResolutionView:
    id: int
    exception_id: int
    action: str
    status: str
    actor: str
    at: datetime
    reason: str
    account: str
    amount: Money | None
    matched_entry_id: uuid.UUID | None
    matched_line: tuple[int, int] | None
    decides: int | None
    entry_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True, slots=True)
class ExceptionView:
    id: int
    run_id: int
    category: str
    business_day: date
    age_days: int
    bucket: str
    status: str
    currency: str
    entry_id: uuid.UUID | None
    line: tuple[int, int] | None
    line_number: int | None
    file_name: str
    ledger_amount: Money | None
    export_amount: Money | None
    difference: Money | None
    reference: str
    cash_role: str
    provider: str
    consulate: str
    message: str
    detail: dict[str, Any]
    resolutions: tuple[ResolutionView, ...] = field(default=())


# Status, in SQL -------------------------------------------------------------------------------------------

_decision = aliased(ReconResolution)


def _latest_run_ids() -> Any:
    return select(func.max(ReconRun.id)).group_by(ReconRun.business_day, ReconRun.scope)


def _concerns() -> ColumnElement[bool]:
    """A resolution of this exception, or one that matched this exception's item to another's."""
    return or_(
        ReconResolution.exception_id == ReconException.id,
        and_(
            ReconException.entry_id.is_not(None), ReconResolution.matched_entry_id == ReconException.entry_id
        ),
        and_(
            ReconException.import_id.is_not(None),
            ReconResolution.matched_import_id == ReconException.import_id,
            ReconResolution.matched_item_no == ReconException.item_no,
        ),
    )


def _effective() -> ColumnElement[bool]:
    approved = exists().where(_decision.decides_id == ReconResolution.id, _decision.action == "approve")
    return exists().where(
        _concerns(),
        ReconResolution.action.in_(("match", "post")),
        or_(ReconResolution.status == "done", approved),
    )


def _pending() -> ColumnElement[bool]:
    return exists().where(
        _concerns(),
        ReconResolution.status == "pending_approval",
        ~exists().where(_decision.decides_id == ReconResolution.id),
    )


def _cleared() -> ColumnElement[bool]:
    later = ReconMatch.run_id.in_(_latest_run_ids()) & (ReconMatch.run_id != ReconException.run_id)
    return or_(
        and_(
            ReconException.entry_id.is_not(None),
            exists().where(ReconMatch.entry_id == ReconException.entry_id, later),
        ),
        and_(
            ReconException.import_id.is_not(None),
            exists().where(
                ReconMatch.import_id == ReconException.import_id,
                ReconMatch.item_no == ReconException.item_no,
                later,
            ),
        ),
    )


def _status_filter(status: str) -> ColumnElement[bool]:
    current = ReconException.run_id.in_(_latest_run_ids())
    if status == "superseded":
        return ~current
    if status == "resolved":
        return current & _effective()
    if status == "pending_approval":
        return current & ~_effective() & _pending()
    if status == "cleared":
        return current & ~_effective() & ~_pending() & _cleared()
    return current & ~_effective() & ~_pending() & ~_cleared()


def _status_of(session: Session, exception: ReconException) -> str:
    for status in ("open", "pending_approval", "resolved", "cleared", "superseded"):
        if session.scalar(
            select(ReconException.id).where(ReconException.id == exception.id, _status_filter(status))
        ):
            return status
    return "superseded"  # pragma: no cover - the filters above cover every case


# Reading -------------------------------------------------------------------------------------------------


def _money(minor: int | None, currency: str) -> Money | None:
    return None if minor is None else Money(minor, currency)


def _resolution_views(session: Session, exception_ids: list[int]) -> dict[int, list[ResolutionView]]:
    views: dict[int, list[ResolutionView]] = {i: [] for i in exception_ids}
    if not exception_ids:
        return views
    for row in session.scalars(
        select(ReconResolution)
        .where(ReconResolution.exception_id.in_(exception_ids))
        .order_by(ReconResolution.id)
    ):
        views[row.exception_id].append(_resolution_view(row))
    return views


def _resolution_view(row: ReconResolution) -> ResolutionView:
    return ResolutionView(
        id=row.id,
        exception_id=row.exception_id,
        action=row.action,
        status=row.status,
        actor=row.actor,
        at=row.at,
        reason=row.reason,
        account=row.account,
        amount=_money(row.amount, row.currency) if row.currency else None,
        matched_entry_id=row.matched_entry_id,
        matched_line=(row.matched_import_id, row.matched_item_no)
        if row.matched_import_id is not None and row.matched_item_no is not None
        else None,
        decides=row.decides_id,
        entry_ids=tuple(uuid.UUID(e) for e in row.entry_ids),
    )


def _view(
    exception: ReconException,
    *,
    status: str,
    today: date,
    line_number: int | None,
    file_name: str,
    resolutions: list[ResolutionView],
) -> ExceptionView:
    day = date.fromisoformat(exception.business_day)
    currency = exception.currency
    ledger, export = exception.ledger_amount, exception.export_amount
    same_currency = exception.detail.get("ledger_currency") in (None, currency)
    difference = None
    if exception.category != "balance" and same_currency and (ledger is not None or export is not None):
        difference = Money((export or 0) - (ledger or 0), currency)
    return ExceptionView(
        id=exception.id,
        run_id=exception.run_id,
        category=exception.category,
        business_day=day,
        age_days=(today - day).days,
        bucket=aging_bucket(day, today),
        status=status,
        currency=currency,
        entry_id=exception.entry_id,
        line=(exception.import_id, exception.item_no)
        if exception.import_id is not None and exception.item_no is not None
        else None,
        line_number=line_number,
        file_name=file_name,
        ledger_amount=_money(ledger, str(exception.detail.get("ledger_currency", currency))),
        export_amount=_money(export, currency),
        difference=difference,
        reference=exception.reference,
        cash_role=exception.cash_role,
        provider=exception.provider,
        consulate=exception.consulate,
        message=str(exception.detail.get("message", "")),
        detail=exception.detail,
        resolutions=tuple(resolutions),
    )


def _rows(session: Session, query: Any) -> list[tuple[ReconException, int | None, str | None]]:
    return [
        (exception, line_number, file_name)
        for exception, line_number, file_name in session.execute(
            query.add_columns(ReconImportLine.line_number, ReconImport.file_name)
            .outerjoin(
                ReconImportLine,
                and_(
                    ReconImportLine.import_id == ReconException.import_id,
                    ReconImportLine.item_no == ReconException.item_no,
                ),
            )
            .outerjoin(ReconImport, ReconImport.id == ReconException.import_id)
        )
    ]


def list_exceptions(
    session: Session,
    *,
    today: date,
    status: str = "open",
    category: str | None = None,
    business_day: date | None = None,
    bucket: str | None = None,
    run_id: int | None = None,
    limit: int = 100,
    after: int | None = None,
) -> list[ExceptionView]:
    """Exceptions in (business day, id) order; by default the open ones of each day's latest run."""
    if status not in STATUSES:
        raise ResolutionInvalidError("status", f"one of {', '.join(STATUSES)}")
    query = select(ReconException).where(_status_filter(status))
    if category is not None:
        query = query.where(ReconException.category == category)
    if business_day is not None:
        query = query.where(ReconException.business_day == business_day.isoformat())
    if run_id is not None:
        query = query.where(ReconException.run_id == run_id)
    if after is not None:
        query = query.where(ReconException.id > after)
    if bucket is not None:
        if bucket not in BUCKETS:
            raise ResolutionInvalidError("bucket", f"one of {', '.join(BUCKETS)}")
        low, high = {"0-2": (0, 2), "3-7": (3, 7), "8-30": (8, 30), ">30": (31, 100_000)}[bucket]
        newest = date.fromordinal(today.toordinal() - low).isoformat()
        oldest = date.fromordinal(max(1, today.toordinal() - high)).isoformat()
        query = query.where(ReconException.business_day <= newest, ReconException.business_day >= oldest)
    rows = _rows(session, query.order_by(ReconException.id).limit(limit))
    resolutions = _resolution_views(session, [row[0].id for row in rows])
    return [
        _view(
            exception,
            status=status,
            today=today,
            line_number=line_number,
            file_name=file_name or "",
            resolutions=resolutions[exception.id],
        )
        for exception, line_number, file_name in rows
    ]


def get_exception(session: Session, exception_id: int, *, today: date) -> ExceptionView:
    rows = _rows(session, select(ReconException).where(ReconException.id == exception_id))
    if not rows:
        raise ExceptionNotFoundError(f"no exception {exception_id}")
    exception, line_number, file_name = rows[0]
    return _view(
        exception,
        status=_status_of(session, exception),
        today=today,
        line_number=line_number,
        file_name=file_name or "",
        resolutions=_resolution_views(session, [exception_id])[exception_id],
    )


# Resolving -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """Who decides and why; `account` is where a difference goes (default: suspense)."""

    actor: str
    reason: str
    account: str | None = None


def _locked(session: Session, exception_id: int) -> ReconException:
    query = select(ReconException).where(ReconException.id == exception_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # a lock, not an update: two auditors resolving queue here
    exception = session.scalar(query)
    if exception is None:
        raise ExceptionNotFoundError(f"no exception {exception_id}")
    status = _status_of(session, exception)
    if status != "open":
        raise ResolutionConflictError(f"exception {exception_id} is {status.replace('_', ' ')}, not open")
    return exception


def _check_decision(decision: Decision) -> None:
    if not decision.actor.strip():
        raise ResolutionInvalidError("actor", "say who decides")
    if not decision.reason.strip():
        raise ResolutionInvalidError("reason", "say why")


def _entry_cash(session: Session, entry_id: uuid.UUID, currency: str) -> int | None:
    """What the matcher would count for this entry: its treasury movement, else its clearing movement."""
    row = session.execute(
        text("""
            SELECT sum(CASE WHEN a.role = 'treasury' THEN p.amount ELSE 0 END),
                   sum(CASE WHEN a.role = 'clearing' THEN p.amount ELSE 0 END), count(*)
              FROM postings p JOIN accounts a ON a.id = p.account_id
             WHERE p.entry_id = :entry AND p.currency = :currency
        """),
        {
            "entry": entry_id if session.get_bind().dialect.name == "postgresql" else entry_id.bytes,
            "currency": currency,
        },
    ).one()
    treasury, clearing, count = row
    if not count:
        return None
    return int(treasury) if int(treasury or 0) != 0 else int(clearing or 0)


def _line_amount(session: Session, line: tuple[int, int]) -> tuple[int, str]:
    found = session.execute(
        select(ReconImportLine, ReconImport.source, ReconImport.status)
        .join(ReconImport, ReconImport.id == ReconImportLine.import_id)
        .where(ReconImportLine.import_id == line[0], ReconImportLine.item_no == line[1])
    ).one_or_none()
    if found is None:
        raise ResolutionInvalidError("line", f"no line {line[0]}:{line[1]} (import:item)")
    row, source, _ = found
    if source == "settlement" and row.category in PAYMENT_CATEGORIES and row.gross is not None:
        return int(row.gross), row.currency
    return int(row.amount), row.currency


def _already_matched(session: Session, *, entry_id: uuid.UUID | None, line: tuple[int, int] | None) -> bool:
    """Whether a current run matched this item, or a resolution (done or waiting) took it already."""
    query = select(ReconMatch.run_id).where(ReconMatch.run_id.in_(_latest_run_ids()))
    taken = select(ReconResolution.id).where(ReconResolution.action.in_(("match", "post")))
    if entry_id is not None:
        query = query.where(ReconMatch.entry_id == entry_id)
        taken = taken.where(ReconResolution.matched_entry_id == entry_id)
    elif line is not None:
        query = query.where(ReconMatch.import_id == line[0], ReconMatch.item_no == line[1])
        taken = taken.where(
            ReconResolution.matched_import_id == line[0], ReconResolution.matched_item_no == line[1]
        )
    rejected = exists().where(_decision.decides_id == ReconResolution.id, _decision.action == "reject")
    return (
        session.scalar(query.limit(1)) is not None
        or session.scalar(taken.where(~rejected).limit(1)) is not None
    )


def _target(session: Session, code: str | None, currency: str, chart: Chart) -> AccountSpec:
    suspense = chart.account(Role.SUSPENSE, currency=currency)
    if code is None or code == suspense.code:
        return suspense  # opened on first use, like every account of the chart
    account = session.scalar(select(Account).where(Account.code == code))
    if account is None:
        raise ResolutionInvalidError("account", f"no account {code!r} in the ledger")
    if account.currency != currency:
        raise ResolutionInvalidError(
            "account", f"{code} holds {account.currency}, the difference is in {currency}"
        )
    return spec_of(account)


def _post(
    session: Session,
    exception: ReconException,
    amount: Money,
    *,
    account: str | None,
    decision: Decision,
    chart: Chart,
    line_key: str,
) -> uuid.UUID:
    """The reconciliation entry for a difference: the account that holds it against the target."""
    if exception.cash_role == "clearing" and exception.provider:
        held = chart.account(Role.CLEARING, currency=amount.currency, provider=exception.provider)
    else:
        held = chart.account(Role.TREASURY, currency=amount.currency)
    target = _target(session, account, amount.currency, chart)
    draft = EntryDraft(
        kind=EntryKind.RECONCILIATION,
        lines=(PostingLine(held, amount), PostingLine(target, -amount)),
        consulate=exception.consulate,
        references=References(payment=exception.reference[:64], import_line=line_key[:64]),
        memo={
            "exception": str(exception.id),
            "run": str(exception.run_id),
            "category": exception.category,
            "business_day": exception.business_day,
        },
        reason=decision.reason,
    )
    return post_entry(session, draft, actor=decision.actor).entry_id


def _line_key(session: Session, import_id: int | None, item_no: int | None) -> str:
    if import_id is None or item_no is None:
        return ""
    row = session.execute(
        select(ReconImport.sha256, ReconImportLine.line_number, ReconImportLine.detail_no)
        .join(ReconImportLine, ReconImportLine.import_id == ReconImport.id)
        .where(ReconImportLine.import_id == import_id, ReconImportLine.item_no == item_no)
    ).one()
    sha256, line_number, detail_no = row
    return f"{sha256[:16]}:{line_number}" + (f":{detail_no}" if detail_no else "")


def _record(
    session: Session,
    exception: ReconException,
    *,
    action: str,
    decision: Decision,
    settings: ReconciliationSettings,
    chart: Chart,
    difference: Money | None,
    matched_entry: uuid.UUID | None = None,
    matched_line: tuple[int, int] | None = None,
) -> ResolutionView:
    account_code = ""
    if difference is not None and difference.minor != 0:
        account_code = _target(session, decision.account, difference.currency, chart).code
    waits = (
        difference is not None
        and abs(difference.minor) > settings.approval_threshold_for(difference.currency).minor
    )
    entries: list[str] = []
    if difference is not None and difference.minor != 0 and not waits:
        line_key = _line_key(session, exception.import_id, exception.item_no)
        entries.append(
            str(
                _post(
                    session,
                    exception,
                    difference,
                    account=decision.account,
                    decision=decision,
                    chart=chart,
                    line_key=line_key,
                )
            )
        )
    row = ReconResolution(
        exception_id=exception.id,
        action=action,
        status="pending_approval" if waits else "done",
        actor=decision.actor[:100],
        at=clock.now(),
        reason=decision.reason,
        account=account_code,
        currency=difference.currency if difference is not None else "",
        amount=difference.minor if difference is not None else None,
        matched_entry_id=matched_entry,
        matched_import_id=matched_line[0] if matched_line else None,
        matched_item_no=matched_line[1] if matched_line else None,
        entry_ids=entries,
    )
    session.add(row)
    session.flush()
    return _resolution_view(row)


def _counterpart(
    session: Session,
    exception: ReconException,
    entry_id: uuid.UUID | None,
    line: tuple[int, int] | None,
    other_exception: int | None,
) -> tuple[uuid.UUID | None, tuple[int, int] | None]:
    """The item the auditor names for the side the exception lacks, taken from another exception if asked."""
    if sum(x is not None for x in (entry_id, line, other_exception)) > 1:
        raise ResolutionInvalidError("counterpart", "give one of entry, line or exception")
    if other_exception is None:
        return entry_id, line
    other = session.get(ReconException, other_exception)
    if other is None or other.id == exception.id:
        raise ResolutionInvalidError("exception", f"no other exception {other_exception}")
    if _status_of(session, other) != "open":
        raise ResolutionConflictError(f"exception {other.id} is not open")
    if exception.entry_id is None and other.entry_id is not None:
        return other.entry_id, None
    if exception.import_id is None and other.import_id is not None and other.item_no is not None:
        return None, (other.import_id, other.item_no)
    raise ResolutionInvalidError("exception", f"exception {other.id} holds nothing this one lacks")


def _ledger_side(session: Session, exception: ReconException, entry_id: uuid.UUID | None) -> int | None:
    if exception.entry_id is not None:
        if entry_id is not None:
            raise ResolutionInvalidError("entry", "this exception has its ledger entry already")
        return exception.ledger_amount
    if entry_id is None:
        raise ResolutionInvalidError("entry", "this exception has no ledger entry: say which one it is")
    if _already_matched(session, entry_id=entry_id, line=None):
        raise ResolutionConflictError(f"entry {entry_id} is matched already")
    cash = _entry_cash(session, entry_id, exception.currency)
    if cash is None:
        raise ResolutionInvalidError("entry", f"entry {entry_id} has no posting in {exception.currency}")
    return cash


def _export_side(session: Session, exception: ReconException, line: tuple[int, int] | None) -> int | None:
    if exception.import_id is not None:
        if line is not None:
            raise ResolutionInvalidError("line", "this exception has its export line already")
        return exception.export_amount
    if line is None:
        raise ResolutionInvalidError("line", "this exception has no export line: say which one it is")
    if _already_matched(session, entry_id=None, line=line):
        raise ResolutionConflictError(f"line {line[0]}:{line[1]} is matched already")
    amount, currency = _line_amount(session, line)
    if currency != exception.currency:
        raise ResolutionInvalidError(
            "line", f"the line is in {currency}, the exception in {exception.currency}"
        )
    return amount


def match_by_hand(
    session: Session,
    exception_id: int,
    decision: Decision,
    *,
    settings: ReconciliationSettings,
    chart: Chart,
    entry_id: uuid.UUID | None = None,
    line: tuple[int, int] | None = None,
    other_exception: int | None = None,
) -> ResolutionView:
    """Say which ledger entry and which line belong together; any difference is posted (to suspense, or
    `decision.account`), and above the threshold the posting waits for a second auditor."""
    _check_decision(decision)
    exception = _locked(session, exception_id)
    if exception.category == "balance":
        raise ResolutionInvalidError(
            "exception", "a balance difference clears when the day's items are resolved"
        )
    entry_id, line = _counterpart(session, exception, entry_id, line, other_exception)
    ledger = _ledger_side(session, exception, entry_id)
    export = _export_side(session, exception, line)
    mixed = exception.detail.get("ledger_currency") not in (None, exception.currency)
    difference = None if mixed else Money((export or 0) - (ledger or 0), exception.currency)
    return _record(
        session,
        exception,
        action="match",
        decision=decision,
        settings=settings,
        chart=chart,
        difference=difference,
        matched_entry=entry_id,
        matched_line=line,
    )


def post_difference(
    session: Session, exception_id: int, decision: Decision, *, settings: ReconciliationSettings, chart: Chart
) -> ResolutionView:
    """Post the exception's difference to suspense (or `decision.account`) with a reason."""
    _check_decision(decision)
    exception = _locked(session, exception_id)
    if exception.category == "balance":
        raise ResolutionInvalidError(
            "exception", "a balance difference clears when the day's items are resolved"
        )
    if exception.detail.get("ledger_currency") not in (None, exception.currency):
        raise ResolutionInvalidError(
            "exception", "the two sides are in different currencies: match it by hand"
        )
    amount = Money((exception.export_amount or 0) - (exception.ledger_amount or 0), exception.currency)
    if amount.minor == 0:
        raise ResolutionInvalidError("exception", "there is no difference to post: match it by hand")
    return _record(
        session,
        exception,
        action="post",
        decision=decision,
        settings=settings,
        chart=chart,
        difference=amount,
    )


def _pending_resolution(session: Session, resolution_id: int) -> tuple[ReconResolution, ReconException]:
    query = select(ReconResolution).where(ReconResolution.id == resolution_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    resolution = session.scalar(query)
    if resolution is None:
        raise ResolutionNotFoundError(f"no resolution {resolution_id}")
    if resolution.status != "pending_approval":
        raise ResolutionConflictError(f"resolution {resolution_id} does not wait for approval")
    if session.scalar(select(ReconResolution.id).where(ReconResolution.decides_id == resolution_id)):
        raise ResolutionConflictError(f"resolution {resolution_id} was decided already")
    exception = session.get(ReconException, resolution.exception_id)
    assert exception is not None
    return resolution, exception


def approve(session: Session, resolution_id: int, decision: Decision, *, chart: Chart) -> ResolutionView:
    """A second auditor approves a posting above the threshold: it is posted now."""
    _check_decision(decision)
    resolution, exception = _pending_resolution(session, resolution_id)
    if resolution.actor == decision.actor[:100]:
        raise ResolutionConflictError(
            f"resolution {resolution_id} was made by {resolution.actor}: another auditor must approve it"
        )
    if _status_of(session, exception) == "superseded":
        raise ResolutionConflictError(
            f"the day of exception {exception.id} was reconciled again: resolve the new exception"
        )
    assert resolution.amount is not None
    amount = Money(resolution.amount, resolution.currency)
    entry = _post(
        session,
        exception,
        amount,
        account=resolution.account or None,
        decision=Decision(decision.actor, f"{resolution.reason} (approved: {decision.reason})"),
        chart=chart,
        line_key=_line_key(session, exception.import_id, exception.item_no),
    )
    return _decide(session, resolution, exception, decision, action="approve", entries=[str(entry)])


def reject(session: Session, resolution_id: int, decision: Decision) -> ResolutionView:
    """A second auditor refuses a posting: nothing is posted and the exception is open again."""
    _check_decision(decision)
    resolution, exception = _pending_resolution(session, resolution_id)
    if resolution.actor == decision.actor[:100]:
        raise ResolutionConflictError(
            f"resolution {resolution_id} was made by {resolution.actor}: another auditor must decide it"
        )
    return _decide(session, resolution, exception, decision, action="reject", entries=[])


def _decide(
    session: Session,
    resolution: ReconResolution,
    exception: ReconException,
    decision: Decision,
    *,
    action: str,
    entries: list[str],
) -> ResolutionView:
    row = ReconResolution(
        exception_id=exception.id,
        action=action,
        status="done",
        actor=decision.actor[:100],
        at=clock.now(),
        reason=decision.reason,
        account=resolution.account,
        currency=resolution.currency,
        amount=resolution.amount,
        decides_id=resolution.id,
        entry_ids=entries,
    )
    session.add(row)
    session.flush()
    return _resolution_view(row)


def get_resolution(session: Session, resolution_id: int) -> ResolutionView:
    row = session.get(ReconResolution, resolution_id)
    if row is None:
        raise ResolutionNotFoundError(f"no resolution {resolution_id}")
    return _resolution_view(row)
