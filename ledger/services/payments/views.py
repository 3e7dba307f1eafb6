"""A payment as its citizen may see it, and what the provider's return tells us on the way back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from ledger.domain.payments import PaymentStatus
from ledger.money import Money
from ledger.services.issuance import IssuedStamp, issued_stamps
from ledger.services.payments.context import Payments
from ledger.services.payments.errors import PaymentNotFoundError
from ledger.services.payments.records import payment_by_id


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentView:
    id: uuid.UUID
    reference: str
    state: PaymentStatus
    channel: str
    variant: str
    consulate: str
    fee_codes: tuple[str, ...]
    amount: Money
    expires_at: datetime
    terminal_id: str | None
    stamps: tuple[IssuedStamp, ...]


def payment_view(payments: Payments, payment_id: uuid.UUID) -> PaymentView:
    with payments.database.read() as session:
        payment = payment_by_id(session, payment_id)
        if payment is None:
            raise PaymentNotFoundError(f"no payment {payment_id}")
        stamps = issued_stamps(session, payment.entry_id, payments.keys) if payment.entry_id else ()
        return PaymentView(
            id=payment.id, reference=payment.reference, state=PaymentStatus(payment.state),
            channel=payment.channel, variant=payment.variant, consulate=payment.consulate,
            fee_codes=payment.fees, amount=Money(payment.amount, payment.currency),
            expires_at=payment.expires_at, terminal_id=payment.terminal_id, stamps=stamps,
        )  # fmt: skip
