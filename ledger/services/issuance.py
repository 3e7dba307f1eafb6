"""Record a captured payment and issue its stamps: one ledger entry and one signed stamp per fee, together."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledger.db.models_stamps import Stamp, StampEvent
from ledger.domain.chart import Role
from ledger.domain.entries import MAX_FUTURE_SKEW_SECONDS, EntryDraft, EntryKind, References, credit, debit
from ledger.domain.fees import FeeError, Price
from ledger.money import Money
from ledger.services import checkpoints, clock
from ledger.services.journal import IdempotencyConflictError, post_entry
from ledger.services.signing_keys import ReceiptSecretChangedError, token_hash
from ledger.services.stamp_fees import stamp_fee_table
from ledger.settings import Settings
from receipts.claims import Channel, StampClaims
from receipts.codec import issue_stamp
from receipts.numbers import StampNumber
from receipts.signers import Signer

STAMPS: Table = Stamp.__table__  # type: ignore[assignment]
EVENTS: Table = StampEvent.__table__  # type: ignore[assignment]
MAX_FEES_PER_PAYMENT = 20
_NUMBER_DRAWS = 5
_PAYMENT_REF = re.compile(r"[\x21-\x7e]{1,64}")
_PROVIDER = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


class PaymentError(ValueError):
    """A captured payment that cannot be recorded as given; `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PriceMismatchError(PaymentError):
    """The amount charged is not the published price of the fees at the time they were priced."""


class PaymentAlreadyRecordedError(PaymentError):
    """This payment reference was already recorded for a different payment (other fees, amount or time)."""


class SignerSource(Protocol):
    """Where issuance gets its signer and receipt links (ledger.services.signing_keys.StampKeys is one)."""

    def stamp_signer(self, session: Session, *, now: datetime, valid_until: datetime) -> Signer: ...

    def receipt_token(self, number: StampNumber) -> str: ...


@dataclass(frozen=True)
class CapturedPayment:
    """A payment the provider (or the counter terminal) has captured, ready to become stamps."""

    payment_ref: str
    consulate: str
    fee_codes: tuple[str, ...]  # one stamp per fee code
    channel: Literal["online", "counter"]
    provider: str  # provider name for the clearing account
    amount: Money  # total actually charged; must equal the priced total or PriceMismatchError
    captured_at: datetime
    priced_at: datetime  # the price comes from the schedule at priced_at
    case_reference: str | None = None
    # Facts kept in the entry's memo (e.g. a terminal's reference and approval code); part of what makes
    # two recordings of one payment the same.
    memo: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class IssuedStamp:
    number: StampNumber
    text: str
    fee_code: str
    amount: Money
    issued_at: datetime
    expires_at: datetime
    receipt_token: str  # the secret for GET /receipts/{token}.pdf


@dataclass(frozen=True)
class IssuedPayment:
    entry_id: uuid.UUID
    stamps: tuple[IssuedStamp, ...]
    replayed: bool = False  # True when this payment had been recorded before: the same stamps again


def _aware(value: datetime, field: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise PaymentError(field, "must be a timezone-aware datetime")
    return value


def _check(payment: CapturedPayment, settings: Settings) -> None:
    if not isinstance(payment.payment_ref, str) or not _PAYMENT_REF.fullmatch(payment.payment_ref):
        raise PaymentError("payment_ref", "must be 1-64 printable ASCII characters without spaces")
    if payment.consulate not in settings.consulates:
        raise PaymentError("consulate", f"unknown consulate {payment.consulate!r}")
    if not payment.fee_codes or len(payment.fee_codes) > MAX_FEES_PER_PAYMENT:
        raise PaymentError("fee_codes", f"give 1 to {MAX_FEES_PER_PAYMENT} fee codes")
    if payment.channel not in ("online", "counter"):
        raise PaymentError("channel", "must be 'online' or 'counter'")
    if not isinstance(payment.provider, str) or not _PROVIDER.fullmatch(payment.provider):
        raise PaymentError("provider", "must be 1-40 lower-case letters, digits or '-'")
    if not isinstance(payment.amount, Money):
        raise PaymentError("amount", "must be Money")
    captured_at = _aware(payment.captured_at, "captured_at")
    _aware(payment.priced_at, "priced_at")
    if captured_at > clock.now() + timedelta(seconds=MAX_FUTURE_SKEW_SECONDS):
        raise PaymentError("captured_at", f"{captured_at.isoformat()} is in the future")


def _prices(payment: CapturedPayment, settings: Settings) -> list[Price]:
    consulate = settings.consulate(payment.consulate)
    try:
        prices = [settings.fees.price(code, consulate, payment.priced_at) for code in payment.fee_codes]
    except FeeError as error:
        raise PaymentError("fee_codes", str(error)) from None
    total = Money.zero(consulate.currency)
    for price in prices:
        total += price.amount
    if payment.amount != total:
        listed = ", ".join(f"{p.fee.code} {p.amount}" for p in prices)
        raise PriceMismatchError(
            "amount",
            f"{payment.amount} was charged but the published price is {total} ({listed}; "
            f"fee schedule {prices[0].version} at {payment.priced_at.isoformat()})",
        )
    return prices


def _draft(
    session: Session, payment: CapturedPayment, prices: Sequence[Price], settings: Settings
) -> EntryDraft:
    currency = payment.amount.currency
    clearing = settings.chart.account(Role.CLEARING, currency=currency, provider=payment.provider)
    outstanding = settings.chart.account(
        Role.STAMPS_OUTSTANDING, currency=currency, consulate=payment.consulate
    )
    # The capture's own time when the books are still open for it, else now (a late recording).
    closed = checkpoints.last_cut(session)
    effective_at = payment.captured_at if closed is None or payment.captured_at > closed else None
    memo = {
        "channel": payment.channel,
        "provider": payment.provider,
        "captured_at": payment.captured_at.isoformat(),
        "priced_at": payment.priced_at.isoformat(),
        "schedule_version": str(prices[0].schedule_version),
        **dict(payment.memo),
    }
    if payment.case_reference:
        memo["case_reference"] = payment.case_reference
    return EntryDraft(
        kind=EntryKind.PAYMENT_CAPTURED,
        lines=(
            debit(clearing, payment.amount),
            *(credit(outstanding, price.amount, fee_code=price.fee.code) for price in prices),
        ),
        consulate=payment.consulate,
        effective_at=effective_at,
        references=References(payment=payment.payment_ref),
        memo=memo,
    )


def _insert_new(session: Session, table: Table, rows: list[dict[str, Any]]) -> set[str]:
    """Insert stamps whose number is free; the numbers actually inserted (a taken one is skipped)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    inserted = session.connection().execute(
        insert(table).on_conflict_do_nothing(index_elements=["number"]).returning(table.c.number), rows
    )
    return {row.number for row in inserted}


def _claims(payment: CapturedPayment, price: Price, settings: Settings, issued_at: datetime) -> StampClaims:
    stamps = settings.service.stamps
    return StampClaims.new(  # a fresh random number each time
        issuer=stamps.issuer,
        audience=payment.consulate,
        fee_code=price.fee.code,
        amount=price.amount,
        channel=Channel(payment.channel),
        schedule_version=price.schedule_version,
        issued_at=issued_at,
        validity=timedelta(days=stamps.validity_days),
        case_reference=payment.case_reference,
    )


def _stamp_row(
    claims: StampClaims,
    *,
    payment: CapturedPayment,
    settings: Settings,
    source: SignerSource,
    signer: Signer,
    entry_id: uuid.UUID,
    line_no: int,
) -> dict[str, Any]:
    fees = stamp_fee_table(settings.fees)
    return {
        "number": claims.number.digits,
        "consulate": payment.consulate,
        "fee_code": claims.fee_code,
        "fee_number": fees.number_of(claims.fee_code),
        "amount": claims.amount.minor,
        "currency": claims.amount.currency,
        "schedule_version": claims.schedule_version,
        "channel": payment.channel,
        "provider": payment.provider,
        "payment_ref": payment.payment_ref,
        "entry_id": entry_id,
        "line_no": line_no,
        "case_reference": payment.case_reference,
        "kid": signer.kid.hex(),
        "text": issue_stamp(claims, signer, fees),
        "receipt_token_hash": token_hash(source.receipt_token(claims.number)),
        "issued_at": claims.issued_at,
        "expires_at": claims.expires_at,
        "status": "issued",
    }


def _issue(
    session: Session,
    settings: Settings,
    *,
    source: SignerSource,
    payment: CapturedPayment,
    prices: Sequence[Price],
    entry_id: uuid.UUID,
    actor: str,
) -> tuple[IssuedStamp, ...]:
    now = clock.now()
    issued_at = now.astimezone(UTC).replace(microsecond=0)  # the stamp carries whole seconds
    expires_at = issued_at + timedelta(days=settings.service.stamps.validity_days)
    signer = source.stamp_signer(session, now=issued_at, valid_until=expires_at)
    pending = dict(enumerate(prices, start=1))
    done: dict[int, dict[str, Any]] = {}
    for _ in range(_NUMBER_DRAWS):
        rows = {
            line_no: _stamp_row(
                _claims(payment, price, settings, issued_at),
                payment=payment,
                settings=settings,
                source=source,
                signer=signer,
                entry_id=entry_id,
                line_no=line_no,
            )
            for line_no, price in pending.items()
        }
        inserted = _insert_new(session, STAMPS, list(rows.values()))
        done.update({line_no: row for line_no, row in rows.items() if row["number"] in inserted})
        # A number already taken (one chance in 10^16 per stamp) is drawn again and signed again.
        pending = {line_no: price for line_no, price in pending.items() if line_no not in done}
        if not pending:
            break
    else:
        raise RuntimeError(f"could not draw a free stamp number in {_NUMBER_DRAWS} attempts")
    session.connection().execute(
        EVENTS.insert(),
        [
            {
                "number": row["number"],
                "kind": "issued",
                "at": now,
                "consulate": payment.consulate,
                "actor": actor[:64],
                "entry_id": entry_id,
                "detail": "",
            }
            for _, row in sorted(done.items())
        ],
    )
    return tuple(
        IssuedStamp(
            number=StampNumber(row["number"]),
            text=row["text"],
            fee_code=row["fee_code"],
            amount=Money(row["amount"], row["currency"]),
            issued_at=issued_at,
            expires_at=expires_at,
            receipt_token=source.receipt_token(StampNumber(row["number"])),
        )
        for _, row in sorted(done.items())
    )


def issued_stamps(session: Session, entry_id: uuid.UUID, source: SignerSource) -> tuple[IssuedStamp, ...]:
    """The stamps a recorded payment issued, in fee order, with their receipt links given again."""
    rows = session.connection().execute(
        select(STAMPS).where(STAMPS.c.entry_id == entry_id).order_by(STAMPS.c.line_no)
    )
    stamps = []
    for row in rows:
        number = StampNumber(row.number)
        token = source.receipt_token(number)
        if token_hash(token) != row.receipt_token_hash:
            raise ReceiptSecretChangedError(
                f"the receipt link of stamp {number} cannot be given again: the receipt secret changed"
            )
        stamps.append(
            IssuedStamp(
                number=number,
                text=row.text,
                fee_code=row.fee_code,
                amount=Money(row.amount, row.currency),
                issued_at=row.issued_at,
                expires_at=row.expires_at,
                receipt_token=token,
            )
        )
    return tuple(stamps)


def record_captured_payment(
    session: Session, settings: Settings, signer_source: SignerSource, payment: CapturedPayment, *, actor: str
) -> IssuedPayment:
    """Post the `payment_captured` entry (clearing:<provider> debit; stamps-outstanding:<consulate>
    credit per fee, fee codes on the postings) and issue one signed stamp per fee, in the caller's
    transaction: both are written or neither is.

    The price of each fee comes from the published schedule at `priced_at`; the amount charged must be
    their total (PriceMismatchError otherwise). Recording the same payment (same `payment_ref`) again
    returns the stamps issued the first time (`replayed`); the same reference with other fees, amount or
    capture time is a PaymentAlreadyRecordedError. Pass the provider's own capture time, the same each
    time, so that a second report of one capture is recognised as such.
    """
    _check(payment, settings)
    prices = _prices(payment, settings)
    draft = _draft(session, payment, prices, settings)
    try:
        recorded = post_entry(session, draft, actor=actor, idempotency_key=f"payment:{payment.payment_ref}")
    except IdempotencyConflictError:
        raise PaymentAlreadyRecordedError(
            "payment_ref",
            f"payment {payment.payment_ref} was already recorded with other fees, amount or capture time",
        ) from None
    if recorded.replayed:
        return IssuedPayment(
            recorded.entry_id, issued_stamps(session, recorded.entry_id, signer_source), replayed=True
        )
    stamps = _issue(
        session,
        settings,
        source=signer_source,
        payment=payment,
        prices=prices,
        entry_id=recorded.entry_id,
        actor=actor,
    )
    return IssuedPayment(recorded.entry_id, stamps)
