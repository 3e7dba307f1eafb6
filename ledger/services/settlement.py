"""Settlement: what an acquirer paid out moves from its clearing account to the treasury and to fees.

Per DESIGN.md §3, a settlement debits `assets:treasury-account` with the net paid out and
`expenses:acquirer-fees:<provider>` with the fees, and credits `assets:clearing:<provider>` with the gross.
Refunds and chargebacks settle with a negative gross (the acquirer takes money back), so the same three
lines carry them with the opposite sign; a standalone fee line (a monthly charge) has no gross of its own
and is all fee.

The data comes from the provider (`settlement_lines(day)`) or from an imported settlement report; both are
grouped into batches: one payout (or one day, when the acquirer gives no payout id) in one currency. Each
batch is one entry whose idempotency key is `settlement:<provider>:<batch>:<currency>`, and whose
fingerprint holds only the figures: settling the same payout again, from the API or from the report,
returns the first entry; the same payout with other figures is refused and says what differs.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.db.models import Entry
from ledger.db.models_reconciliation import ReconImport, ReconImportLine
from ledger.domain.chart import Chart, Role
from ledger.domain.entries import EntryDraft, EntryKind, PostingLine, References
from ledger.money import Money
from ledger.services.journal import IdempotencyConflictError, post_entry
from providers.base import Provider
from providers.model import SettlementKind, SettlementLine
from reconciliation.days import from_day_number
from reconciliation.importers import ImportProfile, ImportSource, read_import
from reconciliation.lines import SettlementCategory, SourceKind, StatementLine

BATCH_REFERENCE_LIMIT = 64  # entries.settlement_ref
_FEE_ONLY = "fee"


class SettlementError(ValueError):
    """Settlement data that cannot be posted as given; the message says which line or batch and why."""


class SettlementConflictError(SettlementError):
    """The batch was settled before with other figures: someone must look at both before anything moves."""


@dataclass(frozen=True, slots=True)
class SettlementItem:
    """One settled movement, whatever the source: `net = gross - fee`."""

    kind: str  # capture | refund | chargeback | chargeback_reversal | adjustment | fee
    operation_reference: str
    our_reference: str | None
    gross: Money
    fee: Money
    net: Money


@dataclass(frozen=True, slots=True)
class SettlementBatch:
    """What one payout moved in one currency: the unit posted as one settlement entry."""

    provider: str  # whose clearing account the money leaves
    batch: str  # the payout reference, or the day when the acquirer gives none
    currency: str
    items: tuple[SettlementItem, ...]

    @property
    def gross(self) -> Money:
        return _total((item.gross for item in self.items if item.kind != _FEE_ONLY), self.currency)

    @property
    def fee(self) -> Money:
        # A fee-only line's whole outflow is a fee: -net (its gross is the fee, charged as a debit).
        return _total(
            (-item.net if item.kind == _FEE_ONLY else item.fee for item in self.items), self.currency
        )

    @property
    def net(self) -> Money:
        return _total((item.net for item in self.items), self.currency)

    @property
    def idempotency_key(self) -> str:
        return f"settlement:{self.provider}:{self.batch}:{self.currency}"


@dataclass(frozen=True, slots=True)
class SettledBatch:
    batch: SettlementBatch
    entry_id: uuid.UUID | None  # None: nothing to post (the batch nets to zero on every account)
    replayed: bool  # posted before, by an earlier run or from the other source


def _total(amounts: Iterable[Money], currency: str) -> Money:
    total = Money.zero(currency)
    for amount in amounts:
        total += amount
    return total


def _check_batch_reference(reference: str, where: str) -> str:
    if not reference or len(reference) > BATCH_REFERENCE_LIMIT:
        raise SettlementError(f"{where}: a batch reference has 1 to {BATCH_REFERENCE_LIMIT} characters")
    return reference


def _group(provider: str, keyed: Iterable[tuple[str, SettlementItem]]) -> list[SettlementBatch]:
    grouped: dict[tuple[str, str], list[SettlementItem]] = defaultdict(list)
    for batch, item in keyed:
        grouped[batch, item.gross.currency].append(item)
    return [
        SettlementBatch(provider, batch, currency, tuple(items))
        for (batch, currency), items in sorted(grouped.items())
    ]


def batches_from_lines(provider: str, day: date, lines: Iterable[SettlementLine]) -> list[SettlementBatch]:
    """Batches from a provider's `settlement_lines(day)`: per payout, or the day when there is none."""
    keyed = []
    for line in lines:
        batch = line.payout_reference or day.isoformat()
        _check_batch_reference(batch, f"settlement line {line.operation_reference}")
        kind = "adjustment" if line.kind is SettlementKind.ADJUSTMENT else line.kind.value
        keyed.append(
            (
                batch,
                SettlementItem(
                    kind, line.operation_reference, line.our_reference, line.gross, line.fee, line.net
                ),
            )
        )
    return _group(provider, keyed)


def batches_from_report(lines: Iterable[StatementLine]) -> tuple[str, list[SettlementBatch]]:
    """Batches from the lines of an acquirer's settlement report (reconciliation's importers), and the
    provider the report's profile names. Lines without a batch reference are batched by booking day."""
    keyed = []
    providers: set[str] = set()
    for line in lines:
        amounts = line.settlement
        if amounts is None:
            raise SettlementError(
                f"line {line.line_number}: not a settlement line (import it with a settlement profile)"
            )
        providers.add(amounts.provider)
        batch = line.batch_reference or line.booking_date.isoformat()
        _check_batch_reference(batch, f"line {line.line_number}")
        kind = "fee" if amounts.category is SettlementCategory.FEE else amounts.category.value
        operation = line.entry_reference or f"line-{line.line_number}"
        keyed.append(
            (batch, SettlementItem(kind, operation, line.reference, amounts.gross, amounts.fee, amounts.net))
        )
    if len(providers) > 1:
        raise SettlementError(f"the report mixes providers {sorted(providers)}; one report is one acquirer")
    if not providers:
        raise SettlementError("the report has no settlement lines")
    provider = providers.pop()
    return provider, _group(provider, keyed)


