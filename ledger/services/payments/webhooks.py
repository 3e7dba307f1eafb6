"""Webhook and callback deliveries: verified on the raw body, each event applied once, answered as the
provider expects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import structlog
from anyio import to_thread
from sqlalchemy.exc import OperationalError

from ledger.domain.payments import EventOutcome
from ledger.services import clock
from ledger.services.payments.context import Payments
from ledger.services.payments.events import Applied, apply_event, body_digest, provider_for
from ledger.services.payments.resolver import resolve_payment
from providers.errors import WebhookPayloadError, WebhookRejectedError
from providers.model import WebhookAck, WebhookDecision

log = structlog.get_logger("etimbre.payments")


@dataclass(frozen=True, slots=True)
class WebhookResult:
    ack: WebhookAck
    applied: tuple[Applied, ...]
    rejected: str | None = None  # why the delivery was refused


async def receive_webhook(
    payments: Payments, variant: str, headers: Mapping[str, str], raw_body: bytes
) -> WebhookResult:
    """Verify a delivery on its raw bytes, apply each of its events once, and answer as the provider
    expects. A delivery that fails verification changes nothing and is refused."""
    provider = provider_for(payments, variant)
    try:
        verified = provider.verify_webhook(headers, raw_body, clock.now())
        events = provider.parse_webhook(verified)
    except (WebhookRejectedError, WebhookPayloadError) as error:
        log.warning("webhook refused", variant=variant, reason=str(error))
        return WebhookResult(provider.webhook_ack(WebhookDecision.REJECTED), (), rejected=str(error))
    digest = body_digest(raw_body)
    try:
        applied = [await to_thread.run_sync(apply_event, payments, variant, e, digest) for e in events]
    except OperationalError:  # the database is not there now: the provider delivers again later
        log.exception("webhook not stored", variant=variant)
        return WebhookResult(provider.webhook_ack(WebhookDecision.RETRY_LATER), ())
    # Events that could not be placed left a STATUS attempt: settle it now rather than on the next round.
    for payment_id in {a.payment_id for a in applied if a.outcome is EventOutcome.UNPLACED and a.payment_id}:
        await resolve_payment(payments, payment_id)
    return WebhookResult(provider.webhook_ack(WebhookDecision.ACCEPTED), tuple(applied))
