"""What happens to a stamp after issue: verified at a counter, used once, refunded, or expired unused."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Table, select, update
from sqlalchemy.orm import Session

from ledger.db.models_payments import Payment
from ledger.db.models_stamps import SigningKey, Stamp, StampEvent
from ledger.domain.chart import Role
from ledger.domain.entries import EntryDraft, EntryKind, References, credit, debit
from ledger.money import Money
from ledger.services import clock
from ledger.services.journal import post_entries, post_entry
from ledger.services.stamp_fees import stamp_fee_table
from ledger.settings import Settings
from receipts.algorithms import Algorithm
from receipts.fees import Fee
from receipts.keys import KeyPurpose, KeyStatus, VerificationKey, load_public_key
from receipts.numbers import StampNumber
from receipts.verifier import Decision, decide

STAMPS: Table = Stamp.__table__  # type: ignore[assignment]
EVENTS: Table = StampEvent.__table__  # type: ignore[assignment]
KEYS: Table = SigningKey.__table__  # type: ignore[assignment]
EXPIRY_BATCH = 500

# Reasons the service adds to the verifier's (receipts.reasons.Reason): facts of the ledger, not the stamp.
ALREADY_USED = "already_used"
NOT_IN_LEDGER = "not_in_ledger"


class StampNotFoundError(LookupError):
    """No stamp with this number."""


class OtherConsulateError(Exception):
    """The stamp belongs to another consulate than the cashier's; its details are not shown."""


@dataclass(frozen=True, slots=True)
class StampUse:
    """When, where and by whom a stamp was used (or refunded, or expired)."""

    kind: str  # consumed | refunded | expired
    at: datetime
    consulate: str
    actor: str
    entry_id: uuid.UUID | None
    detail: str = ""


class StampUnusableError(Exception):
    """A stamp that can no longer be used or refunded; `use` says what happened to it, and when."""

    def __init__(self, number: StampNumber, use: StampUse) -> None:
        verbs = {"consumed": "used", "refunded": "refunded", "expired": "expired unused"}
        where = f" at {use.consulate}" if use.kind == "consumed" else ""
        by = f" by {use.actor}" if use.kind != "expired" else ""
        super().__init__(f"stamp {number} was already {verbs[use.kind]}{where} on {use.at.isoformat()}{by}")
        self.number = number
        self.use = use


class StampExpiredError(Exception):
    """Past its expiry date: neither used nor refunded any more."""


class RefundRefusedError(Exception):
    """Outside the refund policy (window after issue, or expired)."""


# Reading ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StampView:
    number: StampNumber
    consulate: str
    fee: Fee
    amount: Money
    channel: str
    schedule_version: int
    case_reference: str | None
    payment_ref: str
    issued_at: datetime
    expires_at: datetime
    status: str
    events: tuple[StampUse, ...]  # issued first, then at most one of consumed/refunded/expired

    @property
    def final(self) -> StampUse | None:
        return next((event for event in self.events if event.kind != "issued"), None)


def _use(row: Row[Any]) -> StampUse:
    return StampUse(row.kind, row.at, row.consulate, row.actor, row.entry_id, row.detail)


def _final_use(session: Session, number: str) -> StampUse | None:
    row = (
        session.connection()
        .execute(select(EVENTS).where(EVENTS.c.number == number, EVENTS.c.kind != "issued"))
        .one_or_none()
    )
    return None if row is None else _use(row)


def _row(session: Session, number: StampNumber) -> Row[Any] | None:
    return session.connection().execute(select(STAMPS).where(STAMPS.c.number == number.digits)).one_or_none()


def find_stamp(session: Session, settings: Settings, number: StampNumber) -> StampView:
    row = _row(session, number)
    if row is None:
        raise StampNotFoundError(f"no stamp {number}")
    events = session.connection().execute(
        select(EVENTS).where(EVENTS.c.number == number.digits).order_by(EVENTS.c.id)
    )
    fee = stamp_fee_table(settings.fees).by_code(row.fee_code)
    assert fee is not None  # numbers are never withdrawn from the schedule
    return StampView(
        number=number,
        consulate=row.consulate,
        fee=fee,
        amount=Money(row.amount, row.currency),
        channel=row.channel,
        schedule_version=row.schedule_version,
        case_reference=row.case_reference,
        payment_ref=row.payment_ref,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        status=row.status,
        events=tuple(_use(event) for event in events),
    )


