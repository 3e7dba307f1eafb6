"""The manual queue worked by a person, on both engines: a parked payment is issued only when the provider
captured exactly the price, or closed without stamps with a reason; a queued attempt goes back to the
resolver."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from ledger.db.models_payments import PaymentAttempt
from ledger.money import Money
from ledger.services import clock
from ledger.services.payments.checkout import start_online_payment
from ledger.services.payments.context import Payments
from ledger.services.payments.errors import PaymentNotFoundError, PaymentRefusedError
from ledger.services.payments.manual import close_parked, issue_parked, requeue
from ledger.services.payments.resolver import manual_queue, run_once
from ledger.services.payments.terminal import start_terminal_sale
from ledger.services.payments.webhooks import receive_webhook
from tests.payments import deliveries as signed
from tests.payments.conftest import approve, count, deliveries
from tests.providers.conftest import CURRENT

pytestmark = pytest.mark.anyio


async def test_money_on_an_expired_checkout_is_parked_then_issued_by_a_person(
    payments: Payments, fake_urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    started = await start_online_payment(
        payments, consulate="FR-PAR", fee_codes=("PASSPORT",), variant_name="sandbox-online"
    )
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(minutes=31))
    assert (await run_once(payments)).expired == 1
    monkeypatch.setattr(clock, "now", real_now)
    # The citizen pays after all, on the page still open: the capture lands on an expired payment.
    await approve(started.next_action, fake_urls["sandbox"])
    for headers, body in await deliveries("sandbox", fake_urls["sandbox"], started.reference):
        await receive_webhook(payments, "sandbox-online", headers, body)
    assert [q.payment_state for q in manual_queue(payments)] == ["parked"]
    assert count(payments.database, "stamps") == 0

    with pytest.raises(PaymentRefusedError, match="say why"):
        close_parked(payments, started.reference, reason=" ", actor="admin")
    await issue_parked(payments, started.reference, actor="admin")
    assert count(payments.database, "payments", "WHERE state = 'captured'") == 1
    assert count(payments.database, "stamps") == 1
    assert manual_queue(payments) == []


async def test_a_mismatch_is_never_issued_and_is_closed_with_a_reason(payments: Payments) -> None:
    started = await start_online_payment(
        payments, consulate="FR-PAR", fee_codes=("PASSPORT",), variant_name="sandbox-online"
    )
    wrong = signed.captured("sandbox", started.reference, Money(5500, "USD"), CURRENT, int(time.time()))
    await receive_webhook(payments, "sandbox-online", *wrong)
    with pytest.raises(PaymentRefusedError, match=r"only for 55\.00 EUR"):
        await issue_parked(payments, started.reference, actor="admin")  # the sandbox has it pending
    close_parked(
        payments, started.reference, reason="never charged: the sandbox shows it unpaid", actor="admin"
    )
    assert (
        count(
            payments.database, "payments", "WHERE state = 'failed' AND parked_reason LIKE '%closed by admin%'"
        )
        == 1
    )
    assert count(payments.database, "stamps") == 0
    with pytest.raises(PaymentNotFoundError):
        close_parked(payments, started.reference, reason="again", actor="admin")


async def test_a_queued_attempt_goes_back_to_the_resolver(payments: Payments) -> None:
    sale = await start_terminal_sale(  # the terminal's answer is lost: unknown
        payments, variant="sandbox-counter-slow", consulate="FR-PAR", fee_codes=("PASSPORT",),
        terminal_id="T-Q", cashier="c",
    )  # fmt: skip
    with payments.database.write() as session:  # as if it had stayed unknown for three days
        session.execute(
            update(PaymentAttempt).values(manual=True, manual_reason="still not settled", next_check_at=None)
        )
    assert [q.attempt_kind for q in manual_queue(payments)] == ["create"]
    assert (await run_once(payments)).resolved == 0, "the resolver leaves the queue alone"
    attempt_id = manual_queue(payments)[0].attempt_id
    assert attempt_id is not None
    requeue(payments, attempt_id)
    assert (await run_once(payments)).resolved == 1
    assert count(payments.database, "payments", "WHERE state = 'captured'") == 1
    assert manual_queue(payments) == []
    assert sale.state.value == "unknown"
