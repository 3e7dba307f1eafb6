"""Posting entries to the journal, reversing them, and reading them back."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from uuid_utils.compat import uuid7

from ledger.db.hotpath import EntryRow, HotPath, PostingRow
from ledger.db.models import Account, Entry, IdempotencyKey, Posting
from ledger.db.types import to_micros
from ledger.domain.entries import EntryDraft, EntryKind, PostingLine, References
from ledger.money import Money
from ledger.services import clock
from ledger.services.accounts import account_ids, spec_of

POSTINGS: Table = Posting.__table__  # type: ignore[assignment]
ENTRIES: Table = Entry.__table__  # type: ignore[assignment]
CLAIMS: Table = IdempotencyKey.__table__  # type: ignore[assignment]


class IdempotencyConflictError(Exception):
    """The idempotency key was used before for a different request."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used for a different request")
        self.key = key


class EntryNotFoundError(LookupError):
    pass


class AlreadyReversedError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Recorded:
    entry_id: uuid.UUID
    replayed: bool  # True when an earlier identical request had already recorded it


def _insert(
    session: Session,
    drafts: Sequence[EntryDraft],
    entry_ids: Sequence[uuid.UUID],
    actor: str,
    hot: HotPath | None = None,
) -> None:
    ids = account_ids(session, {line.account for draft in drafts for line in draft.lines})
    moment = to_micros(clock.now())
    postings: list[PostingRow] = []
    entries: list[EntryRow] = []
    for entry_id, draft in zip(entry_ids, drafts, strict=True):
        effective_at = to_micros(draft.effective_at) if draft.effective_at else moment
        postings.extend(
            (
                entry_id,
                number,
                ids[line.account.code],
                line.amount.currency,
                line.amount.minor,
                effective_at,
                draft.consulate,
                line.slice_fee_code,
            )
            for number, line in enumerate(draft.lines, start=1)
        )
        references = draft.references
        entries.append(
            (
                entry_id,
                draft.kind.value,
                draft.consulate,
                effective_at,
                len(draft.lines),
                references.payment,
                references.stamp,
                references.settlement,
                references.import_line,
                dict(draft.memo),
                draft.reason,
                actor,
                draft.reverses,
            )
        )
    writer = hot or HotPath(session)
    try:
        writer.insert(postings, entries)
    finally:
        if hot is None:
            writer.close()


def _earlier_claim(session: Session, key: str) -> tuple[uuid.UUID, str] | None:
    found = (
        session.connection()
        .execute(select(CLAIMS.c.entry_id, CLAIMS.c.request_hash).where(CLAIMS.c.key == key))
        .one_or_none()
    )
    return None if found is None else (found.entry_id, found.request_hash)


def _replay(key: str, earlier: tuple[uuid.UUID, str], draft: EntryDraft) -> Recorded:
    entry_id, request_hash = earlier
    if request_hash != draft.fingerprint():
        raise IdempotencyConflictError(key)
    return Recorded(entry_id, replayed=True)


def _claim(
    session: Session, hot: HotPath, key: str, draft: EntryDraft, entry_id: uuid.UUID
) -> tuple[uuid.UUID, str] | None:
    """Claim the key for this entry, first thing: None if it is ours now, else the first claim.

    ON CONFLICT DO NOTHING needs no savepoint: a concurrent claimer of the same key waits for the first
    transaction, then finds the key taken (or free again, if the first one rolled back).
    """
    if hot.claim(key, draft.fingerprint(), entry_id):
        return None
    earlier = _earlier_claim(session, key)
    if earlier is None:  # pragma: no cover - the conflicting claim was rolled back between two statements
        raise IdempotencyConflictError(key)
    return earlier


def post_entry(
    session: Session, draft: EntryDraft, *, actor: str = "", idempotency_key: str | None = None
) -> Recorded:
    """Record one balanced entry. With a key, a retry of the same request returns the first entry."""
    entry_id = uuid7()
    hot = HotPath(session)
    try:
        if idempotency_key is not None:
            earlier = _claim(session, hot, idempotency_key, draft, entry_id)
            if earlier is not None:
                return _replay(idempotency_key, earlier, draft)
        _insert(session, [draft], [entry_id], actor, hot)
    finally:
        hot.close()
    return Recorded(entry_id, replayed=False)


def post_entries(session: Session, drafts: Sequence[EntryDraft], *, actor: str = "") -> list[uuid.UUID]:
    """Record many entries in one round trip per table (batched ingestion, no idempotency keys)."""
    entry_ids = [uuid7() for _ in drafts]
    if drafts:
        _insert(session, drafts, entry_ids, actor)
    return entry_ids


# Reading -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostingView:
    line_no: int
    account: str
    amount: Money
    fee_code: str


@dataclass(frozen=True, slots=True)
class EntryView:
    id: uuid.UUID
    kind: EntryKind
    consulate: str
    effective_at: datetime
    recorded_at: datetime
    references: References
    memo: dict[str, Any]
    reason: str
    actor: str
    reverses: uuid.UUID | None
    reversed_by: uuid.UUID | None
    postings: tuple[PostingView, ...]