async def fetch_batches(provider: Provider, day: date) -> list[SettlementBatch]:
    """The provider's settlement for `day`, as batches on its clearing account (one call, no database)."""
    return batches_from_lines(provider.name, day, await provider.settlement_lines(day))


def read_report(source: ImportSource, profile: ImportProfile) -> tuple[str, list[SettlementBatch]]:
    """An acquirer's settlement report read whole through its import profile (ImportRejectedError lists
    every malformed line); the provider and its batches."""
    if profile.source is not SourceKind.SETTLEMENT:
        raise SettlementError(f"profile {profile.label} reads {profile.source} files, not settlement reports")
    return batches_from_report(read_import(source, profile).lines)


def settlement_draft(chart: Chart, batch: SettlementBatch) -> EntryDraft | None:
    """The settlement entry of a batch: treasury (net) and acquirer fees (fee) debited, clearing (gross)
    credited, each with its sign; None when every figure is zero."""
    currency = batch.currency
    candidates = (
        (chart.account(Role.TREASURY, currency=currency), batch.net),
        (chart.account(Role.ACQUIRER_FEES, currency=currency, provider=batch.provider), batch.fee),
        (chart.account(Role.CLEARING, currency=currency, provider=batch.provider), -batch.gross),
    )
    lines = tuple(PostingLine(account, amount) for account, amount in candidates if amount.minor)
    if not lines:
        return None
    return EntryDraft(
        kind=EntryKind.SETTLEMENT,
        lines=lines,
        references=References(settlement=batch.batch),
        # Only the figures: the same payout from the provider's API and from its report is one settlement.
        memo={
            "provider": batch.provider,
            "batch": batch.batch,
            "lines": str(len(batch.items)),
            "gross": batch.gross.to_str(),
            "fee": batch.fee.to_str(),
            "net": batch.net.to_str(),
        },
    )


def _posted_figures(session: Session, batch: SettlementBatch) -> str:
    memo = session.scalar(
        select(Entry.memo)
        .where(Entry.kind == EntryKind.SETTLEMENT.value, Entry.settlement_ref == batch.batch)
        .order_by(Entry.recorded_at)
        .limit(1)
    )
    if not memo:
        return "other figures"
    figures = f"gross {memo.get('gross')}, fee {memo.get('fee')}, net {memo.get('net')}"
    return f"{figures} in {memo.get('lines')} line(s)"


def post_settlement(
    session: Session, chart: Chart, batches: Sequence[SettlementBatch], *, actor: str
) -> list[SettledBatch]:
    """Post each batch's settlement entry in the caller's transaction, once per (provider, batch, currency).

    All or nothing: a batch settled before with other figures raises SettlementConflictError and the
    caller's rollback leaves every batch of this call unposted.
    """
    settled = []
    for batch in batches:
        draft = settlement_draft(chart, batch)
        if draft is None:
            settled.append(SettledBatch(batch, None, replayed=False))
            continue
        try:
            recorded = post_entry(session, draft, actor=actor, idempotency_key=batch.idempotency_key)
        except IdempotencyConflictError:
            raise SettlementConflictError(
                f"{batch.provider} batch {batch.batch} ({batch.currency}) was already settled with "
                f"{_posted_figures(session, batch)}; now it shows gross {batch.gross.to_str()}, fee "
                f"{batch.fee.to_str()}, net {batch.net.to_str()} in {len(batch.items)} line(s). Nothing was "
                "posted: compare the two and correct with a reconciliation posting"
            ) from None
        settled.append(SettledBatch(batch, recorded.entry_id, recorded.replayed))
    return settled


def batches_from_import(session: Session, import_id: int) -> tuple[str, list[SettlementBatch]]:
    """Batches from a settlement report already imported for reconciliation (`etimbre reconcile`), so the
    auditor imports each acquirer file once; the provider and its batches."""
    found = session.execute(
        select(ReconImport.status, ReconImport.source, ReconImport.file_name).where(
            ReconImport.id == import_id
        )
    ).one_or_none()
    if found is None:
        raise SettlementError(f"no import {import_id}")
    if found.source != SourceKind.SETTLEMENT.value:
        raise SettlementError(
            f"import {import_id} ({found.file_name}) is a {found.source} file, not a settlement report"
        )
    if found.status != "imported":
        raise SettlementError(
            f"import {import_id} ({found.file_name}) is {found.status}; only imported files settle"
        )
    rows = session.execute(
        select(ReconImportLine)
        .where(ReconImportLine.import_id == import_id, ReconImportLine.gross.is_not(None))
        .order_by(ReconImportLine.item_no)
    ).scalars()
    keyed = []
    providers: set[str] = set()
    for row in rows:
        assert row.gross is not None
        providers.add(row.provider)
        batch = row.batch_reference or from_day_number(row.booking_day).isoformat()
        _check_batch_reference(batch, f"line {row.line_number}")
        currency = row.currency
        kind = "fee" if row.category == SettlementCategory.FEE.value else row.category
        item = SettlementItem(
            kind, row.entry_reference or f"line-{row.line_number}", row.reference or None,
            Money(row.gross, currency), Money(row.fee or 0, currency), Money(row.amount, currency),
        )  # fmt: skip
        keyed.append((batch, item))
    if len(providers) != 1:
        raise SettlementError(
            f"import {import_id} has no settlement lines of one provider ({sorted(providers)})"
        )
    provider = providers.pop()
    return provider, _group(provider, keyed)
