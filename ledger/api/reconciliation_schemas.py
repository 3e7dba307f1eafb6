"""Wire schemas of the reconciliation API (msgspec), separate from the database models and services."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec

from ledger.api.schemas import ACCOUNT_CODE, Amount, Reason
from ledger.db.models_reconciliation import ReconRun
from reconciliation.imports import ImportOutcome, ImportView
from reconciliation.resolutions import ExceptionView, ResolutionView

CURRENCY = r"^[A-Z]{3}$"
PROFILE = r"^[a-z0-9][a-z0-9-]{0,62}(@[0-9]{1,6})?$"
FILE_NAME = r"^[^\x00-\x1f\x7f/\\]+$"
LINE = r"^[0-9]{1,9}:[0-9]{1,9}$"
ID_MAX = 2**31 - 1  # ids are 32-bit in the database
Category = Literal[
    "missing_in_ledger",
    "missing_in_export",
    "amount_mismatch",
    "duplicate",
    "timing",
    "currency_mismatch",
    "reversed",
    "ambiguous",
    "balance",
]
Bucket = Literal["0-2", "3-7", "8-30", ">30"]
ExceptionStatus = Literal["open", "pending_approval", "resolved", "cleared", "superseded"]


def _amount(value: Any) -> Amount | None:
    return None if value is None else Amount.of(value)


class LineErrorOut(msgspec.Struct, kw_only=True):
    line: int | None
    column: str | None
    problem: str


class ImportOut(msgspec.Struct, kw_only=True):
    id: int
    status: Literal["imported", "quarantined", "rejected"]
    duplicate: bool  # the same file was imported before: nothing was added
    sha256: str
    source: str
    profile: str
    file_name: str
    lines: int
    currencies: list[str]
    reasons: list[str]
    flags: list[dict[str, Any]]
    message: str

    @classmethod
    def of(cls, outcome: ImportOutcome) -> ImportOut:
        return cls(
            id=outcome.import_id,
            status=outcome.status,  # type: ignore[arg-type]
            duplicate=outcome.duplicate,
            sha256=outcome.sha256,
            source=outcome.source,
            profile=outcome.profile,
            file_name=outcome.file_name,
            lines=outcome.lines,
            currencies=list(outcome.currencies),
            reasons=list(outcome.reasons),
            flags=list(outcome.flags),
            message=outcome.message,
        )


class ImportDetailOut(msgspec.Struct, kw_only=True):
    outcome: ImportOut
    imported_at: str
    imported_by: str
    profile_digest: str
    first_day: str | None
    last_day: str | None
    statements: list[dict[str, Any]]
    errors: list[LineErrorOut]

    @classmethod
    def of(cls, view: ImportView) -> ImportDetailOut:
        return cls(
            outcome=ImportOut.of(view.outcome),
            imported_at=view.imported_at,
            imported_by=view.imported_by,
            profile_digest=view.profile_digest,
            first_day=view.first_day,
            last_day=view.last_day,
            statements=list(view.statements),
            errors=[
                LineErrorOut(line=e.line, column=e.column, problem=e.problem) for e in view.outcome.errors
            ],
        )


class RunIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Reconcile a business day (in the treasury's time zone) against imported files."""

    day: date
    imports: Annotated[
        list[Annotated[int, msgspec.Meta(ge=1, le=ID_MAX)]], msgspec.Meta(min_length=1, max_length=20)
    ]
    currencies: Annotated[
        list[Annotated[str, msgspec.Meta(pattern=CURRENCY)]], msgspec.Meta(max_length=20)
    ] = []


class RunOut(msgspec.Struct, kw_only=True):
    id: int
    business_day: str
    scope: list[str]
    timezone: str
    engine_version: str
    started_at: datetime
    finished_at: datetime
    started_by: str
    matches: int
    exceptions: int
    counts: dict[str, Any]
    balances: list[dict[str, Any]]
    parameters: dict[str, Any]
    inputs: dict[str, Any]
    timings: dict[str, float]

    @classmethod
    def of(cls, run: ReconRun) -> RunOut:
        return cls(
            id=run.id,
            business_day=run.business_day,
            scope=run.scope.split(","),
            timezone=run.timezone,
            engine_version=run.engine_version,
            started_at=run.started_at,
            finished_at=run.finished_at,
            started_by=run.started_by,
            matches=run.match_count,
            exceptions=run.exception_count,
            counts=run.counts,
            balances=run.balances,
            parameters=run.parameters,
            inputs=run.inputs,
            timings=run.timings,
        )


