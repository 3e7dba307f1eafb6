"""Integrated counter terminals through the service, on both engines: a sale issues its stamps; a timeout
leaves it UNKNOWN and the terminal busy (the database refuses a second sale) until a status query settles
it, with exactly one charge at the terminal."""

from __future__ import annotations

import httpx
import pytest

from ledger.domain.payments import PaymentStatus
from ledger.services.payments.context import Payments
from ledger.services.payments.errors import PaymentRefusedError, TerminalBusyError
from ledger.services.payments.resolver import resolve_payment
from ledger.services.payments.terminal import sale_view, start_terminal_sale
from tests.payments.conftest import count

pytestmark = pytest.mark.anyio


async def _charges(sandbox_url: str, reference: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient() as client:
        found = await client.get(
            f"{sandbox_url}/v1/payments", params={"reference": reference},
            headers={"Authorization": "Bearer test-api-key"},
        )  # fmt: skip
    return [p for p in found.raise_for_status().json()["data"] if p["captured_minor"] > 0]


async def test_a_sale_at_the_terminal_issues_its_stamps(payments: Payments) -> None:
    sale = await start_terminal_sale(
        payments, variant="sandbox-counter", consulate="FR-PAR", fee_codes=("PASSPORT", "CNIE"),
        terminal_id="T-PAR-1", cashier="cashier-1",
    )  # fmt: skip
    assert sale.state is PaymentStatus.CAPTURED
    assert [s.fee_code for s in sale.stamps] == ["PASSPORT", "CNIE"]
    assert count(payments.database, "entries", "WHERE kind = 'payment_captured'") == 1
    # The terminal is free again at once.
    again = await start_terminal_sale(
        payments, variant="sandbox-counter", consulate="FR-PAR", fee_codes=("PASSPORT",),
        terminal_id="T-PAR-1", cashier="cashier-1",
    )  # fmt: skip
    assert again.state is PaymentStatus.CAPTURED


async def test_a_timeout_leaves_the_sale_unknown_and_the_terminal_busy_until_its_status_is_known(
    payments: Payments, sandbox_url: str
) -> None:
    sale = await start_terminal_sale(
        payments, variant="sandbox-counter-slow", consulate="FR-PAR", fee_codes=("PASSPORT", "CNIE"),
        terminal_id="T-PAR-2", cashier="cashier-1",
    )  # fmt: skip
    assert sale.state is PaymentStatus.UNKNOWN
    assert sale.stamps == ()
    assert count(payments.database, "payment_attempts", "WHERE state = 'unknown'") == 1

    with pytest.raises(TerminalBusyError):
        await start_terminal_sale(
            payments, variant="sandbox-counter-slow", consulate="FR-PAR", fee_codes=("PASSPORT",),
            terminal_id="T-PAR-2", cashier="cashier-1",
        )  # fmt: skip
    assert count(payments.database, "payments") == 1, "the refused sale left nothing behind"

    assert await resolve_payment(payments, sale.payment_id) == ["resolved"]
    settled = sale_view(payments, sale.payment_id)
    assert settled.state is PaymentStatus.CAPTURED
    assert len(settled.stamps) == 2
    assert len(await _charges(sandbox_url, sale.reference)) == 1, "exactly one charge at the terminal"
    assert count(payments.database, "entries", "WHERE kind = 'payment_captured'") == 1


async def test_a_terminal_variant_must_be_one_and_serve_the_consulate(payments: Payments) -> None:
    with pytest.raises(PaymentRefusedError, match="not a terminal variant"):
        await start_terminal_sale(
            payments, variant="sandbox-online", consulate="FR-PAR", fee_codes=("PASSPORT",),
            terminal_id="T-1", cashier="c",
        )  # fmt: skip
    with pytest.raises(PaymentRefusedError, match="does not take"):
        await start_terminal_sale(
            payments, variant="sandbox-counter", consulate="GB-LON", fee_codes=("PASSPORT",),
            terminal_id="T-1", cashier="c",
        )  # fmt: skip
    assert count(payments.database, "payments") == 0


async def test_a_declined_card_at_the_terminal_issues_nothing_and_frees_the_terminal(
    payments: Payments,
) -> None:
    for _ in range(2):  # the terminal is free again after a decline
        sale = await start_terminal_sale(
            payments, variant="sandbox-counter-declines", consulate="FR-PAR", fee_codes=("PASSPORT",),
            terminal_id="T-PAR-3", cashier="cashier-1",
        )  # fmt: skip
        assert sale.state is PaymentStatus.FAILED
        assert sale.stamps == ()
    assert count(payments.database, "payment_attempts", "WHERE state = 'declined'") == 2
    assert count(payments.database, "entries") == 0
