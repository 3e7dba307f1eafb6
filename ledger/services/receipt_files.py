"""A citizen's receipt, found by the secret in its link: the PDF, the QR as PNG or SVG, the stamp's status."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Table, select
from sqlalchemy.orm import Session

from ledger.db.models_stamps import Stamp
from ledger.money import Money
from ledger.services.signing_keys import token_hash
from ledger.services.stamp_fees import stamp_fee_table
from ledger.settings import Settings
from receipts.numbers import StampNumber
from receipts.pdf import ReceiptData, render_receipt
from receipts.qr import qr_png, qr_svg

STAMPS: Table = Stamp.__table__  # type: ignore[assignment]
# reportlab keeps per-process state while drawing: one receipt at a time per worker process.
_RENDERING = threading.Lock()


class ReceiptNotFoundError(LookupError):
    """No receipt behind this link (mistyped, or never issued)."""


@dataclass(frozen=True, slots=True)
class ReceiptStamp:
    number: StampNumber
    text: str
    consulate: str
    fee_code: str
    amount: Money
    payment_ref: str
    issued_at: datetime
    expires_at: datetime
    status: str


def _stamp(row: Row[Any]) -> ReceiptStamp:
    return ReceiptStamp(
        number=StampNumber(row.number),
        text=row.text,
        consulate=row.consulate,
        fee_code=row.fee_code,
        amount=Money(row.amount, row.currency),
        payment_ref=row.payment_ref,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        status=row.status,
    )


def find_receipt(session: Session, token: str) -> ReceiptStamp:
    """The stamp behind a receipt link; only the link's hash is stored, so it is looked up by hash."""
    row = (
        session.connection()
        .execute(select(STAMPS).where(STAMPS.c.receipt_token_hash == token_hash(token)))
        .one_or_none()
    )
    if row is None:
        raise ReceiptNotFoundError("no receipt behind this link")
    return _stamp(row)


def receipt_pdf(settings: Settings, stamp: ReceiptStamp, token: str) -> bytes:
    consulate = settings.consulate(stamp.consulate)
    fee = stamp_fee_table(settings.fees).by_code(stamp.fee_code)
    assert fee is not None  # fees keep their numbers forever
    data = ReceiptData(
        stamp_text=stamp.text,
        number=stamp.number,
        consulate_fr=consulate.name.fr,
        consulate_ar=consulate.name.ar,
        service_fr=fee.fr,
        service_ar=fee.ar,
        amount=stamp.amount,
        issued_at=stamp.issued_at,
        expires_at=stamp.expires_at,
        payment_reference=stamp.payment_ref,
        status_url=f"{settings.service.server.public_url.rstrip('/')}/receipts/{token}.json",
        timezone=consulate.timezone,
    )
    with _RENDERING:
        return render_receipt(data)


def receipt_qr_png(stamp: ReceiptStamp) -> bytes:
    return qr_png(stamp.text)


def receipt_qr_svg(stamp: ReceiptStamp) -> bytes:
    return qr_svg(stamp.text)
