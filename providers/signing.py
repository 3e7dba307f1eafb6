"""Timestamped HMAC-SHA256 webhook signatures (`t=<unix>,v1=<hex>`), as Stripe and the sandbox sign them."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from providers.errors import WebhookRejectedError

_MAX_PARTS = 32  # a real header carries one or two signatures; refuse to spend time on a huge one


def timestamped_hmac(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes, scheme: str = "v1") -> str:
    """The header a sender puts on a delivery: one signature per secret in use (several during rotation)."""
    return ",".join(
        [f"t={timestamp}", *(f"{scheme}={timestamped_hmac(s, timestamp, body)}" for s in secrets)]
    )


@dataclass(frozen=True, slots=True)
class SignatureHeader:
    timestamp: int
    signatures: tuple[str, ...]


def parse_signature_header(value: str, scheme: str = "v1") -> SignatureHeader:
    parts = value.split(",")
    if len(parts) > _MAX_PARTS:
        raise WebhookRejectedError(f"signature header has {len(parts)} parts; at most {_MAX_PARTS} are read")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in parts:
        name, sep, item = part.strip().partition("=")
        if not sep:
            raise WebhookRejectedError(f"signature header part {part.strip()[:20]!r} is not name=value")
        if name == "t":
            if timestamp is not None or not item.isdigit() or len(item) > 12:
                raise WebhookRejectedError("signature header must carry one timestamp t=<unix seconds>")
            timestamp = int(item)
        elif name == scheme:
            signatures.append(item)
    if timestamp is None:
        raise WebhookRejectedError("signature header has no timestamp (t=...)")
    if not signatures:
        raise WebhookRejectedError(f"signature header has no {scheme} signature")
    return SignatureHeader(timestamp, tuple(signatures))


def verify_timestamped(
    header: str | None,
    body: bytes,
    *,
    secrets: Sequence[str],
    now: datetime,
    tolerance: timedelta,
    header_name: str,
    scheme: str = "v1",
) -> datetime:
    """Check a `t=...,v1=...` header against every configured secret; return the signed instant.

    The timestamp must lie within `tolerance` of `now` on both sides: too old is a replay, too far ahead is
    a forged or badly clocked sender. Comparisons are constant-time.
    """
    if not header:
        raise WebhookRejectedError(f"missing {header_name} header")
    parsed = parse_signature_header(header, scheme)
    signed_at = datetime.fromtimestamp(parsed.timestamp, UTC)
    if now - signed_at > tolerance:
        raise WebhookRejectedError(
            f"{header_name} timestamp is {int((now - signed_at).total_seconds())} s old; "
            f"at most {int(tolerance.total_seconds())} s are accepted"
        )
    if signed_at - now > tolerance:
        raise WebhookRejectedError(
            f"{header_name} timestamp is {int((signed_at - now).total_seconds())} s in the future; "
            f"at most {int(tolerance.total_seconds())} s of clock skew are accepted"
        )
    matched = False
    for secret in secrets:
        expected = timestamped_hmac(secret, parsed.timestamp, body).encode()
        for candidate in parsed.signatures:
            # No early exit: the time taken does not depend on which secret or signature matched.
            matched |= hmac.compare_digest(expected, candidate.encode())
    if not matched:
        raise WebhookRejectedError(f"no {scheme} signature in {header_name} matches a configured secret")
    return signed_at
