"""Refunds through the service against every built-in provider's fake, on both engines: partial and
repeated refunds of whole stamps, never more than captured (refused before any call), retries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from ledger.db.engine import Database
from ledger.db.models_payments import PaymentAttempt
from ledger.db.models_refunds import Refund
from ledger.money import Money
from ledger.services.balances import account_balance
from ledger.services.payments.context import Payments
from ledger.services.payments.resolver import resolve_attempt
from ledger.services.refunds import (
    RefundConflictError,
    RefundError,
    RefundExceedsCapturedError,
    RefundOrder,
    get_refund,
    mark_dispatched,
    prepare_refund,
    refund_payment,
)
from ledger.services.signing_keys import StampKeys
from ledger.settings import Settings
from providers.registry import ProviderRegistry
from tests.providers.conformance import Harness
from tests.refunds.conftest import PRICE, Paid, stamp_status

pytestmark = pytest.mark.anyio
Pay = Callable[[Harness], Awaitable[Paid]]


def _order(paid: Paid, key: str, **changes: object) -> RefundOrder:
    fields: dict[str, object] = {
        "payment_ref": paid.reference, "reason": "service not delivered", "actor": "admin-1", "request_key": key,
    }  # fmt: skip
    fields.update(changes)
    return RefundOrder(**fields)  # type: ignore[arg-type]


def _count(db: Database, sql: str, **params: object) -> int:
    with db.read() as session:
        return int(session.execute(text(sql), params).scalar_one())


def _balance(db: Database, code: str) -> Money | None:
    with db.read() as session:
        return account_balance(session, code)


async def test_a_refund_above_the_captured_amount_is_refused_before_any_call(
    harness: Harness, pay: Pay, db: Database, settings: Settings, registry: ProviderRegistry
) -> None:
    paid = await pay(harness)
    paid.watch()
    with pytest.raises(RefundExceedsCapturedError, match=r"60\.01 EUR is more than the 60\.00 EUR left"):
        await refund_payment(db, settings, registry.get, _order(paid, "k1", amount=Money(6001, "EUR")))
    with pytest.raises(RefundError, match="not a stamp of payment"):
        await refund_payment(
            db, settings, registry.get, _order(paid, "k2", stamps=("1234 5678 9012 3456-9",))
        )
    with pytest.raises(RefundError, match="the check digit should be 9"):
        await refund_payment(db, settings, registry.get, _order(paid, "k2", stamps=("12345678901234567",)))
    with pytest.raises(RefundError, match="whole stamps"):
        await refund_payment(db, settings, registry.get, _order(paid, "k3", amount=Money(1000, "EUR")))
    assert paid.requests == [], "the provider must not have been called"
    assert _count(db, "SELECT count(*) FROM payment_attempts") == 0
    assert _count(db, "SELECT refunded_amount FROM payments") == 0
    # The database keeps the same promise on its own: the reservation cannot pass the captured amount.
    with pytest.raises(IntegrityError), db.write() as session:
        session.execute(text("UPDATE payments SET refunded_amount = captured_amount + 1"))


async def test_repeated_partial_refunds_of_whole_stamps(
    harness: Harness, pay: Pay, db: Database, settings: Settings, registry: ProviderRegistry
) -> None:
    paid = await pay(harness)
    passport, legalization = paid.stamps
    provider = harness.provider.name

    first = await refund_payment(db, settings, registry.get, _order(paid, "r1", stamps=(passport,)))
    assert (first.state, first.amount, first.payment_state) == (
        "succeeded",
        Money(5500, "EUR"),
        "partially_refunded",
    )
    assert stamp_status(db, passport) == "refunded"  # on the trust list's deny list
    assert stamp_status(db, legalization) == "issued"
    assert (await harness.provider.fetch_status(paid.reference)).refunded == Money(5500, "EUR")

    paid.watch()
    again = await refund_payment(db, settings, registry.get, _order(paid, "r1", stamps=(passport,)))
    assert (again.id, again.state) == (first.id, "succeeded")
    assert paid.requests == [], "a retry of a finished refund calls nobody"
    with pytest.raises(RefundError, match="already refunded"):
        await refund_payment(db, settings, registry.get, _order(paid, "r2", stamps=(passport,)))
    with pytest.raises(RefundExceedsCapturedError, match=r"more than the 5\.00 EUR left"):
        await refund_payment(db, settings, registry.get, _order(paid, "r2", amount=Money(5500, "EUR")))
    assert paid.requests == []

    second = await refund_payment(db, settings, registry.get, _order(paid, "r3"))  # every unused stamp left
    assert [s.number for s in second.stamps] == [legalization]
    assert (second.state, second.payment_state, second.refunded) == ("succeeded", "refunded", PRICE)
    assert (await harness.provider.fetch_status(paid.reference)).refunded == PRICE
    assert _balance(db, f"assets:clearing:{provider}:EUR") == Money(0, "EUR")
    assert _balance(db, "liabilities:stamps-outstanding:FR-PAR") == Money(0, "EUR")
    assert (
        _count(db, "SELECT count(*) FROM payment_attempts WHERE kind = 'refund' AND state = 'succeeded'") == 2
    )
    with pytest.raises(RefundError, match="is refunded; it cannot be refunded"):
        await refund_payment(db, settings, registry.get, _order(paid, "r4"))


async def test_a_used_stamp_is_refunded_from_the_fee_income(
    harness: Harness, pay: Pay, db: Database, settings: Settings, registry: ProviderRegistry
) -> None:
    from ledger.services.stamps import consume_stamp
    from receipts.numbers import StampNumber

    paid = await pay(harness)
    passport, _ = paid.stamps
    with db.write() as session:
        consume_stamp(session, settings, StampNumber(passport), consulate="FR-PAR", actor="cashier")
    refund = await refund_payment(db, settings, registry.get, _order(paid, "u1", stamps=(passport,)))
    assert refund.state == "succeeded" and refund.stamps[0].was_used
    assert stamp_status(db, passport) == "consumed"
    assert _balance(db, "revenue:consular-fees:PASSPORT:EUR") == Money(0, "EUR")


async def test_a_refund_whose_answer_is_lost_is_settled_by_the_resolver(
    harness: Harness,
    pay: Pay,
    db: Database,
    settings: Settings,
    registry: ProviderRegistry,
    signer_keys: StampKeys,
) -> None:
    paid = await pay(harness)
    passport, _ = paid.stamps
    await harness.arm(paid.reference, ["timeout-after-charge"])
    lost = await refund_payment(db, settings, registry.get, _order(paid, "t1", stamps=(passport,)))
    assert lost.state == "unknown"
    assert stamp_status(db, passport) == "issued"  # nothing posted while the outcome is unknown
    with pytest.raises(RefundConflictError, match="not finished yet"):
        await refund_payment(db, settings, registry.get, _order(paid, "t2"))
    await harness.arm(paid.reference, [])
    with db.read() as session:
        attempt_id = session.execute(
            select(PaymentAttempt.id).where(
                PaymentAttempt.kind == "refund", PaymentAttempt.state == "unknown"
            )
        ).scalar_one()
    payments = Payments(database=db, settings=settings, registry=registry, keys=signer_keys)
    assert await resolve_attempt(payments, attempt_id) == "resolved"
    with db.read() as session:
        settled = get_refund(session, lost.id)
    assert (settled.state, settled.payment_state) == ("succeeded", "partially_refunded")
    assert stamp_status(db, passport) == "refunded"
    assert (await harness.provider.fetch_status(paid.reference)).refunded == Money(5500, "EUR")  # once


async def test_a_refunded_stamp_is_refused_at_the_counter(
    harness: Harness, pay: Pay, db: Database, settings: Settings, registry: ProviderRegistry
) -> None:
    from ledger.services.stamps import verify_presented

    paid = await pay(harness)
    await refund_payment(db, settings, registry.get, _order(paid, "d1", stamps=(paid.stamps[0],)))
    with db.read() as session:
        refunded = verify_presented(session, settings, paid.issued.stamps[0].text, consulate="FR-PAR")
        kept = verify_presented(session, settings, paid.issued.stamps[1].text, consulate="FR-PAR")
    assert (refunded.usable, refunded.reason) == (False, "denied")
    assert kept.usable


async def test_a_crash_around_the_provider_call_is_settled_by_the_resolver(
    harness: Harness,
    pay: Pay,
    db: Database,
    settings: Settings,
    registry: ProviderRegistry,
    signer_keys: StampKeys,
) -> None:
    """The process dies after the call (refund done at the provider, nothing applied) or before it
    (attempt committed, never sent): the resolver finds out which from the provider's status."""
    paid = await pay(harness)
    passport, legalization = paid.stamps
    caps = harness.provider.capabilities()
    payments = Payments(database=db, settings=settings, registry=registry, keys=signer_keys)

    with db.write() as session:
        sent = prepare_refund(session, settings, caps, _order(paid, "c1", stamps=(passport,)))
    with db.write() as session:
        mark_dispatched(session, sent.refund_id)
    answer = await harness.provider.refund(sent.request, idempotency_key=sent.idempotency_key)
    assert answer.outcome.kind.value == "succeeded"  # ... and the process dies before applying it
    assert await resolve_attempt(payments, _attempt_of(db, sent.refund_id)) == "resolved"
    with db.read() as session:
        assert get_refund(session, sent.refund_id).state == "succeeded"
    assert stamp_status(db, passport) == "refunded"

    with db.write() as session:
        never = prepare_refund(session, settings, caps, _order(paid, "c2", stamps=(legalization,)))
    # ... the process dies before marking it dispatched: nothing was sent.
    assert await resolve_attempt(payments, _attempt_of(db, never.refund_id)) == "resolved"
    with db.read() as session:
        declined = get_refund(session, never.refund_id)
    assert (declined.state, declined.refunded) == ("declined", Money(5500, "EUR"))  # reservation given back
    assert stamp_status(db, legalization) == "issued"
    again = await refund_payment(db, settings, registry.get, _order(paid, "c3", stamps=(legalization,)))
    assert (again.state, again.payment_state) == ("succeeded", "refunded")
    assert (await harness.provider.fetch_status(paid.reference)).refunded == PRICE  # each stamp once


