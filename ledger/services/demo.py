"""A realistic day for the demo: payments online and at counters, stamps used and unused, a refund, the
acquirer's settlement of the online payments with its report, and the treasury's export of the day with a
few differences for the auditor to reconcile."""

from __future__ import annotations

import csv
import io
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from ledger.db.engine import Database
from ledger.db.models import Entry
from ledger.money import Money
from ledger.services import stamps
from ledger.services.apikeys import Role
from ledger.services.issuance import CapturedPayment, IssuedStamp, SignerSource, record_captured_payment
from ledger.services.settlement import SettledBatch, batches_from_lines, post_settlement
from ledger.services.staff import StaffMember, create_staff
from ledger.settings import Settings
from providers.model import SettlementKind, SettlementLine

# Where the day happens: consulates in four currencies, busiest first.
CONSULATES = ("FR-PAR", "BE-BRU", "ES-MAD", "GB-LON", "TN-TUN")
COMMON_FEES = ("PASSPORT", "CNIE", "CIVIL-EXTRACT", "LEGALIZATION", "PASSPORT-MINOR", "VISA-SHORT")
ONLINE_PAYMENTS = 18
COUNTER_PAYMENTS = 8
# Who works today: a cashier per busy consulate, two auditors (large write-offs need a second), an admin.
STAFF = (
    ("caissier.paris", "Nadia Benali", Role.CASHIER, "FR-PAR"),
    ("caissier.bruxelles", "Karim Haddad", Role.CASHIER, "BE-BRU"),
    ("auditeur.amina", "Amina El Idrissi", Role.AUDITOR, ""),
    ("auditeur.youssef", "Youssef Alaoui", Role.AUDITOR, ""),
    ("admin", "Administrateur", Role.ADMIN, ""),
)
# The sandbox acquirer's price, as its simulator charges it: 1.50 % of the gross plus 0.25.
ACQUIRER_FEE_BP, ACQUIRER_FEE_FIXED_MINOR = 150, 25
REPORT_HEADER = (
    "settlement_id",
    "movement_id",
    "payment_reference",
    "type",
    "settled_on",
    "currency",
    "gross",
    "fee",
    "net",
)
EXPORT_HEADER = (
    "entry_id",
    "booking_date",
    "value_date",
    "amount",
    "currency",
    "reference",
    "counterparty",
    "description",
    "batch_reference",
)


class DemoRefusedError(Exception):
    """The demo only seeds an empty ledger: it never mixes invented payments with real ones."""


@dataclass
class DemoDay:
    """What was seeded, and where to look first."""

    business_day: date
    online: list[CapturedPayment] = field(default_factory=list)
    counter: list[CapturedPayment] = field(default_factory=list)
    unused: list[IssuedStamp] = field(default_factory=list)
    used: list[IssuedStamp] = field(default_factory=list)
    refunded: list[IssuedStamp] = field(default_factory=list)
    export_path: Path | None = None
    report_path: Path | None = None  # the acquirer's settlement report (profile settlement-sandbox)
    settled: list[SettledBatch] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)  # what the auditor will find, in words
    staff: list[tuple[StaffMember, str]] = field(default_factory=list)  # with a password made for the demo


def _payment_times(now: datetime, timezone: str, count: int, rng: random.Random) -> list[datetime]:
    """`count` instants of today (treasury time) before now, from 08:00 or the last hours, sorted."""
    zone = ZoneInfo(timezone)
    local_now = now.astimezone(zone)
    opening = local_now.replace(hour=8, minute=0, second=0, microsecond=0)
    midnight = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = opening if local_now - opening > timedelta(hours=1) else midnight + timedelta(minutes=1)
    span = max(int((local_now - start).total_seconds()) - 120, count)
    return sorted(now - timedelta(seconds=rng.randrange(60, span + 60)) for _ in range(count))


def _fees(rng: random.Random) -> tuple[str, ...]:
    first = rng.choice(COMMON_FEES)
    return (first,) if rng.random() < 0.7 else (first, rng.choice(("CIVIL-EXTRACT", "CNIE")))


def _price(settings: Settings, consulate: str, fee_codes: tuple[str, ...], at: datetime) -> Money:
    place = settings.consulate(consulate)
    total = Money.zero(place.currency)
    for code in fee_codes:
        total += settings.fees.price(code, place, at).amount
    return total


