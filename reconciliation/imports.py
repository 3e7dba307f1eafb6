"""Importing a statement file into the database: all of it or nothing, once per file, checked first.

A file is streamed through its importer and written in one transaction. Malformed content rolls it back
and leaves only a rejection record with every error; a file failing the integrity checks is recorded as
quarantined with its reasons and statements but none of its lines; the same bytes imported again add
nothing and say so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.db.engine import Database
from ledger.db.models_reconciliation import (
    ReconImport,
    ReconImportError,
    ReconImportLine,
    ReconImportStatement,
)
from ledger.services import clock
from ledger.settings import Settings
from reconciliation.days import day_number, from_day_number
from reconciliation.importers import (
    ImportChecks,
    ImportProfile,
    ImportRejectedError,
    ImportSource,
    LineError,
    ProfileSet,
    StatementFormat,
    file_sha256,
    load_profiles,
    source_kind,
    stream_import,
)
from reconciliation.importers.errors import ErrorList
from reconciliation.importers.sources import source_name
from reconciliation.lines import SequenceNumber, Statement, StatementLine

LINES: Table = ReconImportLine.__table__  # type: ignore[assignment]
REFERENCE_LIMIT = 140  # longer "references" are not references; the column and its index stay small
_BATCH = 5000
_COLUMNS = (
    "import_id",
    "item_no",
    "parent_no",
    "detail_no",
    "is_batch",
    "line_number",
    "statement_index",
    "entry_index",
    "booking_day",
    "value_day",
    "amount",
    "currency",
    "gross",
    "fee",
    "category",
    "provider",
    "reference",
    "batch_reference",
    "entry_reference",
    "counterparty",
    "description",
    "reversal",
)


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """What became of a file: imported, quarantined or rejected; `duplicate` when it was already there."""

    import_id: int
    status: str
    duplicate: bool
    sha256: str
    source: str
    profile: str
    file_name: str
    lines: int
    reasons: tuple[str, ...] = ()
    flags: tuple[dict[str, Any], ...] = ()
    errors: tuple[LineError, ...] = ()
    error_count: int = 0
    currencies: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        """Whether a run may reconcile this file's lines."""
        return self.status == "imported"

    @property
    def message(self) -> str:
        name = self.file_name or self.sha256[:12]
        if self.duplicate:
            return f"{name}: already imported as import {self.import_id} ({self.status}); nothing added"
        if self.status == "rejected":
            return (
                f"{name}: rejected, {self.error_count} error(s), nothing imported (import {self.import_id})"
            )
        if self.status == "quarantined":
            return f"{name}: quarantined (import {self.import_id}): " + "; ".join(self.reasons)
        flagged = f", {len(self.flags)} flag(s)" if self.flags else ""
        return f"{name}: {self.lines} line(s) imported as import {self.import_id}{flagged}"


def profiles_for(settings: Settings) -> ProfileSet:
    """The import profiles the configuration names (default: config/import_profiles)."""
    configured = settings.service.reconciliation.profiles_dir
    return load_profiles(Path(configured) if configured else settings.config_dir / "import_profiles")


def resolve_layout(name: str, profiles: ProfileSet) -> ImportProfile | StatementFormat:
    """`camt053`, `mt940`, or a profile as `name` or `name@version`."""
    if name in ("camt053", "mt940"):
        return "camt053" if name == "camt053" else "mt940"
    base, _, version = name.partition("@")
    if version and not version.isdigit():
        raise LookupError(f"{name!r}: write a profile as NAME or NAME@VERSION")
    return profiles.get(base, int(version) if version else None)


def previous_sequences(session: Session) -> dict[str, SequenceNumber]:
    """The last statement number imported per account: what the next file must follow."""
    rows = session.execute(
        select(ReconImportStatement.account, ReconImportStatement.seq_number, ReconImportStatement.seq_page)
        .join(ReconImport, ReconImport.id == ReconImportStatement.import_id)
        .where(ReconImport.status == "imported", ReconImportStatement.seq_number.is_not(None))
    ).all()
    last: dict[str, SequenceNumber] = {}
    for account, number, page in rows:
        assert number is not None
        current = SequenceNumber(number, page)
        known = last.get(account)
        if known is None or (number, page or 0) > (known.number, known.page or 0):
            last[account] = current
    return last


