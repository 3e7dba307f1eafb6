"""Signature schemes against vectors computed independently of the code under test."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from ledger.money import Money
from providers.cmi.hashing import compute_hash, hash_matches, hash_plaintext
from providers.errors import UnsupportedOperationError, WebhookRejectedError
from providers.signing import verify_timestamped
from providers.stripe.amounts import from_stripe, to_stripe

T = 1_700_000_000
BODY = b'{"id":"evt_1","type":"payment_intent.succeeded"}'
NOW = datetime.fromtimestamp(T + 10, UTC)


def _v1(secret: bytes) -> str:
    # Stripe's documented scheme: HMAC-SHA256 of "<t>.<raw body>", hex.
    return hmac.new(secret, f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()


def _verify(header: str, secrets: tuple[str, ...] = ("whsec_a",), now: datetime = NOW) -> datetime:
    return verify_timestamped(
        header,
        BODY,
        secrets=secrets,
        now=now,
        tolerance=timedelta(seconds=300),
        header_name="Stripe-Signature",
    )


def test_a_stripe_signature_vector_verifies() -> None:
    assert _verify(f"t={T},v1={_v1(b'whsec_a')}") == datetime.fromtimestamp(T, UTC)


def test_any_v1_under_any_configured_secret_is_enough_and_v0_is_ignored() -> None:
    header = f"t={T},v1={'0' * 64},v0={_v1(b'whsec_a')},v1={_v1(b'whsec_b')}"
    _verify(header, ("whsec_a", "whsec_b"))
    with pytest.raises(WebhookRejectedError, match="no v1 signature"):
        _verify(f"t={T},v0={_v1(b'whsec_a')}")
    with pytest.raises(WebhookRejectedError, match="matches a configured secret"):
        _verify(header, ("whsec_a",))


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "missing Stripe-Signature"),
        (f"v1={'a' * 64}", "no timestamp"),
        (f"t=12x,v1={'a' * 64}", "one timestamp"),
        (f"t={T},t={T},v1={'a' * 64}", "one timestamp"),
        ("t", "not name=value"),
        (",".join([f"t={T}"] + [f"v1={'a' * 64}"] * 40), "at most 32"),
    ],
)
def test_malformed_headers_are_refused(header: str, message: str) -> None:
    with pytest.raises(WebhookRejectedError, match=message):
        _verify(header)


def test_the_window_holds_on_both_sides() -> None:
    header = f"t={T},v1={_v1(b'whsec_a')}"
    _verify(header, now=datetime.fromtimestamp(T + 300, UTC))
    _verify(header, now=datetime.fromtimestamp(T - 300, UTC))
    with pytest.raises(WebhookRejectedError, match="301 s old"):
        _verify(header, now=datetime.fromtimestamp(T + 301, UTC))
    with pytest.raises(WebhookRejectedError, match="301 s in the future"):
        _verify(header, now=datetime.fromtimestamp(T - 301, UTC))


def test_the_cmi_hash_follows_the_ver3_recipe() -> None:
    fields = {
        "oid": "A|B", "amount": "12.50", "Currency": "504", "clientid": "600", "okUrl": "http://x/a\\b",
        "HASH": "ignored", "encoding": "UTF-8",
    }  # fmt: skip
    # Sorted case-insensitively (amount, clientid, Currency, oid, okUrl), escaped, then the escaped store key.
    plain = "12.50|600|504|A\\|B|http://x/a\\\\b|key\\|1"
    assert hash_plaintext(fields, "key|1") == plain
    expected = base64.b64encode(hashlib.sha512(plain.encode()).digest()).decode()
    assert compute_hash(fields, "key|1") == expected
    assert hash_matches(fields, expected, ["other", "key|1"])
    assert not hash_matches({**fields, "amount": "12.51"}, expected, ["key|1"])


def test_cmi_names_sort_naturally() -> None:
    plain = hash_plaintext({"item10": "c", "Item2": "b", "item1": "a"}, "k")
    assert plain == "a|b|c|k"


def test_stripe_amounts_follow_stripe_not_iso_where_they_differ() -> None:
    assert to_stripe(Money(1250, "EUR")) == 1250
    assert to_stripe(Money(500, "JPY")) == 500
    assert to_stripe(Money(5, "ISK")) == 500  # Stripe counts krónur in hundredths
    assert from_stripe(500, "isk") == Money(5, "ISK")
    assert to_stripe(Money(12340, "KWD")) == 12340
    with pytest.raises(UnsupportedOperationError, match="multiples of 10"):
        to_stripe(Money(12345, "KWD"))
    with pytest.raises(ValueError, match="fraction"):
        from_stripe(550, "isk")
