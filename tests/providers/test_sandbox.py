"""The sandbox simulator and its adapter: hosted page, terminal, faults, signed webhooks, settlement."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from ledger.money import Money
from providers.config import parse_providers_config
from providers.loopback import LoopbackServer, check_loopback
from providers.model import (
    CaptureMode,
    EventKind,
    OutcomeKind,
    PaymentRequest,
    PaymentState,
    RefundRequest,
    SettlementKind,
    UnknownCause,
    WebhookDecision,
)
from providers.registry import ProviderRegistry
from providers.sandbox import simulator
from providers.sandbox.state import SimulatorSettings
from tests.providers.conftest import CURRENT, ENV, providers_toml
from tests.providers.receiver import WebhookReceiver

pytestmark = pytest.mark.anyio


FORTY_EUROS = Money(4000, "EUR")


def _online(reference: str, amount: Money = FORTY_EUROS) -> PaymentRequest:
    return PaymentRequest(
        reference=reference, amount=amount, description="Visa", consulate="FR-PAR",
        return_url="http://127.0.0.1:9/back", cancel_url="http://127.0.0.1:9/cancel",
    )  # fmt: skip


def _sale(reference: str) -> PaymentRequest:
    return PaymentRequest(
        reference=reference,
        amount=Money(20000, "MAD"),
        description="CIN",
        consulate="FR-PAR",
        terminal_id="T-1",
    )


@pytest.fixture
def delivering() -> Iterator[tuple[str, WebhookReceiver]]:
    """A simulator that posts its webhooks to a receiver, delivering only when flushed."""
    hook = WebhookReceiver()
    with LoopbackServer(hook) as hook_server:
        settings = SimulatorSettings(
            api_keys=(ENV["KEY"],), webhook_secrets=(CURRENT,), delivery="manual",
            notify_url=f"{hook_server.url}/hooks",
        )  # fmt: skip
        with LoopbackServer(simulator.create_app(settings)) as server:
            yield server.url, hook


async def _registry(url: str) -> ProviderRegistry:
    toml = providers_toml(url, "http://127.0.0.1:9", "http://127.0.0.1:9", "http://127.0.0.1:9")
    return ProviderRegistry(parse_providers_config(toml, source="test"), env=ENV)


async def _approve(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(url, data={"decision": "approve"})


async def test_a_citizen_pays_on_the_page_and_a_signed_webhook_reaches_the_service(
    delivering: tuple[str, WebhookReceiver],
) -> None:
    url, hook = delivering
    async with await _registry(url) as registry:
        provider = registry.get("sandbox-online")
        created = await provider.create_payment(_online("SB-1"), idempotency_key="k-SB-1")
        assert created.next_action is not None
        async with httpx.AsyncClient() as client:
            page = await client.get(created.next_action.url)
            assert "40.00 EUR" in page.text
            assert "card" not in page.text.lower().replace("no card is entered", "")
        back = await _approve(created.next_action.url)
        assert back.status_code == 303
        assert back.headers["location"].startswith("http://127.0.0.1:9/back?sandbox_payment=")
        async with httpx.AsyncClient() as client:
            await client.post(f"{url}/sandbox/webhooks/flush")
        kinds = []
        for delivery in hook.deliveries:
            verified = provider.verify_webhook(delivery.headers, delivery.body, datetime.now(UTC))
            kinds += [e.kind for e in provider.parse_webhook(verified)]
        assert kinds == [EventKind.AUTHORIZED, EventKind.CAPTURED]
        assert provider.webhook_ack(WebhookDecision.REJECTED).status_code == 400


@pytest.mark.parametrize(
    ("fault", "copies", "order"),
    [("duplicate-webhooks", 6, None), ("reordered-webhooks", 2, ["payment.captured", "payment.authorized"]),
     ("lost-callback", 0, None)],
)  # fmt: skip
async def test_webhook_faults(
    delivering: tuple[str, WebhookReceiver], fault: str, copies: int, order: list[str] | None
) -> None:
    url, hook = delivering
    async with await _registry(url) as registry:
        provider = registry.get("sandbox-online")
        async with httpx.AsyncClient() as client:
            await client.put(f"{url}/sandbox/orders/SB-F/faults", json={"faults": [fault]})
        created = await provider.create_payment(_online("SB-F"), idempotency_key="k-SB-F")
        assert created.next_action is not None
        await _approve(created.next_action.url)
        async with httpx.AsyncClient() as client:
            await client.post(f"{url}/sandbox/webhooks/flush")
        assert len(hook.deliveries) == copies
        if order:
            assert [json.loads(d.body)["type"] for d in hook.deliveries] == order
        # Whatever the webhooks did, the status query tells the truth.
        assert (await provider.fetch_status("SB-F")).state is PaymentState.CAPTURED


async def test_auto_delivery_posts_webhooks_without_being_asked() -> None:
    hook = WebhookReceiver()
    with LoopbackServer(hook) as hook_server:
        settings = SimulatorSettings(
            api_keys=(ENV["KEY"],), webhook_secrets=(CURRENT,), notify_url=hook_server.url
        )
        with LoopbackServer(simulator.create_app(settings)) as server:
            async with await _registry(server.url) as registry:
                sale = await registry.get("sandbox-counter").create_payment(
                    _sale("SB-A"), idempotency_key="k-SB-A"
                )
                assert sale.outcome.kind is OutcomeKind.SUCCEEDED
                for _ in range(1500):  # up to 30 s: the outbox delivers in the background
                    if len(hook.deliveries) == 2:
                        break
                    await asyncio.sleep(0.02)
                assert len(hook.deliveries) == 2


async def test_a_declined_card_on_the_page_leaves_the_payment_payable(sandbox_url: str) -> None:
    async with await _registry(sandbox_url) as registry:
        provider = registry.get("sandbox-online")
        async with httpx.AsyncClient() as client:
            await client.put(f"{sandbox_url}/sandbox/orders/SB-D/faults", json={"faults": ["decline"]})
        created = await provider.create_payment(_online("SB-D"), idempotency_key="k-SB-D")
        assert created.next_action is not None
        page = await _approve(created.next_action.url)
        assert page.status_code == 200
        assert "declined" in page.text
        status = await provider.fetch_status("SB-D")
        assert (status.state, status.detail) == (PaymentState.PENDING, "card_declined")


async def test_a_declined_sale_and_an_error_after_charge(sandbox_url: str) -> None:
    async with await _registry(sandbox_url) as registry:
        terminal = registry.get("sandbox-counter")
        async with httpx.AsyncClient() as client:
            await client.put(f"{sandbox_url}/sandbox/orders/SB-T1/faults", json={"faults": ["decline"]})
            await client.put(
                f"{sandbox_url}/sandbox/orders/SB-T2/faults", json={"faults": ["error-after-charge"]}
            )
        declined = await terminal.create_payment(_sale("SB-T1"), idempotency_key="k-SB-T1")
        assert (declined.outcome.kind, declined.outcome.code) == (OutcomeKind.DECLINED, "card_declined")
        errored = await terminal.create_payment(_sale("SB-T2"), idempotency_key="k-SB-T2")
        assert errored.outcome.cause is UnknownCause.PROVIDER_ERROR
        # The same key again replays the recorded success: the sale happened once.
        again = await terminal.create_payment(_sale("SB-T2"), idempotency_key="k-SB-T2")
        assert (again.outcome.kind, again.state) == (OutcomeKind.SUCCEEDED, PaymentState.CAPTURED)


async def test_settlement_lines_carry_gross_fee_and_net(sandbox_url: str) -> None:
    async with await _registry(sandbox_url) as registry:
        provider = registry.get("sandbox-online")
        created = await provider.create_payment(
            _online("SB-S", Money(10000, "EUR")), idempotency_key="k-SB-S"
        )
        assert created.next_action is not None
        await _approve(created.next_action.url)
        refund = RefundRequest(
            reference="SB-S", provider_reference=created.provider_reference, refund_reference="SB-S-R1",
            amount=Money(2500, "EUR"), previously_refunded=Money(0, "EUR"),
        )  # fmt: skip
        assert (
            await provider.refund(refund, idempotency_key="k-SB-S-R1")
        ).outcome.kind is OutcomeKind.SUCCEEDED
        lines = [
            line
            for line in await provider.settlement_lines(datetime.now(UTC).date())
            if line.our_reference == "SB-S"
        ]
        capture, refunded = sorted(lines, key=lambda line: line.kind)
        assert capture.kind is SettlementKind.CAPTURE
        assert (capture.gross, capture.fee, capture.net) == (
            Money(10000, "EUR"),
            Money(175, "EUR"),
            Money(9825, "EUR"),
        )
        assert (refunded.kind, refunded.gross, refunded.net) == (
            SettlementKind.REFUND,
            Money(-2500, "EUR"),
            Money(-2500, "EUR"),
        )
        assert capture.provider_reference == created.provider_reference


async def test_manual_capture_is_refused_on_a_terminal(sandbox_url: str) -> None:
    async with await _registry(sandbox_url) as registry:
        request = PaymentRequest(
            reference="SB-M", amount=Money(100, "EUR"), description="x", consulate="FR-PAR",
            terminal_id="T-1",
            capture=CaptureMode.MANUAL,
        )  # fmt: skip
        with pytest.raises(Exception, match="cannot authorize without capturing"):
            await registry.get("sandbox-counter").create_payment(request, idempotency_key="k-SB-M")


def test_simulators_listen_on_loopback_only() -> None:
    assert check_loopback("127.0.0.1") == "127.0.0.1"
    assert check_loopback("::1") == "::1"
    for host in ("0.0.0.0", "192.168.1.4", "example.org"):
        with pytest.raises(ValueError, match="loopback only"):
            check_loopback(host)
