"""Import checks on parsed content: statement integrity and batch sums (quarantine), sequence gaps (flags)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from ledger.money import Money
from reconciliation.lines import SequenceNumber, Statement, StatementLine

# Files whose statements state balances; CSV and XLSX exports carry none to check against.
_WITH_BALANCES = {"camt053", "mt940"}


class FindingKind(StrEnum):
    UNBALANCED = "unbalanced"
    MISSING_BALANCE = "missing_balance"
    CURRENCY_MISMATCH = "currency_mismatch"
    ENTRY_COUNT = "entry_count"
    BATCH_MISMATCH = "batch_mismatch"
    SEQUENCE_GAP = "sequence_gap"
    SEQUENCE_REPEAT = "sequence_repeat"


_QUARANTINE = {
    FindingKind.UNBALANCED,
    FindingKind.MISSING_BALANCE,
    FindingKind.CURRENCY_MISMATCH,
    FindingKind.ENTRY_COUNT,
    FindingKind.BATCH_MISMATCH,
}


@dataclass(frozen=True, slots=True)
class Finding:
    """Something the checks found; `quarantine` findings stop the file from being matched."""

    kind: FindingKind
    message: str
    statement_index: int | None = None
    line_number: int | None = None

    @property
    def quarantine(self) -> bool:
        return self.kind in _QUARANTINE


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of the checks: quarantined with its reasons, or accepted, with any flags either way."""

    findings: tuple[Finding, ...]

    @property
    def quarantined(self) -> bool:
        return any(finding.quarantine for finding in self.findings)

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why the file is quarantined (empty when it is not)."""
        return tuple(finding.message for finding in self.findings if finding.quarantine)

    @property
    def flags(self) -> tuple[Finding, ...]:
        """Findings that do not quarantine the file but an auditor must see (sequence gaps)."""
        return tuple(finding for finding in self.findings if not finding.quarantine)


class ImportChecks:
    """Checks a file's lines and statements as they stream by; `verdict()` once they are all in.

    `previous` is the last sequence number already imported per account ("" for statements without an
    account), so a gap between yesterday's file and today's is flagged too.
    """

    def __init__(self, source: str, previous: Mapping[str, SequenceNumber] | None = None) -> None:
        self.with_balances = source in _WITH_BALANCES
        self.previous = dict(previous or {})
        self.totals: defaultdict[int, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.counts: defaultdict[int, int] = defaultdict(int)
        self.statements: list[Statement] = []
        self.findings: list[Finding] = []

    def add(self, item: StatementLine | Statement) -> None:
        if isinstance(item, Statement):
            self.statements.append(item)
            if self.with_balances:
                self.findings.extend(
                    statement_integrity(item, self.totals[item.index], self.counts[item.index])
                )
            return
        self.totals[item.statement_index][item.amount.currency] += item.amount.minor
        self.counts[item.statement_index] += 1
        mismatch = batch_mismatch(item)
        if mismatch is not None:
            self.findings.append(mismatch)

    def add_all(self, items: Iterable[StatementLine | Statement]) -> None:
        for item in items:
            self.add(item)

    def verdict(self) -> Verdict:
        return Verdict((*self.findings, *sequence_findings(self.statements, self.previous)))


def _name(statement: Statement) -> str:
    return f"statement {statement.index}" + (f" ({statement.statement_id})" if statement.statement_id else "")


def statement_integrity(statement: Statement, totals: Mapping[str, int], count: int) -> list[Finding]:
    """Opening balance + booked entries = closing balance, all in the balances' currency."""

    def found(kind: FindingKind, message: str) -> Finding:
        return Finding(kind, f"{_name(statement)}: {message}", statement.index, statement.line_number)

    if statement.opening is None or statement.closing is None:
        missing = "opening" if statement.opening is None else "closing"
        return [found(FindingKind.MISSING_BALANCE, f"no {missing} booked balance, so it cannot be checked")]
    opening, closing = statement.opening.amount, statement.closing.amount
    currency = opening.currency
    if closing.currency != currency:
        return [found(FindingKind.CURRENCY_MISMATCH, f"opens in {currency} but closes in {closing.currency}")]
    findings = [
        found(FindingKind.CURRENCY_MISMATCH, f"has entries in {other}, its balances are {currency}")
        for other in sorted(set(totals) - {currency})
    ]
    entries = Money(totals.get(currency, 0), currency)
    if opening + entries != closing:
        findings.append(
            found(
                FindingKind.UNBALANCED,
                f"does not add up: opening {opening} + entries {entries} = {opening + entries}, "
                f"but the closing balance is {closing} (difference {closing - opening - entries})",
            )
        )
    declared = statement.declared_entry_count
    if declared is not None and declared != count + statement.unbooked_entries:
        findings.append(
            found(
                FindingKind.ENTRY_COUNT,
                f"declares {declared} entries but holds {count + statement.unbooked_entries}",
            )
        )
    return findings


def batch_mismatch(line: StatementLine) -> Finding | None:
    """A batch entry whose details (all with amounts) do not add up to the entry's amount."""
    details = line.batch_details
    if not details or any(detail.amount is None for detail in details):
        return None
    amounts = [detail.amount for detail in details if detail.amount is not None]
    where = f"line {line.line_number}"
    if line.entry_index is not None:
        where = f"entry {line.entry_index} ({where})"
    others = sorted({a.currency for a in amounts} - {line.currency})
    if others:
        return Finding(
            FindingKind.BATCH_MISMATCH,
            f"{where}: batch details in {', '.join(others)} on a {line.currency} entry",
            line.statement_index,
            line.line_number,
        )
    total = Money(sum(a.minor for a in amounts), line.currency)
    if total == line.amount:
        return None
    return Finding(
        FindingKind.BATCH_MISMATCH,
        f"{where}: its {len(details)} batch details add up to {total}, the entry is {line.amount}",
        line.statement_index,
        line.line_number,
    )


def sequence_findings(
    statements: Iterable[Statement], previous: Mapping[str, SequenceNumber] | None = None
) -> list[Finding]:
    """Gaps and repeats in each account's statement numbering, in file order, after `previous`."""
    last = dict(previous or {})
    findings = []
    for statement in statements:
        current = statement.sequence
        if current is None:
            continue
        account = statement.account or ""
        before = last.get(account)
        last[account] = current
        if before is None or current.follows(before):
            continue
        shown = f"account {account}" if account else "the account"
        where = f"{_name(statement)} of {shown}"
        if _order(current) <= _order(before):
            message = f"{where} is number {current}, not after {before}: repeated or out of order"
            findings.append(
                Finding(FindingKind.SEQUENCE_REPEAT, message, statement.index, statement.line_number)
            )
        else:
            missing = ""
            if current.page is None or before.page is None or current.number > before.number + 1:
                count = current.number - before.number - 1
                missing = f": {count} statement{'s' if count != 1 else ''} missing" if count > 0 else ""
            message = f"{where} is number {current}, the one before was {before}{missing}"
            findings.append(
                Finding(FindingKind.SEQUENCE_GAP, message, statement.index, statement.line_number)
            )
    return findings


def _order(sequence: SequenceNumber) -> tuple[int, int]:
    return (sequence.number, sequence.page or 0)


def last_sequences(statements: Iterable[Statement]) -> dict[str, SequenceNumber]:
    """The last sequence number per account in a file: what the next import's `previous` should be."""
    return {s.account or "": s.sequence for s in statements if s.sequence is not None}