def stamp_for_consulate(
    session: Session, settings: Settings, number: StampNumber, consulate: str
) -> StampView:
    """A cashier's look-up by the typed digits: another consulate's stamp is refused, not shown."""
    view = find_stamp(session, settings, number)
    if view.consulate != consulate:
        raise OtherConsulateError(f"stamp {number} is not for {consulate}; it cannot be shown or used here")
    return view


# Verification -------------------------------------------------------------------------------------------


class LedgerTrust:
    """The verifier's trust (receipts.codec.StampTrust) read from the service's own database: every stamp
    key with its current status, refunds as the deny list, and the published fee table."""

    def __init__(self, session: Session, settings: Settings) -> None:
        self._session = session
        self._fees = stamp_fee_table(settings.fees)
        self._keys: dict[bytes, VerificationKey] = {}
        for row in session.connection().execute(select(KEYS).where(KEYS.c.purpose == KeyPurpose.STAMP.value)):
            kid = bytes.fromhex(row.kid)
            self._keys[kid] = VerificationKey(
                kid=kid,
                algorithm=Algorithm(row.algorithm),
                public_key=load_public_key(bytes(row.public_key)),
                not_before=row.not_before,
                not_after=row.not_after,
                status=KeyStatus(row.status),
            )

    def stamp_key(self, kid: bytes) -> VerificationKey | None:
        return self._keys.get(kid)

    def is_denied(self, number: StampNumber) -> bool:
        status = self._session.connection().execute(
            select(STAMPS.c.status).where(STAMPS.c.number == number.digits)
        )
        return status.scalar_one_or_none() == "refunded"

    def fee_by_number(self, number: int) -> Fee | None:
        return self._fees.by_number(number)


@dataclass(frozen=True, slots=True)
class Verification:
    """The answer at the counter: `usable` only for a genuine, unused stamp of this consulate."""

    decision: Decision
    reason: str | None  # a receipts Reason value, or already_used / not_in_ledger
    message: str
    status: str | None = None  # the ledger's status when the stamp is genuine
    used: StampUse | None = None

    @property
    def usable(self) -> bool:
        return self.reason is None

    @property
    def genuine(self) -> bool:
        return self.decision.genuine


def verify_presented(
    session: Session, settings: Settings, text: str, *, consulate: str | None, now: datetime | None = None
) -> Verification:
    """Check scanned QR text in the documented order, then ask the ledger whether it was used.

    Used-ness is keyed on the stamp number, never on its bytes: the malleated ECDSA twin of a used stamp
    is genuine and is answered "already used"."""
    moment = now or clock.now()
    skew = timedelta(seconds=settings.service.stamps.clock_skew_seconds)
    decision = decide(text, LedgerTrust(session, settings), audience=consulate, now=moment, clock_skew=skew)
    if not decision.genuine or decision.number is None:
        reason = decision.reason.value if decision.reason is not None else None
        return Verification(decision, reason, decision.message)
    number = decision.number
    row = _row(session, number)
    if row is None:
        return Verification(
            decision,
            NOT_IN_LEDGER,
            f"stamp {number} is correctly signed but the ledger has no record of it: report it",
        )
    if row.status == "issued":
        return Verification(decision, None, f"genuine and unused: stamp {number}", status=row.status)
    use = _final_use(session, number.digits)
    assert use is not None  # a final status always has its event
    message = str(StampUnusableError(number, use))
    return Verification(decision, ALREADY_USED, message, status=row.status, used=use)


# Consumption, refund, expiry ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Consumption:
    number: StampNumber
    entry_id: uuid.UUID
    at: datetime
    consulate: str
    actor: str
    amount: Money
    fee_code: str


def _move(session: Session, number: StampNumber, status: str, at: datetime) -> bool:
    """issued -> status, once: the conditional UPDATE's row count says whether this call did it."""
    moved = session.connection().execute(
        update(STAMPS)
        .where(STAMPS.c.number == number.digits, STAMPS.c.status == "issued")
        .values(status=status, status_changed_at=at)
    )
    return bool(getattr(moved, "rowcount", 0) == 1)


