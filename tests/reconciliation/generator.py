"""A generator of labelled reconciliation data: ledger entries, a treasury export, a settlement report and
the next day's export, with every kind of difference injected and every item labelled with the truth.

Each item carries the real-world events it stands for (`tags`: a payment, a payout, a bank charge) and
the category an auditor should see it in, or None when it should be matched. A match is right when each
ledger/export pair in it shares an event and every member shares one with the match's first member.
"""

from __future__ import annotations

import csv
import io
import random
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from ledger.domain.chart import Chart, Role
from ledger.domain.entries import EntryDraft, EntryKind, References, credit, debit
from ledger.money import Money

TREASURY_HEADER = [
    "entry_id",
    "booking_date",
    "value_date",
    "amount",
    "currency",
    "reference",
    "counterparty",
    "description",
    "batch_reference",
]
SETTLEMENT_HEADER = [
    "settlement_id",
    "movement_id",
    "payment_reference",
    "type",
    "settled_on",
    "currency",
    "gross",
    "fee",
    "net",
]
FEES = {"EUR": [6000, 8000, 12500, 9900, 3500, 4000], "TND": [60000, 80000, 125000, 30000]}
NAMES = ["Amina El Idrissi", "Youssef Benali", "أمينة الإدريسي", "Fatima Zahra", "Karim Alaoui", "Léa Martin"]


@dataclass(frozen=True)
class Truth:
    key: str
    tags: frozenset[str]
    category: str | None = None  # None: it should be matched


@dataclass(frozen=True)
class LedgerItem:
    truth: Truth
    draft: EntryDraft | None = None
    reverses: str | None = None  # key of the entry this one reverses (posted after it)
    effective_at: datetime | None = None


@dataclass
class Dataset:
    day: date
    timezone: str
    ledger: list[LedgerItem] = field(default_factory=list)
    treasury_rows: list[tuple[list[str], Truth]] = field(default_factory=list)
    settlement_rows: list[tuple[list[str], Truth]] = field(default_factory=list)
    next_day_rows: list[tuple[list[str], Truth]] = field(default_factory=list)

    @staticmethod
    def _csv(
        header: list[str], rows: list[tuple[list[str], Truth]], *, bom: bool
    ) -> tuple[bytes, dict[int, Truth]]:
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(header)
        truth: dict[int, Truth] = {}
        for number, (row, label) in enumerate(rows, start=2):
            writer.writerow(row)
            truth[number] = label
        data = out.getvalue().encode()
        return (b"\xef\xbb\xbf" + data if bom else data), truth

    def treasury_csv(self) -> tuple[bytes, dict[int, Truth]]:
        return self._csv(TREASURY_HEADER, self.treasury_rows, bom=True)

    def settlement_csv(self) -> tuple[bytes, dict[int, Truth]]:
        return self._csv(SETTLEMENT_HEADER, self.settlement_rows, bom=False)

    def next_day_csv(self) -> tuple[bytes, dict[int, Truth]]:
        return self._csv(TREASURY_HEADER, self.next_day_rows, bom=False)

    @property
    def anomalies(self) -> int:
        labels = [i.truth for i in self.ledger] + [
            t for rows in (self.treasury_rows, self.settlement_rows) for _, t in rows
        ]
        return sum(1 for t in labels if t.category is not None)