class ResolutionOut(msgspec.Struct, kw_only=True):
    id: int
    exception: int
    action: Literal["match", "post", "approve", "reject"]
    status: Literal["done", "pending_approval"]
    actor: str
    at: datetime
    reason: str
    account: str
    amount: Amount | None
    matched_entry: uuid.UUID | None
    matched_line: str | None
    decides: int | None
    entries: list[uuid.UUID]

    @classmethod
    def of(cls, view: ResolutionView) -> ResolutionOut:
        return cls(
            id=view.id,
            exception=view.exception_id,
            action=view.action,  # type: ignore[arg-type]
            status=view.status,  # type: ignore[arg-type]
            actor=view.actor,
            at=view.at,
            reason=view.reason,
            account=view.account,
            amount=_amount(view.amount),
            matched_entry=view.matched_entry_id,
            matched_line=f"{view.matched_line[0]}:{view.matched_line[1]}" if view.matched_line else None,
            decides=view.decides,
            entries=list(view.entry_ids),
        )


class ExceptionOut(msgspec.Struct, kw_only=True):
    id: int
    run: int
    category: Category
    business_day: date
    age_days: int
    bucket: Bucket
    status: ExceptionStatus
    currency: str
    entry: uuid.UUID | None
    line: str | None  # "import:item"
    line_number: int | None
    file_name: str
    ledger_amount: Amount | None
    export_amount: Amount | None
    difference: Amount | None
    reference: str
    holds: str  # where a posting of the difference lands on the ledger side: treasury or clearing
    provider: str
    consulate: str
    message: str
    detail: dict[str, Any]
    resolutions: list[ResolutionOut]

    @classmethod
    def of(cls, view: ExceptionView) -> ExceptionOut:
        return cls(
            id=view.id,
            run=view.run_id,
            category=view.category,  # type: ignore[arg-type]
            business_day=view.business_day,
            age_days=view.age_days,
            bucket=view.bucket,  # type: ignore[arg-type]
            status=view.status,  # type: ignore[arg-type]
            currency=view.currency,
            entry=view.entry_id,
            line=f"{view.line[0]}:{view.line[1]}" if view.line else None,
            line_number=view.line_number,
            file_name=view.file_name,
            ledger_amount=_amount(view.ledger_amount),
            export_amount=_amount(view.export_amount),
            difference=_amount(view.difference),
            reference=view.reference,
            holds=view.cash_role,
            provider=view.provider,
            consulate=view.consulate,
            message=view.message,
            detail=view.detail,
            resolutions=[ResolutionOut.of(r) for r in view.resolutions],
        )


class ExceptionPageOut(msgspec.Struct, kw_only=True):
    exceptions: list[ExceptionOut]
    next: int | None  # pass as `after` to read the following page


class MatchIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Say what the exception's missing side is: a ledger entry, an export line, or another exception's item.
    A difference is posted to suspense, or to `account`; above the threshold it waits for approval."""

    reason: Reason
    entry: uuid.UUID | None = None
    line: Annotated[str, msgspec.Meta(pattern=LINE, description="import:item")] | None = None
    exception: Annotated[int, msgspec.Meta(ge=1, le=ID_MAX)] | None = None
    account: Annotated[str, msgspec.Meta(min_length=1, max_length=160, pattern=ACCOUNT_CODE)] | None = None


class PostIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Post the exception's difference to suspense, or to `account`, with a reason."""

    reason: Reason
    account: Annotated[str, msgspec.Meta(min_length=1, max_length=160, pattern=ACCOUNT_CODE)] | None = None


class DecisionIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Reason
