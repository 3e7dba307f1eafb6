"""CMI against its fake: the hashed form, callbacks whose reply drives capture, failure then success."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from ledger.money import Money
from providers.base import Provider
from providers.errors import WebhookRejectedError
from providers.model import (
    AutoPostForm,
    CaptureMode,
    EventKind,
    PaymentRequest,
    PaymentState,
    ProviderEvent,
    WebhookDecision,
)
from providers.registry import ProviderRegistry
from tests.providers.conformance import new_reference
from tests.providers.receiver import WebhookReceiver

pytestmark = pytest.mark.anyio


@pytest.fixture
def cmi(registry: ProviderRegistry) -> Provider:
    return registry.get("cmi-online")


@pytest.fixture
def service(receiver: tuple[WebhookReceiver, str], cmi: Provider) -> Iterator[list[ProviderEvent]]:
    """Play the service's callback endpoint: verify, parse, capture authorized payments by the reply."""
    hook, _ = receiver
    seen: list[ProviderEvent] = []

    def handle(headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        try:
            events = cmi.parse_webhook(cmi.verify_webhook(headers, body, datetime.now(UTC)))
        except WebhookRejectedError:
            ack = cmi.webhook_ack(WebhookDecision.REJECTED)
        else:
            seen.extend(events)
            authorized = any(e.kind is EventKind.AUTHORIZED for e in events)
            ack = cmi.webhook_ack(WebhookDecision.CAPTURE if authorized else WebhookDecision.ACCEPTED)
        return ack.status_code, ack.media_type, ack.body

    previous, hook.handler = hook.handler, handle
    yield seen
    hook.handler = previous


def _request(reference: str, capture: CaptureMode = CaptureMode.MANUAL) -> PaymentRequest:
    return PaymentRequest(
        reference=reference, amount=Money(35000, "MAD"), description="Passeport", consulate="FR-PAR",
        capture=capture, return_url="http://127.0.0.1:9/ok", cancel_url="http://127.0.0.1:9/fail",
    )  # fmt: skip


async def _citizen(cmi_url: str, form: AutoPostForm, decision: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        page = await client.post(form.url, data=dict(form.fields))
        assert page.status_code == 200, page.text
        action = re.search(r'action="([^"]+)"', page.text)
        assert action is not None
        return await client.post(cmi_url + action[1], data={"decision": decision})


async def test_the_form_carries_the_hash_and_no_card_data(cmi: Provider) -> None:
    first = await cmi.create_payment(_request("C-FORM"), idempotency_key="key-1")
    assert isinstance(first.next_action, AutoPostForm)
    fields = first.next_action.as_dict()
    assert fields["storetype"] == "3D_PAY_HOSTING"
    assert (fields["hashAlgorithm"], fields["TranType"], fields["currency"], fields["amount"]) == (
        "ver3", "PreAuth", "504", "350.00",
    )  # fmt: skip
    assert not {"pan", "cardnumber", "Ecom_Payment_Card_ExpDate_Month", "cv2"} & {k.lower() for k in fields}
    second = await cmi.create_payment(_request("C-FORM-2"), idempotency_key="key-2")
    assert isinstance(second.next_action, AutoPostForm)
    assert second.next_action.as_dict()["rnd"] != fields["rnd"]


async def test_the_reply_captures_and_failure_then_success_is_one_order(
    cmi: Provider, cmi_url: str, service: list[ProviderEvent]
) -> None:
    reference = new_reference()
    async with httpx.AsyncClient() as client:
        await client.put(f"{cmi_url}/_fake/orders/{reference}/faults", json={"faults": ["decline"]})
    first = await cmi.create_payment(_request(reference), idempotency_key=f"{reference}-1")
    assert isinstance(first.next_action, AutoPostForm)
    back = await _citizen(cmi_url, first.next_action, "approve")
    assert 'action="http://127.0.0.1:9/fail"' in back.text
    assert (await cmi.fetch_status(reference)).state is PaymentState.PENDING

    async with httpx.AsyncClient() as client:
        await client.put(f"{cmi_url}/_fake/orders/{reference}/faults", json={"faults": []})
    second = await cmi.create_payment(_request(reference), idempotency_key=f"{reference}-2")
    assert isinstance(second.next_action, AutoPostForm)
    back = await _citizen(cmi_url, second.next_action, "approve")
    assert 'action="http://127.0.0.1:9/ok"' in back.text

    mine = [e for e in service if e.our_reference == reference]
    assert [e.kind for e in mine] == [EventKind.DECLINED, EventKind.AUTHORIZED]
    assert len({e.event_id for e in mine}) == 2
    assert mine[1].amount == Money(35000, "MAD")
    # The service answered ACTION=POSTAUTH: the gateway captured.
    status = await cmi.fetch_status(reference)
    assert (status.state, status.captured) == (PaymentState.CAPTURED, Money(35000, "MAD"))

    # The browser's return post carries the same fields: it verifies and names the same event.
    returned = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', back.text))
    (again,) = cmi.parse_webhook(cmi.verify_webhook({}, urlencode(returned).encode(), datetime.now(UTC)))
    assert again.event_id == mine[1].event_id


async def test_a_bad_hash_is_answered_with_failure(
    cmi: Provider, cmi_url: str, receiver: tuple[WebhookReceiver, str]
) -> None:
    reference = new_reference()
    created = await cmi.create_payment(_request(reference, CaptureMode.AUTOMATIC), idempotency_key=reference)
    assert isinstance(created.next_action, AutoPostForm)
    await _citizen(cmi_url, created.next_action, "approve")
    async with httpx.AsyncClient() as client:
        callbacks = (await client.get(f"{cmi_url}/_fake/callbacks")).json()["data"]
    body = next(c["body"] for c in callbacks if c["oid"] == reference)
    fields = dict(parse_qsl(body))
    fields["amount"] = "1.00"
    with pytest.raises(WebhookRejectedError, match="HASH does not match"):
        cmi.verify_webhook({}, urlencode(fields).encode(), datetime.now(UTC))
    assert cmi.webhook_ack(WebhookDecision.REJECTED).body == b"FAILURE"
    assert cmi.webhook_ack(WebhookDecision.CAPTURE).body == b"ACTION=POSTAUTH"
    assert cmi.webhook_ack(WebhookDecision.ACCEPTED).body == b"APPROVED"


async def test_a_lost_callback_is_recovered_by_the_status_query(cmi: Provider, cmi_url: str) -> None:
    reference = new_reference()
    async with httpx.AsyncClient() as client:
        await client.put(f"{cmi_url}/_fake/orders/{reference}/faults", json={"faults": ["lost-callback"]})
    created = await cmi.create_payment(_request(reference, CaptureMode.AUTOMATIC), idempotency_key=reference)
    assert isinstance(created.next_action, AutoPostForm)
    await _citizen(cmi_url, created.next_action, "approve")
    async with httpx.AsyncClient() as client:
        callbacks = (await client.get(f"{cmi_url}/_fake/callbacks")).json()["data"]
    assert [c["state"] for c in callbacks if c["oid"] == reference] == ["lost"]
    status = await cmi.fetch_status(reference)
    assert (status.state, status.captured) == (PaymentState.CAPTURED, Money(35000, "MAD"))