def _ensure_empty(database: Database, settings: Settings) -> None:
    if settings.production:
        raise DemoRefusedError("the demo invents payments: it never runs in production")
    with database.read() as session:
        entries = session.execute(select(func.count()).select_from(Entry)).scalar_one()
    if entries:
        raise DemoRefusedError(
            f"the ledger already holds {entries} entries: the demo seeds only an empty database "
            "(point ETIMBRE_DATA_DIR or ETIMBRE_DATABASE_URL at a new one)"
        )


def seed_demo_day(
    database: Database,
    settings: Settings,
    keys: SignerSource,
    *,
    now: datetime,
    out_dir: Path,
    seed: int | None = None,
) -> DemoDay:
    """Seed today's payments, stamps and settlement; write the settlement report and the treasury export
    to `out_dir`. Reconciled together they leave exactly the three differences `differences` names."""
    _ensure_empty(database, settings)
    rng = random.Random(seed if seed is not None else secrets.randbits(32))  # noqa: S311 (demo data)
    timezone = settings.service.treasury.timezone
    day = DemoDay(business_day=now.astimezone(ZoneInfo(timezone)).date())
    day.staff = _staff(database, settings)
    cashiers = {member.consulate: member.actor for member, _ in day.staff if member.role is Role.CASHIER}
    times = _payment_times(now, timezone, ONLINE_PAYMENTS + COUNTER_PAYMENTS, rng)
    channels = ["online"] * ONLINE_PAYMENTS + ["counter"] * COUNTER_PAYMENTS
    rng.shuffle(channels)
    issued: list[tuple[CapturedPayment, tuple[IssuedStamp, ...]]] = []
    for number, (at, channel) in enumerate(zip(times, channels, strict=True), start=1):
        consulate = CONSULATES[min(int(rng.expovariate(0.9)), len(CONSULATES) - 1)]
        fee_codes = _fees(rng)
        if channel == "online":
            reference, provider = f"ET{secrets.token_hex(10).upper()}", "sandbox"
        else:
            reference, provider = f"terminal:{consulate}:T{number:04d}", "terminal"
        payment = CapturedPayment(
            payment_ref=reference,
            consulate=consulate,
            fee_codes=fee_codes,
            channel="online" if channel == "online" else "counter",
            provider=provider,
            amount=_price(settings, consulate, fee_codes, at),
            captured_at=at,
            priced_at=at,
            memo=(("demo", "true"),),
        )
        with database.write() as session:
            recorded = record_captured_payment(session, settings, keys, payment, actor="demo")
        (day.online if channel == "online" else day.counter).append(payment)
        issued.append((payment, recorded.stamps))
    _use_and_refund(database, settings, issued, day, rng, cashiers=cashiers)
    lines = _settlement_lines(day, issued)
    with database.write() as session:
        day.settled = post_settlement(
            session, settings.chart, batches_from_lines("sandbox", day.business_day, lines), actor="demo"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    day.report_path = _write_report(out_dir, day, lines)
    day.export_path = _write_export(out_dir, day, issued, rng)
    return day


def _use_and_refund(
    database: Database,
    settings: Settings,
    issued: list[tuple[CapturedPayment, tuple[IssuedStamp, ...]]],
    day: DemoDay,
    rng: random.Random,
    *,
    cashiers: dict[str, str],
) -> None:
    """Counter payments are used at once (the citizen is at the desk); a third of the online ones were
    used since; one online stamp is refunded (paid twice by mistake)."""
    refund_done = False
    for payment, stamps_paid in issued:
        for stamp in stamps_paid:
            if payment.channel == "counter" or rng.random() < 0.33:
                with database.write() as session:
                    actor = cashiers.get(payment.consulate, f"demo:cashier:{payment.consulate}")
                    stamps.consume_stamp(
                        session, settings, stamp.number, consulate=payment.consulate, actor=actor
                    )
                day.used.append(stamp)
            elif not refund_done and payment.channel == "online":
                with database.write() as session:
                    stamps.refund_stamp(
                        session, settings, stamp.number, reason="paid twice by mistake", actor="demo:admin"
                    )
                day.refunded.append(stamp)
                refund_done = True
            else:
                day.unused.append(stamp)


def _staff(database: Database, settings: Settings) -> list[tuple[StaffMember, str]]:
    """The day's staff accounts, each with a fresh password (printed once by `etimbre demo`)."""
    made = []
    with database.write() as session:
        for username, name, role, consulate in STAFF:
            password = secrets.token_urlsafe(12)
            member = create_staff(
                session,
                settings.service.staff,
                username=username,
                role=role,
                password=password,
                display_name=name,
                consulate=consulate,
                known_consulates=set(settings.consulates),
            )
            made.append((member, password))
    return made


def _settlement_lines(
    day: DemoDay, issued: list[tuple[CapturedPayment, tuple[IssuedStamp, ...]]]
) -> list[SettlementLine]:
    """What the sandbox acquirer pays out for the day's online payments: one payout per currency, each
    capture less its fee, less the refund it gave back."""
    refunded = {stamp.number for stamp in day.refunded}
    lines = []
    for number, (payment, paid) in enumerate(issued, start=1):
        if payment.channel != "online":
            continue
        payout = f"po_{day.business_day:%Y%m%d}_{payment.amount.currency.lower()}"
        gross = payment.amount
        fee = Money(
            (gross.minor * ACQUIRER_FEE_BP + 5_000) // 10_000 + ACQUIRER_FEE_FIXED_MINOR, gross.currency
        )
        lines.append(
            _line(
                payment,
                SettlementKind.CAPTURE,
                f"ch_{number:04d}",
                payout=payout,
                gross=gross,
                fee=fee,
                day=day,
            )
        )
        for stamp in paid:
            if stamp.number in refunded:
                refund = _line(
                    payment,
                    SettlementKind.REFUND,
                    f"re_{number:04d}",
                    payout=payout,
                    gross=-stamp.amount,
                    fee=Money.zero(gross.currency),
                    day=day,
                )
                lines.append(refund)
    return lines


def _line(
    payment: CapturedPayment,
    kind: SettlementKind,
    operation: str,
    *,
    payout: str,
    gross: Money,
    fee: Money,
    day: DemoDay,
) -> SettlementLine:
    return SettlementLine(
        kind=kind,
        our_reference=payment.payment_ref,
        provider_reference=None,
        operation_reference=operation,
        payout_reference=payout,
        gross=gross,
        fee=fee,
        net=gross - fee,
        value_date=day.business_day,
    )


def _write_report(out_dir: Path, day: DemoDay, lines: list[SettlementLine]) -> Path:
    """The acquirer's settlement report of the day (profile settlement-sandbox)."""
    rows = [
        (
            line.payout_reference or "",
            line.operation_reference,
            line.our_reference or "",
            line.kind.value,
            day.business_day.isoformat(),
            line.gross.currency,
            line.gross.to_str(),
            line.fee.to_str(),
            line.net.to_str(),
        )
        for line in lines
    ]
    path = out_dir / f"settlement-sandbox-{day.business_day:%Y%m%d}.csv"
    path.write_text(_csv(REPORT_HEADER, rows), encoding="utf-8")
    return path


def _csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _write_export(
    out_dir: Path,
    day: DemoDay,
    issued: list[tuple[CapturedPayment, tuple[IssuedStamp, ...]]],
    rng: random.Random,
) -> Path:
    """The treasury's CSV of the day (profile treasury-default): each acquirer payout as one credit, each
    counter payment as its own line, except for three differences: one counter payment missing, one
    booked with another amount, one bank charge nobody booked."""
    booking = day.business_day.isoformat()
    stamp = f"{day.business_day:%Y%m%d}"
    counter = [payment for payment, _ in issued if payment.channel == "counter"]
    missing, mismatched = rng.sample(counter, 2)
    rows: list[list[str]] = []
    for number, payment in enumerate(counter, start=1):
        if payment is missing:
            continue
        amount = payment.amount
        if payment is mismatched:
            amount = amount - Money.parse("1", amount.currency)  # booked one unit short
        reference = payment.payment_ref
        rows.append([f"TGR-{stamp}-{number:04d}", booking, booking, amount.to_str(), amount.currency])
        rows[-1] += [reference, "", "Paiement TPE guichet", ""]
    for number, settled in enumerate(day.settled, start=len(counter) + 1):
        batch = settled.batch
        rows.append([f"TGR-{stamp}-{number:04d}", booking, booking, batch.net.to_str(), batch.currency])
        rows[-1] += ["", "Sandbox Acquiring", f"Virement acquéreur {batch.batch}", batch.batch]
    currency = missing.amount.currency
    charge = Money.parse("12.50", currency)
    rows.append([f"TGR-{stamp}-9001", booking, booking, (-charge).to_str(), currency])
    rows[-1] += ["", "", "Frais de tenue de compte", ""]
    day.differences = [
        f"missing in the export: counter payment {missing.payment_ref} ({missing.amount})",
        f"amount mismatch: counter payment {mismatched.payment_ref} booked 1 short ({mismatched.amount})",
        f"missing in the ledger: a bank charge of {charge} (no ledger entry)",
    ]
    path = out_dir / f"treasury-{stamp}.csv"
    path.write_text(_csv(EXPORT_HEADER, rows), encoding="utf-8")
    return path
