"""Signed deliveries of a capture as each provider sends it, with any amount, currency, secret and time."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

import msgspec

from ledger.money import Money, numeric_code
from providers.cmi.hashing import compute_hash
from providers.sandbox.wire import EventData, WireAmount, WireEvent
from providers.signing import signature_header
from tests.providers.conftest import CMI_CALLBACK

Delivery = tuple[dict[str, str], bytes]


def captured(provider: str, reference: str, amount: Money, secret: str, timestamp: int) -> Delivery:
    """A "payment captured" delivery for our `reference`, signed with `secret` at unix `timestamp`."""
    event_id = secrets.token_hex(6)
    if provider == "sandbox":
        body = msgspec.json.encode(
            WireEvent(
                id=f"evt_{event_id}", type="payment.captured", created=timestamp,
                data=EventData(payment_id=f"pay_{event_id}", reference=reference, amount=WireAmount.of(amount)),
            )
        )  # fmt: skip
        return {"Sandbox-Signature": signature_header([secret], timestamp, body)}, body
    if provider == "stripe":
        body = msgspec.json.encode({
            "id": f"evt_{event_id}", "object": "event", "type": "payment_intent.succeeded", "created": timestamp,
            "data": {"object": {
                "id": f"pi_{event_id}", "object": "payment_intent", "amount": amount.minor,
                "amount_received": amount.minor, "currency": amount.currency.lower(), "status": "succeeded",
                "created": timestamp, "metadata": {"etimbre_reference": reference},
            }},
        })  # fmt: skip
        return {"Stripe-Signature": signature_header([secret], timestamp, body)}, body
    fields = dict(CMI_CALLBACK)
    fields.update(oid=reference, amount=amount.to_str(), currency=str(numeric_code(amount.currency)),
                  TransId=str(timestamp) + event_id[:4])  # fmt: skip
    fields["HASH"] = compute_hash(fields, secret)
    return {"Content-Type": "application/x-www-form-urlencoded"}, urlencode(fields).encode()
