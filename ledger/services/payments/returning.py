"""A citizen back from the provider's page: ask the provider now rather than wait for its notification."""

from __future__ import annotations

import uuid
from datetime import timedelta

from anyio import to_thread

from ledger.domain.payments import AttemptKind, PaymentStatus
from ledger.services import clock
from ledger.services.payments.context import Payments
from ledger.services.payments.records import add_attempt, open_attempts, payment_by_id
from ledger.services.payments.resolver import resolve_payment

# States in which the citizen may still be paying or the outcome is not known yet.
WAITING = frozenset(
    {PaymentStatus.CREATED, PaymentStatus.PENDING, PaymentStatus.AUTHORIZED, PaymentStatus.UNKNOWN}
)


async def check_on_return(payments: Payments, payment_id: uuid.UUID) -> None:
    """Settle a payment still waiting by the provider's status: a STATUS attempt due now (unless one is
    already open), then the resolver's own settling of it. A capture issues the stamps as usual."""

    def prepare() -> bool:
        with payments.database.write() as session:
            payment = payment_by_id(session, payment_id, lock=True)
            if payment is None or PaymentStatus(payment.state) not in WAITING:
                return False
            if not open_attempts(session, payment):
                add_attempt(session, payment, AttemptKind.STATUS, now=clock.now(), check_after=timedelta(0))
            return True

    if await to_thread.run_sync(prepare):
        await resolve_payment(payments, payment_id)
