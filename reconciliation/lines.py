"""Normalized statement lines and statements: what every importer produces, whatever the file format."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from ledger.money import Money

# Ordered (name, value) pairs of the source record, kept for the auditor's report; a tuple so lines stay
# immutable and hashable.
RawFields = tuple[tuple[str, str], ...]


class SourceKind(StrEnum):
    """Where a line came from."""

    TREASURY_CSV = "treasury_csv"
    TREASURY_XLSX = "treasury_xlsx"
    CAMT053 = "camt053"
    MT940 = "mt940"
    SETTLEMENT = "settlement"


class SettlementCategory(StrEnum):
    """What an acquirer's settlement line is, in the ledger's words (profiles map the acquirer's names)."""

    CAPTURE = "capture"
    REFUND = "refund"
    CHARGEBACK = "chargeback"
    CHARGEBACK_REVERSAL = "chargeback_reversal"
    FEE = "fee"
    ADJUSTMENT = "adjustment"


@dataclass(frozen=True, slots=True)
class BatchDetail:
    """One transaction inside a batch entry (camt.053 `NtryDtls/TxDtls`), with its own signed amount.

    `amount` is None only when the bank left it out (camt .02 makes `AmtDtls` optional).
    """

    amount: Money | None
    reference: str | None
    end_to_end_id: str | None = None
    counterparty: str | None = None
    remittance: str | None = None


@dataclass(frozen=True, slots=True)
class SettlementAmounts:
    """An acquirer's figures for one settlement line: `net = gross - fee` (fee positive when charged)."""

    provider: str
    category: SettlementCategory
    gross: Money
    fee: Money
    net: Money


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One movement on the treasury account (or in a settlement report), normalized.

    `amount` is signed from the treasury's side: money received is positive. For settlement lines it is
    the net amount, and `settlement` carries gross, fee and net.
    """

    source: SourceKind
    # Physical line where the record starts (CSV, MT940 `:61:`), sheet row (XLSX), or the line of the
    # `<Ntry>` start tag (camt.053); `entry_index` is the 1-based entry number in an XML file.
    line_number: int
    booking_date: date
    amount: Money
    value_date: date | None = None
    reference: str | None = None
    counterparty: str | None = None
    description: str | None = None
    # The bank's or acquirer's own id for this line (camt AcctSvcrRef, MT940 bank reference, CSV id).
    entry_reference: str | None = None
    reversal: bool = False
    batch_reference: str | None = None
    batch_details: tuple[BatchDetail, ...] = ()
    settlement: SettlementAmounts | None = None
    statement_index: int = 1
    entry_index: int | None = None
    raw: RawFields = field(default=(), compare=False)

    @property
    def currency(self) -> str:
        return self.amount.currency


@dataclass(frozen=True, slots=True)
class Balance:
    """A booked balance as the bank states it (camt OPBD/CLBD, MT940 :60F:/:62F:), signed credit-positive."""

    amount: Money
    date: date


@dataclass(frozen=True, slots=True)
class SequenceNumber:
    """A statement's place in the bank's numbering: camt ElctrncSeqNb, or MT940 :28C: number/page."""

    number: int
    page: int | None = None

    def follows(self, previous: SequenceNumber) -> bool:
        """Whether this statement comes right after `previous`, with nothing missing in between."""
        if self.page is None or previous.page is None:
            return self.number == previous.number + 1
        return (self.number == previous.number and self.page == previous.page + 1) or (
            self.number == previous.number + 1 and self.page == 1
        )

    def __str__(self) -> str:
        return str(self.number) if self.page is None else f"{self.number}/{self.page}"


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of a file, with the figures the import checks need.

    CSV and XLSX exports have a single statement without balances or sequence. The statement's lines are
    the ones whose `statement_index` equals its `index`; the checks add them up against the balances.
    """

    index: int
    line_number: int
    statement_id: str | None = None
    account: str | None = None
    sequence: SequenceNumber | None = None
    legal_sequence: int | None = None
    opening: Balance | None = None
    closing: Balance | None = None
    # Entries that are not booked (camt status PDNG, INFO): not lines, not in the balances, but counted.
    unbooked_entries: int = 0
    # What the statement says about itself (camt TxsSummry/TtlNtries/NbOfNtries), to catch lost entries.
    declared_entry_count: int | None = None
