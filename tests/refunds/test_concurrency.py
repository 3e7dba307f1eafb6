"""Concurrent refunds of one payment, on both engines: duplicates with one key make one refund; orders
racing for the same stamp refund it once; the provider is asked for the money once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import anyio
import pytest
from sqlalchemy import text

from ledger.db.engine import Database
from ledger.money import Money
from ledger.services.refunds import RefundConflictError, RefundError, RefundOrder, RefundView, refund_payment
from ledger.settings import Settings
from providers.registry import ProviderRegistry
from tests.providers.conformance import Harness
from tests.refunds.conftest import Paid

pytestmark = pytest.mark.anyio
Pay = Callable[[Harness], Awaitable[Paid]]
COPIES = 5


async def _together(calls: Sequence[Callable[[], Awaitable[RefundView]]]) -> list[RefundView | Exception]:
    results: list[RefundView | Exception] = [RuntimeError("not run")] * len(calls)

    async def one(index: int) -> None:
        try:
            results[index] = await calls[index]()
        except (RefundError, RefundConflictError) as error:
            results[index] = error

    async with anyio.create_task_group() as group:
        for index in range(len(calls)):
            group.start_soon(one, index)
    return results


def _order(paid: Paid, key: str) -> RefundOrder:
    return RefundOrder(
        payment_ref=paid.reference, reason="duplicate payment", actor="admin", request_key=key,
        stamps=(paid.stamps[0],),
    )  # fmt: skip


async def test_concurrent_copies_of_one_order_make_one_refund(
    harness: Harness, pay: Pay, db: Database, settings: Settings, registry: ProviderRegistry
) -> None:
    paid = await pay(harness)
    order = _order(paid, "same-key")
    results = await _together([lambda: refund_payment(db, settings, registry.get, order)] * COPIES)
    views = [r for r in results if isinstance(r, RefundView)]
    assert len(views) == COPIES, results
    assert len({view.id for view in views}) == 1
    assert (await harness.provider.fetch_status(paid.reference)).refunded == Money(5500, "EUR")
    with db.read() as session:
        counts = session.execute(
            text(
                "SELECT (SELECT count(*) FROM payment_attempts WHERE kind = 'refund'),"
                " (SELECT count(*) FROM entries WHERE kind = 'stamp_refunded')"
            )
        ).one()
    assert tuple(counts) == (1, 1)


async def test_orders_racing_for_one_stamp_refund_it_once(
    harness: Harness, pay: Pay, db: Database, settings: Settings, registry: ProviderRegistry
) -> None:
    paid = await pay(harness)
    calls = [
        (lambda key=f"key-{n}": refund_payment(db, settings, registry.get, _order(paid, key)))
        for n in range(COPIES)
    ]
    results = await _together(calls)
    refunded = [r for r in results if isinstance(r, RefundView)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refunded) == 1 and refunded[0].state == "succeeded", results
    assert all(isinstance(r, RefundError) for r in refused)
    assert (await harness.provider.fetch_status(paid.reference)).refunded == Money(5500, "EUR")