def _not_consumable(session: Session, number: StampNumber, consulate: str) -> Exception:
    row = _row(session, number)
    if row is None:
        return StampNotFoundError(f"no stamp {number}")
    if row.consulate != consulate:
        return OtherConsulateError(
            f"stamp {number} is for another consulate; it cannot be used at {consulate}"
        )
    if row.status == "issued":
        return StampExpiredError(f"stamp {number} expired on {row.expires_at.isoformat()}; it cannot be used")
    return _refuse(session, number)


def _refuse(session: Session, number: StampNumber) -> StampUnusableError:
    use = _final_use(session, number.digits)
    assert use is not None  # the UPDATE found no issued stamp, so it has ended
    return StampUnusableError(number, use)


def _event(session: Session, number: StampNumber, use: StampUse) -> None:
    session.connection().execute(
        EVENTS.insert(),
        {
            "number": number.digits,
            "kind": use.kind,
            "at": use.at,
            "consulate": use.consulate,
            "actor": use.actor[:64],
            "entry_id": use.entry_id,
            "detail": use.detail,
        },
    )


def consume_stamp(
    session: Session, settings: Settings, number: StampNumber, *, consulate: str, actor: str
) -> Consumption:
    """Mark a stamp used, exactly once, at the cashier's consulate; the ledger moves its fee from stamps
    outstanding to consular-fee revenue in the same transaction.

    The database keeps it to once: a conditional UPDATE (issued -> consumed) checked by its row count, and
    a unique index on the stamp's final event. A second attempt raises StampUnusableError (when, where,
    by whom)."""
    now = clock.now()
    cutoff = now - timedelta(seconds=settings.service.stamps.clock_skew_seconds)
    # One statement decides: only an issued, unexpired stamp of this consulate moves; the reason for a
    # refusal is read afterwards (a concurrent winner's commit is visible to that later statement).
    row = (
        session.connection()
        .execute(
            update(STAMPS)
            .where(
                STAMPS.c.number == number.digits,
                STAMPS.c.status == "issued",
                STAMPS.c.consulate == consulate,
                STAMPS.c.expires_at > cutoff,
            )
            .values(status="consumed", status_changed_at=now)
            .returning(
                STAMPS.c.consulate,
                STAMPS.c.fee_code,
                STAMPS.c.amount,
                STAMPS.c.currency,
                STAMPS.c.payment_ref,
            )
        )
        .one_or_none()
    )
    if row is None:
        raise _not_consumable(session, number, consulate)
    amount = Money(row.amount, row.currency)
    chart = settings.chart
    entry = post_entry(
        session,
        EntryDraft(
            kind=EntryKind.STAMP_CONSUMED,
            lines=(
                debit(
                    chart.account(Role.STAMPS_OUTSTANDING, currency=row.currency, consulate=row.consulate),
                    amount,
                    fee_code=row.fee_code,
                ),
                credit(
                    chart.account(Role.CONSULAR_FEES, currency=row.currency, fee=row.fee_code),
                    amount,
                    fee_code=row.fee_code,
                ),
            ),
            consulate=row.consulate,
            references=References(payment=row.payment_ref, stamp=number.digits),
        ),
        actor=actor,
    )
    _event(session, number, StampUse("consumed", now, consulate, actor, entry.entry_id))
    return Consumption(number, entry.entry_id, now, consulate, actor, amount, row.fee_code)


@dataclass(frozen=True, slots=True)
class Refund:
    number: StampNumber
    entry_id: uuid.UUID
    at: datetime
    amount: Money
    provider: str
    payment_ref: str


