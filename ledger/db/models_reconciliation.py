"""Models of the reconciliation: imported files and their lines, runs, matches, exceptions, resolutions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from ledger.db.models import Base
from ledger.db.types import UUID, Instant

IMPORT_STATUSES = ("importing", "imported", "quarantined", "rejected")
CATEGORIES = (
    "missing_in_ledger",
    "missing_in_export",
    "amount_mismatch",
    "duplicate",
    "timing",
    "currency_mismatch",
    "reversed",
    "ambiguous",
    "balance",
)
PASSES = ("resolved", "exact", "aggregate", "window", "tolerance", "ledger")
ACTIONS = ("match", "post", "approve", "reject")
RESOLUTION_STATUSES = ("done", "pending_approval")


class ReconImport(Base):
    """One file handed in: imported (its lines usable), quarantined (checks failed) or rejected (malformed).

    The row is written as `importing` with its lines and changed once to its outcome in the same
    transaction; the database refuses any later change.
    """

    __tablename__ = "recon_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(255), default="")
    source: Mapped[str] = mapped_column(String(16))
    profile: Mapped[str] = mapped_column(String(80), default="")
    profile_digest: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(12))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    flags: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    last_sequences: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    line_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    currencies: Mapped[str] = mapped_column(String(64), default="")
    first_day: Mapped[int | None] = mapped_column(Integer)
    last_day: Mapped[int | None] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(Instant)
    imported_by: Mapped[str] = mapped_column(String(100), default="")

    __table_args__ = (
        # A file counts once: a second import of the same bytes adds nothing (rejections may repeat).
        Index(
            "uq_recon_imports_sha256",
            "sha256",
            unique=True,
            sqlite_where=text("status <> 'rejected'"),
            postgresql_where=text("status <> 'rejected'"),
        ),
    )


class ReconImportStatement(Base):
    """A statement of an imported file: account, sequence number and balances as the bank states them."""

    __tablename__ = "recon_import_statements"

    import_id: Mapped[int] = mapped_column(Integer, ForeignKey("recon_imports.id"), primary_key=True)
    statement_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    line_number: Mapped[int] = mapped_column(Integer)
    statement_id: Mapped[str] = mapped_column(String(140), default="")
    account: Mapped[str] = mapped_column(String(70), default="")
    seq_number: Mapped[int | None] = mapped_column(Integer)
    seq_page: Mapped[int | None] = mapped_column(Integer)
    currency: Mapped[str | None] = mapped_column(String(3))
    opening_minor: Mapped[int | None] = mapped_column(BigInteger)
    opening_day: Mapped[int | None] = mapped_column(Integer)
    closing_minor: Mapped[int | None] = mapped_column(BigInteger)
    closing_day: Mapped[int | None] = mapped_column(Integer)
    line_count: Mapped[int] = mapped_column(Integer, default=0)


class ReconImportLine(Base):
    """A normalized line of an imported file; a batch entry's details are lines of their own (`parent_no`).

    Days are counted since 1970-01-01 so that both engines do the same date arithmetic. No foreign key
    to the import: lines are bulk-loaded (COPY) in the transaction that writes the import itself.
    """

    __tablename__ = "recon_import_lines"

    import_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_no: Mapped[int | None] = mapped_column(Integer)
    detail_no: Mapped[int] = mapped_column(SmallInteger, default=0)
    is_batch: Mapped[int] = mapped_column(SmallInteger, default=0)
    line_number: Mapped[int] = mapped_column(Integer)
    statement_index: Mapped[int] = mapped_column(Integer, default=1)
    entry_index: Mapped[int | None] = mapped_column(Integer)
    booking_day: Mapped[int] = mapped_column(Integer)
    value_day: Mapped[int | None] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    gross: Mapped[int | None] = mapped_column(BigInteger)
    fee: Mapped[int | None] = mapped_column(BigInteger)
    category: Mapped[str] = mapped_column(String(24), default="")
    provider: Mapped[str] = mapped_column(String(40), default="")
    reference: Mapped[str] = mapped_column(String(140), default="")
    batch_reference: Mapped[str] = mapped_column(String(140), default="")
    entry_reference: Mapped[str] = mapped_column(String(140), default="")
    counterparty: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    reversal: Mapped[int] = mapped_column(SmallInteger, default=0)

    __table_args__ = (
        Index("ix_recon_import_lines_reference", "reference"),
        Index("ix_recon_import_lines_batch_reference", "batch_reference"),
    )


class ReconImportError(Base):
    """What made a rejected file unusable: line, column and problem, in file order."""

    __tablename__ = "recon_import_errors"

    import_id: Mapped[int] = mapped_column(Integer, ForeignKey("recon_imports.id"), primary_key=True)
    error_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    line: Mapped[int | None] = mapped_column(Integer)
    column: Mapped[str | None] = mapped_column(Text)
    problem: Mapped[str] = mapped_column(Text)


class ReconRun(Base):
    """One reconciliation of a business day, written once when it completes (with all its results)."""

    __tablename__ = "recon_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    business_day: Mapped[str] = mapped_column(String(10))
    scope: Mapped[str] = mapped_column(String(64))
    timezone: Mapped[str] = mapped_column(String(64))
    day_start: Mapped[datetime] = mapped_column(Instant)
    day_end: Mapped[datetime] = mapped_column(Instant)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
    balances: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    engine_version: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column(Instant)
    finished_at: Mapped[datetime] = mapped_column(Instant)
    timings: Mapped[dict[str, float]] = mapped_column(JSON)
    started_by: Mapped[str] = mapped_column(String(100), default="")
    match_count: Mapped[int] = mapped_column(Integer, default=0)
    exception_count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_recon_runs_business_day", "business_day", "scope", "id"),)


class ReconRunImport(Base):
    __tablename__ = "recon_run_imports"

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    import_id: Mapped[int] = mapped_column(Integer, ForeignKey("recon_imports.id"), primary_key=True)


class ReconMatch(Base):
    """A member of a match: a ledger entry, an export line, or both (a 1:1 pair is one row).

    No foreign key to the run: a run writes up to millions of members in one statement, and a deferred
    key would queue a check per row; the run and its matches commit together.
    """

    __tablename__ = "recon_matches"

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    match_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    pass_: Mapped[str] = mapped_column("pass", String(12))
    rule: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    entry_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    import_id: Mapped[int | None] = mapped_column(Integer)
    item_no: Mapped[int | None] = mapped_column(Integer)
    ledger_amount: Mapped[int | None] = mapped_column(BigInteger)
    export_amount: Mapped[int | None] = mapped_column(BigInteger)
    rounding_entry_id: Mapped[uuid.UUID | None] = mapped_column(UUID)

    __table_args__ = (
        Index("ix_recon_matches_entry_id", "entry_id"),
        Index("ix_recon_matches_line", "import_id", "item_no"),
    )


class ReconException(Base):
    """A difference a run could not match: its category, the items involved and what a posting would touch."""

    __tablename__ = "recon_exceptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("recon_runs.id", deferrable=True, initially="DEFERRED")
    )
    category: Mapped[str] = mapped_column(String(20))
    business_day: Mapped[str] = mapped_column(String(10))
    currency: Mapped[str] = mapped_column(String(3))
    entry_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    import_id: Mapped[int | None] = mapped_column(Integer)
    item_no: Mapped[int | None] = mapped_column(Integer)
    ledger_amount: Mapped[int | None] = mapped_column(BigInteger)
    export_amount: Mapped[int | None] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(140), default="")
    cash_role: Mapped[str] = mapped_column(String(16), default="")
    provider: Mapped[str] = mapped_column(String(40), default="")
    consulate: Mapped[str] = mapped_column(String(8), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_recon_exceptions_run_id", "run_id", "category"),
        Index("ix_recon_exceptions_entry_id", "entry_id"),
        Index("ix_recon_exceptions_line", "import_id", "item_no"),
    )


class ReconResolution(Base):
    """What an auditor did about an exception (match, post) or about a pending posting (approve, reject)."""

    __tablename__ = "recon_resolutions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    exception_id: Mapped[int] = mapped_column(Integer, ForeignKey("recon_exceptions.id"))
    action: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(Instant)
    reason: Mapped[str] = mapped_column(Text)
    account: Mapped[str] = mapped_column(String(160), default="")
    currency: Mapped[str] = mapped_column(String(3), default="")
    amount: Mapped[int | None] = mapped_column(BigInteger)
    matched_entry_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    matched_import_id: Mapped[int | None] = mapped_column(Integer)
    matched_item_no: Mapped[int | None] = mapped_column(Integer)
    decides_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("recon_resolutions.id"), unique=True)
    entry_ids: Mapped[list[str]] = mapped_column(JSON, default=list)

    __table_args__ = (Index("ix_recon_resolutions_exception_id", "exception_id"),)
