"""Journal entries and their postings, with the invariants every entry must keep."""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from ledger.domain.chart import AccountSpec
from ledger.money import Money

# Entries may be dated back at most this far before they are recorded (and never in the future beyond
# the clock skew). The database enforces the same figures; balance checkpoints rely on them.
MAX_BACKDATE_SECONDS = 72 * 3600
MAX_FUTURE_SKEW_SECONDS = 300


class EntryError(ValueError):
    """An entry that breaks an invariant; the message names the broken rule."""


class EntryKind(enum.StrEnum):
    PAYMENT_CAPTURED = "payment_captured"
    STAMP_CONSUMED = "stamp_consumed"
    STAMP_REFUNDED = "stamp_refunded"
    STAMP_EXPIRED = "stamp_expired"
    SETTLEMENT = "settlement"
    CHARGEBACK = "chargeback"
    RECONCILIATION = "reconciliation"
    ADJUSTMENT = "adjustment"
    REVERSAL = "reversal"

    @property
    def needs_reason(self) -> bool:
        return self in (EntryKind.ADJUSTMENT, EntryKind.REVERSAL, EntryKind.RECONCILIATION)


@dataclass(frozen=True, slots=True)
class PostingLine:
    """One line of an entry: a signed amount on one account (positive debits, negative credits)."""

    account: AccountSpec
    amount: Money
    fee_code: str = ""

    @property
    def slice_fee_code(self) -> str:
        return self.fee_code or self.account.fee_code


def debit(account: AccountSpec, amount: Money, fee_code: str = "") -> PostingLine:
    return PostingLine(account, amount, fee_code)


def credit(account: AccountSpec, amount: Money, fee_code: str = "") -> PostingLine:
    return PostingLine(account, -amount, fee_code)


@dataclass(frozen=True, slots=True)
class References:
    """What an entry is about, for tracing: every payment traceable."""

    payment: str = ""
    stamp: str = ""
    settlement: str = ""
    import_line: str = ""


@dataclass(frozen=True, slots=True)
class EntryDraft:
    """An entry about to be posted. Constructing one checks the invariants the database checks again."""

    kind: EntryKind
    lines: tuple[PostingLine, ...]
    consulate: str = ""
    effective_at: datetime | None = None  # None: the moment it is recorded
    references: References = field(default_factory=References)
    memo: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    reverses: uuid.UUID | None = None

    def __post_init__(self) -> None:
        if len(self.lines) < 2:
            raise EntryError("an entry needs at least two postings")
        if len(self.lines) > 1000:
            raise EntryError("an entry has at most 1000 postings")
        totals: dict[str, int] = defaultdict(int)
        for number, line in enumerate(self.lines, start=1):
            if line.amount.minor == 0:
                raise EntryError(f"posting {number} on {line.account.code} has a zero amount")
            if line.amount.currency != line.account.currency:
                raise EntryError(
                    f"posting {number} is in {line.amount.currency} but account {line.account.code} "
                    f"holds {line.account.currency}"
                )
            totals[line.amount.currency] += line.amount.minor
        unbalanced = {currency: total for currency, total in totals.items() if total}
        if unbalanced:
            detail = ", ".join(f"{Money(total, cur)}" for cur, total in sorted(unbalanced.items()))
            raise EntryError(f"entry is not balanced: debits minus credits = {detail}")
        if self.kind.needs_reason and not self.reason.strip():
            raise EntryError(f"a {self.kind} entry needs a reason")
        if (self.kind is EntryKind.REVERSAL) != (self.reverses is not None):
            raise EntryError("a reversal entry, and only a reversal entry, names the entry it reverses")
        if self.effective_at is not None and self.effective_at.tzinfo is None:
            raise EntryError("effective_at must carry a time zone")

    def fingerprint(self) -> str:
        """SHA-256 over a canonical form of the request: the same draft always hashes the same."""
        canonical = {
            "kind": self.kind.value,
            "consulate": self.consulate,
            "effective_at": self.effective_at.isoformat() if self.effective_at else None,
            "lines": [
                [ln.account.code, ln.amount.currency, ln.amount.minor, ln.slice_fee_code] for ln in self.lines
            ],
            "references": [
                self.references.payment,
                self.references.stamp,
                self.references.settlement,
                self.references.import_line,
            ],
            "memo": sorted(self.memo.items()),
            "reason": self.reason,
            "reverses": str(self.reverses) if self.reverses else None,
        }
        encoded = json.dumps(canonical, separators=(",", ":"), ensure_ascii=False).encode()
        return hashlib.sha256(encoded).hexdigest()
