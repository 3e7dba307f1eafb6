"""A stamp's public status by its printed number: what anyone holding the number may learn, nothing more."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from ledger.db.models_stamps import Stamp
from ledger.money import Money
from ledger.services import clock
from ledger.services.stamp_fees import stamp_fee_table
from ledger.settings import Settings
from receipts.fees import Fee
from receipts.numbers import StampNumber

STAMPS: Table = Stamp.__table__  # type: ignore[assignment]


class PublicStatus(enum.StrEnum):
    VALID = "valid"  # issued, unused, within its validity window
    USED = "used"
    REFUNDED = "refunded"
    EXPIRED = "expired"
    UNKNOWN = "unknown"  # no stamp has this number


@dataclass(frozen=True, slots=True)
class StampStatus:
    """The answer to "is this stamp good?": no consulate, no dates of use, no payment, no case reference;
    the stamp is a bearer token, so its number must not open anything else."""

    number: StampNumber
    status: PublicStatus
    fee: Fee | None = None
    amount: Money | None = None
    valid_until: datetime | None = None  # only while it is valid: what a holder needs to plan


_BY_LEDGER_STATUS = {
    "consumed": PublicStatus.USED,
    "refunded": PublicStatus.REFUNDED,
    "expired": PublicStatus.EXPIRED,
}


def public_status(
    session: Session, settings: Settings, number: StampNumber, *, now: datetime | None = None
) -> StampStatus:
    """Valid, used, refunded, expired or unknown, with the service and the amount."""
    row = (
        session.connection()
        .execute(
            select(
                STAMPS.c.status, STAMPS.c.fee_code, STAMPS.c.amount, STAMPS.c.currency, STAMPS.c.expires_at
            ).where(STAMPS.c.number == number.digits)
        )
        .one_or_none()
    )
    if row is None:
        return StampStatus(number, PublicStatus.UNKNOWN)
    fee = stamp_fee_table(settings.fees).by_code(row.fee_code)
    amount = Money(row.amount, row.currency)
    expires_at = row.expires_at
    status = _BY_LEDGER_STATUS.get(row.status)
    if status is None:  # issued: valid until its expiry, even before the expiry job has run
        status = PublicStatus.VALID if (now or clock.now()) < expires_at else PublicStatus.EXPIRED
    return StampStatus(
        number, status, fee, amount, valid_until=expires_at if status is PublicStatus.VALID else None
    )