def _views(session: Session, entries: Sequence[Entry]) -> list[EntryView]:
    if not entries:
        return []
    ids = [entry.id for entry in entries]
    lines: dict[uuid.UUID, list[PostingView]] = {entry_id: [] for entry_id in ids}
    for posting, code in session.execute(
        select(Posting, Account.code)
        .join(Account, Account.id == Posting.account_id)
        .where(Posting.entry_id.in_(ids))
        .order_by(Posting.entry_id, Posting.line_no)
    ):
        lines[posting.entry_id].append(
            PostingView(posting.line_no, code, Money(posting.amount, posting.currency), posting.fee_code)
        )
    reversals = dict(
        session.execute(select(Entry.reverses_id, Entry.id).where(Entry.reverses_id.in_(ids))).all()
    )
    return [
        EntryView(
            id=entry.id,
            kind=EntryKind(entry.kind),
            consulate=entry.consulate,
            effective_at=entry.effective_at,
            recorded_at=entry.recorded_at,
            references=References(
                entry.payment_ref, entry.stamp_ref, entry.settlement_ref, entry.import_line_ref
            ),
            memo=entry.memo,
            reason=entry.reason,
            actor=entry.actor,
            reverses=entry.reverses_id,
            reversed_by=reversals.get(entry.id),
            postings=tuple(lines[entry.id]),
        )
        for entry in entries
    ]


def get_entry(session: Session, entry_id: uuid.UUID) -> EntryView:
    entry = session.get(Entry, entry_id)
    if entry is None:
        raise EntryNotFoundError(f"no entry {entry_id}")
    return _views(session, [entry])[0]


@dataclass(frozen=True, slots=True)
class EntryFilter:
    since: datetime | None = None  # effective_at >= since
    until: datetime | None = None  # effective_at < until
    consulate: str | None = None
    kind: EntryKind | None = None
    payment: str | None = None
    stamp: str | None = None


@dataclass(frozen=True, slots=True)
class EntryPage:
    entries: list[EntryView]
    next_after: tuple[datetime, uuid.UUID] | None  # pass back to get the following page


def list_entries(
    session: Session, where: EntryFilter, *, limit: int = 50, after: tuple[datetime, uuid.UUID] | None = None
) -> EntryPage:
    """Entries in effective-time order, a page at a time (keyset pagination: stable under inserts)."""
    query = select(Entry)
    if where.since is not None:
        query = query.where(Entry.effective_at >= where.since)
    if where.until is not None:
        query = query.where(Entry.effective_at < where.until)
    if where.consulate is not None:
        query = query.where(Entry.consulate == where.consulate)
    if where.kind is not None:
        query = query.where(Entry.kind == where.kind.value)
    if where.payment is not None:
        query = query.where(Entry.payment_ref == where.payment)
    if where.stamp is not None:
        query = query.where(Entry.stamp_ref == where.stamp)
    if after is not None:
        moment, entry_id = after
        query = query.where(
            or_(Entry.effective_at > moment, and_(Entry.effective_at == moment, Entry.id > entry_id))
        )
    rows = list(session.scalars(query.order_by(Entry.effective_at, Entry.id).limit(limit + 1)))
    page = rows[:limit]
    following = (page[-1].effective_at, page[-1].id) if len(rows) > limit else None
    return EntryPage(_views(session, page), following)


# Reversal ------------------------------------------------------------------------------------------------


def reverse_entry(
    session: Session, entry_id: uuid.UUID, *, reason: str, actor: str = "", idempotency_key: str | None = None
) -> Recorded:
    """Post the exact opposite of an entry, linked to it; an entry is reversed at most once."""
    original = session.get(Entry, entry_id)
    if original is None:
        raise EntryNotFoundError(f"no entry {entry_id}")
    reversed_by = session.scalar(select(Entry.id).where(Entry.reverses_id == entry_id))
    lines: list[PostingLine] = []
    for posting, account in session.execute(
        select(Posting, Account)
        .join(Account, Account.id == Posting.account_id)
        .where(Posting.entry_id == entry_id)
        .order_by(Posting.line_no)
    ):
        lines.append(
            PostingLine(spec_of(account), -Money(posting.amount, posting.currency), posting.fee_code)
        )
    draft = EntryDraft(
        kind=EntryKind.REVERSAL,
        lines=tuple(lines),
        consulate=original.consulate,
        references=References(
            original.payment_ref, original.stamp_ref, original.settlement_ref, original.import_line_ref
        ),
        reason=reason,
        reverses=entry_id,
    )
    if idempotency_key is not None:
        earlier = _earlier_claim(session, idempotency_key)
        if earlier is not None:
            return _replay(idempotency_key, earlier, draft)
    if reversed_by is not None:
        raise AlreadyReversedError(f"entry {entry_id} was already reversed by {reversed_by}")
    try:
        with session.begin_nested():
            return post_entry(session, draft, actor=actor, idempotency_key=idempotency_key)
    except IntegrityError:
        # Someone reversed it between our check and our insert (the database keeps it to once).
        reversed_by = session.scalar(select(Entry.id).where(Entry.reverses_id == entry_id))
        if reversed_by is None:
            raise
        raise AlreadyReversedError(f"entry {entry_id} was already reversed by {reversed_by}") from None
