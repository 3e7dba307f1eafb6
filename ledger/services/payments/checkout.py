"""A citizen starts an online payment: priced from the schedule, stored with its attempt, then sent."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from anyio import to_thread

from ledger.domain.payments import PaymentStatus
from ledger.money import Money
from ledger.services import clock
from ledger.services.payments.context import Payments
from ledger.services.payments.dispatch import call_window, create_at_provider
from ledger.services.payments.pricing import choose_variant, price
from ledger.services.payments.records import NewPayment, insert_payment, payment_by_id
from providers.model import CaptureMode, Mode, NextAction, PaymentRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class StartedPayment:
    payment_id: uuid.UUID
    reference: str
    variant: str
    amount: Money
    state: PaymentStatus
    next_action: NextAction | None  # where the citizen's browser goes to pay
    decline_code: str = ""


async def start_online_payment(
    payments: Payments,
    *,
    consulate: str,
    fee_codes: tuple[str, ...],
    locale: str = "fr",
    variant_name: str | None = None,
) -> StartedPayment:
    """Price the fees, pick the variant for the consulate's currency, commit the payment and its create
    attempt (with its idempotency key), and only then call the provider for the next action.
    `variant_name` pins a variant (operators and tests); it must still serve the consulate's currency."""
    now = clock.now()
    priced = price(payments, consulate, fee_codes, now)
    variant, provider = choose_variant(
        payments, Mode.ONLINE, consulate, priced.amount.currency, only=variant_name
    )
    new = NewPayment(
        consulate=consulate,
        fee_codes=priced.fee_codes,
        amount=priced.amount,
        priced_at=now,
        channel="online",
        variant=variant.name,
        provider=variant.provider,
        expires_at=now + timedelta(minutes=payments.settings.service.payments.checkout_minutes),
    )

    def store() -> tuple[uuid.UUID, str, uuid.UUID, str]:
        with payments.database.write() as session:
            payment, attempt = insert_payment(session, new, now=now)
            attempt.next_check_at = now + call_window(variant, payments)
            return payment.id, payment.reference, attempt.id, attempt.idempotency_key

    payment_id, reference, attempt_id, key = await to_thread.run_sync(store)
    back = f"{payments.public_url}/payments/{payment_id}/return"
    request = PaymentRequest(
        reference=reference,
        amount=priced.amount,
        description=priced.description,
        consulate=consulate,
        capture=CaptureMode.AUTOMATIC,
        return_url=back,
        cancel_url=f"{back}?canceled=1",
        notify_url=payments.notify_url(variant.name),
        locale=locale,
        expires_at=new.expires_at,
    )
    result = await create_at_provider(
        payments, provider, payment_id=payment_id, attempt_id=attempt_id, key=key, request=request
    )

    def state() -> PaymentStatus:
        with payments.database.read() as session:
            found = payment_by_id(session, payment_id)
            assert found is not None
            return PaymentStatus(found.state)

    return StartedPayment(
        payment_id=payment_id,
        reference=reference,
        variant=variant.name,
        amount=priced.amount,
        state=await to_thread.run_sync(state),
        next_action=result.next_action,
        decline_code=result.outcome.code,
    )