def _existing(session: Session, sha256: str) -> ReconImport | None:
    return session.scalar(
        select(ReconImport).where(ReconImport.sha256 == sha256, ReconImport.status != "rejected")
    )


def _outcome(row: ReconImport, *, duplicate: bool, errors: Sequence[LineError] = ()) -> ImportOutcome:
    return ImportOutcome(
        import_id=row.id,
        status=row.status,
        duplicate=duplicate,
        sha256=row.sha256,
        source=row.source,
        profile=row.profile,
        file_name=row.file_name,
        lines=row.line_count,
        reasons=tuple(row.reasons),
        flags=tuple(row.flags),
        errors=tuple(errors),
        error_count=row.error_count,
        currencies=tuple(c for c in row.currencies.split(",") if c),
    )


class _QuarantineError(Exception):
    """Raised inside the lines' savepoint to roll them back."""


class _LineRows:
    """Turns streamed lines into rows of recon_import_lines, numbering items and collecting facts."""

    def __init__(self, import_id: int, provider: str, errors: ErrorList) -> None:
        self.import_id = import_id
        self.provider = provider
        self.errors = errors
        self.item_no = 0
        self.lines = 0
        self.currencies: set[str] = set()
        self.days: set[int] = set()
        self.per_statement: defaultdict[int, int] = defaultdict(int)

    def rows(self, line: StatementLine) -> list[tuple[Any, ...]]:
        self.lines += 1
        self.currencies.add(line.currency)
        booking = day_number(line.booking_date)
        self.days.add(booking)
        self.per_statement[line.statement_index] += 1
        for column, value in (
            ("reference", line.reference),
            ("batch_reference", line.batch_reference),
            ("entry_reference", line.entry_reference),
        ):
            if value is not None and len(value) > REFERENCE_LIMIT:
                self.errors.add(
                    line.line_number, column, f"is {len(value)} characters long; at most {REFERENCE_LIMIT}"
                )
        details = line.batch_details
        is_batch = bool(details) and all(detail.amount is not None for detail in details)
        self.item_no += 1
        parent = self.item_no
        settlement = line.settlement
        value_day = day_number(line.value_date) if line.value_date else None
        rows: list[tuple[Any, ...]] = [
            (
                self.import_id,
                parent,
                None,
                0,
                int(is_batch),
                line.line_number,
                line.statement_index,
                line.entry_index,
                booking,
                value_day,
                line.amount.minor,
                line.currency,
                settlement.gross.minor if settlement else None,
                settlement.fee.minor if settlement else None,
                settlement.category.value if settlement else "",
                settlement.provider if settlement else self.provider,
                _cut(line.reference),
                _cut(line.batch_reference),
                _cut(line.entry_reference),
                line.counterparty or "",
                line.description or "",
                int(line.reversal),
            )
        ]
        if not is_batch:
            return rows
        for number, detail in enumerate(details, start=1):
            assert detail.amount is not None
            reference = detail.reference or detail.end_to_end_id
            if reference is not None and len(reference) > REFERENCE_LIMIT:
                self.errors.add(
                    line.line_number,
                    f"batch detail {number} reference",
                    f"is {len(reference)} characters long; at most {REFERENCE_LIMIT}",
                )
            self.item_no += 1
            rows.append(
                (
                    self.import_id,
                    self.item_no,
                    parent,
                    number,
                    0,
                    line.line_number,
                    line.statement_index,
                    line.entry_index,
                    booking,
                    value_day,
                    detail.amount.minor,
                    detail.amount.currency,
                    None,
                    None,
                    "",
                    self.provider,
                    _cut(reference),
                    _cut(line.batch_reference),
                    _cut(line.entry_reference),
                    detail.counterparty or "",
                    detail.remittance or "",
                    int(line.reversal),
                )
            )
        return rows


def _cut(value: str | None) -> str:
    # Over-long values were reported as errors already; cutting keeps the doomed insert from failing first.
    return (value or "")[:REFERENCE_LIMIT]


