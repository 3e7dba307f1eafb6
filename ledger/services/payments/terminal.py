"""A cashier sells at an integrated counter terminal: one sale in flight per terminal, driven by us."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from anyio import to_thread
from sqlalchemy.exc import IntegrityError

from ledger.domain.payments import PaymentStatus
from ledger.money import Money
from ledger.services import clock
from ledger.services.issuance import IssuedStamp, issued_stamps
from ledger.services.payments.context import Payments
from ledger.services.payments.dispatch import call_window, create_at_provider
from ledger.services.payments.errors import PaymentRefusedError, TerminalBusyError
from ledger.services.payments.pricing import price, terminal_variant
from ledger.services.payments.records import NewPayment, insert_payment, payment_by_id
from providers.model import CaptureMode, PaymentRequest

TERMINAL_ID_MAX = 40


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminalSale:
    payment_id: uuid.UUID
    reference: str
    variant: str
    terminal_id: str
    amount: Money
    state: PaymentStatus
    stamps: tuple[IssuedStamp, ...]  # issued once captured
    decline_code: str = ""
    message: str = ""


async def start_terminal_sale(
    payments: Payments,
    *,
    variant: str,
    consulate: str,
    fee_codes: tuple[str, ...],
    terminal_id: str,
    cashier: str,
) -> TerminalSale:
    """Price the fees and run the sale on the terminal. A timeout leaves the sale UNKNOWN and the terminal
    busy until a status query (`sale_status`, or the resolver) settles it; the database refuses a second
    sale on a terminal while one is in flight."""
    if not terminal_id or len(terminal_id) > TERMINAL_ID_MAX or not terminal_id.isprintable():
        raise PaymentRefusedError("terminal_id", f"give the terminal's id (1-{TERMINAL_ID_MAX} characters)")
    now = clock.now()
    priced = price(payments, consulate, fee_codes, now)
    config, provider = terminal_variant(payments, variant, consulate, priced.amount.currency)
    window = call_window(config, payments)
    new = NewPayment(
        consulate=consulate,
        fee_codes=priced.fee_codes,
        amount=priced.amount,
        priced_at=now,
        channel="counter",
        variant=config.name,
        provider=config.provider,
        expires_at=now + window + timedelta(minutes=5),
        terminal_id=terminal_id,
        cashier=cashier,
    )

    def store() -> tuple[uuid.UUID, str, uuid.UUID, str]:
        try:
            with payments.database.write() as session:
                payment, attempt = insert_payment(session, new, now=now)
                attempt.next_check_at = now + window
                return payment.id, payment.reference, attempt.id, attempt.idempotency_key
        except IntegrityError as error:
            if "terminal" not in str(error.orig) and "uq_payments" not in str(error.orig):
                raise
            raise TerminalBusyError(
                f"terminal {terminal_id} ({variant}) has a sale in flight whose outcome is not known yet; "
                "check its status before starting another"
            ) from None

    payment_id, reference, attempt_id, key = await to_thread.run_sync(store)
    request = PaymentRequest(
        reference=reference,
        amount=priced.amount,
        description=priced.description,
        consulate=consulate,
        capture=CaptureMode.AUTOMATIC,
        terminal_id=terminal_id,
        notify_url=payments.notify_url(config.name),
    )
    result = await create_at_provider(
        payments, provider, payment_id=payment_id, attempt_id=attempt_id, key=key, request=request
    )
    sale = await to_thread.run_sync(sale_view, payments, payment_id)
    return TerminalSale(
        payment_id=sale.payment_id, reference=sale.reference, variant=sale.variant, terminal_id=terminal_id,
        amount=sale.amount, state=sale.state, stamps=sale.stamps, decline_code=result.outcome.code,
        message=result.outcome.message,
    )  # fmt: skip


def sale_view(payments: Payments, payment_id: uuid.UUID) -> TerminalSale:
    with payments.database.read() as session:
        payment = payment_by_id(session, payment_id)
        if payment is None or payment.terminal_id is None:
            raise LookupError(f"no terminal sale {payment_id}")
        stamps = issued_stamps(session, payment.entry_id, payments.keys) if payment.entry_id else ()
        return TerminalSale(
            payment_id=payment.id, reference=payment.reference, variant=payment.variant,
            terminal_id=payment.terminal_id, amount=Money(payment.amount, payment.currency),
            state=PaymentStatus(payment.state), stamps=stamps,
        )  # fmt: skip
