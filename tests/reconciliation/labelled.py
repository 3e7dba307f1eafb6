"""Loading a labelled Dataset into a database and scoring a run against its truth."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from ledger.db.engine import Database
from ledger.db.models_reconciliation import ReconException, ReconImportLine, ReconMatch
from ledger.domain.entries import EntryDraft, EntryKind, PostingLine
from ledger.services.journal import post_entry
from reconciliation.importers import ProfileSet
from reconciliation.imports import import_file
from tests.reconciliation.generator import Dataset, Truth


@dataclass
class Loaded:
    entries: dict[uuid.UUID, Truth]
    lines: dict[tuple[int, int], Truth]  # (import id, item number) -> truth
    run_imports: tuple[int, ...]
    next_day_import: int


def load(db: Database, data: Dataset, profiles: ProfileSet) -> Loaded:
    entries: dict[uuid.UUID, Truth] = {}
    by_key: dict[str, tuple[uuid.UUID, EntryDraft]] = {}
    with db.write() as session:
        for item in data.ledger:
            if item.reverses is not None:
                original_id, original = by_key[item.reverses]
                draft = EntryDraft(
                    kind=EntryKind.REVERSAL,
                    lines=tuple(
                        PostingLine(line.account, -line.amount, line.fee_code) for line in original.lines
                    ),
                    consulate=original.consulate,
                    references=original.references,
                    reason="payment cancelled",
                    reverses=original_id,
                    effective_at=item.effective_at,
                )
            else:
                assert item.draft is not None
                draft = item.draft
            recorded = post_entry(session, draft, actor="generator")
            entries[recorded.entry_id] = item.truth
            by_key[item.truth.key] = (recorded.entry_id, draft)
    lines: dict[tuple[int, int], Truth] = {}
    run_imports = []
    next_day = 0
    for (data_bytes, truth), profile, in_run in (
        (data.treasury_csv(), "treasury-default", True),
        (data.settlement_csv(), "settlement-sandbox", True),
        (data.next_day_csv(), "treasury-default", False),
    ):
        outcome = import_file(db, data_bytes, profiles.get(profile), file_name=f"{profile}.csv")
        assert outcome.status == "imported", outcome.message
        with db.read() as session:
            for item_no, line_number in session.execute(
                select(ReconImportLine.item_no, ReconImportLine.line_number).where(
                    ReconImportLine.import_id == outcome.import_id
                )
            ):
                lines[(outcome.import_id, item_no)] = truth[line_number]
        if in_run:
            run_imports.append(outcome.import_id)
        else:
            next_day = outcome.import_id
    return Loaded(entries, lines, tuple(run_imports), next_day)


@dataclass
class Score:
    members: int = 0
    false_positives: list[str] = field(default_factory=list)
    anomalies: int = 0
    right: int = 0
    wrong: list[str] = field(default_factory=list)
    unmatched_normal: list[str] = field(default_factory=list)
    categories: Counter[str] = field(default_factory=Counter)

    @property
    def accuracy(self) -> float:
        return self.right / self.anomalies if self.anomalies else 1.0


def score(db: Database, run_id: int, loaded: Loaded) -> Score:
    result = Score()
    outcome: dict[str, str] = {}

    def truth_of(entry_id: Any, import_id: Any, item_no: Any) -> list[Truth]:
        found = []
        if entry_id is not None:
            found.append(loaded.entries[entry_id])
        if import_id is not None:
            found.append(loaded.lines[(import_id, item_no)])
        return found

    with db.read() as session:
        matches = session.scalars(
            select(ReconMatch)
            .where(ReconMatch.run_id == run_id)
            .order_by(ReconMatch.match_no, ReconMatch.member_no)
        ).all()
        exceptions = session.scalars(select(ReconException).where(ReconException.run_id == run_id)).all()
    anchor: frozenset[str] = frozenset()
    for member in matches:
        truths = truth_of(member.entry_id, member.import_id, member.item_no)
        tags = frozenset().union(*(t.tags for t in truths))
        if member.member_no == 1:
            anchor = tags
        for t in truths:
            outcome[t.key] = "matched"
        if member.pass_ == "resolved":
            continue
        result.members += 1
        paired = len(truths) < 2 or bool(truths[0].tags & truths[1].tags)
        if not paired or not (tags & anchor):
            result.false_positives.append(f"{member.pass_}:{member.rule} {[t.key for t in truths]}")
    for exception in exceptions:
        result.categories[exception.category] += 1
        truths = truth_of(exception.entry_id, exception.import_id, exception.item_no)
        for candidate in exception.detail.get("candidates", []):
            truths.append(loaded.entries[uuid.UUID(candidate)])
        for import_id, item_no in exception.detail.get("lines", []):
            truths.append(loaded.lines[(import_id, item_no)])
        for t in truths:
            outcome[t.key] = exception.category
    every = list(loaded.entries.values()) + [
        t for (import_id, _), t in loaded.lines.items() if import_id in loaded.run_imports
    ]
    for truth in every:
        got = outcome.get(truth.key, "nothing")
        if truth.category is None:
            if got != "matched":
                result.unmatched_normal.append(f"{truth.key}: {got}")
            continue
        result.anomalies += 1
        if got == truth.category:
            result.right += 1
        else:
            result.wrong.append(f"{truth.key}: expected {truth.category}, got {got}")
    return result