class _Writer:
    """Writes line rows in batches: COPY on PostgreSQL, multi-row INSERT on SQLite."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.buffer: list[tuple[Any, ...]] = []
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self._copy: Any = None
        self._stack = ExitStack()

    def __enter__(self) -> _Writer:
        if self.postgres:
            raw = self.session.connection().connection.driver_connection
            assert raw is not None
            cursor = self._stack.enter_context(raw.cursor())
            self._copy = self._stack.enter_context(
                cursor.copy(f"COPY recon_import_lines ({', '.join(_COLUMNS)}) FROM STDIN")
            )
        return self

    def add(self, rows: list[tuple[Any, ...]]) -> None:
        if self._copy is not None:
            for row in rows:
                self._copy.write_row(row)
            return
        self.buffer.extend(rows)
        if len(self.buffer) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.session.connection().execute(
                LINES.insert(), [dict(zip(_COLUMNS, row, strict=True)) for row in self.buffer]
            )
            self.buffer.clear()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        # With an error, COPY is cancelled (psycopg sends CopyFail) and the savepoint rolls it back.
        self._stack.__exit__(kind, error, trace)
        if self._copy is None and error is None:
            self.flush()


def import_file(
    database: Database,
    source: ImportSource,
    layout: ImportProfile | StatementFormat,
    *,
    file_name: str | None = None,
    actor: str = "",
    progress: Callable[[int], None] | None = None,
) -> ImportOutcome:
    """Import one file; never raises for bad content (see the outcome), only for bad arguments."""
    sha256 = file_sha256(source)
    name = (file_name if file_name is not None else source_name(source))[-255:]
    kind = source_kind(layout)
    profile = layout if isinstance(layout, ImportProfile) else None
    label = profile.label if profile else ""
    with database.read() as session:
        existing = _existing(session, sha256)
        if existing is not None:
            return _outcome(existing, duplicate=True)
    try:
        with database.write() as session:
            return _import(
                session,
                source=source,
                layout=layout,
                sha256=sha256,
                name=name,
                actor=actor,
                progress=progress,
            )
    except IntegrityError:
        # The same file was imported concurrently; the unique index let one of us in.
        with database.read() as session:
            existing = _existing(session, sha256)
        if existing is None:
            raise
        return _outcome(existing, duplicate=True)
    except ImportRejectedError as rejection:
        with database.write() as session:
            row = ReconImport(
                sha256=sha256,
                file_name=name,
                source=kind.value,
                profile=label,
                profile_digest=profile.digest if profile else "",
                status="rejected",
                reasons=[f"{len(rejection.errors) + rejection.omitted} malformed line(s): nothing imported"],
                flags=[],
                last_sequences={},
                line_count=0,
                error_count=len(rejection.errors) + rejection.omitted,
                imported_at=clock.now(),
                imported_by=actor[:100],
            )
            session.add(row)
            session.flush()
            session.add_all(
                ReconImportError(
                    import_id=row.id,
                    error_no=number,
                    line=error.line,
                    column=error.column,
                    problem=error.problem,
                )
                for number, error in enumerate(rejection.errors, start=1)
            )
            return _outcome(row, duplicate=False, errors=rejection.errors)


def _import(
    session: Session,
    *,
    source: ImportSource,
    layout: ImportProfile | StatementFormat,
    sha256: str,
    name: str,
    actor: str,
    progress: Callable[[int], None] | None,
) -> ImportOutcome:
    kind = source_kind(layout)
    profile = layout if isinstance(layout, ImportProfile) else None
    row = ReconImport(
        sha256=sha256,
        file_name=name,
        source=kind.value,
        profile=profile.label if profile else "",
        profile_digest=profile.digest if profile else "",
        status="importing",
        reasons=[],
        flags=[],
        last_sequences={},
        imported_at=clock.now(),
        imported_by=actor[:100],
    )
    session.add(row)
    session.flush()
    checks = ImportChecks(kind, previous_sequences(session))
    errors = ErrorList(source_name(source))
    facts = _LineRows(row.id, (profile.provider or "") if profile else "", errors)
    statements: list[Statement] = []
    try:
        with session.begin_nested(), _Writer(session) as writer:
            for item in _items(source, layout, errors):
                checks.add(item)
                if isinstance(item, Statement):
                    statements.append(item)
                    continue
                rows = facts.rows(item)
                if not errors:
                    writer.add(rows)
                if progress is not None and facts.lines % 1000 == 0:
                    progress(facts.lines)
            errors.raise_if_any()
            verdict = checks.verdict()
            if verdict.quarantined:
                raise _QuarantineError
    except _QuarantineError:
        pass
    if progress is not None:
        progress(facts.lines)
    row.status = "quarantined" if verdict.quarantined else "imported"
    row.line_count = 0 if verdict.quarantined else facts.lines
    row.reasons = list(verdict.reasons)
    row.flags = [
        {
            "kind": finding.kind.value,
            "message": finding.message,
            "statement": finding.statement_index,
            "line": finding.line_number,
        }
        for finding in verdict.flags
    ]
    row.last_sequences = {} if verdict.quarantined else _sequences(statements)
    row.currencies = ",".join(sorted(facts.currencies))[:64]
    row.first_day = min(facts.days, default=None)
    row.last_day = max(facts.days, default=None)
    session.add_all(_statement_rows(row.id, statements, facts.per_statement))
    session.flush()
    return _outcome(row, duplicate=False)


def _items(
    source: ImportSource, layout: ImportProfile | StatementFormat, errors: ErrorList
) -> Iterator[StatementLine | Statement]:
    """The importer's items; its rejection joins the errors found here, so one report lists them all."""
    try:
        yield from stream_import(source, layout)
    except ImportRejectedError as rejection:
        merged = sorted(
            (*rejection.errors, *errors.rejection().errors), key=lambda e: (e.line or 0, e.column or "")
        )
        raise ImportRejectedError(rejection.source, tuple(merged), rejection.omitted) from None