def _attempt_of(db: Database, refund_id: object) -> Any:
    with db.read() as session:
        return session.execute(select(Refund.attempt_id).where(Refund.id == refund_id)).scalar_one()


async def test_the_stamp_refund_without_a_provider_refuses_a_stamp_paid_through_one(
    harness: Harness, pay: Pay, db: Database, settings: Settings
) -> None:
    from ledger.services.stamps import RefundRefusedError, refund_stamp
    from receipts.numbers import StampNumber

    paid = await pay(harness)
    with pytest.raises(RefundRefusedError, match="refund it with POST /refunds"), db.write() as session:
        refund_stamp(session, settings, StampNumber(paid.stamps[0]), reason="wrong way", actor="admin")
    assert stamp_status(db, paid.stamps[0]) == "issued"


async def test_a_stamp_used_while_its_refund_was_unknown_is_refunded_from_the_fee_income(
    harness: Harness,
    pay: Pay,
    db: Database,
    settings: Settings,
    registry: ProviderRegistry,
    signer_keys: StampKeys,
) -> None:
    from ledger.services.stamps import consume_stamp
    from receipts.numbers import StampNumber

    paid = await pay(harness)
    passport, _ = paid.stamps
    await harness.arm(paid.reference, ["timeout-after-charge"])
    lost = await refund_payment(db, settings, registry.get, _order(paid, "w1", stamps=(passport,)))
    assert lost.state == "unknown"
    with db.write() as session:  # the citizen is served meanwhile: the stamp is still valid
        consume_stamp(session, settings, StampNumber(passport), consulate="FR-PAR", actor="cashier")
    await harness.arm(paid.reference, [])
    payments = Payments(database=db, settings=settings, registry=registry, keys=signer_keys)
    assert await resolve_attempt(payments, _attempt_of(db, lost.id)) == "resolved"
    with db.read() as session:
        settled = get_refund(session, lost.id)
    assert (settled.state, settled.stamps[0].was_used) == ("succeeded", True)
    assert stamp_status(db, passport) == "consumed"
    assert _balance(db, "revenue:consular-fees:PASSPORT:EUR") == Money(0, "EUR")
    assert _balance(db, f"assets:clearing:{harness.provider.name}:EUR") == Money(500, "EUR")
