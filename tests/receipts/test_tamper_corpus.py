"""The tamper corpus: every bit of a stamp flipped in turn is refused, for the reason its place implies."""

from __future__ import annotations

from collections import Counter

import base45
import pytest

from receipts.algorithms import Algorithm
from receipts.codec import PREFIX, verify_stamp
from receipts.reasons import Reason, StampRejected
from tests.receipts.conftest import NOW, StampWorld, realistic_claims

STRUCTURE = {Reason.BAD_CBOR, Reason.BAD_COSE}
# The byte layout of a stamp (docs/stamp-format.md): tag, array head, protected header bstr (13 bytes:
# map head, alg, kid), empty unprotected map, payload bstr head (2 bytes), payload, signature head, 64 bytes.
PROTECTED = range(3, 16)
ALG_VALUE = 5
KID = range(8, 16)


def refusal(text: str, world: StampWorld) -> Reason | None:
    try:
        verify_stamp(text, world.trust, audience="FR-PAR", now=NOW)
    except StampRejected as refused:
        return refused.reason
    return None


def expected_reasons(position: int, payload_start: int, signature_start: int) -> set[Reason]:
    """What flipping a byte at `position` of the COSE bytes may legitimately be refused as."""
    if position == ALG_VALUE:
        return {Reason.ALG_MISMATCH} | STRUCTURE  # another integer, or no longer an integer
    if position in KID:
        return {Reason.UNKNOWN_KID}
    if position in PROTECTED:
        return STRUCTURE
    if payload_start <= position < signature_start - 2 or position >= signature_start:
        # Payload and signature bytes are opaque to the structure: only the signature can catch them.
        return {Reason.BAD_SIGNATURE}
    return STRUCTURE


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_every_bit_of_the_signed_bytes_flipped_is_refused_for_the_right_reason(
    world: StampWorld, algorithm: Algorithm
) -> None:
    text = world.issue(realistic_claims(), algorithm)
    cose = bytes(base45.b45decode(text[len(PREFIX) :]))
    assert cose[0] == 0xD2
    assert cose[1] == 0x84
    assert cose[2] == 0x4D
    assert cose[16] == 0xA0
    assert cose[17] == 0x58
    payload_start = 19
    signature_start = payload_start + cose[18] + 2
    assert cose[signature_start - 2 : signature_start] == b"\x58\x40"
    assert len(cose) == signature_start + 64

    masks = [1 << bit for bit in range(8)] + [0xFF]
    seen: Counter[Reason] = Counter()
    for position in range(len(cose)):
        for mask in masks:
            tampered = bytearray(cose)
            tampered[position] ^= mask
            reason = refusal(PREFIX + base45.b45encode(bytes(tampered)).decode(), world)
            allowed = expected_reasons(position, payload_start, signature_start)
            assert reason in allowed, f"byte {position} xor {mask:#04x}: {reason} not in {sorted(allowed)}"
            seen[reason] += 1
    assert sum(seen.values()) == len(masks) * len(cose)
    assert seen[Reason.BAD_SIGNATURE] == len(masks) * (len(cose) - payload_start - 2)


def test_every_character_of_the_text_changed_is_refused(world: StampWorld) -> None:
    text = world.issue(realistic_claims())
    for position in range(len(text)):
        for bit in range(7):  # stay in ASCII, as a QR scanner would
            character = chr(ord(text[position]) ^ (1 << bit))
            tampered = text[:position] + character + text[position + 1 :]
            reason = refusal(tampered, world)
            assert reason is not None, f"character {position} changed to {character!r} was accepted"
            if position < len(PREFIX):
                assert reason is Reason.BAD_PREFIX


def test_every_truncation_and_extension_is_refused(world: StampWorld) -> None:
    text = world.issue(realistic_claims())
    for end in range(len(text)):
        assert refusal(text[:end], world) is not None
    for extra in ("0", "00", "000", " ", "%%%"):
        assert refusal(text + extra, world) is not None