def _sequences(statements: Sequence[Statement]) -> dict[str, str]:
    return {s.account or "": str(s.sequence) for s in statements if s.sequence is not None}


def _statement_rows(
    import_id: int, statements: Sequence[Statement], counts: Mapping[int, int]
) -> list[ReconImportStatement]:
    rows = []
    for statement in statements:
        opening, closing = statement.opening, statement.closing
        stated = opening or closing
        rows.append(
            ReconImportStatement(
                import_id=import_id,
                statement_index=statement.index,
                line_number=statement.line_number,
                statement_id=(statement.statement_id or "")[:140],
                account=(statement.account or "")[:70],
                seq_number=statement.sequence.number if statement.sequence else None,
                seq_page=statement.sequence.page if statement.sequence else None,
                currency=stated.amount.currency if stated else None,
                opening_minor=opening.amount.minor if opening else None,
                opening_day=day_number(opening.date) if opening else None,
                closing_minor=closing.amount.minor if closing else None,
                closing_day=day_number(closing.date) if closing else None,
                line_count=counts.get(statement.index, 0),
            )
        )
    return rows


# Reading -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportView:
    outcome: ImportOutcome
    imported_at: str
    imported_by: str
    profile_digest: str
    first_day: str | None
    last_day: str | None
    statements: tuple[dict[str, Any], ...] = field(default=())


def _view(session: Session, row: ReconImport) -> ImportView:
    errors = tuple(
        LineError(e.line, e.column, e.problem)
        for e in session.scalars(
            select(ReconImportError)
            .where(ReconImportError.import_id == row.id)
            .order_by(ReconImportError.error_no)
        )
    )
    statements = tuple(
        {
            "index": s.statement_index,
            "statement_id": s.statement_id,
            "account": s.account,
            "sequence": None if s.seq_number is None else str(SequenceNumber(s.seq_number, s.seq_page)),
            "currency": s.currency,
            "opening_minor": s.opening_minor,
            "closing_minor": s.closing_minor,
            "lines": s.line_count,
        }
        for s in session.scalars(
            select(ReconImportStatement)
            .where(ReconImportStatement.import_id == row.id)
            .order_by(ReconImportStatement.statement_index)
        )
    )
    return ImportView(
        outcome=_outcome(row, duplicate=False, errors=errors),
        imported_at=row.imported_at.isoformat(),
        imported_by=row.imported_by,
        profile_digest=row.profile_digest,
        first_day=None if row.first_day is None else from_day_number(row.first_day).isoformat(),
        last_day=None if row.last_day is None else from_day_number(row.last_day).isoformat(),
        statements=statements,
    )


class ImportNotFoundError(LookupError):
    pass


def get_import(session: Session, import_id: int) -> ImportView:
    row = session.get(ReconImport, import_id)
    if row is None:
        raise ImportNotFoundError(f"no import {import_id}")
    return _view(session, row)


def list_imports(session: Session, *, limit: int = 50, before: int | None = None) -> list[ImportOutcome]:
    """Newest first; `before` an import id to page back."""
    query = select(ReconImport).order_by(ReconImport.id.desc()).limit(limit)
    if before is not None:
        query = query.where(ReconImport.id < before)
    return [_outcome(row, duplicate=False) for row in session.scalars(query)]