def refund_stamp(
    session: Session, settings: Settings, number: StampNumber, *, reason: str, actor: str
) -> Refund:
    """Refund an unused stamp within the policy: the fee goes from stamps outstanding back to the
    provider's clearing account, and the number joins the trust list's deny list. For stamps paid on a
    standalone counter terminal; a stamp paid through a provider is refunded through it
    (ledger.services.refunds), never here."""
    row = _row(session, number)
    if row is None:
        raise StampNotFoundError(f"no stamp {number}")
    policy = settings.service.stamps
    now = clock.now()
    if row.status != "issued":
        raise _refuse(session, number)
    variant = session.scalar(select(Payment.variant).where(Payment.reference == row.payment_ref))
    if variant is not None:
        # Paid through a provider: only a refund through that provider gives the money back.
        raise RefundRefusedError(
            f"stamp {number} was paid through {variant}: refund it with POST /refunds "
            "(etimbre payments refund), which gives the money back through the provider"
        )
    deadline = min(row.issued_at + timedelta(days=policy.refund_window_days), row.expires_at)
    if now > deadline:
        raise RefundRefusedError(
            f"stamp {number} can be refunded until {deadline.isoformat()} "
            f"({policy.refund_window_days} days after issue); it is too late"
        )
    if not _move(session, number, "refunded", now):
        raise _refuse(session, number)
    amount = Money(row.amount, row.currency)
    chart = settings.chart
    entry = post_entry(
        session,
        EntryDraft(
            kind=EntryKind.STAMP_REFUNDED,
            lines=(
                debit(
                    chart.account(Role.STAMPS_OUTSTANDING, currency=row.currency, consulate=row.consulate),
                    amount,
                    fee_code=row.fee_code,
                ),
                credit(chart.account(Role.CLEARING, currency=row.currency, provider=row.provider), amount),
            ),
            consulate=row.consulate,
            references=References(payment=row.payment_ref, stamp=number.digits),
            memo={"reason": reason},
        ),
        actor=actor,
    )
    _event(session, number, StampUse("refunded", now, row.consulate, actor, entry.entry_id, reason))
    return Refund(number, entry.entry_id, now, amount, row.provider, row.payment_ref)


def expire_stamps(
    session: Session, settings: Settings, *, as_of: datetime, actor: str, limit: int = EXPIRY_BATCH
) -> list[StampNumber]:
    """Expire up to `limit` stamps unused past their date (with the clock skew): each one's fee moves from
    stamps outstanding to revenue:expired-stamps. Returns the numbers expired; call again until empty."""
    now = clock.now()
    if as_of > now:
        raise ValueError(f"--as-of {as_of.isoformat()} is in the future; stamps expire only in the past")
    cutoff = as_of - timedelta(seconds=settings.service.stamps.clock_skew_seconds)
    candidates = [
        row.number
        for row in session.connection().execute(
            select(STAMPS.c.number)
            .where(STAMPS.c.status == "issued", STAMPS.c.expires_at <= cutoff)
            .order_by(STAMPS.c.expires_at, STAMPS.c.number)
            .limit(limit)
        )
    ]
    if not candidates:
        return []
    # Conditional, like consumption: a stamp used meanwhile is left alone.
    moved = session.connection().execute(
        update(STAMPS)
        .where(STAMPS.c.number.in_(candidates), STAMPS.c.status == "issued")
        .values(status="expired", status_changed_at=now)
        .returning(
            STAMPS.c.number,
            STAMPS.c.consulate,
            STAMPS.c.fee_code,
            STAMPS.c.amount,
            STAMPS.c.currency,
            STAMPS.c.payment_ref,
        )
    )
    rows = sorted(moved.all(), key=lambda r: r.number)
    chart = settings.chart
    drafts = [
        EntryDraft(
            kind=EntryKind.STAMP_EXPIRED,
            lines=(
                debit(
                    chart.account(Role.STAMPS_OUTSTANDING, currency=row.currency, consulate=row.consulate),
                    Money(row.amount, row.currency),
                    fee_code=row.fee_code,
                ),
                credit(
                    chart.account(Role.EXPIRED_STAMPS, currency=row.currency),
                    Money(row.amount, row.currency),
                    fee_code=row.fee_code,
                ),
            ),
            consulate=row.consulate,
            references=References(payment=row.payment_ref, stamp=row.number),
            memo={"as_of": as_of.isoformat()},
        )
        for row in rows
    ]
    entry_ids = post_entries(session, drafts, actor=actor)
    if rows:
        session.connection().execute(
            EVENTS.insert(),
            [
                {
                    "number": row.number,
                    "kind": "expired",
                    "at": now,
                    "consulate": row.consulate,
                    "actor": actor[:64],
                    "entry_id": entry_id,
                    "detail": f"as of {as_of.isoformat()}",
                }
                for row, entry_id in zip(rows, entry_ids, strict=True)
            ],
        )
    return [StampNumber(row.number) for row in rows]


def denied_numbers(session: Session, *, now: datetime, clock_skew: timedelta) -> list[StampNumber]:
    """Refunded stamps a verifier could still accept by their dates: the trust list's deny list."""
    rows = session.connection().execute(
        select(STAMPS.c.number).where(STAMPS.c.status == "refunded", STAMPS.c.expires_at > now - clock_skew)
    )
    return [StampNumber(row.number) for row in rows]