class Generator:
    """Builds a Dataset for `day` (in the treasury's time zone); `scale` multiplies the ordinary traffic."""

    def __init__(
        self, chart: Chart, day: date, timezone: str, *, seed: int = 7, scale: int = 1, each: int = 3
    ) -> None:
        self.chart = chart
        self.rng = random.Random(seed)
        self.data = Dataset(day, timezone)
        self.scale = scale
        self.each = each  # how many of every anomaly
        self.serial = 0
        self.zone = zoneinfo.ZoneInfo(timezone)

    # Small helpers ---------------------------------------------------------------------------------------

    def ref(self, prefix: str = "ET-PAY") -> str:
        self.serial += 1
        return f"{prefix}-{self.serial:06d}"

    def at(self, day: date) -> datetime:
        minutes = self.rng.randrange(8 * 60, 20 * 60)
        return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.zone).astimezone(UTC)

    def fee(self, currency: str) -> Money:
        return Money(self.rng.choice(FEES[currency]), currency)

    def capture(self, payment: str, amount: Money, provider: str, when: datetime) -> EntryDraft:
        clearing = self.chart.account(Role.CLEARING, currency=amount.currency, provider=provider)
        consulate = "FR-PAR" if amount.currency == "EUR" else "TN-TUN"
        outstanding = self.chart.account(
            Role.STAMPS_OUTSTANDING, currency=amount.currency, consulate=consulate
        )
        return EntryDraft(
            kind=EntryKind.PAYMENT_CAPTURED,
            lines=(debit(clearing, amount, "VISA-C"), credit(outstanding, amount, "VISA-C")),
            consulate=consulate,
            references=References(payment=payment),
            effective_at=when,
        )

    def refund(self, payment: str, amount: Money, provider: str, when: datetime) -> EntryDraft:
        clearing = self.chart.account(Role.CLEARING, currency=amount.currency, provider=provider)
        outstanding = self.chart.account(
            Role.STAMPS_OUTSTANDING, currency=amount.currency, consulate="FR-PAR"
        )
        return EntryDraft(
            kind=EntryKind.STAMP_REFUNDED,
            lines=(debit(outstanding, amount, "VISA-C"), credit(clearing, amount, "VISA-C")),
            consulate="FR-PAR",
            references=References(payment=payment),
            effective_at=when,
        )

    def treasury_adjustment(self, amount: Money, when: datetime, reason: str) -> EntryDraft:
        """A movement of the treasury account posted by hand (a bank charge): negative amount = paid out."""
        treasury = self.chart.account(Role.TREASURY, currency=amount.currency)
        other = self.chart.account(Role.ADJUSTMENTS, currency=amount.currency)
        return EntryDraft(
            kind=EntryKind.ADJUSTMENT,
            lines=(debit(treasury, amount), credit(other, amount)),
            reason=reason,
            effective_at=when,
        )

    def settlement_entry(self, payout: str, gross: Money, fee: Money, when: datetime) -> EntryDraft:
        treasury = self.chart.account(Role.TREASURY, currency=gross.currency)
        fees = self.chart.account(Role.ACQUIRER_FEES, currency=gross.currency, provider="sandbox")
        clearing = self.chart.account(Role.CLEARING, currency=gross.currency, provider="sandbox")
        return EntryDraft(
            kind=EntryKind.SETTLEMENT,
            lines=(debit(treasury, gross - fee), debit(fees, fee), credit(clearing, gross)),
            references=References(settlement=payout),
            effective_at=when,
        )

    def ledger(self, truth: Truth, draft: EntryDraft) -> None:
        self.data.ledger.append(LedgerItem(truth, draft))

    def treasury(
        self,
        truth: Truth,
        amount: Money,
        *,
        reference: str = "",
        booked: date | None = None,
        description: str = "",
        batch: str = "",
        rows: list[tuple[list[str], Truth]] | None = None,
    ) -> None:
        self.serial += 1
        booked = booked or self.data.day
        (self.data.treasury_rows if rows is None else rows).append(
            (
                [
                    f"TGR-{self.serial:07d}",
                    booked.isoformat(),
                    booked.isoformat(),
                    amount.to_str(),
                    amount.currency,
                    reference,
                    self.rng.choice(NAMES),
                    description or "Droits consulaires",
                    batch,
                ],
                truth,
            )
        )

    def report(
        self, truth: Truth, payout: str, payment: str, kind: str, gross: Money, fee: Money, on: date
    ) -> None:
        self.serial += 1
        self.data.settlement_rows.append(
            (
                [
                    payout,
                    f"mv_{self.serial:07d}",
                    payment,
                    kind,
                    on.isoformat(),
                    gross.currency,
                    gross.to_str(),
                    fee.to_str(),
                    (gross - fee).to_str(),
                ],
                truth,
            )
        )

    # The day ---------------------------------------------------------------------------------------------

    def build(self) -> Dataset:
        day = self.data.day
        for _ in range(40 * self.scale):
            self.direct("EUR")
        for _ in range(15 * self.scale):
            self.direct("TND")
        self.payout("PO-A", with_ledger_settlement=False)
        self.payout("PO-B", with_ledger_settlement=True)
        self.payout("PO-C", with_ledger_settlement=False, off_by=Money(100, "EUR"))
        self.bank_charge()
        self.reference_in_description()
        self.within_tolerance()
        self.reversal_pair()
        for _ in range(self.each):
            self.missing_in_ledger()
            self.missing_in_export()
            self.amount_mismatch()
            self.export_duplicate()
            self.ledger_duplicate()
            self.timing(day)
            self.currency_mismatch()
            self.reversed_but_paid()
        self.ambiguous()
        self.unknown_credit()
        self.rng.shuffle(self.data.treasury_rows)
        # A repeated line comes after its original (banks resend; they do not prepend).
        self.data.treasury_rows.sort(key=lambda row: row[1].category == "duplicate")
        return self.data

    def direct(self, currency: str) -> None:
        payment, amount = self.ref(), self.fee(currency)
        truth = Truth(payment, frozenset({payment}))
        self.ledger(truth, self.capture(payment, amount, "transfer", self.at(self.data.day)))
        self.treasury(truth, amount, reference=payment)

    def payout(self, payout: str, *, with_ledger_settlement: bool, off_by: Money | None = None) -> None:
        day = self.data.day
        gross_total, fee_total = Money(0, "EUR"), Money(0, "EUR")
        for number in range(6 * self.scale):
            payment, amount = self.ref(), self.fee("EUR")
            fee = Money(amount.minor * 15 // 1000, "EUR")
            truth = Truth(payment, frozenset({payment}))
            captured_on = day - timedelta(days=number % 2)
            self.ledger(truth, self.capture(payment, amount, "sandbox", self.at(captured_on)))
            self.report(
                Truth(f"{payout}/{payment}", frozenset({payment, payout})),
                payout,
                payment,
                "capture",
                amount,
                fee,
                captured_on,
            )
            gross_total, fee_total = gross_total + amount, fee_total + fee
        refunded = self.ref()
        amount = Money(3500, "EUR")
        self.ledger(
            Truth(refunded, frozenset({refunded})), self.refund(refunded, amount, "sandbox", self.at(day))
        )
        self.report(
            Truth(f"{payout}/{refunded}", frozenset({refunded, payout})),
            payout,
            refunded,
            "refund",
            -amount,
            Money(0, "EUR"),
            day,
        )
        gross_total = gross_total - amount
        if not with_ledger_settlement:
            # An acquirer capture the ledger never heard of: still inside the payout's total.
            stray = self.ref("ET-PAY-X")
            extra = Money(4000, "EUR")
            fee = Money(60, "EUR")
            self.report(
                Truth(f"{payout}/{stray}", frozenset({stray, payout}), "missing_in_ledger"),
                payout,
                stray,
                "capture",
                extra,
                fee,
                day,
            )
            gross_total, fee_total = gross_total + extra, fee_total + fee
        monthly = Money(250, "EUR")
        fee_category = "amount_mismatch" if off_by is not None else None
        self.report(
            Truth(f"{payout}/fee", frozenset({payout}), fee_category),
            payout,
            "",
            "fee",
            Money(0, "EUR"),
            monthly,
            day,
        )
        fee_total = fee_total + monthly
        net = gross_total - fee_total
        if with_ledger_settlement:
            self.ledger(
                Truth(f"{payout}/settlement", frozenset({payout})),
                self.settlement_entry(payout, gross_total, fee_total, self.at(day)),
            )
        received = net + off_by if off_by is not None else net
        self.treasury(
            Truth(payout, frozenset({payout}), "amount_mismatch" if off_by is not None else None),
            received,
            description=f"Virement SANDBOX PAYMENTS lot {payout}",
            batch=payout,
        )

    def bank_charge(self) -> None:
        amount = Money(-2050, "EUR")
        truth = Truth("bank-charge", frozenset({"bank-charge"}))
        self.ledger(
            truth, self.treasury_adjustment(amount, self.at(self.data.day), "frais de tenue de compte")
        )
        self.treasury(truth, amount, description="Frais de tenue de compte")

    def reference_in_description(self) -> None:
        payment, amount = self.ref(), Money(7700, "EUR")
        truth = Truth(payment, frozenset({payment}))
        self.ledger(truth, self.capture(payment, amount, "transfer", self.at(self.data.day)))
        self.treasury(truth, amount, description=f"VIR SEPA {payment.replace('-', '')} VISA COURT SEJOUR")

    def within_tolerance(self) -> None:
        payment = self.ref()
        truth = Truth(payment, frozenset({payment}))
        self.ledger(truth, self.capture(payment, Money(6000, "EUR"), "transfer", self.at(self.data.day)))
        self.treasury(truth, Money(6001, "EUR"), reference=payment)

    def reversal_pair(self) -> None:
        payment = self.ref()
        when = self.at(self.data.day)
        truth = Truth(payment, frozenset({payment, f"reversal:{payment}"}))
        self.ledger(truth, self.capture(payment, Money(12500, "EUR"), "transfer", when))
        self.data.ledger.append(
            LedgerItem(
                Truth(f"{payment}/reversal", frozenset({f"reversal:{payment}"})),
                reverses=payment,
                effective_at=when + timedelta(minutes=5),
            )
        )

    # Anomalies -------------------------------------------------------------------------------------------

    def missing_in_ledger(self) -> None:
        payment = self.ref("ET-PAY-X")
        self.treasury(
            Truth(payment, frozenset({payment}), "missing_in_ledger"), self.fee("EUR"), reference=payment
        )

    def missing_in_export(self) -> None:
        payment = self.ref()
        self.ledger(
            Truth(payment, frozenset({payment}), "missing_in_export"),
            self.capture(payment, self.fee("EUR"), "transfer", self.at(self.data.day)),
        )

    def amount_mismatch(self) -> None:
        payment = self.ref()
        truth = Truth(payment, frozenset({payment}), "amount_mismatch")
        self.ledger(truth, self.capture(payment, Money(12500, "EUR"), "transfer", self.at(self.data.day)))
        self.treasury(truth, Money(15200, "EUR"), reference=payment)

    def export_duplicate(self) -> None:
        payment, amount = self.ref(), self.fee("EUR")
        truth = Truth(payment, frozenset({payment}))
        self.ledger(truth, self.capture(payment, amount, "transfer", self.at(self.data.day)))
        self.treasury(truth, amount, reference=payment)
        self.treasury(Truth(f"{payment}/again", frozenset({payment}), "duplicate"), amount, reference=payment)

    def ledger_duplicate(self) -> None:
        payment, amount = self.ref(), self.fee("EUR")
        when = self.at(self.data.day)
        truth = Truth(payment, frozenset({payment}))
        self.ledger(truth, self.capture(payment, amount, "transfer", when))
        self.ledger(
            Truth(f"{payment}/again", frozenset({payment}), "duplicate"),
            self.capture(payment, amount, "transfer", when + timedelta(minutes=1)),
        )
        self.treasury(truth, amount, reference=payment)

    def timing(self, day: date) -> None:
        # A counterpart five days away (the window is three): in this run's file...
        payment, amount = self.ref(), self.fee("EUR")
        truth = Truth(payment, frozenset({payment}), "timing")
        self.ledger(truth, self.capture(payment, amount, "transfer", self.at(day - timedelta(days=5))))
        self.treasury(truth, amount, reference=payment)
        # ...and a ledger entry of the day whose line is in the next day's file, not in this run.
        payment, amount = self.ref(), self.fee("EUR")
        self.ledger(
            Truth(payment, frozenset({payment}), "timing"),
            self.capture(payment, amount, "transfer", self.at(day)),
        )
        self.treasury(
            Truth(payment, frozenset({payment})),
            amount,
            reference=payment,
            booked=day + timedelta(days=1),
            rows=self.data.next_day_rows,
        )

    def currency_mismatch(self) -> None:
        payment = self.ref()
        truth = Truth(payment, frozenset({payment}), "currency_mismatch")
        self.ledger(truth, self.capture(payment, Money(6000, "EUR"), "transfer", self.at(self.data.day)))
        self.treasury(truth, Money(60000, "TND"), reference=payment)

    def reversed_but_paid(self) -> None:
        # The ledger reversed a payment the treasury did receive: the line matches the payment it is,
        # and the reversal is what an auditor must look at.
        payment, amount = self.ref(), self.fee("EUR")
        when = self.at(self.data.day)
        truth = Truth(payment, frozenset({payment}))
        self.ledger(truth, self.capture(payment, amount, "transfer", when))
        self.data.ledger.append(
            LedgerItem(
                Truth(f"{payment}/reversal", frozenset({f"reversal:{payment}"}), "reversed"),
                reverses=payment,
                effective_at=when + timedelta(hours=1),
            )
        )
        self.treasury(truth, amount, reference=payment)

    def ambiguous(self) -> None:
        amount = Money(-3500, "EUR")
        for number in range(2):
            self.ledger(
                Truth(f"charge-{number}", frozenset({f"charge-{number}"}), "ambiguous"),
                self.treasury_adjustment(amount, self.at(self.data.day), f"frais de virement {number}"),
            )
        self.treasury(
            Truth("charge-line", frozenset({"charge-0", "charge-1"}), "ambiguous"),
            amount,
            description="Frais",
        )

    def unknown_credit(self) -> None:
        self.treasury(
            Truth("unknown-credit", frozenset({"unknown-credit"}), "missing_in_ledger"),
            Money(7777, "EUR"),
            description="Versement espèces",
        )
